/**
 * The receiver's SMTP listeners: Node `net` servers feeding the protocol package's
 * `SmtpServerEngine` (one engine per listener, because each listener has its own handler).
 *
 * This is the Node adapter's `createSmtpServer` accept path plus what the receiver needs before
 * the greeting, in this order:
 * 1. PROXY protocol (RECEIVER_PROXY_PROTOCOL_TRUSTED): from a trusted source, read the v1/v2 header
 *    and use the client address it carries for everything after (limits, session, Received, logs);
 *    from any other source, a connection whose first bytes are a PROXY header is closed.
 * 2. Connection limits, total and per client address (IPv6 per /64), counted before the TLS
 *    handshake so a flood cannot make us hold unbounded handshakes: over the limit, a plain
 *    listener answers `421 4.7.0` in place of the greeting (RFC 5321 section 3.1); an implicit-TLS
 *    listener answers it after a short handshake.
 * 3. Implicit TLS (RFC 8314) for the submissions listener.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import {
  ConnectionLimiter,
  type Endpoint,
  reply,
  type SmtpReply,
  type SmtpServerEngine,
  type StartTlsOptions,
  type TlsInfo,
  type Transport,
} from '@smtp-edge/protocol';
import { NodeSocketTransport } from '@smtp-edge/protocol/node';
import { type Cidr, canonicalIp, limitKey, matchesAny } from './cidr.ts';
import type { Logger } from './log.ts';
import type { ListenerName, Metrics } from './metrics.ts';
import { looksLikeProxyHeader, readProxyHeader } from './proxy-protocol.ts';

/** An endpoint that a trusted PROXY header supplied; `proxiedBy` is the load balancer's address. */
export interface ProxiedEndpoint extends Endpoint {
  readonly proxiedBy: string;
}

/** The load balancer's address when a PROXY header supplied this session's client address. */
export function proxiedBy(remote: Endpoint | null): string | null {
  return remote !== null && 'proxiedBy' in remote ? (remote as ProxiedEndpoint).proxiedBy : null;
}

/**
 * A Transport whose `remote` is the client address from a PROXY header, and which closes a
 * connection whose first bytes are a PROXY header it must not trust.
 */
class ReceiverTransport implements Transport {
  readonly #inner: NodeSocketTransport;
  readonly #remote: Endpoint | null;
  #first: boolean;

