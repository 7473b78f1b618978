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
 *
 * What happens to an accepted connection before the session starts, in this order:
 * 1. Pre-session bound: connections not yet holding a connection slot (waiting for a PROXY
 *    header, or in the TLS handshake that carries a 421) are at most `maxPendingConnections`;
 *    more are closed at once.
 * 2. PROXY protocol (listener option `proxyProtocol`): from a trusted source, the v1/v2 header is
 *    read first and the client it names is the session's `remote` for everything after; a
 *    trusted source that sends no valid header is closed without a greeting.
 * 3. Connection limits, total and per client address (the real one after PROXY), taken BEFORE
 *    any TLS handshake, so a flood on an implicit-TLS port cannot make us run unbounded
 *    handshakes. Over a limit: `421 4.7.0` in place of the greeting (RFC 5321 section 3.1),
 *    over TLS on an implicit-TLS listener after a short handshake.
 * 4. Implicit TLS (RFC 8314 section 3): handshake failures and time-outs are counted and closed.
 * Every connection turned away is reported to `onConnectionRefused` and counted in `refused`.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { SmtpConfigError } from '../../core/errors.ts';
import { type CloseOptions, SmtpServerEngine } from '../../core/server/engine.ts';
import { ConnectionLimiter } from '../../core/server/limits.ts';
import type { ResolvedServerOptions } from '../../core/server/options.ts';
import { r } from '../../core/server/replies.ts';
import type { SmtpServerHandler, SmtpServerOptions } from '../../core/server/types.ts';
import type { Transport } from '../../core/transport.ts';
import {
  type ProxiedEndpoint,
  ProxiedTransport,
  readProxyHeader,
  TrustedSources,
  unmapAddress,
} from './proxy-protocol.ts';
import { NodeSocketTransport } from './transport.ts';

export interface NodeServerTlsOptions extends tls.SecureContextOptions {
  /** Lowest TLS version accepted. Default and minimum recommended: 'TLSv1.2' (RFC 8314 section 4.1). */
  minVersion?: tls.SecureVersion;
}

export interface NodeSmtpServerOptions extends SmtpServerOptions {
  /** Certificate and key (PEM) for STARTTLS and implicit TLS. */
  tls?: NodeServerTlsOptions;
  /**
   * Most connections served at once over all listeners (then 421 4.7.0). Default unlimited.
   * When set, each listener also closes sockets beyond `2 * maxConnections + 64` at accept.
   */
  maxConnections?: number;
  /** Most connections served at once per client address (then 421 4.7.0). Default unlimited. */
  maxConnectionsPerIp?: number;
  /**
   * The key a client address is counted under for `maxConnectionsPerIp`. Default: the address
   * itself. A public server may group IPv6 clients by /64 (one site usually holds a whole /64).
   */
  limitKey?: (address: string) => string;
  /**
   * Most connections at once that hold no connection slot yet: waiting for a PROXY header, or
   * in the TLS handshake before a 421 on an implicit-TLS listener. More are closed at once.
   * Default `maxConnections` (unlimited when that is).
   */
  maxPendingConnections?: number;
  /** Longest a TLS handshake may take (implicit TLS and STARTTLS). Default 30 s. */
  tlsHandshakeTimeoutMs?: number;
  /** Called for every connection turned away before (or instead of) a session. */
  onConnectionRefused?: (refusal: ConnectionRefusal) => void;
}

/** PROXY protocol v1/v2 on a listener (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt). */
export interface ProxyProtocolOptions {
  /**
   * Addresses or CIDR blocks of the proxies (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).
   * A connection from one of them MUST start with a valid header (the spec forbids guessing
   * whether one is present); a connection from anywhere else is served with its own address,
   * and closed if its first octets are a PROXY header (it must not name its own address).
   */
  trusted: readonly string[];
  /** Accept connections from trusted proxies only; others are closed at once. Default false. */
  required?: boolean;
  /** Longest wait for the whole header. Default 10 s. */
  timeoutMs?: number;
}

export interface ListenOptions extends Partial<SmtpServerOptions> {
  port: number;
  /** Interface to bind. Default: all interfaces, as `net.Server.listen` does. */
  host?: string;
  /** Speak TLS from the first octet (port 465, RFC 8314 section 3). */
  implicitTls?: boolean;
  /** Listen backlog. */
  backlog?: number;
  /** A label for this listener in `ConnectionRefusal` events (e.g. `mx`, `submission`). */
  name?: string;
  /**
   * Serve this listener with its own handler (an engine of its own that shares the server's
   * options, connection limits and `close`; listeners given the same handler share one engine).
   * Default: the handler given to `createSmtpServer`.
   */
  handler?: SmtpServerHandler;
  /** Read a PROXY protocol header from trusted load balancers before anything else. */
  proxyProtocol?: ProxyProtocolOptions;
}

