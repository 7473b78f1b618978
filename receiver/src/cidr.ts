/**
 * IP addresses and CIDR blocks: parsing, matching, and the keys used for per-address limits.
 * IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, what a dual-stack socket reports) are treated as
 * the IPv4 address they carry.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatIpv6 } from '@smtp-edge/protocol';

export interface Cidr {
  readonly text: string;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Parse an IPv4 or IPv6 address to 4 or 16 bytes (mapped IPv6 becomes 4 bytes). Null if invalid. */
export function ipToBytes(address: string): Uint8Array | null {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (isIPv4(a)) return Uint8Array.from(a.split('.').map(Number));
  const zoneless = a.split('%')[0] ?? '';
  if (!isIPv6(zoneless)) return null;
  let text = zoneless;
  // An embedded IPv4 tail (`::ffff:192.0.2.1`) becomes two hex words.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [p0, p1, p2, p3] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((p0 << 8) | p1).toString(16)}:${((p2 << 8) | p3).toString(16)}`;
  }
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':').map((x) => Number.parseInt(x, 16));
  const r = rest === undefined || rest === '' ? [] : rest.split(':').map((x) => Number.parseInt(x, 16));
  const all =
    rest === undefined ? h : [...h, ...new Array<number>(Math.max(0, 8 - h.length - r.length)).fill(0), ...r];
  if (all.length !== 8 || all.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff)) return null;
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  // ::ffff:a.b.c.d -> a.b.c.d
  if (out.subarray(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff) return out.slice(12);
  return out;
}

/** `192.0.2.0/24`, `2001:db8::/32`, or a single address (a /32 or /128). Null when invalid. */
export function parseCidr(text: string): Cidr | null {
  const [addr = '', len, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const bytes = ipToBytes(addr);
  if (bytes === null) return null;
  const max = bytes.length * 8;
  const prefix = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : Number.NaN;
  if (!(prefix >= 0 && prefix <= max)) return null;
  return { text: text.trim(), bytes, prefix };
}

function prefixEqual(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const full = bits >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== b[i]) return false;
  const rem = bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((a[full] ?? 0) & mask) === ((b[full] ?? 0) & mask);
}

/** True when `address` lies in one of `blocks`. */
export function matchesAny(address: string, blocks: readonly Cidr[]): boolean {
  const bytes = ipToBytes(address);
  if (bytes === null) return false;
  return blocks.some((c) => c.bytes.length === bytes.length && prefixEqual(c.bytes, bytes, c.prefix));
}

/** Canonical text of an address: IPv4 dotted, IPv6 in RFC 5952 form, mapped IPv6 as IPv4. */
export function canonicalIp(address: string): string {
  const b = ipToBytes(address);
  if (b === null) return address;
  // ipToBytes already turned an IPv4-mapped address into its 4 octets.
  return b.length === 4 ? b.join('.') : formatIpv6(b);
}

/** RFC 5321 section 4.1.3 address literal: `[192.0.2.1]` or `[IPv6:2001:db8::1]`. */
export function addressLiteral(address: string): string {
  const c = canonicalIp(address);
  return c.includes(':') ? `[IPv6:${c}]` : `[${c}]`;
}

/**
 * Key for per-address limits: the IPv4 address, or the /64 an IPv6 address lies in (one
 * customer site usually holds a whole /64, so limiting single IPv6 addresses limits nothing).
 */
export function limitKey(address: string): string {
  const b = ipToBytes(address);
  if (b === null) return address;
  if (b.length === 4) return b.join('.');
  return `${canonicalIp(canonicalBytesToText(b.slice(0, 8)))}/64`;
}

function canonicalBytesToText(first8: Uint8Array): string {
  const words: string[] = [];
  for (let i = 0; i < 8; i += 2) words.push(((first8[i]! << 8) | first8[i + 1]!).toString(16));
  return `${words.join(':')}::`;
}
