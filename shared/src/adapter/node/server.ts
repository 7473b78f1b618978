/**
 * The SMTP server on Node sockets: one engine, any number of listeners (port 25/2525 plain with
 * STARTTLS, 587 submission, 465 implicit TLS, RFC 8314), each with its own option overrides.
 *
 *   const server = createSmtpServer(handler, { hostname: 'mx.example.org', tls: { key, cert } });
 *   await server.listen({ port: 2525, startTls: true });
 *   await server.listen({ port: 2587, submission: true, startTls: true });
 *   await server.listen({ port: 2465, implicitTls: true, submission: true });
 *   ...
 *   await server.close({ deadlineMs: 30_000 });
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { SmtpConfigError } from '../../core/errors.ts';
import { type CloseOptions, SmtpServerEngine } from '../../core/server/engine.ts';
import { ConnectionLimiter } from '../../core/server/limits.ts';
import type { ResolvedServerOptions } from '../../core/server/options.ts';
import { r } from '../../core/server/replies.ts';
import type { SmtpServerHandler, SmtpServerOptions } from '../../core/server/types.ts';
import { NodeSocketTransport } from './transport.ts';

export interface NodeServerTlsOptions extends tls.SecureContextOptions {
  /** Lowest TLS version accepted. Default and minimum recommended: 'TLSv1.2' (RFC 8314 section 4.1). */
  minVersion?: tls.SecureVersion;
}

export interface NodeSmtpServerOptions extends SmtpServerOptions {
  /** Certificate and key (PEM) for STARTTLS and implicit TLS. */
  tls?: NodeServerTlsOptions;
  /** Most connections open at once over all listeners (then 421 4.7.0). Default unlimited. */
  maxConnections?: number;
  /** Most connections open at once from one remote address (then 421 4.7.0). Default unlimited. */
  maxConnectionsPerIp?: number;
  /** Longest a TLS handshake may take (implicit TLS and STARTTLS). Default 30 s. */
  tlsHandshakeTimeoutMs?: number;
}

export interface ListenOptions extends Partial<SmtpServerOptions> {
  port: number;
  /** Interface to bind. Default: all interfaces, as `net.Server.listen` does. */
  host?: string;
  /** Speak TLS from the first octet (port 465, RFC 8314 section 3). */
  implicitTls?: boolean;
  /** Listen backlog. */
  backlog?: number;
}

export interface NodeSmtpServer {
  /** Start a listener; resolves with its bound address (use port 0 for an ephemeral port). */
  listen(options: ListenOptions): Promise<net.AddressInfo>;
  /** Graceful shutdown of every listener and connection (see `SmtpServerEngine.close`). */
  close(options?: CloseOptions): Promise<void>;
  /** Connections being served now. */
  readonly connections: number;
  /** Bound addresses of the listeners. */
  readonly addresses: readonly net.AddressInfo[];
  readonly engine: SmtpServerEngine;
}

export function createSmtpServer(handler: SmtpServerHandler, options: NodeSmtpServerOptions): NodeSmtpServer {
  const {
    tls: tlsOptions,
    maxConnections,
    maxConnectionsPerIp,
    tlsHandshakeTimeoutMs,
    ...engineOptions
  } = options;
  const engine = new SmtpServerEngine(handler, engineOptions);
  const limiter = new ConnectionLimiter(maxConnections ?? 0, maxConnectionsPerIp ?? 0);
  const handshakeMs = tlsHandshakeTimeoutMs ?? 30_000;
  const servers: net.Server[] = [];
  const addresses: net.AddressInfo[] = [];
  const sockets = new Set<net.Socket>();
  let secureContext: tls.SecureContext | undefined;

  const context = (): tls.SecureContext => {
    if (tlsOptions === undefined)
      throw new SmtpConfigError('STARTTLS or implicit TLS needs the tls option (key, cert)');
    secureContext ??= tls.createSecureContext({
      ...tlsOptions,
      minVersion: tlsOptions.minVersion ?? 'TLSv1.2',
    });
    return secureContext;
  };

  const serve = async (
    socket: net.Socket,
    resolved: ResolvedServerOptions,
    implicitTls: boolean,
  ): Promise<void> => {
    const address = normalizeAddress(socket.remoteAddress ?? '');
    let stream: net.Socket = socket;
    if (implicitTls) {
      const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context() });
      // Late errors (a reset after a failed handshake) must not crash the process.
      secure.on('error', () => {});
      sockets.add(secure);
      secure.once('close', () => sockets.delete(secure));
      const ok = await handshake(secure, handshakeMs);
      if (!ok) {
        secure.destroy();
        return;
      }
      stream = secure;
    }
    const transport = new NodeSocketTransport(stream, {
      role: 'server',
      tls: resolved.startTls ? { secureContext: context() } : {},
      handshakeTimeoutMs: handshakeMs,
    });
    const verdict = limiter.acquire(address);
    if (verdict !== 'ok') {
      await engine.refuse(
        transport,
        r(421, '4.7.0', `${resolved.hostname} Too many connections, try again later`),
      );
      return;
    }
    try {
      await engine.handle(transport, resolved);
    } finally {
      limiter.release(address);
    }
  };

  return {
    get connections() {
      return engine.connections;
    },
    get addresses() {
      return addresses;
    },
    engine,
    async listen(listenOptions) {
      const { port, host, implicitTls = false, backlog, ...overrides } = listenOptions;
      const resolved = engine.resolve({ ...overrides, implicitTls });
      if (resolved.startTls || implicitTls) context();
      const server = net.createServer((socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        // Until the transport attaches its own, an early reset must not crash the process.
        socket.on('error', () => {});
        void serve(socket, resolved, implicitTls).catch((error: unknown) => {
          resolved.onError?.(null, error);
          socket.destroy();
        });
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host, backlog }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
      const info = server.address() as net.AddressInfo;
      addresses.push(info);
      return info;
    },
    async close(closeOptions = {}) {
      const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
      await engine.close(closeOptions);
      for (const s of sockets) s.destroy();
      await Promise.all(closed);
    },
  };
}

function handshake(socket: tls.TLSSocket, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false), timeoutMs);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.off('secure', onSecure);
      socket.off('error', onError);
      socket.off('close', onError);
      resolve(ok);
    };
    const onSecure = (): void => done(true);
    const onError = (): void => done(false);
    socket.once('secure', onSecure);
    socket.once('error', onError);
    socket.once('close', onError);
  });
}

function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
