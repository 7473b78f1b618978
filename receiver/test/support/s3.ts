/**
 * Test S3: s3rver started in-process on an ephemeral port with a temp directory, plus a TCP proxy
 * in front of it that can refuse connections, hang, or swallow responses (fault injection).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

interface S3rverInstance {
  run(): Promise<{ port: number; address: string }>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

export const TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface TestS3 {
  endpoint: string;
  port: number;
  bucket: string;
  dir: string;
  client: S3Client;
  /** Keys in the bucket (all of them). */
  keys(): Promise<string[]>;
  get(key: string): Promise<Uint8Array>;
  close(): Promise<void>;
  /** Environment for a receiver child process. */
  env(prefix?: string, endpoint?: string): Record<string, string>;
}

export async function startTestS3(bucket = 'mail'): Promise<TestS3> {
  const dir = mkdtempSync(join(tmpdir(), 'receiver-s3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: dir,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: TEST_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    port,
    bucket,
    dir,
    client,
    async keys() {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
        for (const o of r.Contents ?? []) if (o.Key) out.push(o.Key);
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },
    async get(key) {
      const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return new Uint8Array(await r.Body!.transformToByteArray());
    },
    async close() {
      client.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
    env(prefix = 'in', ep = endpoint) {
      return {
        RECEIVER_STORE: `s3://${bucket}/${prefix}`,
        RECEIVER_S3_FORCE_PATH_STYLE: 'true',
        AWS_ENDPOINT_URL_S3: ep,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: 'true',
      };
    },
  };
}

/**
 * `pass`: forward both ways. `refuse`: close every connection at once (S3 down).
 * `hang`: accept and never forward (S3 slower than any time-out).
 * `swallow`: forward requests but never return responses (the object is written, the client times out).
 */
export type FaultMode = 'pass' | 'refuse' | 'hang' | 'swallow';

export interface FaultProxy {
  port: number;
  endpoint: string;
  setMode(mode: FaultMode): void;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number, initial: FaultMode = 'pass'): Promise<FaultProxy> {
  let mode: FaultMode = initial;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (mode === 'refuse') {
      client.destroy();
      return;
    }
    if (mode === 'hang') return;
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    if (mode === 'pass') upstream.pipe(client);
    else upstream.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    setMode(m) {
      mode = m;
      for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A pass-through proxy that records the request line of every request (`PUT /bucket/key?x HTTP/1.1`
 * without the version), in the order they reach it. Octets are forwarded as they arrive (a client
 * waiting for `100 Continue` gets it); requests are framed by Content-Length.
 */
export interface RecordingProxy {
  endpoint: string;
  readonly lines: readonly string[];
  close(): Promise<void>;
}

export async function startRecordingProxy(targetPort: number): Promise<RecordingProxy> {
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.pipe(client);
    let head = Buffer.alloc(0);
    let skip = 0; // body octets of the current request still to pass
    client.on('data', (d: Buffer) => {
      upstream.write(d);
      let rest = d;
      while (rest.length > 0) {
        if (skip > 0) {
          const n = Math.min(skip, rest.length);
          skip -= n;
          rest = rest.subarray(n);
          continue;
        }
        head = Buffer.concat([head, rest]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        lines.push(text.slice(0, text.indexOf(' HTTP/')));
        skip = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? 0);
        rest = head.subarray(end + 4);
        head = Buffer.alloc(0);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    lines,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A proxy that lets every request through except those `hold` picks: such a request is read in
 * full and then neither forwarded nor answered. When the client gives up on it (closes the
 * connection), the proxy sends the held request to S3 `lateMs` later on a new connection: S3 acts
 * on a request whose sender has stopped waiting, as when a response is lost or a middlebox
 * delivers late. `replayed` counts replays that S3 has answered.
 */
export interface LateProxy {
  endpoint: string;
  /** Requests held so far (complete requests, head and body). */
  readonly held: number;
  /** Held requests sent to S3 and answered. */
  readonly replayed: number;
  close(): Promise<void>;
}

/** End of one HTTP/1.1 request in `buf` (Content-Length or chunked framing), or -1 if incomplete. */
function requestEnd(buf: Buffer): number {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return -1;
  const head = buf.subarray(0, headEnd).toString('latin1');
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length) {
    const end = headEnd + 4 + Number(length[1]);
    return buf.length >= end ? end : -1;
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    const last = buf.indexOf('\r\n0\r\n\r\n', headEnd);
    return last < 0 ? -1 : last + 7;
  }
  return headEnd + 4;
}

export async function startLateProxy(
  targetPort: number,
  hold: (requestHead: string) => boolean,
  lateMs = 100,
): Promise<LateProxy> {
  const sockets = new Set<Socket>();
  const track = (s: Socket): Socket => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    return s;
  };
  const stats = { held: 0, replayed: 0 };
  const replay = (request: Buffer) => {
    const up = track(connect(targetPort, '127.0.0.1'));
    up.write(request);
    setTimeout(() => up.destroy(), 10_000).unref();
    up.once('data', () => {
      stats.replayed++;
      up.destroy();
    });
  };
  const server: Server = createServer((client) => {
    track(client);
    const upstream = track(connect(targetPort, '127.0.0.1'));
    upstream.on('close', () => client.destroy());
    upstream.on('data', (d: Buffer) => client.write(d));
    let pending = Buffer.alloc(0);
    let held: Buffer | null = null;
    client.on('data', (d: Buffer) => {
      if (held !== null) return;
      pending = Buffer.concat([pending, d]);
      for (let end = requestEnd(pending); end >= 0; end = requestEnd(pending)) {
        const request = pending.subarray(0, end);
        pending = pending.subarray(end);
        if (hold(request.subarray(0, request.indexOf('\r\n\r\n')).toString('latin1'))) {
          held = Buffer.from(request);
          stats.held++;
          return;
        }
        upstream.write(request);
      }
    });
    client.on('close', () => {
      upstream.destroy();
      const request = held;
      if (request !== null) setTimeout(() => replay(request), lateMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get held() {
      return stats.held;
    },
    get replayed() {
      return stats.replayed;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Poll `fn` until it returns true; fails after `tries` attempts. For eventual clean-ups, not timing. */
export async function eventually(fn: () => Promise<boolean>, what: string, tries = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never happened: ${what}`);
}
