/**
 * Directory store (the default): `<dir>/<yyyy>/<mm>/<dd>/<id>.eml` and `<id>.json`.
 *
 * Commit protocol, so that a crash or a failure never leaves a half message under a final name:
 * 1. write `.<id>.eml.tmp` (head + body) and fsync it;
 * 2. write `.<id>.json.tmp` (the envelope with the final sizes) and fsync it;
 * 3. rename the `.eml` into place, then the `.json` (the `.json` is the commit marker: a reader that
 *    sees `<id>.json` finds its `<id>.eml` complete), then fsync the directory.
 * On any error or abort before step 3 finishes, the temporary files (and an already renamed `.eml`)
 * are removed. A crash can leave only dot-named `*.tmp` files, which readers ignore.
 * Every write is completed in a loop (`writeAll`): a short write never leaves a truncated `.eml`.
 */
import { constants } from 'node:fs';
import { access, type FileHandle, mkdir, open, rename, statfs, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  abortReason,
  assertSafeId,
  type EnvelopeRecord,
  type MessageStore,
  objectBaseName,
  type PutInput,
  type StoredRef,
  StoreError,
} from './types.ts';

async function fsyncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** `mkdir -p` that also fsyncs the parent of every directory it created, so the new entries survive a crash. */
async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  // `first` is the top-most directory created; fsync it and every parent down to `dir`'s parent.
  let d = dir;
  const created: string[] = [];
  while (d.length >= first.length) {
    created.push(dirname(d));
    d = dirname(d);
  }
  for (const p of created) await fsyncDirectory(p);
}

/**
 * Write all of `data` at the file's current position. `FileHandle.write()` resolves with the number of
 * bytes the kernel took, which can be fewer than asked (write(2) stops at RLIMIT_FSIZE, at a full
 * file system, on a signal); the rest is written by further calls, so that the next call reports the
 * real error (EFBIG, ENOSPC) instead of a truncated `.eml` being committed.
 */
async function writeAll(fh: FileHandle, data: Uint8Array, path: string): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) {
    let written: number;
    try {
      ({ bytesWritten: written } = await fh.write(data, offset, data.byteLength - offset));
    } catch (e) {
      throw ioError(e, `cannot write ${path}`);
    }
    // write(2) returns 0 only for a zero-length request; guard against a loop that never ends anyway.
    if (written <= 0) throw new StoreError('io', `cannot write ${path}: no progress`);
    offset += written;
  }
}

function ioError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return new StoreError('io', `${what}: ${code ?? (err as Error)?.message ?? String(err)}`, { cause: err });
}

export class FileStore implements MessageStore {
  readonly kind = 'file' as const;
  readonly location: string;
  readonly directory: string;

  constructor(directory: string) {
    this.directory = directory;
    this.location = pathToFileURL(directory).href;
  }

  async put(input: PutInput): Promise<StoredRef> {
    const { meta, head, body, signal } = input;
    assertSafeId(meta.id);
    const base = objectBaseName(meta.id, meta.receivedAt);
    const dir = join(this.directory, dirname(base));
    const emlPath = join(dir, `${meta.id}.eml`);
    const jsonPath = join(dir, `${meta.id}.json`);
    const emlTmp = join(dir, `.${meta.id}.eml.tmp`);
    const jsonTmp = join(dir, `.${meta.id}.json.tmp`);
    const reader = body.getReader();
    const onAbort = () => {
      reader.cancel(signal.reason).catch(() => {});
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let fh: FileHandle | undefined;
    let emlRenamed = false;
    let committed = false;
    try {
      if (signal.aborted) throw new StoreError(abortReason(signal), 'store aborted before start');
      await mkdirDurable(dir).catch((e: unknown) => {
        throw ioError(e, `cannot create ${dir}`);
      });
      fh = await open(emlTmp, 'wx', 0o640).catch((e: unknown) => {
        throw ioError(e, `cannot create ${emlTmp}`);
      });
      let messageSize = 0;
      await writeAll(fh, head, emlTmp);
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (signal.aborted) throw new StoreError(abortReason(signal), 'store aborted', { cause: e });
          throw new StoreError('input', 'the message stream failed', { cause: e });
        }
        if (signal.aborted) throw new StoreError(abortReason(signal), 'store aborted');
        if (chunk.done) break;
        messageSize += chunk.value.byteLength;
        await writeAll(fh, chunk.value, emlTmp);
      }
      await fh.sync().catch((e: unknown) => {
        throw ioError(e, `cannot fsync ${emlTmp}`);
      });
      await fh.close();
      fh = undefined;

      const record: EnvelopeRecord = { ...meta, size: head.byteLength + messageSize, messageSize };
      fh = await open(jsonTmp, 'wx', 0o640).catch((e: unknown) => {
        throw ioError(e, `cannot create ${jsonTmp}`);
      });
      // writeFile() itself repeats write(2) until every byte is written.
      await fh.writeFile(`${JSON.stringify(record, null, 2)}\n`).catch((e: unknown) => {
        throw ioError(e, `cannot write ${jsonTmp}`);
      });
      await fh.sync().catch((e: unknown) => {
        throw ioError(e, `cannot fsync ${jsonTmp}`);
      });
      await fh.close();
      fh = undefined;

      if (signal.aborted) throw new StoreError(abortReason(signal), 'store aborted before commit');
      await rename(emlTmp, emlPath).catch((e: unknown) => {
        throw ioError(e, `cannot rename to ${emlPath}`);
      });
      emlRenamed = true;
      await rename(jsonTmp, jsonPath).catch((e: unknown) => {
        throw ioError(e, `cannot rename to ${jsonPath}`);
      });
      committed = true;
      // After the .json rename the message is stored; an fsync failure here is still reported so
      // that the client retries rather than trusting a directory entry that may not survive a crash.
      await fsyncDirectory(dir).catch((e: unknown) => {
        throw ioError(e, `cannot fsync ${dir}`);
      });
      return { eml: emlPath, json: jsonPath, record };
    } catch (err) {
      reader.cancel(err).catch(() => {});
      if (fh !== undefined) await fh.close().catch(() => {});
      await unlink(emlTmp).catch(() => {});
      await unlink(jsonTmp).catch(() => {});
      if (emlRenamed) await unlink(emlPath).catch(() => {});
      if (committed) await unlink(jsonPath).catch(() => {});
      throw err instanceof StoreError ? err : ioError(err, 'store failed');
    } finally {
      signal.removeEventListener('abort', onAbort);
      reader.releaseLock();
    }
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.directory, { recursive: true });
      await access(this.directory, constants.W_OK);
      const s = await statfs(this.directory);
      if (s.bavail <= 0) throw new StoreError('io', `no free space in ${this.directory}`);
    } catch (e) {
      throw ioError(e, `store directory ${this.directory} is not usable`);
    }
  }

  async close(): Promise<void> {}
}
