import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../src/store/file-store.ts';
import { S3Store, type S3StoreOptions } from '../src/store/s3-store.ts';
import { type EnvelopeMeta, StoreError } from '../src/store/types.ts';
import {
  eventually,
  startFaultProxy,
  startLateProxy,
  startRecordingProxy,
  startTestS3,
  TEST_CREDENTIALS,
  type TestS3,
} from './support/s3.ts';

const enc = new TextEncoder();

function meta(id: string): EnvelopeMeta {
  return {
    id,
    mailFrom: 'a@example.org',
    rcptTo: ['b@example.com'],
    params: { mail: { body: '8BITMIME' }, rcpt: [{}] },
    remoteAddress: '192.0.2.1',
    remotePort: 40000,
    proxiedBy: null,
    localPort: 2525,
    listener: 'mx',
    helo: { verb: 'EHLO', name: 'client.example.org' },
    tls: null,
    authUser: null,
    receivedAt: '2026-11-28T20:00:00.000Z',
  };
}

function streamOf(chunks: Uint8Array[], failAfter?: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (failAfter !== undefined && i === failAfter) {
        c.error(new Error('client went away'));
        return;
      }
      const next = chunks[i++];
      if (next === undefined) c.close();
      else c.enqueue(next);
    },
  });
}

/** A stream that yields `first` and then never ends (a client that stalls mid-DATA). */
function stalledStream(first: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (!sent) {
        sent = true;
        c.enqueue(first);
        return;
      }
      return new Promise<void>(() => {});
    },
  });
}

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

function listAll(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .sort();
}

describe('FileStore', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'receiver-filestore-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('stores head + exact body bytes and the envelope, under yyyy/mm/dd, and nothing else', async () => {
    const dir = fresh();
    const store = new FileStore(dir);
    const head = enc.encode('Received: from x by y; date\r\n');
    const chunks = [
      enc.encode('Subject: hi\r\n\r\n'),
      new Uint8Array([0, 0xff, 0x0d, 0x0a, 0x2e]),
      enc.encode('\r\n'),
    ];
    const ref = await store.put({
      meta: meta('ID1'),
      head,
      body: streamOf(chunks),
      signal: new AbortController().signal,
    });
    expect(listAll(dir)).toEqual(['2026/11/28/ID1.eml', '2026/11/28/ID1.json']);
    expect(new Uint8Array(readFileSync(ref.eml))).toEqual(concat([head, ...chunks]));
    const json = JSON.parse(readFileSync(ref.json, 'utf8'));
    const bodyLen = chunks.reduce((n, c) => n + c.byteLength, 0);
    expect(json).toEqual({ ...meta('ID1'), size: head.byteLength + bodyLen, messageSize: bodyLen });
  });

  it('leaves no file when the message stream fails mid-way', async () => {
    const dir = fresh();
    const store = new FileStore(dir);
    const err = await store
      .put({
        meta: meta('ID2'),
        head: enc.encode('R: x\r\n'),
        body: streamOf([enc.encode('a'), enc.encode('b')], 1),
        signal: new AbortController().signal,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).reason).toBe('input');
    expect(listAll(dir)).toEqual([]);
  });

  it('leaves no file when aborted while waiting for the client, and reports a time-out as such', async () => {
    const dir = fresh();
    const store = new FileStore(dir);
    const ac = new AbortController();
    const p = store.put({
      meta: meta('ID3'),
      head: enc.encode('R: x\r\n'),
      body: stalledStream(enc.encode('abc')),
      signal: ac.signal,
    });
    await eventually(async () => listAll(dir).length > 0, 'temp file created');
    expect(listAll(dir)).toEqual(['2026/11/28/.ID3.eml.tmp']);
    ac.abort(new DOMException('store time-out', 'TimeoutError'));
    const err = await p.catch((e: unknown) => e);
    expect((err as StoreError).reason).toBe('timeout');
    expect(listAll(dir)).toEqual([]);
  });

  it('fails with an io error when the directory cannot be used (like a full disk)', async () => {
    const dir = fresh();
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const store = new FileStore(blocker);
    const err = await store
      .put({
        meta: meta('ID4'),
        head: enc.encode('R\r\n'),
        body: streamOf([]),
        signal: new AbortController().signal,
      })
      .catch((e: unknown) => e);
    expect((err as StoreError).reason).toBe('io');
    await expect(store.check()).rejects.toBeInstanceOf(StoreError);
    await expect(new FileStore(dir).check()).resolves.toBeUndefined();
  });

  it('refuses ids that could escape the directory', async () => {
    const store = new FileStore(fresh());
    for (const id of ['../x', 'a/b', '.hidden', '']) {
      const err = await store
        .put({
          meta: meta(id),
          head: new Uint8Array(),
          body: streamOf([]),
          signal: new AbortController().signal,
        })
        .catch((e: unknown) => e);
      expect((err as StoreError).reason).toBe('input');
    }
  });
});

