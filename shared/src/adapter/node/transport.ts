/**
 * `Transport` over a Node `net.Socket` (or an already encrypted `tls.TLSSocket`), for both the
 * client and the server role.
 *
 * - `read()` uses the socket in paused mode: octets stay in the socket (and, beyond its
 *   high-water mark, in the kernel and the peer's send buffer) until the engine asks for them.
 *   That is the backpressure: a peer can never make us buffer more than one high-water mark.
 * - `startTls()` drops everything received but not yet read (RFC 3207 section 4.2: no octet sent
 *   before the handshake may be read as if it came over TLS), then wraps the socket: server side
 *   with `new tls.TLSSocket(socket, { isServer: true, secureContext })`, client side with
 *   `tls.connect({ socket, servername, ca, rejectUnauthorized, minVersion })`, and waits for the
 *   handshake. TLS 1.2 is the minimum unless the caller's options say otherwise.
 * - `close()` half-closes, then destroys after a short grace: it settles in bounded time even
 *   when the peer never answers.
 * - A reset after the engine already closed (common after QUIT, see the toolchain notes on
 *   workerd) is not an error; a reset while reading rejects `read()` with `SmtpConnectionError`.
 */
import type { Socket } from 'node:net';
import * as tls from 'node:tls';
import { SmtpConnectionError, SmtpTimeoutError, SmtpTlsError } from '../../core/errors.ts';
import type { Endpoint, StartTlsOptions, TlsInfo, Transport } from '../../core/transport.ts';

export type NodeTlsOptions = tls.SecureContextOptions & {
  /** Client side: verify the server certificate (default true). */
  rejectUnauthorized?: boolean;
  /** Client side: the name to verify and send as SNI. */
  servername?: string;
  /** Server side: a context built once for many connections (takes precedence over key/cert). */
  secureContext?: tls.SecureContext;
  /** Server side: ask clients for a certificate (default false). */
  requestCert?: boolean;
};

export interface NodeSocketTransportOptions {
  role: 'client' | 'server';
  tls?: NodeTlsOptions;
  /** Longest a TLS handshake may take. Default 30 s. */
  handshakeTimeoutMs?: number;
  /** How long `close()` waits for the peer to close before destroying the socket. Default 1 s. */
  closeGraceMs?: number;
}

type Waiter = () => void;

export class NodeSocketTransport implements Transport {
  #socket: Socket;
  readonly #role: 'client' | 'server';
  readonly #tlsOptions: NodeTlsOptions;
  readonly #handshakeTimeoutMs: number;
  readonly #closeGraceMs: number;
  #ended = false;
  #error: Error | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #waiter: Waiter | null = null;
  #tls: TlsInfo | null = null;
  #local: Endpoint | null;
  #remote: Endpoint | null;
  #upgrading = false;

  constructor(socket: Socket, options: NodeSocketTransportOptions) {
    this.#socket = socket;
    this.#role = options.role;
    this.#tlsOptions = options.tls ?? {};
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? 30_000;
    this.#closeGraceMs = options.closeGraceMs ?? 1_000;
    this.#local = endpoint(socket.localAddress, socket.localPort);
    this.#remote = endpoint(socket.remoteAddress, socket.remotePort);
    this.#attach(socket);
    if (socket instanceof tls.TLSSocket && socket.encrypted) this.#tls = tlsInfo(socket);
  }

  get tls(): TlsInfo | null {
    return this.#tls;
  }
  get local(): Endpoint | null {
    return this.#local;
  }
  get remote(): Endpoint | null {
    return this.#remote;
  }
  /** The socket currently carrying the connection (the TLS socket after `startTls`). */
  get socket(): Socket {
    return this.#socket;
  }

  #attach(socket: Socket): void {
    socket.setNoDelay(true);
    socket.on('readable', this.#wake);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  #detach(socket: Socket): void {
    socket.off('readable', this.#wake);
    socket.off('end', this.#onEnd);
    socket.off('error', this.#onError);
    socket.off('close', this.#onClose);
  }

  #wake = (): void => {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  };
  #onEnd = (): void => {
    this.#ended = true;
    this.#wake();
  };
  #onError = (err: Error): void => {
    this.#error ??= err;
    this.#wake();
  };
  #onClose = (): void => {
    this.#closed = true;
    this.#ended = true;
    this.#wake();
  };

  async read(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#upgrading) throw new SmtpConnectionError('read() during a TLS upgrade');
      const chunk: Buffer | null = this.#socket.read();
      if (chunk !== null && chunk.length > 0) {
        return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
      }
      if (this.#error !== null) throw connectionError(this.#error);
      if (this.#ended || this.#socket.destroyed) return null;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
      });
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) {
      return Promise.reject(new SmtpConnectionError('the connection is closed'));
    }
    return new Promise<void>((resolve, reject) => {
      socket.write(bytes, (err) => {
        if (err) reject(connectionError(err));
        else resolve();
      });
    });
  }

