/**
 * The name a client gives in EHLO/HELO (RFC 5321 section 4.1.1.1 and 4.1.4): its fully
 * qualified domain name, or, when it has none, an address literal for the address it connects
 * from (section 4.1.3). Never a hard-coded literal: that would be a lie a careful server checks.
 */
import { SmtpConfigError } from '../errors.ts';

/** `sub-domain *("." sub-domain)`, sub-domain = Let-dig [Ldh-str] (RFC 5321 section 4.1.2). */
const DOMAIN =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** `[IPv4]` or `[IPv6:…]` (section 4.1.3); the IPv6 part is checked loosely (hex, colons, dots). */
const LITERAL =
  /^\[(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}|IPv6:[0-9A-Fa-f:.]{2,45})\]$/;

/** Throws `SmtpConfigError` unless `name` is a domain or an address literal (and so holds no CR, LF, NUL or space). */
export function validateHeloName(name: string): void {
  if (typeof name !== 'string' || !(DOMAIN.test(name) || LITERAL.test(name))) {
    throw new SmtpConfigError(
      `helo ${JSON.stringify(name)} is not a domain name or an address literal such as [192.0.2.1] ` +
        '(RFC 5321 section 4.1.1.1); use the A-label (xn--) form for an internationalized name',
    );
  }
}

/** The address literal for an IP address (`[192.0.2.1]`, `[IPv6:2001:db8::1]`), or null. */
export function addressLiteral(address: string | undefined | null): string | null {
  if (!address) return null;
  const plain = address.startsWith('::ffff:') && IPV4.test(address.slice(7)) ? address.slice(7) : address;
  if (IPV4.test(plain)) return `[${plain}]`;
  const noZone = plain.split('%')[0]!;
  if (noZone.includes(':') && /^[0-9A-Fa-f:.]+$/.test(noZone)) return `[IPv6:${noZone}]`;
  return null;
}

/**
 * Default EHLO name when none is configured: the literal of the local address the transport
 * reports, else `localhost`, the only name left when the runtime hides both (Workers; adapters
 * pass a better one when they have it).
 */
export function defaultHeloName(localAddress: string | undefined | null): string {
  return addressLiteral(localAddress) ?? 'localhost';
}

/** A host name usable as the EHLO name (a dotted, valid domain), or null. */
export function usableHostname(name: string | undefined | null): string | null {
  if (!name?.includes('.') || !DOMAIN.test(name)) return null;
  return name;
}
