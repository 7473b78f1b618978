/**
 * HAProxy PROXY protocol header, versions 1 (text) and 2 (binary), receiving side: a pure codec,
 * bytes in, result out (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt, cited as
 * "proxy-protocol.txt section N" below).
 *
 * A TCP load balancer that terminates nothing sends this header before the first byte of the
 * client's stream, so that the server learns the real client address. Adapters read it before
 * any TLS handshake and before the SMTP greeting (RFC 5321 section 3.1), and only from sources
 * they trust: proxy-protocol.txt section 2 says the receiver MUST NOT guess whether a header is
 * present, so a source is either required to send one or never allowed to.
 *
 * `parseProxyHeader` is incremental: call it again with more bytes while it says `incomplete`.
 * It never needs more than `PROXY_HEADER_MAX_BYTES`; addresses come out in canonical text
 * (IPv4 dotted decimal, IPv6 in RFC 5952 form).
 */

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

/** A complete, valid header. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  /** Header octets to drop from the stream: the client's own bytes start after them. */
  readonly length: number;
  /**
   * The client (`source`) and the address it connected to (`destination`). Null for v1
   * `UNKNOWN`, v2 `LOCAL` (health checks from the proxy itself) and v2 address families that
   * carry no IP address: the connection's own addresses apply then (proxy-protocol.txt 2.1, 2.2).
   */
  readonly source: ProxyAddress | null;
  readonly destination: ProxyAddress | null;
}

export type ProxyParse =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | ({ readonly kind: 'ok' } & ProxyHeader);

/** v2 signature (proxy-protocol.txt section 2.2). */
const V2_SIGNATURE = Uint8Array.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Uint8Array.from([0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]); // "PROXY "
/** v1: at most 107 octets including CRLF (proxy-protocol.txt section 2.1). */
const V1_MAX = 107;
/** v2: the largest address block (216 for UNIX) plus TLVs a load balancer sends fits easily. */
const V2_MAX_PAYLOAD = 4096;
/** The most octets `parseProxyHeader` ever needs before it answers `ok` or `invalid`. */
export const PROXY_HEADER_MAX_BYTES = 16 + V2_MAX_PAYLOAD;

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/**
 * True when `bytes` is (the start of) a PROXY header signature, v1 (`PROXY `) or v2: what a
 * listener that does not trust the sender checks the client's first octets for.
 */
export function looksLikeProxyHeader(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  return startsWith(bytes, V2_SIGNATURE) || startsWith(bytes, V1_PREFIX);
}

/** Parse a PROXY header at the start of `bytes`. */
export function parseProxyHeader(bytes: Uint8Array): ProxyParse {
  if (bytes.length === 0) return { kind: 'incomplete' };
  if (bytes[0] === V2_SIGNATURE[0]) {
    if (!startsWith(bytes, V2_SIGNATURE)) return invalid('not a PROXY header');
    return bytes.length < V2_SIGNATURE.length ? { kind: 'incomplete' } : parseV2(bytes);
  }
  if (!startsWith(bytes, V1_PREFIX)) return invalid('not a PROXY header');
  return bytes.length < V1_PREFIX.length ? { kind: 'incomplete' } : parseV1(bytes);
}

function invalid(reason: string): ProxyParse {
  return { kind: 'invalid', reason };
}

// ---- version 1 (proxy-protocol.txt section 2.1) ----

const DECIMAL_PORT = /^(?:0|[1-9]\d{0,4})$/;

function parsePort(text: string): number | null {
  if (!DECIMAL_PORT.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}

function parseV1(bytes: Uint8Array): ProxyParse {
  const limit = Math.min(bytes.length, V1_MAX);
  let end = -1;
  for (let i = 0; i < limit; i++) {
    const b = bytes[i]!;
    if (b === 0x0d) {
      if (i + 2 > V1_MAX) return invalid('v1 header longer than 107 bytes');
      if (i + 1 >= bytes.length) return { kind: 'incomplete' };
      if (bytes[i + 1] !== 0x0a) return invalid('v1 header has a CR without LF');
      end = i;
      break;
    }
    // Printable US-ASCII only: no LF alone, no NUL, no 8-bit octets.
    if (b < 0x20 || b > 0x7e) return invalid('v1 header has non-printable bytes');
  }
  if (end < 0) {
    return bytes.length >= V1_MAX ? invalid('v1 header longer than 107 bytes') : { kind: 'incomplete' };
  }
  let line = '';
  for (let i = 0; i < end; i++) line += String.fromCharCode(bytes[i]!);
  const parts = line.split(' ');
  const length = end + 2;
  // "UNKNOWN": the receiver must ignore the rest of the line and use the connection's addresses.
  if (parts[1] === 'UNKNOWN') return { kind: 'ok', version: 1, length, source: null, destination: null };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) {
    return invalid('v1 header must be PROXY TCP4|TCP6 src dst sport dport');
  }
  const [, proto, src, dst, sp, dp] = parts as [string, string, string, string, string, string];
  const address = proto === 'TCP4' ? ipv4Text : ipv6Canonical;
  const source = address(src);
  const destination = address(dst);
  const sport = parsePort(sp);
  const dport = parsePort(dp);
  if (source === null || destination === null || sport === null || dport === null) {
    return invalid('v1 header has a malformed address or port');
  }
  return {
    kind: 'ok',
    version: 1,
    length,
    source: { address: source, port: sport },
    destination: { address: destination, port: dport },
  };
}

