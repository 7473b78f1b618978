/**
 * Review finding 8: `FileHandle.write()` may write fewer bytes than asked. A real short write is
 * produced here, no fake FileHandle: the store runs in a child process under `ulimit -f` (RLIMIT_FSIZE),
 * so the kernel's write(2) stops at the limit and returns a short count. The .eml must then never be
 * committed truncated: the store keeps writing the rest, gets EFBIG, fails with an `io` StoreError
 * (the handler answers 451 4.3.0) and leaves nothing in the directory.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const CHILD = join(import.meta.dirname, 'support', 'short-write-child.ts');
const dirs: string[] = [];

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** Run the child with an optional file-size limit in 512-byte or 1024-byte blocks (POSIX `ulimit -f`). */
function runChild(dir: string, size: number, ulimitBlocks: number | null): Promise<Record<string, unknown>> {
  const limit = ulimitBlocks === null ? '' : `ulimit -f ${ulimitBlocks} && `;
  return new Promise((resolve, reject) => {
    execFile(
      '/bin/sh',
      ['-c', `${limit}exec "$0" "$@"`, process.execPath, CHILD, dir, String(size)],
      { timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`child failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>);
      },
    );
  });
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('FileStore and short writes', () => {
  const SIZE = 1024 * 1024;

  it('control: without a limit the same one-chunk message is stored whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rx-shortwrite-'));
    dirs.push(dir);
    const r = await runChild(dir, SIZE, null);
    expect(r['ok']).toBe(true);
    const record = r['record'] as { size: number; messageSize: number };
    expect(record.messageSize).toBe(SIZE);
    expect(r['emlBytes']).toBe(record.size);
  });

  it('a write cut short by the kernel is finished or fails: never a truncated .eml committed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rx-shortwrite-'));
    dirs.push(dir);
    // 128 blocks is 64 KiB or 128 KiB depending on the shell's unit: far below the 1 MiB chunk, far
    // above the envelope .json, so only the .eml write is cut.
    const r = await runChild(dir, SIZE, 128);
    expect(r).toMatchObject({ ok: false, reason: 'io' });
    expect(String(r['message'])).toMatch(/EFBIG/);
    expect(listFiles(dir)).toEqual([]);
  });
});
