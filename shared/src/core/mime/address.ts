/**
 * Addresses as the composer takes them (`"Zoë" <zoe@example.org>`, `Zoë <zoe@example.org>`,
 * `zoe@example.org`, or `{ name, address }`) and as it writes them into address fields
 * (RFC 5322 section 3.4) and the envelope (RFC 5321 section 4.1.2).
 *
 * Internationalized addresses: a non-ASCII local part needs SMTPUTF8 (RFC 6531) and is written
 * as raw UTF-8 in the header (RFC 6532 section 3.2); an ASCII local part with an IDN domain is
 * converted to A-labels so the message stays plain ASCII.
 */
import { needsSmtpUtf8, parseMailbox } from '../address/index.ts';
import { SmtpMessageError } from '../errors.ts';
import { FieldWriter, writePhrase } from './header.ts';
import { domainToAscii } from './punycode.ts';
import { assertHeaderText, assertString } from './text.ts';

/** `"zoe@example.org"`, `"\"Zoë\" <zoe@example.org>"`, `"Zoë <zoe@example.org>"` or `{ name, address }`. */
export type AddressInput = string | { name?: string; address: string };

/** A parsed mailbox: the display name (null when there is none) and the addr-spec. */
export interface NamedAddress {
  name: string | null;
  address: string;
}

/** A mailbox ready for the wire. */
export interface ResolvedAddress {
  name: string | null;
  /** The addr-spec as written in headers and the envelope (A-labels unless SMTPUTF8 is needed). */
  address: string;
  /** True when the local part is non-ASCII, so the address needs SMTPUTF8 (RFC 6531 section 3.3). */
  smtputf8: boolean;
}

const ADDRESS_LITERAL = /^\[.*\]$/;

/**
 * Validate an addr-spec with the envelope grammar (RFC 5321 section 4.1.2, with RFC 6531
 * section 3.3 UTF-8), since every address we write must also work in MAIL FROM / RCPT TO, and
 * return it in its shortest form with its local part and domain. Limits: local part 64 octets,
 * domain 255, path 256 (RFC 5321 section 4.5.3.1). IDN domains must convert to A-labels.
 */
