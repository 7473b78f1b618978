/**
 * `Transport` over a Workers TCP socket (`connect()` from `cloudflare:sockets`).
 *
 * - One reader and one writer are held on the socket's streams; `read()`/`write()` use them.
 * - `startTls()` releases both locks (workerd refuses to upgrade a locked socket), calls
 *   `socket.startTls()` (which needs `secureTransport: 'starttls'` at connect time) and takes
 *   new locks on the returned socket. Whatever the plain-text socket had buffered is left
 *   behind with it, unread (RFC 3207 section 4.2: no response injection). The host given to
 *   `connect()` is the name verified; `expectedServerHostname` is not used (workerd ignores it).
 * - workerd surfaces a failed handshake only at the first read or write, as an opaque error:
 *   until the first successful read after TLS starts, errors are reported as `SmtpTlsError`.
 * - `close()` may never settle in workerd: it is raced with a short timer.
 */
import { SmtpConnectionError } from '../../core/errors.ts';
import type { Endpoint, TlsInfo, Transport } from '../../core/transport.ts';
import { mapWorkersError, type WorkersSocketPhase } from './errors.ts';

/** The part of the workerd `Socket` this transport uses (matches `@cloudflare/workers-types`). */
export interface WorkersSocket {
  readonly readable: ReadableStream;
  readonly writable: WritableStream;
  readonly opened: Promise<{ remoteAddress?: string; localAddress?: string }>;
  readonly closed: Promise<void>;
  close(): Promise<void>;
  startTls(options?: { expectedServerHostname?: string }): WorkersSocket;
}

export interface WorkersSocketTransportOptions {
  host: string;
  port: number;
  /** The socket was opened with `secureTransport: 'on'` (implicit TLS). */
  implicitTls: boolean;
  /** How long `close()` waits for workerd before giving up. Default 1 s. */
  closeTimeoutMs?: number;
  local?: Endpoint | null;
  remote?: Endpoint | null;
}

export class WorkersSocketTransport implements Transport {
  #socket: WorkersSocket;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #host: string;
  readonly #port: number;
  readonly #closeTimeoutMs: number;
  #tls: TlsInfo | null;
  /** TLS was started but no byte has come back through it yet: errors now are TLS errors. */
  #tlsUnconfirmed: boolean;
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly local: Endpoint | null;
  readonly remote: Endpoint | null;

  constructor(socket: WorkersSocket, options: WorkersSocketTransportOptions) {
    this.#socket = socket;
    this.#reader = socket.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    this.#writer = socket.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>;
    this.#host = options.host;
    this.#port = options.port;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 1_000;
    this.#tls = options.implicitTls ? verifiedTls(options.host) : null;
    this.#tlsUnconfirmed = options.implicitTls;
    this.local = options.local ?? null;
    this.remote = options.remote ?? null;
  }

  get tls(): TlsInfo | null {
    return this.#tls;
  }

  #phase(): WorkersSocketPhase {
    return this.#tlsUnconfirmed ? 'tls' : 'io';
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#closed) return null;
    for (;;) {
      let result: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>;
      try {
        result = await this.#reader.read();
      } catch (err) {
        if (this.#closed) return null;
        throw mapWorkersError(err, { host: this.#host, port: this.#port, phase: this.#phase() });
      }
      if (result.done) {
        if (this.#tlsUnconfirmed && !this.#closed) {
          // The peer (or workerd, on a failed verification) closed before anything arrived over TLS.
          throw mapWorkersError(new Error('TLS handshake failed: the connection closed before any data'), {
            host: this.#host,
            port: this.#port,
            phase: 'tls',
          });
        }
        return null;
      }
      const value = result.value;
      if (!(value instanceof Uint8Array)) {
        throw new SmtpConnectionError('the Workers socket produced something other than bytes');
      }
      if (value.length === 0) continue;
      this.#tlsUnconfirmed = false;
      return value;
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#closed) throw new SmtpConnectionError('the connection is closed');
    try {
      await this.#writer.write(bytes);
    } catch (err) {
      throw mapWorkersError(err, { host: this.#host, port: this.#port, phase: this.#phase() });
    }
  }

  async startTls(): Promise<void> {
    if (this.#tls !== null) throw mapWorkersError(new Error('TLS is already active'), this.#ctx('tls'));
    if (this.#closed) throw new SmtpConnectionError('the connection is closed');
    // workerd: "This WritableStream is currently locked" unless both locks are released first.
    this.#reader.releaseLock();
    this.#writer.releaseLock();
    let secure: WorkersSocket;
    try {
      secure = this.#socket.startTls();
    } catch (err) {
      throw mapWorkersError(err, this.#ctx('tls'));
    }
    this.#socket = secure;
    this.#reader = secure.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    this.#writer = secure.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>;
    this.#tls = verifiedTls(this.#host);
    this.#tlsUnconfirmed = true;
    // Any handshake failure shows up at the next read/write (see #tlsUnconfirmed).
    secure.opened.catch(() => {});
    secure.closed.catch(() => {});
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      const socket = this.#socket;
      const done = (async () => {
        try {
          this.#reader.releaseLock();
        } catch {
          // a pending read keeps the lock; close() below ends it
        }
        try {
          this.#writer.releaseLock();
        } catch {
          // ignore
        }
        await socket.close();
      })();
      done.catch(() => {});
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        done.then(
          () => {},
          () => {},
        ),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.#closeTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
    })();
    return this.#closing;
  }

  #ctx(phase: WorkersSocketPhase) {
    return { host: this.#host, port: this.#port, phase };
  }
}

/** workerd verifies chain and host name itself and exposes no details. */
function verifiedTls(host: string): TlsInfo {
  return { protocol: null, cipher: null, authorized: true, servername: host };
}
