/**
 * composeMessage: from a JSON-friendly description to the exact octets of an Internet message
 * (RFC 5322) with a MIME body (RFC 2045, 2046, 2047, 2231), plus the SMTP envelope.
 *
 * Guarantees: CRLF line endings only, every line at most 998 octets (RFC 5322 section 2.1.1)
 * and at most 78 wherever a single word allows it, no CR/LF/NUL reaching a header from any
 * input field, Bcc never written, body always encoded to 7-bit (base64/quoted-printable).
 */
import { base64Rewrap, concatBytes, skipPlainWords, utf8Encode, wordView } from '../encoding/index.ts';
import { SmtpMessageError } from '../errors.ts';
import {
  type AddressInput,
  type NamedAddress,
  parseAddress,
  type ResolvedAddress,
  resolveAddress,
  splitAddressList,
  splitAddrSpec,
  writeAddressList,
} from './address.ts';
import { mediaTypeForFilename } from './content-type.ts';
import {
  type AttachmentSpec,
  attachmentEntity,
  type Base64Content,
  type Entity,
  multipartEntity,
  textEntity,
} from './entity.ts';
import { FieldWriter, isFieldName, writeUnstructured } from './header.ts';
import { checkDateText, formatDate, messageIdFor, msgIdList } from './identity.ts';
import { domainToAscii } from './punycode.ts';
import { assertHeaderText, assertString } from './text.ts';

export interface AttachmentInput {
  filename: string;
  /** The bytes, or a base64 string (whitespace allowed, canonical padding required). */
  content: Uint8Array | string;
  /** `type/subtype` with optional parameters; default from the file extension. */
  contentType?: string;
  /** With or without angle brackets; referenced from HTML as `cid:<id>`. */
  contentId?: string;
  disposition?: 'attachment' | 'inline';
}

export interface MessageInput {
  from: AddressInput;
  to?: AddressInput | AddressInput[];
  cc?: AddressInput | AddressInput[];
  bcc?: AddressInput | AddressInput[];
  replyTo?: AddressInput | AddressInput[];
  sender?: AddressInput;
  subject?: string;
  text?: string;
  html?: string;
  attachments?: AttachmentInput[];
  headers?: Record<string, string>;
  date?: Date;
  messageId?: string;
  inReplyTo?: string;
  references?: string | string[];
  /** Right-hand side of a generated Message-ID; default: the From domain. */
  messageIdDomain?: string;
}

export interface ComposedMessage {
  /** The message: CRLF line endings, every line at most 998 octets. */
  bytes: Uint8Array;
  /** The Message-ID, angle brackets included. */
  messageId: string;
  /** The SMTP envelope: reverse-path (Sender if given, else From) and to+cc+bcc deduplicated. */
  envelope: { from: string; to: string[] };
  /** True when an address needs SMTPUTF8 (RFC 6531); the header then carries raw UTF-8 (RFC 6532). */
  smtputf8: boolean;
  /** True when the body holds octets above 127 (never, as the body is always encoded). */
  eightBit: boolean;
}

/** Header fields (lower case) the composer writes itself; `headers` may not set them. */
export const COMPOSER_HEADERS: ReadonlySet<string> = new Set([
  'from',
  'sender',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'content-disposition',
  'content-id',
  // Trace fields are added by the MTAs that handle the message (RFC 5321 section 4.4).
  'return-path',
  'received',
]);

/** Header fields `headers` may set when the dedicated input field is absent. */
const IDENTITY = new Set(['date', 'message-id', 'in-reply-to', 'references']);

/**
 * Every address of a field with its path: an array's elements are `field[i]`, and a string may
 * hold a comma-separated list (`splitAddressList`), whose addresses get one more index when
 * there are several (`to: 'a@x, b@x'` gives `to[0]`, `to[1]`).
 */
function list(
  value: AddressInput | AddressInput[] | undefined,
  field: string,
): Array<[AddressInput, string]> {
  if (value === undefined || value === null) return [];
  const items: Array<[AddressInput, string]> = Array.isArray(value)
    ? value.map((v, i) => [v, `${field}[${i}]`])
    : [[value, field]];
  return items.flatMap(
    ([v, f]): Array<[AddressInput, string]> =>
      typeof v === 'string' ? splitAddressList(v, f).map((a) => [a.text, a.field]) : [[v, f]],
  );
}