/** Why a connection was turned away before a session. */
export type ConnectionRefusalReason =
  /** Over `maxConnections`: 421 4.7.0 sent. */
  | 'max-connections'
  /** Over `maxConnectionsPerIp` for the client address: 421 4.7.0 sent. */
  | 'max-connections-per-ip'
  /** Over `maxPendingConnections`: closed at accept. */
  | 'pending'
  /** A trusted proxy sent no valid PROXY header in time: closed without a greeting. */
  | 'proxy-header'
  /** An untrusted source sent a PROXY header, or (with `required`) connected at all: closed. */
  | 'proxy-untrusted'
  /** The implicit-TLS handshake failed: closed. */
  | 'tls-handshake'
  /** The implicit-TLS handshake took longer than `tlsHandshakeTimeoutMs`: closed. */
  | 'tls-handshake-timeout';

export interface ConnectionRefusal {
  readonly reason: ConnectionRefusalReason;
  /** The listener's `name`, or its port as text. */
  readonly listener: string;
  /** The address the TCP connection came from (the proxy, when one is in front). */
  readonly peer: string;
  /** The client address: the one a trusted PROXY header named, else `peer`. */
  readonly client: string;
  /** What went wrong, for `proxy-header` and `tls-handshake`. */
  readonly error?: unknown;
}

export interface NodeSmtpServer {
  /** Start a listener; resolves with its bound address (use port 0 for an ephemeral port). */
  listen(options: ListenOptions): Promise<net.AddressInfo>;
  /** Graceful shutdown of every listener and connection (see `SmtpServerEngine.close`). */
  close(options?: CloseOptions): Promise<void>;
  /** Connections being served now (sessions and 421 refusals being written). */
  readonly connections: number;
  /** Bound addresses of the listeners. */
  readonly addresses: readonly net.AddressInfo[];
  /** Connections turned away so far, by reason. */
  readonly refused: Readonly<Record<ConnectionRefusalReason, number>>;
  /** The engine of the handler given to `createSmtpServer`. */
  readonly engine: SmtpServerEngine;
}

interface Listener {
  readonly name: string;
  readonly engine: SmtpServerEngine;
  readonly resolved: ResolvedServerOptions;
  readonly implicitTls: boolean;
  readonly proxy: { trusted: TrustedSources; required: boolean; timeoutMs: number } | null;
}

type Handshake = { ok: true } | { ok: false; timeout: boolean; error: unknown };

const REFUSAL_HANDSHAKE_MAX_MS = 5_000;

