/**
 * S3 store: `<prefix>/<yyyy>/<mm>/<dd>/<id>.eml` then `<prefix>/<yyyy>/<mm>/<dd>/<id>.json`.
 *
 * - The `.eml`: the message is read into memory up to one part (`partSize`). A message that ends
 *   within it (nearly all mail) is one PutObject of those bytes, with a known length. A larger one
 *   is streamed with `@aws-sdk/lib-storage` `Upload` as a multipart upload, starting with the
 *   part already read. Memory per message is bounded by about (queueSize + 2) x partSize
 *   whatever the message size (the part read first, handed over as lib-storage pulls it, and
 *   lib-storage's own queueSize + 1 part buffers).
 * - The `.json` is a PutObject after the `.eml` succeeded: it is the commit marker.
 * - On failure, abort or time-out: every HTTP request of this message still in flight is cancelled
 *   and no new PUT/POST of the message goes out, the multipart upload is aborted (by lib-storage),
 *   and `put()` rejects at once. Our own PutObjects carry the put's abort signal and are tracked
 *   directly; lib-storage does not pass an abort signal to the SDK, so its requests run inside an
 *   AsyncLocalStorage context that a wrapped request handler reads (only for multipart uploads:
 *   on Node 22 an AsyncLocalStorage in use adds promise hooks to every promise of the process).
 *   Then a clean-up runs in the background (see `cleanUp`): it waits for the message's requests to
 *   settle, deletes both keys, and deletes them again `requestTimeoutMs` later, because cancelling
 *   a request does not undo it: a PutObject that S3 already received can still complete after
 *   our first DELETE (an `.eml` without its `.json`, or a `.json` without its `.eml`).
 * - `requestChecksumCalculation: 'WHEN_REQUIRED'`: with the SDK default, a streamed body is sent with
 *   aws-chunked framing that some S3-compatible servers store verbatim (toolchain note).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  DeleteObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
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

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix without leading or trailing `/`; may be empty. */
  prefix: string;
  forcePathStyle: boolean;
  partSize: number;
  queueSize: number;
  /**
   * The clean-up's unit of time (default 30 s; the receiver passes RECEIVER_STORE_TIMEOUT): each
   * clean-up DELETE is cut after it, the deletes are repeated once this long after the failed
   * put's requests settled, and a whole clean-up ends within 5 times it.
   */
  requestTimeoutMs?: number;
  /** Extra client settings (tests pass endpoint and credentials; production uses the AWS_* variables). */
  client?: S3ClientConfig;
  /** Called when the clean-up after a failed put could not delete an object. */
  onCleanupError?: (key: string, err: unknown) => void;
  /** Called with the number of clean-ups running whenever it changes (a gauge). */
  onCleanupsPending?: (pending: number) => void;
}

/** The requests of one put: cancelled together, and awaited by its clean-up. */
interface RequestContext {
  readonly signal: AbortSignal;
  /** One promise per request still in flight; each resolves (never rejects) when it settles. */
  readonly inFlight: Set<Promise<void>>;
}

interface HandlerOptions {
  abortSignal?: unknown;
  [key: string]: unknown;
}

interface WrappableHandler {
  handle(request: { method: string }, options?: HandlerOptions): Promise<unknown>;
}

const requests = new AsyncLocalStorage<RequestContext>();

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

function isWrappable(h: unknown): h is WrappableHandler {
  return typeof h === 'object' && h !== null && typeof (h as WrappableHandler).handle === 'function';
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('Request aborted', { cause: signal.reason }), { name: 'AbortError' });
}

/**
 * Build an S3Client whose HTTP handler ties each request to the current put: the request is
 * cancelled when the put's signal fires, a PUT or POST that would start after it fired is refused
 * without touching the network, and every request is tracked until it settles. DELETE requests
 * (AbortMultipartUpload, DeleteObject) are never cancelled: they only remove things.
 */
function cancellableClient(config: S3ClientConfig): S3Client {
  const probe = new S3Client(config);
  const inner: unknown = probe.config.requestHandler;
  if (!isWrappable(inner)) return probe;
  const wrapped = Object.create(inner) as WrappableHandler;
  wrapped.handle = (request, options = {}) => {
    const ctx = requests.getStore();
    if (ctx === undefined) return inner.handle(request, options);
    let sent: Promise<unknown>;
    if (request.method === 'DELETE') sent = inner.handle(request, options);
    else if (ctx.signal.aborted) return Promise.reject(abortError(ctx.signal));
    else {
      const own = options.abortSignal;
      const signal = own instanceof AbortSignal ? AbortSignal.any([own, ctx.signal]) : ctx.signal;
      sent = inner.handle(request, { ...options, abortSignal: signal });
    }
    return tracked(ctx, sent);
  };
  return new S3Client({ ...config, requestHandler: wrapped as S3ClientConfig['requestHandler'] });
}

/** `work`, counted in `ctx.inFlight` until it settles (the clean-up waits for it). */
function tracked<T>(ctx: RequestContext, work: Promise<T>): Promise<T> {
  const settled = work.then(
    () => {},
    () => {},
  );
  ctx.inFlight.add(settled);
  void settled.then(() => ctx.inFlight.delete(settled));
  return work;
}

