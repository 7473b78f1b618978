/**
 * HAProxy PROXY protocol, versions 1 (text) and 2 (binary), receiving side
 * (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt).
 *
 * A load balancer that terminates nothing but forwards TCP sends this header first, so that the
 * server learns the real client address. It is accepted only from RECEIVER_PROXY_PROTOCOL_TRUSTED
 * sources, and required from them: a trusted source that sends no valid header within the time
 * limit, or an untrusted source whose first bytes are a PROXY header, is disconnected before the
 * SMTP greeting.
 *
 * `parseProxyHeader` is pure (bytes in, result out); `readProxyHeader` applies it to a Node socket
 * and pushes any bytes after the header back into the socket.
 */
import type { Socket } from 'node:net';

export interface ProxyEndpoint {
  readonly address: string;
  readonly port: number;
}

export type ProxyParse =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | {
      readonly kind: 'ok';
      readonly version: 1 | 2;
      /** Header bytes to drop from the stream. */
      readonly length: number;
      /** Null for v1 `UNKNOWN` and v2 `LOCAL` (health checks): keep the connection's own address. */
      readonly source: ProxyEndpoint | null;
      readonly destination: ProxyEndpoint | null;
    };

const V2_SIGNATURE = Uint8Array.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = 'PROXY ';
const V1_MAX = 107; // including CRLF (spec section 2.1)
const V2_MAX_PAYLOAD = 4096; // more than any address block + TLVs a load balancer sends

/** True when `bytes` could be (the start of) a PROXY header, v1 or v2. */
export function looksLikeProxyHeader(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, V2_SIGNATURE.length);
  let v2 = n > 0;
  for (let i = 0; i < n; i++) if (bytes[i] !== V2_SIGNATURE[i]) v2 = false;
  if (v2) return true;
  const m = Math.min(bytes.length, V1_PREFIX.length);
  if (m === 0) return false;
  for (let i = 0; i < m; i++) if (bytes[i] !== V1_PREFIX.charCodeAt(i)) return false;
  return true;
}

function port(text: string): number | null {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;

function parseV1(bytes: Uint8Array): ProxyParse {
  const limit = Math.min(bytes.length, V1_MAX);
  let end = -1;
  for (let i = 0; i + 1 < limit; i++) {
    if (bytes[i] === 0x0d && bytes[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0)
    return bytes.length >= V1_MAX
      ? { kind: 'invalid', reason: 'v1 header longer than 107 bytes' }
      : { kind: 'incomplete' };
  for (let i = 0; i < end; i++) {
    const b = bytes[i]!;
    if (b < 0x20 || b > 0x7e) return { kind: 'invalid', reason: 'v1 header has non-printable bytes' };
  }
  const line = new TextDecoder('latin1').decode(bytes.subarray(0, end));
  const parts = line.split(' ');
  if (parts[0] !== 'PROXY') return { kind: 'invalid', reason: 'not a PROXY header' };
  if (parts[1] === 'UNKNOWN')
    return { kind: 'ok', version: 1, length: end + 2, source: null, destination: null };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) {
    return { kind: 'invalid', reason: 'v1 header must be PROXY TCP4|TCP6 src dst sport dport' };
  }
  const [, proto, src, dst, sp, dp] = parts as [string, string, string, string, string, string];
  const valid =
    proto === 'TCP4' ? (a: string) => IPV4.test(a) : (a: string) => IPV6.test(a) && a.includes(':');
  const sport = port(sp);
  const dport = port(dp);
  if (!valid(src) || !valid(dst) || sport === null || dport === null) {
    return { kind: 'invalid', reason: 'v1 header has a malformed address or port' };
  }
  return {
    kind: 'ok',
    version: 1,
    length: end + 2,
    source: { address: src, port: sport },
    destination: { address: dst, port: dport },
  };
}

function ipv6Text(b: Uint8Array): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return words.join(':');
}

function parseV2(bytes: Uint8Array): ProxyParse {
  if (bytes.length < 16) return { kind: 'incomplete' };
  const verCmd = bytes[12]!;
  const fam = bytes[13]!;
  const len = (bytes[14]! << 8) | bytes[15]!;
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'v2 header with an unknown version' };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { kind: 'invalid', reason: 'v2 header with an unknown command' };
  if (len > V2_MAX_PAYLOAD) return { kind: 'invalid', reason: 'v2 header too long' };
  if (bytes.length < 16 + len) return { kind: 'incomplete' };
  const total = 16 + len;
  if (cmd === 0) return { kind: 'ok', version: 2, length: total, source: null, destination: null }; // LOCAL
  const p = bytes.subarray(16, total);
  const be16 = (o: number) => (p[o]! << 8) | p[o + 1]!;
  if (fam === 0x11) {
    if (len < 12) return { kind: 'invalid', reason: 'v2 TCP4 block too short' };
    return {
      kind: 'ok',
      version: 2,
      length: total,
      source: { address: Array.from(p.subarray(0, 4)).join('.'), port: be16(8) },
      destination: { address: Array.from(p.subarray(4, 8)).join('.'), port: be16(10) },
    };
  }
  if (fam === 0x21) {
    if (len < 36) return { kind: 'invalid', reason: 'v2 TCP6 block too short' };
    return {
      kind: 'ok',
      version: 2,
      length: total,
      source: { address: ipv6Text(p.subarray(0, 16)), port: be16(32) },
      destination: { address: ipv6Text(p.subarray(16, 32)), port: be16(34) },
    };
  }
  // UNSPEC, UDP or UNIX: nothing we can use as a client address; keep the connection's own.
  if ((fam & 0x0f) !== 0x01 && fam !== 0x00)
    return { kind: 'invalid', reason: 'v2 header for a non-stream transport' };
  return { kind: 'ok', version: 2, length: total, source: null, destination: null };
}

