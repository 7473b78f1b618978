/**
 * Client-side helpers for tests: a session over a real socket whose every `write()` is
 * recorded, so a test can check what went out in one write (PIPELINING batches).
 */
import net from 'node:net';
import { NodeSocketTransport } from '../../../src/adapter/node/transport.ts';
import type { SmtpClientOptions } from '../../../src/core/client/options.ts';
import { SmtpClientSession } from '../../../src/core/client/session.ts';
import type { StartTlsOptions, Transport } from '../../../src/core/transport.ts';

const dec = new TextDecoder();

export class RecordingTransport implements Transport {
  readonly inner: Transport;
  readonly writes: string[] = [];
  constructor(inner: Transport) {
    this.inner = inner;
  }
  read(): Promise<Uint8Array | null> {
    return this.inner.read();
  }
  write(bytes: Uint8Array): Promise<void> {
    this.writes.push(dec.decode(bytes));
    return this.inner.write(bytes);
  }
  startTls(options?: StartTlsOptions): Promise<void> {
    return this.inner.startTls(options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  get tls() {
    return this.inner.tls;
  }
  get local() {
    return this.inner.local;
  }
  get remote() {
    return this.inner.remote;
  }
}

export async function recordedSession(
  port: number,
  options: Partial<SmtpClientOptions> = {},
  tlsOptions: { ca?: string } = {},
): Promise<{ session: SmtpClientSession; writes: string[]; transport: RecordingTransport }> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  const transport = new RecordingTransport(
    new NodeSocketTransport(socket, { role: 'client', tls: { ...tlsOptions, servername: 'localhost' } }),
  );
  const session = new SmtpClientSession(transport, {
    host: '127.0.0.1',
    port,
    security: 'none',
    helo: 'client.test',
    ...options,
  });
  return { session, writes: transport.writes, transport };
}

/** Await a promise expected to reject; returns the error (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