  constructor(inner: NodeSocketTransport, remote: Endpoint | null, refuseProxyHeader: boolean) {
    this.#inner = inner;
    this.#remote = remote;
    this.#first = refuseProxyHeader;
  }
  get tls(): TlsInfo | null {
    return this.#inner.tls;
  }
  get local(): Endpoint | null {
    return this.#inner.local;
  }
  get remote(): Endpoint | null {
    return this.#remote ?? this.#inner.remote;
  }
  async read(): Promise<Uint8Array | null> {
    const bytes = await this.#inner.read();
    if (this.#first && bytes !== null) {
      this.#first = false;
      // Only a complete signature counts ("PROXY " or the 12-byte v2 one): a shorter first
      // chunk is left to the engine, which answers an unknown command as usual.
      if (bytes.length >= 6 && looksLikeProxyHeader(bytes.subarray(0, 12))) {
        await this.#inner.close();
        return null;
      }
    }
    return bytes;
  }
  write(bytes: Uint8Array): Promise<void> {
    return this.#inner.write(bytes);
  }
  startTls(options?: StartTlsOptions): Promise<void> {
    this.#first = false;
    return this.#inner.startTls(options);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

export interface ListenerSpec {
  name: ListenerName;
  engine: SmtpServerEngine;
  port: number;
  host: string;
  implicitTls: boolean;
  /** STARTTLS offered (the engine's option); needs `secureContext`. */
  startTls: boolean;
}

export interface ListenersOptions {
  secureContext: tls.SecureContext | null;
  maxConnections: number;
  maxConnectionsPerIp: number;
  proxyTrusted: readonly Cidr[];
  proxyHeaderTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  metrics: Metrics;
  log: Logger;
}

export class Listeners {
  readonly #o: Required<ListenersOptions>;
  readonly #limiter: ConnectionLimiter;
  readonly #servers: net.Server[] = [];
  readonly #engines: SmtpServerEngine[] = [];
  readonly #sockets = new Set<net.Socket>();
  /** Connections not yet handed to an engine (PROXY header, TLS handshake, refusal). */
  #pending = 0;

  constructor(options: ListenersOptions) {
    this.#o = { proxyHeaderTimeoutMs: 10_000, handshakeTimeoutMs: 30_000, ...options };
    this.#limiter = new ConnectionLimiter(options.maxConnections, options.maxConnectionsPerIp);
  }

  /** Connections being served by an engine now. */
  get connections(): number {
    return this.#limiter.total;
  }

  async listen(spec: ListenerSpec): Promise<net.AddressInfo> {
    if ((spec.implicitTls || spec.startTls) && this.#o.secureContext === null) {
      throw new Error(`listener ${spec.name} needs TLS but no certificate is configured`);
    }
    const resolved = spec.engine.resolve({ implicitTls: spec.implicitTls, startTls: spec.startTls });
    const server = net.createServer((socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.on('error', () => {});
      void this.#serve(spec, resolved, socket).catch((err: unknown) => {
        this.#o.log.error({ err, listener: spec.name }, 'connection setup failed');
        socket.destroy();
      });
    });
    server.maxConnections = this.#o.maxConnections * 2 + 64;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: spec.port, host: spec.host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#servers.push(server);
    if (!this.#engines.includes(spec.engine)) this.#engines.push(spec.engine);
    return server.address() as net.AddressInfo;
  }

  async #serve(
    spec: ListenerSpec,
    resolved: ReturnType<SmtpServerEngine['resolve']>,
    socket: net.Socket,
  ): Promise<void> {
    const m = this.#o.metrics;
    const peer = canonicalIp(socket.remoteAddress ?? '');
    // Bound the connections in the slow steps before a session or a refusal (PROXY header wait,
    // TLS handshake): they hold memory and are not counted by the limiter yet.
    if (this.#pending >= this.#o.maxConnections) {
      m.connectionsRefused.inc({ listener: spec.name, reason: 'pending' });
      socket.destroy();
      return;
    }
    this.#pending++;
    let pending = true;
    let key: string | null = null;
    try {
      let remote: ProxiedEndpoint | null = null;
      const trusted = this.#o.proxyTrusted.length > 0 && matchesAny(peer, this.#o.proxyTrusted);
      if (trusted) {
        try {
          const header = await readProxyHeader(socket, this.#o.proxyHeaderTimeoutMs);
          if (header.source !== null) {
            remote = {
              address: canonicalIp(header.source.address),
              port: header.source.port,
              proxiedBy: peer,
            };
          }
        } catch (err) {
          m.connectionsRefused.inc({ listener: spec.name, reason: 'proxy_protocol' });
          this.#o.log.warn(
            { listener: spec.name, peer, err: (err as Error).message },
            'PROXY header missing or invalid',
          );
          socket.destroy();
          return;
        }
      }
      const client = remote?.address ?? peer;
      key = limitKey(client);
      const verdict = this.#limiter.acquire(key);
      if (verdict !== 'ok') key = null;

      let stream: net.Socket = socket;
      if (spec.implicitTls) {
        const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: this.#o.secureContext! });
        this.#sockets.add(secure);
        secure.once('close', () => this.#sockets.delete(secure));
        secure.on('error', () => {});
        const timeout =
          verdict === 'ok' ? this.#o.handshakeTimeoutMs : Math.min(5000, this.#o.handshakeTimeoutMs);
        if (!(await handshake(secure, timeout))) {
          secure.destroy();
          return;
        }
        stream = secure;
      }
      const inner = new NodeSocketTransport(stream, {
        role: 'server',
        tls: spec.startTls ? { secureContext: this.#o.secureContext! } : {},
        handshakeTimeoutMs: this.#o.handshakeTimeoutMs,
      });
      const transport = new ReceiverTransport(inner, remote, this.#o.proxyTrusted.length > 0 && !trusted);
      this.#pending--;
      pending = false;
      if (verdict !== 'ok') {
        m.connectionsRefused.inc({
          listener: spec.name,
          reason: verdict === 'total' ? 'max_connections' : 'max_connections_per_ip',
        });
        const refusal: SmtpReply = reply(
          421,
          '4.7.0',
          `${resolved.hostname} Too many connections, try again later`,
        );
        await spec.engine.refuse(transport, refusal);
        return;
      }
      await spec.engine.handle(transport, resolved);
    } finally {
      if (pending) this.#pending--;
      if (key !== null) this.#limiter.release(key);
    }
  }

  /** Stop accepting connections (open ones continue). */
  async stopListening(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())),
      ),
    );
  }

  /**
   * Graceful shutdown: stop listening; idle sessions get 421 4.3.2 now, busy ones at their next
   * command boundary; messages in transfer may finish until `deadlineMs`; then what is left is cut.
   */
  async close(deadlineMs: number): Promise<void> {
    const stopped = this.stopListening();
    await Promise.all(this.#engines.map((e) => e.close({ deadlineMs })));
    for (const s of this.#sockets) s.destroy();
    await stopped;
  }
}

function handshake(socket: tls.TLSSocket, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false), timeoutMs);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.off('secure', onSecure);
      socket.off('close', onFail);
      socket.off('error', onFail);
      resolve(ok);
    };
    const onSecure = (): void => done(true);
    const onFail = (): void => done(false);
    socket.once('secure', onSecure);
    socket.once('close', onFail);
    socket.once('error', onFail);
  });
}