/** Parse a PROXY header at the start of `bytes`. */
export function parseProxyHeader(bytes: Uint8Array): ProxyParse {
  if (bytes.length === 0) return { kind: 'incomplete' };
  if (bytes[0] === 0x0d) {
    for (let i = 0; i < Math.min(bytes.length, V2_SIGNATURE.length); i++) {
      if (bytes[i] !== V2_SIGNATURE[i]) return { kind: 'invalid', reason: 'not a PROXY header' };
    }
    return bytes.length < V2_SIGNATURE.length ? { kind: 'incomplete' } : parseV2(bytes);
  }
  if (!looksLikeProxyHeader(bytes)) return { kind: 'invalid', reason: 'not a PROXY header' };
  return bytes.length < V1_PREFIX.length ? { kind: 'incomplete' } : parseV1(bytes);
}

export class ProxyProtocolError extends Error {
  override name = 'ProxyProtocolError';
}

/**
 * Read a PROXY header from a fresh socket (nothing has been written to it). Bytes after the header
 * are pushed back with `unshift`, so the SMTP server that takes over sees exactly the client's bytes.
 * Rejects (the caller closes the socket) on a malformed header, end of stream or time-out.
 */
export function readProxyHeader(
  socket: Socket,
  timeoutMs: number,
): Promise<Extract<ProxyParse, { kind: 'ok' }>> {
  return new Promise((resolve, reject) => {
    let buffered = new Uint8Array(0);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onEnd);
    };
    const fail = (msg: string) => {
      cleanup();
      socket.pause();
      reject(new ProxyProtocolError(msg));
    };
    const onData = (chunk: Uint8Array) => {
      const next = new Uint8Array(buffered.length + chunk.length);
      next.set(buffered);
      next.set(chunk, buffered.length);
      buffered = next;
      const r = parseProxyHeader(buffered);
      if (r.kind === 'incomplete') return;
      if (r.kind === 'invalid') return fail(r.reason);
      cleanup();
      socket.pause();
      if (buffered.length > r.length) socket.unshift(Buffer.from(buffered.subarray(r.length)));
      resolve(r);
    };
    const onEnd = () => fail('connection closed before the PROXY header');
    const onError = (e: Error) => fail(`socket error before the PROXY header: ${e.message}`);
    const timer = setTimeout(() => fail(`no PROXY header within ${timeoutMs} ms`), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onEnd);
  });
}
