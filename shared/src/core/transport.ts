/**
 * The one interface between the protocol core and a runtime. The core never opens sockets,
 * starts timers on its own I/O or imports a runtime module: an adapter (Node `net`/`tls`,
 * Workers `cloudflare:sockets`) implements `Transport` and the core drives it.
 */

export interface TlsInfo {
  /** e.g. `TLSv1.3`. */
  readonly protocol: string | null;
  /** e.g. `TLS_AES_256_GCM_SHA384`. */
  readonly cipher: string | null;
  /** Whether the peer certificate was verified against trusted roots (client side) or a client cert was (server side). */
  readonly authorized: boolean;
  /** SNI name the client asked for, server side. */
  readonly servername?: string | null;
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface Transport {
  /**
   * Next bytes from the peer, or `null` at end of stream. Never resolves with an empty array.
   * Rejects with an `SmtpConnectionError` on reset. The array is handed over: the transport
   * must not write into its memory again (the server engine passes views of it to the data
   * handler without copying).
   */
  read(): Promise<Uint8Array | null>;
  /** Write bytes; resolves when the transport accepted them (backpressure honoured). */
  write(bytes: Uint8Array): Promise<void>;
  /**
   * Upgrade the connection to TLS in place (RFC 3207). Anything the transport had buffered but
   * not yet returned from `read()` is DISCARDED first (RFC 3207 section 4.2: STARTTLS
   * response/command injection). After it resolves, `read`/`write` speak TLS.
   */
  startTls(options?: StartTlsOptions): Promise<void>;
  /** Close both directions. Must settle in bounded time even if the peer never answers. */
  close(): Promise<void>;
  /** TLS details once the connection is encrypted (implicit TLS or after `startTls`). */
  readonly tls: TlsInfo | null;
  readonly local: Endpoint | null;
  readonly remote: Endpoint | null;
}

export interface StartTlsOptions {
  /** Client side: name to verify (and send as SNI). Adapters default to the host they connected to. */
  servername?: string;
}
