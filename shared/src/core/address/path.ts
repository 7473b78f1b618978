/**
 * Envelope paths (RFC 5321 section 4.1.2), for both engines:
 *
 *   Reverse-path = Path / "<>"
 *   Forward-path = Path                       ; and "<Postmaster>" (section 4.1.1.3)
 *   Path         = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox      = Local-part "@" ( Domain / address-literal )
 *
 * A source route (A-d-l) is accepted and ignored (section 4.1.2 and appendix C). With SMTPUTF8,
 * RFC 6531 section 3.3 adds UTF-8 to atext, qtextSMTP and sub-domain.
 */
import { type AddressContext, AddressError, type AddressErrorReason } from './errors.ts';
import {
  type AddressLiteralKind,
  addressLiteralKind,
  checkDomain,
  formatLocalPart,
  isDotString,
  needsSmtpUtf8,
  octetLength,
  scanQuotedString,
} from './syntax.ts';

export interface Mailbox {
  /** The local part's value: unquoted, quoted-pairs resolved (`"a b"` gives `a b`). */
  localPart: string;
  /** The domain or address literal as written (`example.org`, `[192.0.2.1]`, `[IPv6:2001:db8::1]`). */
  domain: string;
  /** `local@domain` as written, the local part quoted only when it must be (shortest form). */
  address: string;
  /** What `domain` is: a name, or which kind of address literal (RFC 5321 section 4.1.3). */
  domainKind: 'name' | AddressLiteralKind;
}

export type ReversePath = { kind: 'null' } | { kind: 'mailbox'; mailbox: Mailbox };
export type ForwardPath = { kind: 'postmaster' } | { kind: 'mailbox'; mailbox: Mailbox };

export interface AddressOptions {
  /** The transaction uses SMTPUTF8 (RFC 6531 section 3.4), so UTF-8 is allowed in the address. */
  smtputf8: boolean;
}

/** RFC 5321 section 4.5.3.1: local part 64, domain 255, path 256 octets (brackets included). */
export const MAX_LOCAL_PART = 64;
export const MAX_DOMAIN = 255;
export const MAX_PATH = 256;

const MESSAGES: Record<Exclude<AddressErrorReason, 'syntax'>, string> = {
  'local-part-too-long': 'Local part too long',
  'domain-too-long': 'Domain too long',
  'path-too-long': 'Path too long',
  'non-ascii': 'Non-ASCII address without SMTPUTF8',
  'control-character': 'Control character in address',
};

function fail(reason: AddressErrorReason, context: AddressContext, detail: string): never {
  const who = context === 'MAIL' ? 'sender' : context === 'RCPT' ? 'recipient' : 'mailbox';
  const message = reason === 'syntax' ? `Bad ${who} address syntax: ${detail}` : MESSAGES[reason];
  throw new AddressError(reason, message, context);
}

function checkControls(text: string, context: AddressContext): void {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) fail('control-character', context, 'control character');
  }
}

/** Parse `Local-part "@" ( Domain / address-literal )`, the whole of `text`. */
function parseMailboxText(text: string, smtputf8: boolean, context: AddressContext): Mailbox {
  let localPart: string;
  let written: string;
  let at: number;
  if (text.startsWith('"')) {
    const q = scanQuotedString(text, 0, smtputf8);
    if (q === null) fail('syntax', context, 'bad quoted local part');
    localPart = q.value;
    written = text.slice(0, q.end);
    at = q.end;
    if (text[at] !== '@') fail('syntax', context, 'expected @ after the local part');
  } else {
    at = text.lastIndexOf('@');
    if (at < 0) fail('syntax', context, 'no @');
    written = text.slice(0, at);
    if (!isDotString(written, smtputf8)) fail('syntax', context, 'bad local part');
    localPart = written;
  }
  if (octetLength(written) > MAX_LOCAL_PART) fail('local-part-too-long', context, '');
  const domain = text.slice(at + 1);
  let domainKind: Mailbox['domainKind'] = 'name';
  if (domain.startsWith('[')) {
    const kind = addressLiteralKind(domain);
    if (kind === null) fail('syntax', context, 'bad address literal');
    domainKind = kind;
  } else {
    const problem = checkDomain(domain, smtputf8);
    if (problem !== null) fail(problem, context, 'bad domain');
  }
  const local = formatLocalPart(localPart, smtputf8);
  if (local === null) fail('syntax', context, 'bad local part');
  return { localPart, domain, address: `${local}@${domain}`, domainKind };
}

