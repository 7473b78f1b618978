/**
 * Our trace header, prepended to every stored message (RFC 5321 section 4.4):
 *
 *   Received: from <helo> (<[client address literal]>)
 *           by <our host> with <protocol> (<TLS details>)
 *           id <transaction id>
 *           for <recipient>;
 *           <date-time>
 *
 * - `from` is the EHLO/HELO name when it is a syntactically valid domain or address literal,
 *   else the client's address literal (a client cannot inject text into our header).
 * - `with`: SMTP (HELO), ESMTP (EHLO), plus `S` for TLS and `A` for AUTH (RFC 3848), and the
 *   UTF8SMTP family when the client used SMTPUTF8 (RFC 6531 section 3.7.3).
 * - `for` only when there is exactly one recipient (more would disclose Bcc recipients, RFC 5321
 *   section 7.2), and only when the address is safe to write.
 * - The date is RFC 5322 section 3.3 `date-time` in UTC.
 * Lines are folded before each clause (RFC 5322 section 2.2.3) and end with CRLF.
 */
import { addressLiteral } from './cidr.ts';
import { normalizeDomain } from './config.ts';

export interface ReceivedInput {
  helo: { verb: string; name: string } | null;
  remoteAddress: string;
  hostname: string;
  tls: { protocol: string | null; cipher: string | null } | null;
  authenticated: boolean;
  smtputf8: boolean;
  id: string;
  rcptTo: readonly string[];
  date: Date;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 section 3.3 date-time in UTC, e.g. `Sat, 28 Nov 2026 20:22:19 +0000`. */
export function rfc5322Date(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
  );
}

/** RFC 3848 / RFC 6531 protocol keyword for the `with` clause. */
export function withProtocol(i: Pick<ReceivedInput, 'helo' | 'tls' | 'authenticated' | 'smtputf8'>): string {
  const extended = i.helo?.verb.toUpperCase() !== 'HELO';
  if (!extended) return 'SMTP';
  const base = i.smtputf8 ? 'UTF8SMTP' : 'ESMTP';
  return `${base}${i.tls ? 'S' : ''}${i.authenticated ? 'A' : ''}`;
}

const IPV4_LITERAL = /^\[(\d{1,3}\.){3}\d{1,3}\]$/;
const IPV6_LITERAL = /^\[IPv6:[0-9A-Fa-f:.]{2,45}\]$/;

/** The EHLO argument if it is a Domain or address-literal (RFC 5321 section 4.1.2), else null. */
function safeHelo(name: string): string | null {
  if (IPV4_LITERAL.test(name) || IPV6_LITERAL.test(name)) return name;
  return normalizeDomain(name) === null || !/^[A-Za-z0-9.-]+$/.test(name) ? null : name;
}

/** Mailbox safe to put after `for`: printable, no spaces, angle brackets, or comment characters. */
function safeMailbox(addr: string): boolean {
  return addr.length <= 320 && /^[^\s<>()\\;"\x00-\x1f\x7f]+@[^\s<>()\\;"\x00-\x1f\x7f@]+$/u.test(addr);
}

/** TLS details as a comment; only characters that cannot end or break it. */
function tlsComment(tls: { protocol: string | null; cipher: string | null }): string {
  const clean = (s: string | null) => (s ?? 'unknown').replace(/[^A-Za-z0-9._-]/g, '');
  return `(${clean(tls.protocol)} cipher ${clean(tls.cipher)})`;
}

/** The complete header field, CRLF-terminated. */
export function receivedHeader(i: ReceivedInput): string {
  const literal = addressLiteral(i.remoteAddress);
  const helo = i.helo === null ? null : safeHelo(i.helo.name);
  const lines = [`Received: from ${helo ?? literal} (${literal})`];
  lines.push(`\tby ${i.hostname} with ${withProtocol(i)}${i.tls ? ` ${tlsComment(i.tls)}` : ''}`);
  lines.push(`\tid ${i.id}`);
  const only = i.rcptTo.length === 1 ? i.rcptTo[0]! : null;
  if (only !== null && safeMailbox(only)) lines.push(`\tfor <${only}>;`);
  else lines[lines.length - 1] += ';';
  lines.push(`\t${rfc5322Date(i.date)}`);
  return `${lines.join('\r\n')}\r\n`;
}
