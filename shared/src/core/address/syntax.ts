/**
 * The RFC 5321 section 4.1.2 / 4.1.3 building blocks (local part, domain, address literal),
 * extended for SMTPUTF8 by RFC 6531 section 3.3 (UTF8-non-ascii in atext and qtextSMTP, U-labels
 * in sub-domains). Each check returns a reason string or null, so callers pick the error.
 */
import { SmtpMessageError } from '../errors.ts';

/** Length in UTF-8 octets (the RFC 5321 section 4.5.3.1 limits count octets). */
export function octetLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** True when `text` has a char outside US-ASCII, so sending it needs SMTPUTF8 (RFC 6531). */
export function needsSmtpUtf8(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return true;
  return false;
}

export interface ControlCharOptions {
  /** Allow HT (a header value may fold with tabs). Default false. */
  allowTab?: boolean;
}

/**
 * Throw `SmtpMessageError` naming `field` when `value` holds a C0 control character (CR, LF,
 * NUL, ...) or DEL. Every field a client writes on the wire goes through this first: a CR or
 * LF would end the command early and let the rest be read as another command (injection).
 */
export function assertNoControlChars(value: string, field: string, options: ControlCharOptions = {}): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && !(c === 0x09 && options.allowTab === true)) || c === 0x7f) {
      const name =
        c === 0x0d ? 'CR' : c === 0x0a ? 'LF' : c === 0 ? 'NUL' : `0x${c.toString(16).padStart(2, '0')}`;
      throw new SmtpMessageError(`${field} contains a control character (${name})`, field);
    }
  }
}

// RFC 5322 section 3.2.3 atext (RFC 5321 section 4.1.2 Atom).
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/;

function isAtext(c: string, utf8Ok: boolean): boolean {
  return ATEXT.test(c) || (utf8Ok && c.charCodeAt(0) > 0x7f);
}

/** `Dot-string = Atom *("." Atom)` (RFC 5321 section 4.1.2). */
export function isDotString(s: string, smtputf8: boolean): boolean {
  if (s.length === 0) return false;
  let atomLen = 0;
  for (const c of s) {
    if (c === '.') {
      if (atomLen === 0) return false;
      atomLen = 0;
    } else if (isAtext(c, smtputf8)) {
      atomLen++;
    } else return false;
  }
  return atomLen > 0;
}

/**
 * The value of a `Quoted-string` at `text[start]` (which must be `"`): returns the unescaped
 * content and the index after the closing quote, or null when it is not valid. qtextSMTP is
 * %d32-33 / %d35-91 / %d93-126 and quoted-pairSMTP is `\` %d32-126 (RFC 5321 section 4.1.2).
 */
export function scanQuotedString(
  text: string,
  start: number,
  smtputf8: boolean,
): { value: string; end: number } | null {
  if (text[start] !== '"') return null;
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return { value, end: i + 1 };
    if (code === 0x5c) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0x20 && next <= 0x7e)) return null;
      value += text[i + 1];
      i++;
    } else if ((code >= 0x20 && code <= 0x7e) || (smtputf8 && code > 0x7f)) {
      value += text[i];
    } else return null;
  }
  return null;
}

/**
 * A local part as written on the wire: as is when it is a Dot-string, else a Quoted-string
 * quoting only `"` and `\` (RFC 5321 section 4.1.2 asks for the shortest form). Returns null
 * when the value has a char that cannot be quoted (controls; non-ASCII without SMTPUTF8).
 */
export function formatLocalPart(value: string, smtputf8 = true): string | null {
  if (isDotString(value, smtputf8)) return value;
  let out = '"';
  for (const c of value) {
    const code = c.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f || (code > 0x7f && !smtputf8)) return null;
    out += c === '"' || c === '\\' ? `\\${c}` : c;
  }
  return `${out}"`;
}