/** `from` and `sender` take one mailbox (RFC 5322 section 3.6.2 as we support it). */
function single(value: AddressInput, field: string, acc: Resolved): NamedAddress {
  if (Array.isArray(value)) throw new SmtpMessageError(`${field} takes one address`, field);
  const items = list(value, field);
  if (items.length > 1) {
    throw new SmtpMessageError(
      `${field} takes one address, and "${String(value)}" holds ${items.length}` +
        (field === 'from'
          ? ' (several authors would need a Sender field, RFC 5322 section 3.6.2, which is not supported; put the others in replyTo or cc)'
          : ''),
      field,
    );
  }
  const [[input, f]] = items as [[AddressInput, string]];
  return resolveOne(input, f, acc);
}

interface Resolved {
  mailboxes: ResolvedAddress[];
}

function resolveList(
  value: AddressInput | AddressInput[] | undefined,
  field: string,
  acc: Resolved,
): NamedAddress[] {
  return list(value, field).map(([input, f]) => resolveOne(input, f, acc));
}

function resolveOne(input: AddressInput, field: string, acc: Resolved): NamedAddress {
  const r = resolveAddress(parseAddress(input, field), field);
  acc.mailboxes.push(r);
  return { name: r.name, address: r.address };
}

function addressField(name: string, mailboxes: readonly NamedAddress[], utf8: boolean): string {
  const w = new FieldWriter(name);
  writeAddressList(w, mailboxes, utf8);
  return w.toString();
}

function idListField(name: string, ids: readonly string[]): string {
  const w = new FieldWriter(name);
  for (const id of ids) w.word(id);
  return w.toString();
}

/** The envelope key of an address: local part as is (RFC 5321 section 2.4), domain case-folded. */
function envelopeKey(address: string): string {
  const at = address.lastIndexOf('@');
  return `${address.slice(0, at)}@${address.slice(at + 1).toLowerCase()}`;
}

/**
 * Attachment content as octets, or base64 text checked as strictly as `base64Decode` would and
 * re-wrapped into the 76-character lines it is sent in (one pass; no decode and encode again).
 */
function attachmentContent(content: unknown, field: string): Uint8Array | Base64Content {
  if (content instanceof Uint8Array) return content;
  if (typeof content !== 'string') {
    throw new SmtpMessageError(`${field} must be a Uint8Array or a base64 string`, field);
  }
  try {
    return { text: content, lines: base64Rewrap(content) };
  } catch (cause) {
    throw new SmtpMessageError(`${field} is not valid base64`, field, { cause });
  }
}

function contentIdFor(value: string | undefined, field: string): string | null {
  if (value === undefined) return null;
  assertHeaderText(value, field);
  const t = value.trim();
  const id = t.startsWith('<') && t.endsWith('>') ? t : `<${t}>`;
  // RFC 2045 section 7: Content-ID is a msg-id; accept any printable ASCII id without spaces.
  if (!/^<[\x21-\x3b\x3d\x3f-\x7e]+>$/.test(id) || id.length > 250) {
    throw new SmtpMessageError(`${field}: "${value}" is not a valid content id`, field);
  }
  return id;
}

function withoutNulls<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null)) as T;
}

function attachmentSpec(attachment: AttachmentInput, i: number, utf8: boolean): AttachmentSpec {
  const field = `attachments[${i}]`;
  if (typeof attachment !== 'object' || attachment === null) {
    throw new SmtpMessageError(`${field} must be an object`, field);
  }
  const a = withoutNulls(attachment);
  assertHeaderText(a.filename, `${field}.filename`);
  const filename = a.filename.trim();
  if (filename.length === 0 || filename.length > 255) {
    throw new SmtpMessageError(`${field}.filename must be 1 to 255 characters`, `${field}.filename`);
  }
  const disposition = a.disposition ?? 'attachment';
  if (disposition !== 'attachment' && disposition !== 'inline') {
    throw new SmtpMessageError(
      `${field}.disposition must be "attachment" or "inline"`,
      `${field}.disposition`,
    );
  }
  const contentType = a.contentType === undefined ? mediaTypeForFilename(filename) : a.contentType;
  return {
    filename,
    content: attachmentContent(a.content, `${field}.content`),
    contentType,
    contentId: contentIdFor(a.contentId, `${field}.contentId`),
    disposition,
    field,
    utf8,
  };
}

