/**
 * Child process for the short-write test (receiver/test/file-store-write.test.ts): stores one message
 * of `size` bytes, sent as ONE chunk, into `dir` with the real FileStore, and prints one JSON line:
 * `{ ok: true, record, emlBytes }` (emlBytes = the size of the .eml actually on disk) or
 * `{ ok: false, reason, message }`. The parent runs it under `ulimit -f`, so the kernel itself cuts
 * the write short (write(2) returns fewer bytes than asked once the file reaches RLIMIT_FSIZE;
 * Node ignores SIGXFSZ, so the next write fails with EFBIG instead of killing the process).
 */
import { statSync } from 'node:fs';
import { FileStore } from '../../src/store/file-store.ts';
import { StoreError } from '../../src/store/types.ts';

const [dir, sizeText] = process.argv.slice(2);
if (dir === undefined || sizeText === undefined) throw new Error('usage: short-write-child.ts DIR SIZE');
const size = Number(sizeText);
const body = new Uint8Array(size).fill(0x61);
const store = new FileStore(dir);
try {
  const ref = await store.put({
    meta: {
      id: 'shortwrite1',
      mailFrom: 'a@example.org',
      rcptTo: ['b@example.com'],
      params: { mail: {}, rcpt: [{}] },
      remoteAddress: '192.0.2.1',
      remotePort: 40000,
      proxiedBy: null,
      localPort: 2525,
      listener: 'mx',
      helo: null,
      tls: null,
      authUser: null,
      receivedAt: '2026-11-28T20:00:00.000Z',
    },
    head: new TextEncoder().encode('Received: test\r\n'),
    body: new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(body);
        c.close();
      },
    }),
    signal: new AbortController().signal,
  });
  console.log(JSON.stringify({ ok: true, record: ref.record, emlBytes: statSync(ref.eml).size }));
} catch (e) {
  console.log(
    JSON.stringify({
      ok: false,
      reason: e instanceof StoreError ? e.reason : null,
      message: e instanceof Error ? e.message : String(e),
    }),
  );
}
