/**
 * Addresses as the composer takes them (`"Zoë" <zoe@example.org>`, `Zoë <zoe@example.org>`,
 * `zoe@example.org`, or `{ name, address }`) and as it writes them into address fields
 * (RFC 5322 section 3.4) and the envelope (RFC 5321 section 4.1.2).
 *
 * Internationalized addresses: a non-ASCII local part needs SMTPUTF8 (RFC 6531) and is written
 * as raw UTF-8 in the header (RFC 6532 section 3.2); an ASCII local part with an IDN domain is
 * converted to A-labels so the message stays plain ASCII.
 */
import { SmtpMessageError } from '../errors.ts';
import { FieldWriter, writePhrase } from './header.ts';
import { domainToAscii } from './punycode.ts';
import { assertHeaderText } from './text.ts';

/** `"zoe@example.org"`, `"\"Zoë\" <zoe@example.org>"`, `"Zoë <zoe@example.org>"` or `{ name, address }`. */
export type AddressInput = string | { name?: string; address: string };

/** A parsed mailbox: the display name (null when there is none) and the addr-spec. */
export interface Mailbox {
  name: string | null;
  address: string;
}

/** A mailbox ready for the wire. */
export interface ResolvedMailbox {
  name: string | null;
  /** The addr-spec as written in headers and the envelope (A-labels unless SMTPUTF8 is needed). */
  address: string;
  /** True when the local part is non-ASCII, so the address needs SMTPUTF8 (RFC 6531 section 3.3). */
  smtputf8: boolean;
}

// RFC 5322 section 3.2.3 atext, extended by RFC 6532 section 3.2 with any non-ASCII UTF-8.
const ATEXT_CHAR = "[A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~\\u0080-\\u{10FFFF}]";
const DOT_ATOM = new RegExp(`^${ATEXT_CHAR}+(?:\\.${ATEXT_CHAR}+)*$`, 'u');
// RFC 5322 section 3.2.4 quoted-string content: qtext (printable ASCII but `"` and `\`,
// non-ASCII per RFC 6532), quoted-pairs and spaces.
const QUOTED_LOCAL = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10FFFF}]|\\[\x20-\x7e])*"$/u;
// RFC 5321 section 4.1.3: address literals (IPv4, IPv6, general) — only the bracketed shape is
// checked here; the dcontent is printable ASCII without brackets and backslash.
const ADDRESS_LITERAL = /^\[[\x21-\x5a\x5e-\x7e]+\]$/;

function octets(s: string): number {
  return new TextEncoder().encode(s).length;
}

/**
 * Validate an addr-spec (RFC 5322 section 3.4.1, RFC 5321 section 4.1.2 `Mailbox`) and return
 * its local part and domain. Limits: local part 64 octets, domain 255 octets, the whole path
 * 256 octets including the angle brackets (RFC 5321 section 4.5.3.1).
 */
export function splitAddrSpec(address: string, field: string): { local: string; domain: string } {
  assertHeaderText(address, field);
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) {
    throw new SmtpMessageError(`${field}: "${address}" is not an address of the form local@domain`, field);
  }
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (!DOT_ATOM.test(local) && !QUOTED_LOCAL.test(local)) {
    throw new SmtpMessageError(
      `${field}: the local part of "${address}" is not valid (RFC 5322 section 3.4.1)`,
      field,
    );
  }
  if (!ADDRESS_LITERAL.test(domain)) {
    if (!DOT_ATOM.test(domain)) {
      throw new SmtpMessageError(`${field}: the domain of "${address}" is not valid`, field);
    }
    domainToAscii(domain, field); // throws on labels that are not LDH or a valid U-label
  }
  if (octets(local) > 64)
    throw new SmtpMessageError(`${field}: the local part is longer than 64 octets`, field);
  if (octets(address) + 2 > 256)
    throw new SmtpMessageError(`${field}: the address is longer than 254 octets`, field);
  return { local, domain };
}

function trimWsp(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}

/**
 * Parse one address (RFC 5322 section 3.4 `mailbox`): `addr-spec`, `<addr-spec>`,
 * `display-name <addr-spec>` where the display name is a quoted-string (section 3.2.4, with
 * quoted-pairs) or bare text (taken as is, trimmed: we re-encode it safely on output), or an
 * object `{ name, address }`. An empty name becomes null. Throws `SmtpMessageError` with
 * `field` on anything else, including CR/LF/NUL anywhere.
 */