/** Build the body entity: text/html alternatives, related inline parts, mixed attachments. */
function bodyEntity(input: MessageInput, utf8: boolean): Entity {
  if (input.text !== undefined) assertString(input.text, 'text');
  if (input.html !== undefined) assertString(input.html, 'html');
  const attachments = input.attachments ?? [];
  if (!Array.isArray(attachments)) throw new SmtpMessageError('attachments must be an array', 'attachments');
  const specs = attachments.map((a, i) => attachmentSpec(a, i, utf8));
  const hasText = input.text !== undefined;
  const hasHtml = input.html !== undefined;
  // RFC 2387: inline parts with a Content-ID go beside the HTML that references them.
  const related = hasHtml ? specs.filter((s) => s.disposition === 'inline' && s.contentId !== null) : [];
  const mixed = specs.filter((s) => !related.includes(s));
  const top = specs.length === 0 && !(hasText && hasHtml);

  let html: Entity | undefined;
  if (input.html !== undefined) {
    html = textEntity('html', input.html, top);
    if (related.length > 0) {
      html = multipartEntity('related', [html, ...related.map(attachmentEntity)], [['type', 'text/html']]);
    }
  }
  const text = input.text === undefined ? undefined : textEntity('plain', input.text, top);
  // RFC 2046 section 5.1.4: alternatives in increasing faithfulness, plain text first.
  let main: Entity | undefined =
    text !== undefined && html !== undefined ? multipartEntity('alternative', [text, html]) : (text ?? html);
  if (mixed.length > 0) {
    main = multipartEntity('mixed', [...(main === undefined ? [] : [main]), ...mixed.map(attachmentEntity)]);
  }
  return main ?? textEntity('plain', '', true);
}

/**
 * Compose a message. Throws `SmtpMessageError` whose `field` names the offending input
 * (`to[1]`, `headers.X-Foo`, `attachments[0].content`, …) on any invalid input.
 */
export function composeMessage(message: MessageInput): ComposedMessage {
  if (typeof message !== 'object' || message === null)
    throw new SmtpMessageError('the message must be an object');
  // JSON callers send `null` for absent optional fields: treat it as absent.
  const input = withoutNulls(message);
  const acc: Resolved = { mailboxes: [] };
  if (input.from === undefined || input.from === null) throw new SmtpMessageError('from is required', 'from');
  const from = single(input.from, 'from', acc);
  const sender = input.sender === undefined ? undefined : single(input.sender, 'sender', acc);
  const replyTo = resolveList(input.replyTo, 'replyTo', acc);
  const to = resolveList(input.to, 'to', acc);
  const cc = resolveList(input.cc, 'cc', acc);
  const bcc = resolveList(input.bcc, 'bcc', acc);
  // An address needs SMTPUTF8 (RFC 6531): the header may then carry raw UTF-8 (RFC 6532).
  const utf8 = acc.mailboxes.some((m) => m.smtputf8);

  // Custom headers first, so the identity fields they may carry are known.
  const custom: string[] = [];
  const identity = new Map<string, { value: string; field: string }>();
  const headers = input.headers ?? {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new SmtpMessageError('headers must be an object of strings', 'headers');
  }
  for (const [name, value] of Object.entries(headers)) {
    const field = `headers.${name}`;
    if (!isFieldName(name)) {
      throw new SmtpMessageError(
        `${field}: "${name}" is not a valid header field name (RFC 5322 section 3.6.8)`,
        field,
      );
    }
    assertHeaderText(value, field);
    const key = name.toLowerCase();
    if (COMPOSER_HEADERS.has(key)) {
      throw new SmtpMessageError(
        `${field}: ${name} is written by the composer; use the message fields instead`,
        field,
      );
    }
    if (IDENTITY.has(key)) {
      if (identity.has(key)) throw new SmtpMessageError(`${field}: ${name} is given twice`, field);
      identity.set(key, { value, field });
      continue;
    }
    const w = new FieldWriter(name);
    writeUnstructured(w, value, utf8);
    custom.push(w.toString());
  }
  const fromHeader = (
    key: string,
    dedicated: unknown,
    dedicatedName: string,
  ): { value: string; field: string } | undefined => {
    const h = identity.get(key);
    if (h !== undefined && dedicated !== undefined) {
      throw new SmtpMessageError(`${h.field} conflicts with ${dedicatedName}; give only one`, h.field);
    }
    return h;
  };

  // Date (RFC 5322 section 3.6.1): the `date` field, a valid `headers.Date`, or now.
  const dateHeader = fromHeader('date', input.date, 'date');
  const date =
    dateHeader !== undefined
      ? checkDateText(dateHeader.value, dateHeader.field)
      : formatDate(input.date ?? new Date());

  // Message-ID (RFC 5322 section 3.6.4): given, or random on the From (or chosen) domain.
  const idHeader = fromHeader('message-id', input.messageId, 'messageId');
  let idDomain: string;
  if (input.messageIdDomain !== undefined) {
    assertHeaderText(input.messageIdDomain, 'messageIdDomain');
    const d = input.messageIdDomain.trim();
    idDomain = /^\[[\x21-\x5a\x5e-\x7e]+\]$/.test(d) ? d : domainToAscii(d, 'messageIdDomain');
  } else {
    const domain = splitAddrSpec(from.address, 'from').domain;
    idDomain = domain.startsWith('[') ? domain : domainToAscii(domain, 'from');
  }
  const messageId =
    idHeader !== undefined
      ? messageIdFor(idHeader.value, idDomain, idHeader.field)
      : messageIdFor(input.messageId, idDomain, 'messageId');
  const inReplyHeader = fromHeader('in-reply-to', input.inReplyTo, 'inReplyTo');
  const inReplyTo =
    inReplyHeader !== undefined
      ? msgIdList(inReplyHeader.value, inReplyHeader.field)
      : input.inReplyTo === undefined
        ? []
        : msgIdList(input.inReplyTo, 'inReplyTo');
  const refsHeader = fromHeader('references', input.references, 'references');
  const references =
    refsHeader !== undefined
      ? msgIdList(refsHeader.value, refsHeader.field)
      : input.references === undefined
        ? []
        : msgIdList(input.references, 'references');

  if (input.subject !== undefined) assertHeaderText(input.subject, 'subject');
  const body = bodyEntity(input, utf8);

  // RFC 5322 section 3.6: the origination date and originator fields are required; the order
  // below is the customary one. Bcc is deliberately never written (section 3.6.3 allows it).
  const fields: string[] = [];
  fields.push(`Date: ${date}\r\n`);
  fields.push(addressField('From', [from], utf8));
  if (sender !== undefined) fields.push(addressField('Sender', [sender], utf8));
  if (replyTo.length > 0) fields.push(addressField('Reply-To', replyTo, utf8));
  if (to.length > 0) fields.push(addressField('To', to, utf8));
  if (cc.length > 0) fields.push(addressField('Cc', cc, utf8));
  if (input.subject !== undefined) {
    const w = new FieldWriter('Subject');
    writeUnstructured(w, input.subject, utf8);
    fields.push(w.toString());
  }
  fields.push(`Message-ID: ${messageId}\r\n`);
  if (inReplyTo.length > 0) fields.push(idListField('In-Reply-To', inReplyTo));
  if (references.length > 0) fields.push(idListField('References', references));
  fields.push(...custom);
  fields.push('MIME-Version: 1.0\r\n'); // RFC 2045 section 4
  fields.push(...body.headers);

  const head = utf8Encode(`${fields.join('')}\r\n`);
  const bytes = concatBytes([head, ...body.body.map((c) => (typeof c === 'string' ? utf8Encode(c) : c))]);
  const eightBit = checkComposed(bytes, head.length);

  const seen = new Set<string>();
  const rcpt: string[] = [];
  for (const mb of [...to, ...cc, ...bcc]) {
    const key = envelopeKey(mb.address);
    if (seen.has(key)) continue;
    seen.add(key);
    rcpt.push(mb.address);
  }
  return {
    bytes,
    messageId,
    envelope: { from: (sender ?? from).address, to: rcpt },
    smtputf8: utf8,
    eightBit,
  };
}