export function splitAddrSpec(
  address: string,
  field: string,
): { address: string; local: string; domain: string } {
  assertHeaderText(address, field);
  let mailbox: ReturnType<typeof parseMailbox>;
  try {
    mailbox = parseMailbox(address, { smtputf8: true });
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new SmtpMessageError(`${field}: "${address}" is not a valid address (${why})`, field, { cause });
  }
  if (mailbox.domainKind === 'name' && needsSmtpUtf8(mailbox.domain)) domainToAscii(mailbox.domain, field);
  const at = mailbox.address.lastIndexOf('@');
  return { address: mailbox.address, local: mailbox.address.slice(0, at), domain: mailbox.domain };
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
export function parseAddress(input: AddressInput, field: string): NamedAddress {
  if (typeof input === 'object' && input !== null) {
    const { name, address } = input;
    if (name !== undefined && name !== null) assertHeaderText(name, `${field}.name`);
    assertHeaderText(address, `${field}.address`);
    const addr = splitAddrSpec(trimWsp(address), `${field}.address`).address;
    const n = name === undefined || name === null ? '' : trimWsp(name);
    return { name: n === '' ? null : n, address: addr };
  }
  assertHeaderText(input, field);
  const text = trimWsp(input);
  if (!text.endsWith('>')) return { name: null, address: splitAddrSpec(text, field).address };
  const open = text.lastIndexOf('<');
  if (open < 0) throw new SmtpMessageError(`${field}: "${text}" has a ">" without "<"`, field);
  const address = splitAddrSpec(trimWsp(text.slice(open + 1, -1)), field).address;
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

/** One address of a string address list, with the field path it is reported under. */
export interface ListedAddress {
  text: string;
  field: string;
}

/**
 * Split a string that may hold several addresses (RFC 5322 section 3.4 `address-list`:
 * `a@example.org, "Doe, John" <john@example.org>`) at its top-level commas: not inside a
 * quoted-string (with `\` quoted-pairs), a comment `( )`, an angle-addr `< >` or a domain
 * literal `[ ]`. Empty elements (a trailing comma, `a@x,,b@x`; RFC 5322 section 4.4
 * obs-addr-list) are skipped.
 *
 * Field paths: a string holding one address keeps `field`; the addresses of a string holding
 * several are `field[0]`, `field[1]`, … in order (so `to: 'a@x, b@x'` reports its second address
 * as `to[1]`, and the second address in the string `to[2]` as `to[2][1]`).
 *
 * Groups (`Team: a@x, b@x;`, RFC 5322 section 3.4 `group`) are not supported: a `;`, or a `:` in a
 * string of several addresses, outside quotes, comments and brackets is an `SmtpMessageError`
 * saying so. CR, LF and other controls are refused first, at the path of the address holding
 * them. Each element is then validated by `parseAddress`; this only splits.
 */
export function splitAddressList(text: string, field: string): ListedAddress[] {
  assertString(text, field);
  const parts: string[] = [];
  let colon = false;
  let semicolon = false;
  let quoted = false;
  let comment = 0;
  let angle = false;
  let literal = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c)
        i++; // quoted-pair: the next character is literal
      else if (c === 0x22) quoted = false;
      continue;
    }
    if (comment > 0) {
      if (c === 0x5c) i++;
      else if (c === 0x28) comment++;
      else if (c === 0x29) comment--;
      continue;
    }
    if (c === 0x22) quoted = true;
    else if (c === 0x28) comment = 1;
    else if (angle) {
      if (c === 0x3e) angle = false;
    } else if (literal) {
      if (c === 0x5d) literal = false;
    } else if (c === 0x3c) angle = true;
    else if (c === 0x5b) literal = true;
    else if (c === 0x2c) {
      parts.push(text.slice(start, i));
      start = i + 1;
    } else if (c === 0x3a) colon = true;
    else if (c === 0x3b) semicolon = true;
  }
  parts.push(text.slice(start));
  const present = parts.filter((p) => trimWsp(p) !== '');
  // Nothing but commas and spaces: one (invalid) address, reported as such by parseAddress.
  const listed =
    present.length <= 1
      ? [{ text: present[0] ?? text, field }]
      : present.map((part, i) => ({ text: part, field: `${field}[${i}]` }));
  // The injection guard first, at the precise path, before any other complaint.
  for (const a of listed) assertHeaderText(a.text, a.field);
  // A group ends with ";". A ":" alone is a group only in a list: a single address keeps the
  // lenient reading of an unquoted display name such as `Re: Zoë <zoe@example.org>`.
  if (semicolon || (colon && listed.length > 1)) {
    throw new SmtpMessageError(
      `${field}: "${text}" is an address group (RFC 5322 section 3.4, "name: a@x, b@y;") or a list separated by ";", which are not supported; separate the addresses with commas`,
      field,
    );
  }
  if (listed.length > 1) {
    for (const a of listed) {
      if (!a.text.includes('@')) {
        throw new SmtpMessageError(
          `${a.field}: "${trimWsp(a.text)}" is not an address; a display name that holds a comma must be quoted ("Doe, John" <john@example.org>)`,
          a.field,
        );
      }
    }
  }
  return listed;
}

/**
 * The wire form of a mailbox: A-labels for IDN domains when the local part is ASCII, raw UTF-8
 * (and `smtputf8: true`) when the local part is not (RFC 6531 section 3.2, RFC 6532 section 3.2).
 */
export function resolveAddress(mailbox: NamedAddress, field: string): ResolvedAddress {
  const { local, domain } = splitAddrSpec(mailbox.address, field);
  if (needsSmtpUtf8(local)) return { name: mailbox.name, address: mailbox.address, smtputf8: true };
  const asciiDomain = ADDRESS_LITERAL.test(domain) ? domain : domainToAscii(domain, field);
  return { name: mailbox.name, address: `${local}@${asciiDomain}`, smtputf8: false };
}

/**
 * Write a comma-separated mailbox list (RFC 5322 section 3.4 `mailbox-list`) into a field;
 * `utf8` writes non-ASCII display names raw (for SMTPUTF8 messages, RFC 6532 section 3.6).
 */
export function writeAddressList(writer: FieldWriter, list: readonly NamedAddress[], utf8 = false): void {
  list.forEach((mb, i) => {
    const last = i === list.length - 1;
    if (mb.name === null) {
      writer.word(mb.address);
    } else {
      writePhrase(writer, mb.name, utf8);
      writer.word(`<${mb.address}>`);
    }
    if (!last) writer.append(',');
  });
}

/**
 * The value of an address field (what follows `Name: `), with display names quoted or
 * RFC 2047-encoded as needed and folded at 78 characters as it would be under `fieldName`
 * (default `To`). Continuation lines start with a space; there is no trailing CRLF. Addresses
 * are written as given (call `resolveAddress` first for A-labels).
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
