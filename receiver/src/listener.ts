/**
 * The receiver's SMTP listeners: one `createSmtpServer` of the protocol package's Node adapter,
 * with one listener per port and each listener's own handler (its metrics carry the listener's
 * name). Everything before the greeting is the adapter's, configured here:
 * 1. PROXY protocol (RECEIVER_PROXY_PROTOCOL_TRUSTED): from a trusted source, the v1/v2 header is
 *    required and its client address is used for everything after (limits, session, Received,
 *    logs); from any other source, a connection whose first bytes are a PROXY header is closed.
 * 2. Connection limits, total and per client address (IPv6 per /64), counted before the TLS
 *    handshake so a flood cannot make us hold unbounded handshakes: over the limit, a plain
 *    listener answers `421 4.7.0` in place of the greeting (RFC 5321 section 3.1); an implicit-TLS
 *    listener answers it after a short handshake.
 * 3. Implicit TLS (RFC 8314) for the submissions listener; failed and timed-out handshakes are
 *    counted.
 * Every connection turned away is counted in `receiver_smtp_connections_refused_total`.
 */
import type { AddressInfo } from 'node:net';
import type { SmtpServerHandler, SmtpServerOptions } from '@smtp-edge/protocol';
import {
  type ConnectionRefusal,
  type ConnectionRefusalReason,
  createSmtpServer,
  type NodeSmtpServer,
} from '@smtp-edge/protocol/node';
import { type Cidr, canonicalIp, limitKey } from './cidr.ts';
import type { Logger } from './log.ts';
import type { ListenerName, Metrics } from './metrics.ts';

export { proxiedBy } from '@smtp-edge/protocol/node';

export interface ListenerSpec {
  name: ListenerName;
  handler: SmtpServerHandler;
  /** This listener's option overrides (submission, AUTH mechanisms, STARTTLS offered). */
  options: Partial<SmtpServerOptions>;
  port: number;
  host: string;
  implicitTls: boolean;
}

export interface ListenersOptions {
  /** Options every listener shares (hostname, sizes, onError). */
  base: SmtpServerOptions;
  /** Certificate and key (PEM), already checked to form a pair; null when TLS is off. */
  tls: { cert: Buffer; key: Buffer } | null;
  maxConnections: number;
  maxConnectionsPerIp: number;
  proxyTrusted: readonly Cidr[];
  proxyHeaderTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  metrics: Metrics;
  log: Logger;
}

/** The `reason` label of `receiver_smtp_connections_refused_total` for each adapter reason. */
const REASON: Record<ConnectionRefusalReason, string> = {
  'max-connections': 'max_connections',
  'max-connections-per-ip': 'max_connections_per_ip',
  pending: 'pending',
  'proxy-header': 'proxy_protocol',
  'proxy-untrusted': 'proxy_protocol',
  'tls-handshake': 'tls_handshake',
  'tls-handshake-timeout': 'tls_handshake_timeout',
};

export class Listeners {
  readonly #o: ListenersOptions;
  #server: NodeSmtpServer | null = null;

  constructor(options: ListenersOptions) {
    this.#o = options;
  }

  /** Connections being served now. */
  get connections(): number {
    return this.#server?.connections ?? 0;
  }

  #refused = (r: ConnectionRefusal): void => {
    const listener = r.listener as ListenerName;
    this.#o.metrics.connectionsRefused.inc({ listener, reason: REASON[r.reason] });
    if (r.reason === 'proxy-header' || r.reason === 'proxy-untrusted') {
      this.#o.log.warn(
        { listener, peer: r.peer, err: r.error instanceof Error ? r.error.message : null, reason: r.reason },
        r.reason === 'proxy-header'
          ? 'PROXY header missing or invalid'
          : 'PROXY header from an untrusted source',
      );
    }
  };

  async listen(spec: ListenerSpec): Promise<AddressInfo> {
    const o = this.#o;
    // The first listener's handler is the server's; every listener names its own anyway.
    this.#server ??= createSmtpServer(spec.handler, {
      ...o.base,
      ...(o.tls === null ? {} : { tls: { cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' } }),
      maxConnections: o.maxConnections,
      maxConnectionsPerIp: o.maxConnectionsPerIp,
      limitKey,
      ...(o.handshakeTimeoutMs === undefined ? {} : { tlsHandshakeTimeoutMs: o.handshakeTimeoutMs }),
      onConnectionRefused: this.#refused,
    });
    return this.#server.listen({
      ...spec.options,
      name: spec.name,
      handler: spec.handler,
      port: spec.port,
      host: spec.host,
      implicitTls: spec.implicitTls,
      ...(o.proxyTrusted.length === 0
        ? {}
        : {
            proxyProtocol: {
              trusted: o.proxyTrusted.map(cidrText),
              timeoutMs: o.proxyHeaderTimeoutMs ?? 10_000,
            },
          }),
    });
  }

  /**
   * Graceful shutdown: stop listening; idle sessions get 421 4.3.2 now, busy ones at their next
   * command boundary; messages in transfer may finish until `deadlineMs`; then what is left is cut.
   */
  async close(deadlineMs: number): Promise<void> {
    await this.#server?.close({ deadlineMs });
  }
}

/** A block in the plain `address/prefix` form the adapter takes (`[::1]` and the like normalized). */
function cidrText(c: Cidr): string {
  return `${canonicalIp(c.text.split('/')[0] ?? '')}/${c.prefix}`;
}