/**
 * Last line of defence: every line ends in CRLF, no bare CR or LF, no NUL, no line longer than
 * 998 octets (RFC 5322 section 2.1.1, 2.3). A failure here is a bug in the composer. Returns
 * whether the body (from `bodyStart`) holds an octet above 127.
 *
 * Speed: four octets at a time (`skipPlainWords`, as in `DotWriter`): a word whose octets are all
 * in 14..127 holds no CR, LF, NUL or 8-bit octet and is skipped. Only the octets of the other
 * words are looked at one by one.
 */
function checkComposed(bytes: Uint8Array, bodyStart: number): boolean {
  const len = bytes.length;
  const base = bytes.byteOffset;
  const words = wordView(bytes);
  let eightBit = false;
  let lineStart = 0;
  let i = 0;
  while (i < len) {
    if (((base + i) & 3) === 0) {
      i = skipPlainWords(words, i);
      if (i >= len) break;
    }
    const b = bytes[i]!;
    if (b === 0x0d) {
      if (bytes[i + 1] !== 0x0a) throw new SmtpMessageError('internal: bare CR in the composed message');
      if (i - lineStart > 998) throw new SmtpMessageError('internal: a composed line exceeds 998 octets');
      i += 2;
      lineStart = i;
    } else if (b === 0x0a) {
      throw new SmtpMessageError('internal: bare LF in the composed message');
    } else if (b === 0) {
      throw new SmtpMessageError('internal: NUL in the composed message');
    } else {
      if (b > 0x7f && i >= bodyStart) eightBit = true;
      i++;
    }
  }
  if (lineStart !== len) throw new SmtpMessageError('internal: the composed message does not end with CRLF');
  return eightBit;
}