export function parseAddress(input: AddressInput, field: string): Mailbox {
  if (typeof input === 'object' && input !== null) {
    const { name, address } = input;
    if (name !== undefined && name !== null) assertHeaderText(name, `${field}.name`);
    assertHeaderText(address, `${field}.address`);
    const addr = trimWsp(address);
    splitAddrSpec(addr, `${field}.address`);
    const n = name === undefined || name === null ? '' : trimWsp(name);
    return { name: n === '' ? null : n, address: addr };
  }
  assertHeaderText(input, field);
  const text = trimWsp(input);
  if (!text.endsWith('>')) {
    splitAddrSpec(text, field);
    return { name: null, address: text };
  }
  const open = text.lastIndexOf('<');
  if (open < 0) throw new SmtpMessageError(`${field}: "${text}" has a ">" without "<"`, field);
  const address = trimWsp(text.slice(open + 1, -1));
  splitAddrSpec(address, field);
  let rawName = trimWsp(text.slice(0, open));
  let name: string;
  if (rawName.startsWith('"')) {
    // quoted-string: "…" with \-escapes; nothing may follow the closing quote but spaces.
    let i = 1;
    name = '';
    for (; i < rawName.length; i++) {
      const c = rawName[i]!;
      if (c === '\\' && i + 1 < rawName.length) name += rawName[++i]!;
      else if (c === '"') break;
      else name += c;
    }
    if (i >= rawName.length || trimWsp(rawName.slice(i + 1)) !== '') {
      throw new SmtpMessageError(
        `${field}: the quoted display name in "${text}" is not closed properly`,
        field,
      );
    }
    rawName = '';
  } else {
    if (/[<>"]/.test(rawName)) {
      throw new SmtpMessageError(
        `${field}: the display name in "${text}" holds "<", ">" or a stray quote`,
        field,
      );
    }
    name = rawName;
  }
  name = trimWsp(name);
  return { name: name === '' ? null : name, address };
}

/**
 * The wire form of a mailbox: A-labels for IDN domains when the local part is ASCII, raw UTF-8
 * (and `smtputf8: true`) when the local part is not (RFC 6531 section 3.2, RFC 6532 section 3.2).
 */
export function resolveMailbox(mailbox: Mailbox, field: string): ResolvedMailbox {
  const { local, domain } = splitAddrSpec(mailbox.address, field);
  const asciiLocal = /^[\x00-\x7f]*$/.test(local);
  if (!asciiLocal) return { name: mailbox.name, address: mailbox.address, smtputf8: true };
  const asciiDomain = ADDRESS_LITERAL.test(domain) ? domain : domainToAscii(domain, field);
  return { name: mailbox.name, address: `${local}@${asciiDomain}`, smtputf8: false };
}

/** Write a comma-separated mailbox list (RFC 5322 section 3.4 `mailbox-list`) into a field. */
export function writeAddressList(writer: FieldWriter, list: readonly Mailbox[]): void {
  list.forEach((mb, i) => {
    const last = i === list.length - 1;
    if (mb.name === null) {
      writer.word(mb.address);
    } else {
      writePhrase(writer, mb.name);
      writer.word(`<${mb.address}>`);
    }
    if (!last) writer.append(',');
  });
}

/**
 * The value of an address field (what follows `Name: `), with display names quoted or
 * RFC 2047-encoded as needed and folded at 78 characters as it would be under `fieldName`
 * (default `To`). Continuation lines start with a space; there is no trailing CRLF. Addresses
 * are written as given (call `resolveMailbox` first for A-labels).
 */
export function formatAddressHeader(
  list: ReadonlyArray<{ name: string | null; address: string }>,
  fieldName = 'To',
): string {
  const writer = new FieldWriter(fieldName);
  list.forEach((mb, i) => {
    const field = `[${i}]`;
    if (mb.name !== null) assertHeaderText(mb.name, `${field}.name`);
    splitAddrSpec(mb.address, `${field}.address`);
  });
  writeAddressList(writer, list);
  const field = writer.toString();
  return field.slice(fieldName.length + 2, -2);
}