/** What `readPart` read: the chunks, their total size, and whether the stream ended. */
interface FirstPart {
  chunks: Uint8Array[];
  size: number;
  done: boolean;
}

/**
 * Read `reader` until it ends or more than `limit` octets were read (then `done` is false and the
 * rest is still in the reader). Rejects with the stream's own error, or an AbortError when
 * `signal` fires while waiting for the client.
 */
async function readPart(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
  signal: AbortSignal,
): Promise<FirstPart> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size <= limit) {
    const r = await bounded(reader.read(), signal);
    if (r.done) return { chunks, size, done: true };
    chunks.push(r.value);
    size += r.value.byteLength;
  }
  return { chunks, size, done: false };
}

function concat(head: Uint8Array, chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(head.byteLength + size);
  out.set(head, 0);
  let offset = head.byteLength;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/**
 * A signal that fires after `ms`. Unlike `AbortSignal.timeout` its timer keeps the process alive,
 * so a shutdown waiting for a clean-up cannot end before it.
 */
function timer(ms: number): { signal: AbortSignal; clear(): void } {
  const c = new AbortController();
  const t = setTimeout(() => c.abort(new DOMException(`clean-up time-out (${ms} ms)`, 'TimeoutError')), ms);
  return { signal: c.signal, clear: () => clearTimeout(t) };
}

/** Resolve when `signal` aborts. */
function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Resolve after `ms`, or as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(handle);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const handle = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** `work`, or a rejection with the signal's reason when `signal` aborts first. */
function bounded<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {}); // when the signal wins, a later rejection of `work` is expected
  if (signal.aborted) return Promise.reject(abortError(signal));
  let onAbort = () => {};
  const stop = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, stop]).finally(() => signal.removeEventListener('abort', onAbort));
}

export class S3Store implements MessageStore {
  readonly kind = 's3' as const;
  readonly location: string;
  readonly client: S3Client;
  private readonly opts: S3StoreOptions;
  private readonly requestTimeoutMs: number;
  /** Clean-ups running in the background; `close()` waits for them. */
  private readonly cleanups = new Set<Promise<void>>();

  constructor(options: S3StoreOptions) {
    this.opts = options;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.location = `s3://${options.bucket}/${options.prefix}`;
    this.client = cancellableClient({
      forcePathStyle: options.forcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...options.client,
    });
  }

  key(id: string, receivedAt: string, ext: 'eml' | 'json'): string {
    const base = `${objectBaseName(id, receivedAt)}.${ext}`;
    return this.opts.prefix === '' ? base : `${this.opts.prefix}/${base}`;
  }