/** Check the `<...>` frame, controls, UTF-8 and length; return the text inside the brackets. */
function unwrapPath(text: string, opts: AddressOptions, context: AddressContext): string {
  checkControls(text, context);
  if (text.length < 2 || !text.startsWith('<') || !text.endsWith('>')) {
    fail('syntax', context, 'a path is enclosed in < >');
  }
  if (!opts.smtputf8 && needsSmtpUtf8(text)) fail('non-ascii', context, '');
  if (octetLength(text) > MAX_PATH) fail('path-too-long', context, '');
  let inner = text.slice(1, -1);
  if (inner.startsWith('@')) {
    // A-d-l = At-domain *( "," At-domain ) ":" ; accepted and ignored (RFC 5321 section 4.1.2, C.)
    const colon = inner.indexOf(':');
    if (colon < 0) fail('syntax', context, 'source route without ":"');
    for (const hop of inner.slice(0, colon).split(',')) {
      if (!hop.startsWith('@') || checkDomain(hop.slice(1), opts.smtputf8) !== null) {
        fail('syntax', context, 'bad source route');
      }
    }
    inner = inner.slice(colon + 1);
  }
  return inner;
}

/** The `<reverse-path>` of `MAIL FROM:` (no parameters). `<>` is the null path. */
export function parseReversePath(text: string, opts: AddressOptions): ReversePath {
  if (text === '<>') return { kind: 'null' };
  const inner = unwrapPath(text, opts, 'MAIL');
  return { kind: 'mailbox', mailbox: parseMailboxText(inner, opts.smtputf8, 'MAIL') };
}

/** The `<forward-path>` of `RCPT TO:` (no parameters); `<Postmaster>` in any case is special. */
export function parseForwardPath(text: string, opts: AddressOptions): ForwardPath {
  if (text.length === 12 && text.toLowerCase() === '<postmaster>') return { kind: 'postmaster' };
  const inner = unwrapPath(text, opts, 'RCPT');
  return { kind: 'mailbox', mailbox: parseMailboxText(inner, opts.smtputf8, 'RCPT') };
}

/**
 * A bare `local@domain` (no brackets, no route), e.g. an address a user gave the client.
 * Limits: local part 64 octets, domain 255, and 254 for the whole (the path's 256 less `<>`).
 */
export function parseMailbox(address: string, opts: AddressOptions): Mailbox {
  checkControls(address, 'mailbox');
  if (!opts.smtputf8 && needsSmtpUtf8(address)) fail('non-ascii', 'mailbox', '');
  if (octetLength(address) > MAX_PATH - 2) fail('path-too-long', 'mailbox', '');
  return parseMailboxText(address, opts.smtputf8, 'mailbox');
}

/**
 * A path for `MAIL FROM:` / `RCPT TO:`: `<>` for null, else `<local@domain>` with the local
 * part quoted when it needs it. Throws `AddressError` (a `SmtpMessageError`) for anything that
 * could not be parsed back: controls (CR/LF injection), bad domain, lengths.
 */
export function formatPath(mailbox: Pick<Mailbox, 'localPart' | 'domain'> | null): string {
  if (mailbox === null) return '<>';
  checkControls(mailbox.localPart, 'mailbox');
  checkControls(mailbox.domain, 'mailbox');
  const local = formatLocalPart(mailbox.localPart, true);
  if (local === null) fail('syntax', 'mailbox', 'bad local part');
  const path = `<${local}@${mailbox.domain}>`;
  // Validate the result exactly as a server will parse it.
  parseMailboxText(path.slice(1, -1), true, 'mailbox');
  if (octetLength(path) > MAX_PATH) fail('path-too-long', 'mailbox', '');
  return path;
}