  async startTls(options: StartTlsOptions = {}): Promise<void> {
    if (this.#tls !== null) throw new SmtpTlsError('the connection is already encrypted');
    const plain = this.#socket;
    // RFC 3207 section 4.2: drop whatever the peer sent before the handshake.
    while (plain.read() !== null) {
      /* discard */
    }
    this.#detach(plain);
    this.#upgrading = true;
    this.#ended = false;
    this.#error = null;
    try {
      const secure =
        this.#role === 'server'
          ? await this.#serverHandshake(plain)
          : await this.#clientHandshake(plain, options);
      this.#socket = secure;
      this.#attach(secure);
      this.#tls = tlsInfo(secure);
    } catch (err) {
      plain.destroy();
      this.#closed = true;
      this.#ended = true;
      throw err;
    } finally {
      this.#upgrading = false;
    }
  }

  #serverHandshake(plain: Socket): Promise<tls.TLSSocket> {
    const o = this.#tlsOptions;
    const secureContext =
      o.secureContext ?? tls.createSecureContext({ minVersion: 'TLSv1.2', ...withoutNonContextKeys(o) });
    const secure = new tls.TLSSocket(plain, {
      isServer: true,
      secureContext,
      requestCert: o.requestCert ?? false,
      rejectUnauthorized: false,
    });
    return this.#awaitHandshake(secure, 'secure');
  }

  #clientHandshake(plain: Socket, options: StartTlsOptions): Promise<tls.TLSSocket> {
    const o = this.#tlsOptions;
    const servername = options.servername ?? o.servername ?? this.#remote?.address;
    const secure = tls.connect({
      minVersion: 'TLSv1.2',
      ...withoutNonContextKeys(o),
      socket: plain,
      servername: servername !== undefined && !isIp(servername) ? servername : undefined,
      rejectUnauthorized: o.rejectUnauthorized ?? true,
      checkServerIdentity: (host, cert) => tls.checkServerIdentity(servername ?? host, cert),
    });
    return this.#awaitHandshake(secure, 'secureConnect');
  }

  #awaitHandshake(secure: tls.TLSSocket, event: 'secure' | 'secureConnect'): Promise<tls.TLSSocket> {
    return new Promise<tls.TLSSocket>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        secure.destroy();
        reject(new SmtpTimeoutError('TLS handshake', this.#handshakeTimeoutMs));
      }, this.#handshakeTimeoutMs);
      const onOk = (): void => {
        cleanup();
        resolve(secure);
      };
      const onFail = (err: Error): void => {
        cleanup();
        secure.destroy();
        reject(new SmtpTlsError(`TLS handshake failed: ${err.message}`, { cause: err }));
      };
      const onClose = (): void => onFail(new Error('the connection closed during the handshake'));
      const cleanup = (): void => {
        clearTimeout(timer);
        secure.off(event, onOk);
        secure.off('error', onFail);
        secure.off('close', onClose);
      };
      secure.once(event, onOk);
      secure.once('error', onFail);
      secure.once('close', onClose);
    });
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const socket = this.#socket;
      if (socket.destroyed || this.#closed) {
        resolve();
        return;
      }
      const timer = setTimeout(() => socket.destroy(), this.#closeGraceMs);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      // Errors after our own close (ECONNRESET after QUIT) are normal: keep a listener so
      // they are not unhandled, and ignore them.
      socket.on('error', () => {});
      socket.end();
      // We will not read any more: let buffered input flow away so the peer's FIN is seen.
      socket.off('readable', this.#wake);
      socket.resume();
    });
    return this.#closing;
  }
}

function endpoint(address: string | undefined, port: number | undefined): Endpoint | null {
  if (address === undefined || port === undefined) return null;
  return { address: address.startsWith('::ffff:') ? address.slice(7) : address, port };
}

function tlsInfo(socket: tls.TLSSocket): TlsInfo {
  const cipher = socket.getCipher() as tls.CipherNameAndProtocol | undefined;
  const servername = (socket as tls.TLSSocket & { servername?: string | false }).servername;
  return {
    protocol: socket.getProtocol() ?? null,
    cipher: cipher?.standardName ?? cipher?.name ?? null,
    authorized: socket.authorized,
    servername: typeof servername === 'string' ? servername : null,
  };
}

function connectionError(err: Error): SmtpConnectionError {
  const code = (err as NodeJS.ErrnoException).code;
  return new SmtpConnectionError(code ? `connection error: ${code}` : `connection error: ${err.message}`, {
    cause: err,
  });
}

function isIp(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}

function withoutNonContextKeys(o: NodeTlsOptions): tls.SecureContextOptions {
  const { rejectUnauthorized: _r, servername: _s, secureContext: _c, requestCert: _q, ...rest } = o;
  return rest;
}