const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function ipv4Text(text: string): string | null {
  return IPV4.test(text) ? text : null;
}

/** An IPv6 address (RFC 4291 section 2.2 text forms) in RFC 5952 canonical text, or null. */
export function ipv6Canonical(text: string): string | null {
  const bytes = parseIpv6(text);
  return bytes === null ? null : formatIpv6(bytes);
}

/** RFC 4291 section 2.2: `x:x:x:x:x:x:x:x`, `::` compression, an IPv4 tail. 16 octets or null. */
export function parseIpv6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45) return null;
  let head = text;
  const tail: number[] = [];
  const dot = text.indexOf('.');
  if (dot >= 0) {
    const colon = text.lastIndexOf(':');
    if (colon < 0 || colon > dot) return null;
    const v4 = text.slice(colon + 1);
    if (ipv4Text(v4) === null) return null;
    const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    head = text.slice(0, colon + 1);
    // "::1.2.3.4" keeps its "::"; "x:...:1.2.3.4" leaves a trailing ":" to drop.
    if (!head.endsWith('::')) head = head.slice(0, -1);
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if (left === null || right === null) return null;
  const given = left.length + right.length + tail.length;
  let words: number[];
  if (halves.length === 2) {
    if (given > 7) return null; // "::" stands for at least one zero group
    words = [...left, ...new Array<number>(8 - given).fill(0), ...right, ...tail];
  } else {
    if (given !== 8) return null;
    words = [...left, ...tail];
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = words[i]! >> 8;
    out[i * 2 + 1] = words[i]! & 0xff;
  }
  return out;
}

/** RFC 5952 section 4 text of 16 octets; IPv4-mapped addresses as `::ffff:a.b.c.d` (section 5). */
export function formatIpv6(b: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!);
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  // Section 4.2.3: shorten the longest run of two or more zero groups, the first if tied.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16)); // section 4.3: lower case, no leading zeros
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---- version 2 (proxy-protocol.txt section 2.2) ----

function parseV2(bytes: Uint8Array): ProxyParse {
  if (bytes.length < 16) return { kind: 'incomplete' };
  const verCmd = bytes[12]!;
  const family = bytes[13]!;
  const len = (bytes[14]! << 8) | bytes[15]!;
  if (verCmd >> 4 !== 2) return invalid('v2 header with an unknown version');
  const command = verCmd & 0x0f;
  if (command > 1) return invalid('v2 header with an unknown command');
  if (len > V2_MAX_PAYLOAD) return invalid('v2 header too long');
  const length = 16 + len;
  if (bytes.length < length) return { kind: 'incomplete' };
  // LOCAL: the proxy speaks for itself (health checks); the addresses, if any, are ignored.
  if (command === 0) return { kind: 'ok', version: 2, length, source: null, destination: null };
  const p = bytes.subarray(16, length);
  const be16 = (o: number): number => (p[o]! << 8) | p[o + 1]!;
  if (family === 0x11) {
    // TCP over IPv4: 4 + 4 + 2 + 2 octets, then TLVs (ignored).
    if (len < 12) return invalid('v2 TCP4 address block too short');
    return {
      kind: 'ok',
      version: 2,
      length,
      source: { address: `${p[0]}.${p[1]}.${p[2]}.${p[3]}`, port: be16(8) },
      destination: { address: `${p[4]}.${p[5]}.${p[6]}.${p[7]}`, port: be16(10) },
    };
  }
  if (family === 0x21) {
    // TCP over IPv6: 16 + 16 + 2 + 2 octets, then TLVs (ignored).
    if (len < 36) return invalid('v2 TCP6 address block too short');
    return {
      kind: 'ok',
      version: 2,
      length,
      source: { address: formatIpv6(p.subarray(0, 16)), port: be16(32) },
      destination: { address: formatIpv6(p.subarray(16, 32)), port: be16(34) },
    };
  }
  // AF_UNSPEC or a UNIX stream socket: no IP address to use, keep the connection's own.
  // Datagram transports (UDP, UNIX dgram) and unknown families cannot carry SMTP.
  if (family === 0x00 || family === 0x01 || family === 0x31) {
    return { kind: 'ok', version: 2, length, source: null, destination: null };
  }
  return invalid('v2 header for a transport other than a stream');
}