/**
 * `Domain = sub-domain *("." sub-domain)`, `sub-domain = Let-dig [Ldh-str]` (RFC 5321 section
 * 4.1.2), plus U-labels with SMTPUTF8 (RFC 6531 section 3.3). Only the character repertoire of a
 * U-label is checked, not the full IDNA2008 rules. Returns a reason or null.
 */
export function checkDomain(domain: string, smtputf8: boolean): 'syntax' | 'domain-too-long' | null {
  if (domain.length === 0) return 'syntax';
  for (const label of domain.split('.')) {
    if (label.length === 0 || label.startsWith('-') || label.endsWith('-')) return 'syntax';
    let ascii = true;
    for (const c of label) {
      const code = c.codePointAt(0)!;
      if (code > 0x7f) {
        if (!smtputf8 || isUnicodeSpaceOrControl(code)) return 'syntax';
        ascii = false;
      } else if (!/[A-Za-z0-9-]/.test(c)) return 'syntax';
    }
    // RFC 1035 section 2.3.4: labels are 63 octets or less (checked where the label is ASCII).
    if (ascii && label.length > 63) return 'domain-too-long';
  }
  return octetLength(domain) > 255 ? 'domain-too-long' : null;
}

function isUnicodeSpaceOrControl(code: number): boolean {
  return (
    (code >= 0x80 && code <= 0x9f) ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

/** `Snum 3("." Snum)`, Snum = 1*3DIGIT with value 0-255 (RFC 5321 section 4.1.3). */
export function isIpv4Literal(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/**
 * `IPv6-addr` of RFC 5321 section 4.1.3: full (8 groups), compressed (`::` standing for at
 * least two groups, at most 6 others), and the forms ending in an IPv4 address (6 groups, or
 * at most 4 others with `::`).
 */
export function isIpv6Address(s: string): boolean {
  let head = s;
  let groupsForV4 = 0;
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.indexOf('.', lastColon) > lastColon) {
    if (!isIpv4Literal(s.slice(lastColon + 1))) return false;
    head = s.slice(0, lastColon + 1);
    groupsForV4 = 2;
    // `head` now ends in ':'; `::` before the IPv4 part stays `::`.
    head = head.endsWith('::') ? head : head.slice(0, -1);
  }
  const hex = /^[0-9A-Fa-f]{1,4}$/;
  const double = head.indexOf('::');
  if (double < 0) {
    const groups = head.split(':');
    return groups.length + groupsForV4 === 8 && groups.every((g) => hex.test(g));
  }
  if (head.indexOf('::', double + 1) >= 0) return false;
  const left = head.slice(0, double);
  const right = head.slice(double + 2);
  const l = left === '' ? [] : left.split(':');
  const r = right === '' ? [] : right.split(':');
  if (![...l, ...r].every((g) => hex.test(g))) return false;
  // "::" represents at least 2 groups: at most 6 others (4 with an IPv4 tail).
  return l.length + r.length + groupsForV4 <= 6;
}

export type AddressLiteralKind = 'ipv4' | 'ipv6' | 'general';

/**
 * `address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]"` (RFC 5321 section 4.1.3). Returns the kind, or null.
 * `IPv6:` is matched case-insensitively, as ABNF strings are.
 */
export function addressLiteralKind(literal: string): AddressLiteralKind | null {
  if (literal.length < 3 || literal[0] !== '[' || literal[literal.length - 1] !== ']') return null;
  const inner = literal.slice(1, -1);
  if (isIpv4Literal(inner)) return 'ipv4';
  const colon = inner.indexOf(':');
  if (colon < 0) return null;
  const tag = inner.slice(0, colon);
  const content = inner.slice(colon + 1);
  if (tag.toLowerCase() === 'ipv6') return isIpv6Address(content) ? 'ipv6' : null;
  // General-address-literal = Standardized-tag ":" 1*dcontent; dcontent = %d33-90 / %d94-126.
  if (!/^[A-Za-z0-9-]*[A-Za-z0-9]$/.test(tag)) return null;
  return /^[\x21-\x5a\x5e-\x7e]+$/.test(content) ? 'general' : null;
}
