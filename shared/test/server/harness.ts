/**
 * Test harness for the SMTP server: start a server on an ephemeral 127.0.0.1 port with a
 * recording handler, and a raw SMTP client that sends exact octets and reads exact replies.
 *
 * Also meant for the interop suite: `startTestServer()` gives a running server whose received
 * messages (envelope + exact octets) are in `server.messages`.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { testPki } from '../../../test/support/tls.ts';
import {
  createSmtpServer,
  type ListenOptions,
  type NodeSmtpServer,
  type NodeSmtpServerOptions,
} from '../../src/adapter/node/server.ts';
import type { Envelope, SmtpServerHandler, SmtpSession } from '../../src/core/server/types.ts';

export interface ReceivedMessage {
  envelope: Envelope;
  /** The exact octets the data handler read. */
  bytes: Uint8Array;
  session: { id: string; user: string | null; helo: SmtpSession['helo']; secure: boolean };
}

export interface TestServer {
  server: NodeSmtpServer;
  port: number;
  /** Every listener's port, in `listen` order. */
  ports: number[];
  messages: ReceivedMessage[];
  errors: unknown[];
  /** Sessions that ended (handler.close). */
  closed: string[];
  close(deadlineMs?: number): Promise<void>;
}

export interface TestServerSetup {
  handler?: Partial<SmtpServerHandler>;
  options?: Partial<NodeSmtpServerOptions>;
  /** Listeners (default one plain listener). `port` defaults to 0, `host` to 127.0.0.1. */
  listen?: Array<Partial<ListenOptions>>;
  /** Add the test certificate (default true). */
  tls?: boolean;
}

/** Read a whole stream into one array. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const part of stream) {
    parts.push(part);
    total += part.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export async function startTestServer(setup: TestServerSetup = {}): Promise<TestServer> {
  const messages: ReceivedMessage[] = [];
  const errors: unknown[] = [];
  const closed: string[] = [];
  const pki = setup.tls === false ? null : testPki();
  const h = setup.handler ?? {};
  const handler: SmtpServerHandler = {
    ...h,
    data:
      h.data ??
      (async (session, envelope, stream) => {
        const bytes = await readAll(stream);
        messages.push({
          envelope,
          bytes,
          session: { id: session.id, user: session.user, helo: session.helo, secure: session.secure },
        });
        return { message: `queued as ${messages.length}` };
      }),
    close: (session) => {
      closed.push(session.id);
      h.close?.(session);
    },
  };
  const server = createSmtpServer(handler, {
    hostname: 'mx.test',
    authFailureDelayMs: 0,
    ...(pki ? { tls: { key: pki.key, cert: pki.cert } } : {}),
    onError: (_s, e) => errors.push(e),
    ...setup.options,
  });
  const ports: number[] = [];
  for (const l of setup.listen ?? [{}]) {
    const info = await server.listen({ port: 0, host: '127.0.0.1', ...l });
    ports.push(info.port);
  }
  return {
    server,
    port: ports[0]!,
    ports,
    messages,
    errors,
    closed,
    close: (deadlineMs = 2000) => server.close({ deadlineMs }),
  };
}

export interface Reply {
  code: number;
  lines: string[];
  /** The reply as received, CRLFs included. */
  raw: string;
}

/** A raw SMTP client: exact octets out, exact replies in. */
export class RawClient {
  socket: net.Socket;
  #buffer = '';
  #closed = false;
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.#listen(socket);
  }

  #listen(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.#buffer += d.toString('latin1');
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  static connect(port: number, options: { implicitTls?: boolean } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = options.implicitTls
        ? tls.connect({ port, host: '127.0.0.1', ca: testPki().caCert, servername: 'localhost' })
        : net.connect({ port, host: '127.0.0.1' });
      socket.once(options.implicitTls ? 'secureConnect' : 'connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Everything received and not yet consumed by `reply()`. */
  get pending(): string {
    return this.#buffer;
  }

  send(data: string | Uint8Array): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Send UTF-8 text. */
  sendUtf8(data: string): void {
    this.socket.write(Buffer.from(data, 'utf8'));
  }

  async #wait(): Promise<void> {
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** The next complete reply; rejects if the connection closes first. */
  async reply(): Promise<Reply> {
    for (;;) {
      const parsed = parseReply(this.#buffer);
      if (parsed) {
        this.#buffer = this.#buffer.slice(parsed.raw.length);
        return parsed;
      }
      if (this.#closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.#buffer)}`);
      await this.#wait();
    }
  }

  /** The next `n` replies. */
  async replies(n: number): Promise<Reply[]> {
    const out: Reply[] = [];
    for (let i = 0; i < n; i++) out.push(await this.reply());
    return out;
  }

  /** Send a command line and return its reply. */
  async command(line: string): Promise<Reply> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  /** Wait until the server closes the connection. */
  async waitClosed(): Promise<void> {
    while (!this.#closed) await this.#wait();
  }

  /** Upgrade to TLS (after the server's 220 to STARTTLS), trusting the test CA. */
  async startTls(): Promise<tls.TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tls.connect({ socket: plain, ca: testPki().caCert, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#buffer = '';
    this.#listen(secure);
    return secure;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One complete reply at the start of `text`, or null. */
export function parseReply(text: string): Reply | null {
  let at = 0;
  const lines: string[] = [];
  for (;;) {
    const end = text.indexOf('\r\n', at);
    if (end < 0) return null;
    const line = text.slice(at, end);
    at = end + 2;
    const m = /^(\d{3})([ -])(.*)$/s.exec(line) ?? /^(\d{3})()$/.exec(line);
    if (!m) throw new Error(`bad reply line ${JSON.stringify(line)}`);
    lines.push(m[3] ?? '');
    if (m[2] !== '-') return { code: Number(m[1]), lines, raw: text.slice(0, at) };
  }
}

/** Connect, read the greeting and EHLO; returns the client and the EHLO reply. */
export async function ehlo(port: number, name = 'client.test'): Promise<{ c: RawClient; ehlo: Reply }> {
  const c = await RawClient.connect(port);
  const greeting = await c.reply();
  if (greeting.code !== 220) throw new Error(`greeting ${greeting.raw}`);
  const reply = await c.command(`EHLO ${name}`);
  return { c, ehlo: reply };
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const latin1 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