export function createSmtpServer(handler: SmtpServerHandler, options: NodeSmtpServerOptions): NodeSmtpServer {
  const {
    tls: tlsOptions,
    maxConnections,
    maxConnectionsPerIp,
    limitKey = (address: string) => address,
    maxPendingConnections,
    tlsHandshakeTimeoutMs,
    onConnectionRefused,
    ...engineOptions
  } = options;
  const engine = new SmtpServerEngine(handler, engineOptions);
  const engines = [engine];
  const limiter = new ConnectionLimiter(maxConnections ?? 0, maxConnectionsPerIp ?? 0);
  const maxPending =
    maxPendingConnections ?? (maxConnections !== undefined && maxConnections > 0 ? maxConnections : 0);
  const pendingLimit = maxPending > 0 ? maxPending : Number.POSITIVE_INFINITY;
  const handshakeMs = tlsHandshakeTimeoutMs ?? 30_000;
  const servers: net.Server[] = [];
  const addresses: net.AddressInfo[] = [];
  const sockets = new Set<net.Socket>();
  const refused: Record<ConnectionRefusalReason, number> = {
    'max-connections': 0,
    'max-connections-per-ip': 0,
    pending: 0,
    'proxy-header': 0,
    'proxy-untrusted': 0,
    'tls-handshake': 0,
    'tls-handshake-timeout': 0,
  };
  let pending = 0;
  let refusing = 0;
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

  const report = (
    listener: Listener,
    reason: ConnectionRefusalReason,
    peer: string,
    client: string,
    error?: unknown,
  ): void => {
    refused[reason]++;
    if (onConnectionRefused === undefined) return;
    try {
      onConnectionRefused({
        reason,
        listener: listener.name,
        peer,
        client,
        ...(error === undefined ? {} : { error }),
      });
    } catch (e) {
      listener.resolved.onError?.(null, e);
    }
  };

  const serve = async (socket: net.Socket, listener: Listener): Promise<void> => {
    const peer = unmapAddress(socket.remoteAddress ?? '');
    if (pending >= pendingLimit) {
      report(listener, 'pending', peer, peer);
      socket.destroy();
      return;
    }
    // Until a connection slot is taken (or the refusal is under way), this connection is pending.
    pending++;
    let isPending = true;
    const settle = (): void => {
      if (isPending) pending--;
      isPending = false;
    };
    let key: string | null = null;
    try {
      let remote: ProxiedEndpoint | null = null;
      let refuseProxyHeader = false;
      const proxy = listener.proxy;
      if (proxy !== null) {
        if (proxy.trusted.has(peer)) {
          try {
            const header = await readProxyHeader(socket, proxy.timeoutMs);
            if (header.source !== null) {
              remote = {
                address: unmapAddress(header.source.address),
                port: header.source.port,
                proxiedBy: peer,
              };
            }
          } catch (error) {
            report(listener, 'proxy-header', peer, peer, error);
            socket.destroy();
            return;
          }
        } else if (proxy.required) {
          report(listener, 'proxy-untrusted', peer, peer);
          socket.destroy();
          return;
        } else {
          refuseProxyHeader = true;
        }
      }
      const client = remote?.address ?? peer;
      const clientKey = limitKey(client);
      const verdict = limiter.acquire(clientKey);
      if (verdict === 'ok') {
        key = clientKey;
        settle(); // the slot bounds it from here
      }

      let stream: net.Socket = socket;
      if (listener.implicitTls) {
        const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context() });
        // Late errors (a reset after a failed handshake) must not crash the process.
        secure.on('error', () => {});
        sockets.add(secure);
        secure.once('close', () => sockets.delete(secure));
        // A refusal holds no slot: give its handshake less time.
        const outcome = await handshake(
          secure,
          verdict === 'ok' ? handshakeMs : Math.min(REFUSAL_HANDSHAKE_MAX_MS, handshakeMs),
        );
        if (!outcome.ok) {
          report(
            listener,
            outcome.timeout ? 'tls-handshake-timeout' : 'tls-handshake',
            peer,
            client,
            outcome.error,
          );
          secure.destroy();
          return;
        }
        stream = secure;
      }
      const socketTransport = new NodeSocketTransport(stream, {
        role: 'server',
        tls: listener.resolved.startTls ? { secureContext: context() } : {},
        handshakeTimeoutMs: handshakeMs,
      });
      let transport: Transport = socketTransport;
      if (proxy !== null) {
        transport = new ProxiedTransport(socketTransport, remote, refuseProxyHeader, () =>
          report(listener, 'proxy-untrusted', peer, client),
        );
      }
      settle();
      if (verdict !== 'ok') {
        report(listener, verdict === 'total' ? 'max-connections' : 'max-connections-per-ip', peer, client);
        refusing++;
        try {
          await listener.engine.refuse(
            transport,
            r(421, '4.7.0', `${listener.resolved.hostname} Too many connections, try again later`),
          );
        } finally {
          refusing--;
        }
        return;
      }
      await listener.engine.handle(transport, listener.resolved);
    } finally {
      settle();
      if (key !== null) limiter.release(key);
    }
  };

  return {
    get connections() {
      let n = refusing;
      for (const e of engines) n += e.connections;
      return n;
    },
    get addresses() {
      return addresses;
    },
    get refused() {
      return refused;
    },
    engine,
    async listen(listenOptions) {
      const {
        port,
        host,
        implicitTls = false,
        backlog,
        name,
        handler: own,
        proxyProtocol,
        ...overrides
      } = listenOptions;
      const listenerEngine =
        own === undefined || own === handler
          ? engine
          : (engines.find((e) => e.handler === own) ?? new SmtpServerEngine(own, engineOptions));
      const resolved = listenerEngine.resolve({ ...overrides, implicitTls });
      if (resolved.startTls || implicitTls) context();
      const proxy =
        proxyProtocol === undefined
          ? null
          : {
              trusted: new TrustedSources(proxyProtocol.trusted),
              required: proxyProtocol.required ?? false,
              timeoutMs: proxyProtocol.timeoutMs ?? 10_000,
            };
      const listener: { -readonly [K in keyof Listener]: Listener[K] } = {
        name: name ?? String(port),
        engine: listenerEngine,
        resolved,
        implicitTls,
        proxy,
      };
      const server = net.createServer((socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        // Until the transport attaches its own, an early reset must not crash the process.
        socket.on('error', () => {});
        void serve(socket, listener).catch((error: unknown) => {
          resolved.onError?.(null, error);
          socket.destroy();
        });
      });
      if (maxConnections !== undefined && maxConnections > 0) server.maxConnections = maxConnections * 2 + 64;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host, backlog }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
      if (!engines.includes(listenerEngine)) engines.push(listenerEngine);
      const info = server.address() as net.AddressInfo;
      if (name === undefined) listener.name = String(info.port);
      addresses.push(info);
      return info;
    },
    async close(closeOptions = {}) {
      const closed = servers.map(
        (s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())),
      );
      await Promise.all(engines.map((e) => e.close(closeOptions)));
      for (const s of sockets) s.destroy();
      await Promise.all(closed);
    },
  };
}

function handshake(socket: tls.TLSSocket, timeoutMs: number): Promise<Handshake> {
  return new Promise<Handshake>((resolve) => {
    const timer = setTimeout(() => done({ ok: false, timeout: true, error: undefined }), timeoutMs);
    const done = (outcome: Handshake): void => {
      clearTimeout(timer);
      socket.off('secure', onSecure);
      socket.off('error', onError);
      socket.off('close', onClose);
      resolve(outcome);
    };
    const onSecure = (): void => done({ ok: true });
    const onError = (error: Error): void => done({ ok: false, timeout: false, error });
    const onClose = (): void =>
      done({ ok: false, timeout: false, error: new Error('the connection closed during the TLS handshake') });
    socket.once('secure', onSecure);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}