  async put(input: PutInput): Promise<StoredRef> {
    const { meta, head, body, signal } = input;
    assertSafeId(meta.id);
    const emlKey = this.key(meta.id, meta.receivedAt, 'eml');
    const jsonKey = this.key(meta.id, meta.receivedAt, 'json');
    const bucket = this.opts.bucket;
    const controller = new AbortController();
    const context: RequestContext = { signal: controller.signal, inFlight: new Set() };
    const onAbort = () => controller.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });

    let messageSize = 0;
    let bodyError: unknown;
    const reader = body.getReader();
    /** Read from the client; a failure here is the client's (`input`), not the store's. */
    const readBody = async <T>(read: () => Promise<T>): Promise<T> => {
      try {
        return await read();
      } catch (e) {
        if (!controller.signal.aborted) {
          bodyError = e;
          controller.abort(e);
        }
        throw e;
      }
    };

    let requestsStarted = false;
    try {
      if (controller.signal.aborted) throw new Error('aborted before start');
      const first = await readBody(() =>
        readPart(reader, this.opts.partSize - head.byteLength, controller.signal),
      );
      messageSize = first.size;
      requestsStarted = true;
      if (first.done) {
        // The whole message is in memory: one PutObject with a known length.
        const bytes = concat(head, first.chunks, first.size);
        await tracked(
          context,
          this.client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: emlKey,
              Body: bytes,
              ContentLength: bytes.byteLength,
              ContentType: 'message/rfc822',
            }),
            { abortSignal: controller.signal },
          ),
        );
      } else {
        // Larger than one part: head, the part already read, then the rest as it arrives.
        // Pull-based, so lib-storage's part buffers are the only buffers.
        const pending: Uint8Array[] = [head, ...first.chunks];
        const eml = new ReadableStream<Uint8Array>(
          {
            async pull(c) {
              const next = pending.shift();
              if (next !== undefined) {
                c.enqueue(next);
                return;
              }
              try {
                const r = await readBody(() => reader.read());
                if (r.done) c.close();
                else {
                  messageSize += r.value.byteLength;
                  c.enqueue(r.value);
                }
              } catch (e) {
                c.error(e);
              }
            },
            cancel(reason) {
              return reader.cancel(reason);
            },
          },
          { highWaterMark: 0 },
        );
        await requests.run(context, () =>
          new Upload({
            client: this.client,
            params: { Bucket: bucket, Key: emlKey, Body: eml, ContentType: 'message/rfc822' },
            partSize: this.opts.partSize,
            queueSize: this.opts.queueSize,
            leavePartsOnError: false,
            abortController: controller,
          }).done(),
        );
      }
      if (controller.signal.aborted) throw new Error('aborted');
      const record: EnvelopeRecord = { ...meta, size: head.byteLength + messageSize, messageSize };
      await tracked(
        context,
        this.client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: jsonKey,
            Body: `${JSON.stringify(record, null, 2)}\n`,
            ContentType: 'application/json',
          }),
          { abortSignal: controller.signal },
        ),
      );
      return { eml: `s3://${bucket}/${emlKey}`, json: `s3://${bucket}/${jsonKey}`, record };
    } catch (err) {
      if (!controller.signal.aborted) controller.abort(err);
      reader.cancel(err).catch(() => {});
      if (requestsStarted) this.startCleanUp([jsonKey, emlKey], context);
      if (bodyError !== undefined)
        throw new StoreError('input', 'the message stream failed', { cause: bodyError });
      if (signal.aborted) throw new StoreError(abortReason(signal), 'store aborted', { cause: err });
      throw new StoreError('unavailable', `S3 put failed: ${describe(err)}`, { cause: err });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Clean-ups still running (failed puts whose objects may not be gone yet). */
  get pendingCleanups(): number {
    return this.cleanups.size;
  }

  private startCleanUp(keys: readonly string[], context: RequestContext): void {
    const run = this.cleanUp(keys, context).finally(() => {
      this.cleanups.delete(run);
      this.opts.onCleanupsPending?.(this.cleanups.size);
    });
    this.cleanups.add(run);
    this.opts.onCleanupsPending?.(this.cleanups.size);
  }

  /**
   * Make sure neither object of a failed put exists, in the background (the `451` does not wait).
   * With T = `requestTimeoutMs`:
   * 1. Wait until every request of the put has settled on our side (at most T). After the put's
   *    signal fired no new PUT/POST of it can start (see `cancellableClient`), so from here on
   *    nothing of ours can still be creating the objects.
   * 2. For T: delete the `.json` (the commit marker) and then the `.eml`, retrying failures. This
   *    round hides the objects early; it may come too soon.
   * 3. T after step 1 ended: delete both again, retrying for up to 3 T. This round is the one that
   *    counts: a request S3 had already received when we gave up (its response was lost, or it was
   *    held up on the way) has landed by then, if it landed within T. A key this round could not
   *    delete goes to `onCleanupError`.
   * A clean-up takes a little over T when S3 answers, and never more than 5 T.
   */
  private async cleanUp(keys: readonly string[], context: RequestContext): Promise<void> {
    const T = this.requestTimeoutMs;
    try {
      const settled = (async () => {
        while (context.inFlight.size > 0) await Promise.all(context.inFlight);
      })();
      const settle = timer(T);
      await bounded(settled, settle.signal).catch(() => {});
      settle.clear();
      const early = timer(T);
      try {
        await this.deleteKeys(keys, early.signal);
        await untilAborted(early.signal);
      } finally {
        early.clear();
      }
      const final = timer(3 * T);
      try {
        for (const [key, err] of await this.deleteKeys(keys, final.signal))
          this.opts.onCleanupError?.(key, err);
      } finally {
        final.clear();
      }
    } catch (e) {
      for (const key of keys) this.opts.onCleanupError?.(key, e);
    }
  }

  /**
   * Delete each key in order, retrying with back-off until it is gone or `budget` fires (each
   * attempt also cut after T). Returns the keys not deleted, with the last error.
   */
  private async deleteKeys(keys: readonly string[], budget: AbortSignal): Promise<Map<string, unknown>> {
    const failed = new Map<string, unknown>();
    for (const key of keys) {
      for (let attempt = 1; ; attempt++) {
        const cut = timer(this.requestTimeoutMs);
        try {
          await bounded(
            this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: key }), {
              abortSignal: AbortSignal.any([budget, cut.signal]),
            }),
            budget,
          );
          break;
        } catch (e) {
          if (!budget.aborted) await sleep(Math.min(2000, 250 * 2 ** (attempt - 1)), budget);
          if (budget.aborted) {
            failed.set(key, e);
            break;
          }
        } finally {
          cut.clear();
        }
      }
    }
    return failed;
  }

  async check(signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(
        new HeadBucketCommand({ Bucket: this.opts.bucket }),
        signal === undefined ? {} : { abortSignal: signal },
      );
    } catch (e) {
      throw new StoreError('unavailable', `bucket ${this.opts.bucket} is not reachable: ${describe(e)}`, {
        cause: e,
      });
    }
  }

  /** Waits for the clean-ups still running (each ends within 5 x `requestTimeoutMs`), then closes. */
  async close(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.allSettled([...this.cleanups]);
    this.client.destroy();
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { Code?: string; code?: string }).Code ?? (err as { code?: string }).code;
    return code !== undefined && !err.message.includes(code)
      ? `${code} ${err.message}`
      : err.message || err.name;
  }
  return String(err);
}
