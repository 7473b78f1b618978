/**
 * Who may send what where.
 *
 * - MX listener: no AUTH; a recipient is accepted only when its domain is one of RECEIVER_DOMAINS
 *   (exact match, case-insensitive, U-labels compared as A-labels; subdomains are NOT included),
 *   plus the bare `<Postmaster>` that RFC 5321 section 4.5.1 requires every server to accept.
 *   Anything else: `550 5.7.1 Relaying denied` (RFC 5321 section 3.6.2, never an open relay).
 * - Submission listeners: AUTH required before MAIL (the engine enforces it, RFC 6409 section 4.3);
 *   any recipient.
 * - Both: at most RECEIVER_MESSAGES_PER_IP_PER_MINUTE transactions per client address (IPv6 per /64);
 *   over it, MAIL FROM gets `451 4.7.1` (a temporary reply that RFC 5321 section 4.3.2 allows for MAIL).
 */
import { normalizeDomain } from './config.ts';

/** The domain part of an address (after the last `@`), normalized; null when there is none. */
export function recipientDomain(address: string): string | null {
  const at = address.lastIndexOf('@');
  if (at < 0) return null;
  const domain = address.slice(at + 1);
  if (domain.startsWith('[')) return null; // address literal: never one of our domains
  return normalizeDomain(domain);
}

/** True when the MX listener accepts mail for `address`. */
export function acceptsRecipient(address: string, domains: readonly string[]): boolean {
  if (address.toLowerCase() === 'postmaster') return true;
  const d = recipientDomain(address);
  return d !== null && domains.includes(d);
}