describe('S3Store against s3rver', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startTestS3();
  });
  afterAll(async () => {
    await s3.close();
  });

  const store = (
    endpoint = s3.endpoint,
    prefix = 'p',
    extra: Pick<S3StoreOptions, 'requestTimeoutMs' | 'onCleanupError'> = {},
  ) =>
    new S3Store({
      bucket: s3.bucket,
      prefix,
      forcePathStyle: true,
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
      requestTimeoutMs: 1000,
      client: { endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: 2 },
      ...extra,
    });

  it('stores a small message byte for byte with its envelope', async () => {
    const st = store();
    const head = enc.encode('Received: test\r\n');
    const body = [enc.encode('Subject: s3\r\n\r\nbody\r\n'), new Uint8Array([0x80, 0xfe])];
    const ref = await st.put({
      meta: meta('S1'),
      head,
      body: streamOf(body),
      signal: new AbortController().signal,
    });
    expect(ref.eml).toBe(`s3://mail/p/2026/11/28/S1.eml`);
    expect(await s3.get('p/2026/11/28/S1.eml')).toEqual(concat([head, ...body]));
    const json = JSON.parse(new TextDecoder().decode(await s3.get('p/2026/11/28/S1.json')));
    expect(json).toEqual({ ...meta('S1'), size: 16 + 23, messageSize: 23 });
    await st.close();
  });

  it('streams a message larger than one part as a multipart upload, byte for byte', async () => {
    const st = store(s3.endpoint, 'big');
    const data = randomBytes(12 * 1024 * 1024 + 7, 42);
    const chunks: Uint8Array[] = [];
    for (let o = 0; o < data.byteLength; o += 65536) chunks.push(data.subarray(o, o + 65536));
    await st.put({
      meta: meta('S2'),
      head: enc.encode('H\r\n'),
      body: streamOf(chunks),
      signal: new AbortController().signal,
    });
    const got = await s3.get('big/2026/11/28/S2.eml');
    expect(got.byteLength).toBe(data.byteLength + 3);
    expect(Buffer.compare(got.subarray(3), data)).toBe(0);
    await st.close();
  });

  it('a message that fits in one part is one PutObject; one octet more is a multipart upload', async () => {
    const proxy = await startRecordingProxy(s3.port);
    const st = store(proxy.endpoint, 'edge');
    const head = enc.encode('H\r\n');
    const part = 5 * 1024 * 1024;
    for (const [id, size] of [
      ['E1', part - head.byteLength],
      ['E2', part - head.byteLength + 1],
    ] as const) {
      const data = randomBytes(size, size);
      const chunks: Uint8Array[] = [];
      for (let o = 0; o < size; o += 65536) chunks.push(data.subarray(o, o + 65536));
      await st.put({ meta: meta(id), head, body: streamOf(chunks), signal: new AbortController().signal });
      const got = await s3.get(`edge/2026/11/28/${id}.eml`);
      expect(got.byteLength).toBe(size + head.byteLength);
      expect(Buffer.compare(got, concat([head, data]))).toBe(0);
      const json = JSON.parse(new TextDecoder().decode(await s3.get(`edge/2026/11/28/${id}.json`)));
      expect([json.size, json.messageSize]).toEqual([size + head.byteLength, size]);
    }
    const seen = proxy.lines.map((l) => l.replace(/uploadId=[0-9a-f]+/, 'uploadId=U'));
    // The two parts go out concurrently (queueSize 2), in either order.
    expect([...seen.slice(0, 3), ...seen.slice(3, 5).sort(), ...seen.slice(5)]).toEqual([
      'PUT /mail/edge/2026/11/28/E1.eml?x-id=PutObject',
      'PUT /mail/edge/2026/11/28/E1.json?x-id=PutObject',
      'POST /mail/edge/2026/11/28/E2.eml?uploads=',
      'PUT /mail/edge/2026/11/28/E2.eml?partNumber=1&uploadId=U&x-id=UploadPart',
      'PUT /mail/edge/2026/11/28/E2.eml?partNumber=2&uploadId=U&x-id=UploadPart',
      'POST /mail/edge/2026/11/28/E2.eml?uploadId=U',
      'PUT /mail/edge/2026/11/28/E2.json?x-id=PutObject',
    ]);
    await st.close();
    await proxy.close();
  });

  it('aborted while the client is still sending: no request reaches S3, the reason is the time-out', async () => {
    const proxy = await startRecordingProxy(s3.port);
    const st = store(proxy.endpoint, 'stall');
    const ac = new AbortController();
    const p = st.put({
      meta: meta('W1'),
      head: enc.encode('H\r\n'),
      body: stalledStream(enc.encode('Subject: half\r\n')),
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(new DOMException('store time-out', 'TimeoutError')), 100);
    expect(((await p.catch((e: unknown) => e)) as StoreError).reason).toBe('timeout');
    expect(st.pendingCleanups).toBe(0);
    expect(proxy.lines).toEqual([]);
    await st.close();
    await proxy.close();
  });

  it('leaves no object when the message stream fails (small and multipart)', async () => {
    const st = store(s3.endpoint, 'fail');
    for (const [id, size] of [
      ['F1', 10],
      ['F2', 6 * 1024 * 1024],
    ] as const) {
      const chunks = [randomBytes(size, 1), randomBytes(size, 2)];
      const err = await st
        .put({
          meta: meta(id),
          head: enc.encode('H\r\n'),
          body: streamOf(chunks, 2),
          signal: new AbortController().signal,
        })
        .catch((e: unknown) => e);
      expect((err as StoreError).reason).toBe('input');
    }
    await eventually(
      async () => (await s3.keys()).filter((k) => k.startsWith('fail/')).length === 0,
      'no objects',
    );
    await st.close();
  });

  it('S3 down: unavailable, and nothing stored', async () => {
    const proxy = await startFaultProxy(s3.port, 'refuse');
    const st = store(proxy.endpoint, 'down');
    const err = await st
      .put({
        meta: meta('D1'),
        head: enc.encode('H\r\n'),
        body: streamOf([enc.encode('x')]),
        signal: new AbortController().signal,
      })
      .catch((e: unknown) => e);
    expect((err as StoreError).reason).toBe('unavailable');
    await expect(st.check()).rejects.toBeInstanceOf(StoreError);
    proxy.setMode('pass');
    await st.check();
    await st.put({
      meta: meta('D2'),
      head: enc.encode('H\r\n'),
      body: streamOf([enc.encode('x')]),
      signal: new AbortController().signal,
    });
    expect((await s3.keys()).filter((k) => k.startsWith('down/'))).toEqual([
      'down/2026/11/28/D2.eml',
      'down/2026/11/28/D2.json',
    ]);
    await st.close();
    await proxy.close();
  });

  for (const mode of ['hang', 'swallow'] as const) {
    it(`S3 slower than the time-out (${mode}): the put is aborted and no object remains`, async () => {
      const proxy = await startFaultProxy(s3.port, mode);
      const st = store(proxy.endpoint, `slow-${mode}`);
      const ac = new AbortController();
      const p = st.put({
        meta: meta('T1'),
        head: enc.encode('H\r\n'),
        body: streamOf([enc.encode('x')]),
        signal: ac.signal,
      });
      setTimeout(() => ac.abort(new DOMException('store time-out', 'TimeoutError')), 300);
      const err = await p.catch((e: unknown) => e);
      expect((err as StoreError).reason).toBe('timeout');
      proxy.setMode('pass'); // the clean-up DELETEs go through once S3 answers again
      await eventually(
        async () => (await s3.keys()).filter((k) => k.startsWith(`slow-${mode}/`)).length === 0,
        'no objects',
      );
      await st.close();
      await proxy.close();
    });
  }

  // A request S3 has received can complete after we gave up on it (lost response, late delivery).
  // The clean-up must still leave neither object: it deletes again once such a request can have
  // landed (`requestTimeoutMs` after the put's requests settled), and close() waits for it.
  for (const [what, ext] of [
    ['the .eml PutObject', '.eml'],
    ['the .json PutObject (the commit marker)', '.json'],
  ] as const) {
    it(`${what} lands after the put failed: the clean-up deletes it again; the failure is not delayed`, async () => {
      const prefix = `late${ext.replace('.', '-')}`;
      const proxy = await startLateProxy(
        s3.port,
        (head) =>
          head.startsWith('PUT ') && new RegExp(`\\${ext}[ ?]`).test(head.slice(0, head.indexOf('\r\n'))),
      );
      const st = store(proxy.endpoint, prefix);
      const ac = new AbortController();
      const p = st.put({
        meta: meta('L1'),
        head: enc.encode('H\r\n'),
        body: streamOf([enc.encode('late body\r\n')]),
        signal: ac.signal,
      });
      p.catch(() => {});
      // S3 has the whole request (held by the proxy) when the store time-out fires.
      await eventually(async () => proxy.held === 1, 'request held');
      ac.abort(new DOMException('store time-out', 'TimeoutError'));
      const err = await p.catch((e: unknown) => e);
      expect((err as StoreError).reason).toBe('timeout');
      // put() answered before the clean-up finished: the 451 never waits for it.
      expect(st.pendingCleanups).toBe(1);
      await eventually(async () => proxy.replayed === 1, 'the held request reached S3');
      await st.close(); // waits for the clean-up
      expect(st.pendingCleanups).toBe(0);
      expect((await s3.keys()).filter((k) => k.startsWith(`${prefix}/`))).toEqual([]);
      await proxy.close();
    });
  }

  it('the clean-up is bounded when S3 stops answering: both keys reported, close() returns', async () => {
    const proxy = await startFaultProxy(s3.port, 'hang');
    const failed: string[] = [];
    const st = store(proxy.endpoint, 'gone', {
      requestTimeoutMs: 200,
      onCleanupError: (key) => failed.push(key),
    });
    const ac = new AbortController();
    const p = st.put({
      meta: meta('G1'),
      head: enc.encode('H\r\n'),
      body: streamOf([enc.encode('x')]),
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(new DOMException('store time-out', 'TimeoutError')), 100);
    expect(((await p.catch((e: unknown) => e)) as StoreError).reason).toBe('timeout');
    await st.close();
    expect(failed).toEqual(['gone/2026/11/28/G1.json', 'gone/2026/11/28/G1.eml']);
    await proxy.close();
  });
});
