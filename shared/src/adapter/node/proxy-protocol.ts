/**
 * The PROXY protocol on Node sockets: the small I/O step around the pure codec
 * `core/wire/proxy.ts`. `createSmtpServer` uses it for listeners with the `proxyProtocol` option.
 *
 * - `TrustedSources`: the CIDR blocks whose connections must start with a PROXY header.
 * - `readProxyHeader`: read the header from a fresh socket (before any TLS handshake and before
 *   the greeting), bounded in octets and time, and push the client's own bytes back.
 * - `ProxiedTransport`: a `Transport` whose `remote` is the client the header named, or which
 *   closes a connection from an untrusted source that starts with a PROXY header (it must not
 *   be allowed to name its own address, nor to be read as SMTP commands).
 */
import * as net from 'node:net';
import {
  SmtpConfigError,
  SmtpConnectionError,
  SmtpProtocolError,
  SmtpTimeoutError,
} from '../../core/errors.ts';
import type { Endpoint, StartTlsOptions, TlsInfo, Transport } from '../../core/transport.ts';
import {
  looksLikeProxyHeader,
  PROXY_HEADER_MAX_BYTES,
  type ProxyHeader,
  parseProxyHeader,
} from '../../core/wire/proxy.ts';

/** A client address that a trusted PROXY header supplied; `proxiedBy` is the proxy's own address. */
export interface ProxiedEndpoint extends Endpoint {
  readonly proxiedBy: string;
}

/** The proxy's address when a PROXY header supplied this remote endpoint, else null. */
export function proxiedBy(remote: Endpoint | null): string | null {
  return remote !== null && 'proxiedBy' in remote && typeof remote.proxiedBy === 'string'
    ? remote.proxiedBy
    : null;
}

/** `::ffff:192.0.2.1` (what a dual-stack socket reports) as `192.0.2.1`; other text unchanged. */
export function unmapAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** Source addresses allowed (and required) to send a PROXY header: CIDR blocks or single addresses. */
export class TrustedSources {
  readonly #list = new net.BlockList();
  readonly blocks: readonly string[];

  /** Throws `SmtpConfigError` naming the first entry that is not an address or CIDR block. */
  constructor(blocks: readonly string[]) {
    for (const text of blocks) {
      const [address = '', prefix, extra] = text.trim().split('/');
      const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : null;
      const max = family === 'ipv4' ? 32 : 128;
      const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
      if (family === null || extra !== undefined || bits < 0 || bits > max) {
        throw new SmtpConfigError(
          `proxyProtocol.trusted: not an address or CIDR block: ${JSON.stringify(text)}`,
        );
      }
      this.#list.addSubnet(address, bits, family);
    }
    this.blocks = blocks.map((b) => b.trim());
  }

  has(address: string): boolean {
    const a = unmapAddress(address);
    if (net.isIPv4(a)) return this.#list.check(a, 'ipv4');
    if (net.isIPv6(a)) return this.#list.check(a, 'ipv6');
    return false;
  }
}

/**
 * Read a PROXY header from a fresh socket (nothing written to it yet). The bytes after the header
 * are pushed back with `unshift`, so whoever reads next (a TLS handshake, the SMTP session) sees
 * exactly the client's bytes. At most `PROXY_HEADER_MAX_BYTES` are buffered. Rejects with
 * `SmtpProtocolError` (not a valid header), `SmtpTimeoutError` or `SmtpConnectionError`; the
 * caller closes the socket.
 */
export function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise<ProxyHeader>((resolve, reject) => {
    let buffered = new Uint8Array(0);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      socket.pause();
    };
    const fail = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onData = (chunk: Uint8Array): void => {
      const next = new Uint8Array(buffered.length + chunk.length);
      next.set(buffered);
      next.set(chunk, buffered.length);
      buffered = next;
      const r = parseProxyHeader(buffered.subarray(0, PROXY_HEADER_MAX_BYTES));
      if (r.kind === 'incomplete') return;
      if (r.kind === 'invalid') {
        fail(new SmtpProtocolError(`PROXY header: ${r.reason}`));
        return;
      }
      cleanup();
      if (buffered.length > r.length) socket.unshift(buffered.subarray(r.length));
      resolve({ version: r.version, length: r.length, source: r.source, destination: r.destination });
    };
    const onEnd = (): void => fail(new SmtpConnectionError('connection closed before the PROXY header'));
    const onError = (e: Error): void =>
      fail(new SmtpConnectionError(`connection error before the PROXY header: ${e.message}`, { cause: e }));
    const timer = setTimeout(() => fail(new SmtpTimeoutError('the PROXY header', timeoutMs)), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
  });
}

/**
 * A `Transport` in front of the socket transport of a PROXY-protocol listener:
 * - `remote` is `remote` when given (the client a trusted header named), else the inner one;
 * - with `refuseProxyHeader` (an untrusted source), a connection whose first octets are a PROXY
 *   signature is closed: `read()` returns end of stream instead of those octets.
 */
export class ProxiedTransport implements Transport {
  readonly #inner: Transport;
  readonly #remote: Endpoint | null;
  readonly #onRefused: (() => void) | undefined;
  #checkFirst: boolean;

  /** `onRefused` is called when a PROXY header from an untrusted source closes the connection. */
  constructor(inner: Transport, remote: Endpoint | null, refuseProxyHeader: boolean, onRefused?: () => void) {
    this.#inner = inner;
    this.#remote = remote;
    this.#checkFirst = refuseProxyHeader;
    this.#onRefused = onRefused;
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
    if (this.#checkFirst && bytes !== null) {
      this.#checkFirst = false;
      // A whole v1 keyword ("PROXY ") or more of the v2 signature; a shorter first chunk goes to
      // the session, which answers an unknown command as usual.
      if (bytes.length >= 6 && looksLikeProxyHeader(bytes.subarray(0, 12))) {
        this.#onRefused?.();
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
    this.#checkFirst = false;
    return this.#inner.startTls(options);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
