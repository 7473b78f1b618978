/**
 * MIME entities (RFC 2045 section 2.4): a block of content header fields and an encoded body.
 * Leaves are text parts and attachments; multiparts (RFC 2046 section 5.1) nest them with a
 * random boundary that is checked against everything it encloses.
 */
import { base64Decode } from '../encoding/index.ts';
import { SmtpMessageError } from '../errors.ts';
import { parseMediaType, writeEncodedWordParam, writeParams } from './content-type.ts';
import { FieldWriter } from './header.ts';
import { randomHex } from './identity.ts';
import { isPrintableAscii, normalizeLineBreaks } from './text.ts';
import {
  base64Lines,
  isSevenBitSafe,
  quotedPrintableEncode,
  type TransferEncoding,
} from './transfer-encoding.ts';

export interface Entity {
  /** Folded content header fields (Content-Type first), each ending in CRLF. */
  headers: string[];
  /**
   * The encoded body as chunks: ASCII, CRLF line breaks, lines of at most 76 (base64, QP) or 998
   * characters. Octet chunks hold base64 only, whose alphabet has neither `-` nor `_`, so they
   * can never contain a boundary delimiter and need not be searched.
   */
  body: Array<string | Uint8Array>;
}

function field(name: string, build: (w: FieldWriter) => void): string {
  const w = new FieldWriter(name);
  build(w);
  return w.toString();
}

function simpleField(name: string, value: string): string {
  return field(name, (w) => w.word(value));
}

/**
 * A text/plain or text/html leaf, UTF-8. 7bit when the text is short-lined printable ASCII,
 * quoted-printable otherwise (RFC 2045 section 6.7). With `top` (the entity is the whole
 * message body) the body is made to end in CRLF: QP with a final soft break (decodes to the
 * exact text), or one added line break for 7bit.
 */
export function textEntity(subtype: 'plain' | 'html', text: string, top: boolean): Entity {
  const normalized = normalizeLineBreaks(text);
  const encoding: TransferEncoding = isSevenBitSafe(normalized) ? '7bit' : 'quoted-printable';
  let body: string;
  if (encoding === '7bit') {
    body = top && normalized.length > 0 && !normalized.endsWith('\r\n') ? `${normalized}\r\n` : normalized;
  } else {
    body = quotedPrintableEncode(normalized, top);
  }
  return {
    headers: [
      field('Content-Type', (w) => {
        w.word(`text/${subtype};`);
        w.word('charset=utf-8');
      }),
      simpleField('Content-Transfer-Encoding', encoding),
    ],
    body: [body],
  };
}

/**
 * Attachment content that arrived as base64 text: already checked strictly (`base64Rewrap`) and
 * kept as the body it becomes, base64 in 76-character lines, so it is never decoded and encoded
 * again. `text` is kept for the rare type that needs the octets (message/rfc822).
 */
export interface Base64Content {
  readonly text: string;
  readonly lines: Uint8Array;
}

export interface AttachmentSpec {
  filename: string;
  content: Uint8Array | Base64Content;
  contentType: string;
  contentId: string | null;
  disposition: 'attachment' | 'inline';
  /** The input field, e.g. `attachments[2]`, for errors. */
  field: string;
  /** The message is SMTPUTF8: write the `name` fallback as raw UTF-8 (RFC 6532 section 3.6). */
  utf8?: boolean;
}

/**
 * An attachment leaf: base64 (RFC 2045 section 6.8) with the file name in Content-Disposition
 * (RFC 2183, RFC 2231 for non-ASCII) and a `name` fallback in Content-Type. A
 * `message/rfc822` attachment must be 7-bit text (RFC 2046 section 5.2.1 forbids base64 there).
 */
export function attachmentEntity(spec: AttachmentSpec): Entity {
  const media = parseMediaType(spec.contentType, `${spec.field}.contentType`);
  const typeField = `${spec.field}.contentType`;
  if (media.type === 'multipart') {
    throw new SmtpMessageError(`${typeField}: a multipart type cannot be attached as a leaf`, typeField);
  }
  if (media.params.some(([n]) => n === 'name' || n.startsWith('name*'))) {
    throw new SmtpMessageError(
      `${typeField}: leave out the name parameter; it is taken from filename`,
      typeField,
    );
  }
  let encoding: TransferEncoding = 'base64';
  let body: string | Uint8Array;
  if (media.type === 'message' && (media.subtype === 'rfc822' || media.subtype === 'partial')) {
    const octets =
      spec.content instanceof Uint8Array
        ? spec.content
        : base64Decode(spec.content.text, { allowWhitespace: true });
    body = sevenBitMessage(octets, `${spec.field}.content`);
    encoding = '7bit';
  } else {
    body = spec.content instanceof Uint8Array ? base64Lines(spec.content) : spec.content.lines;
  }
  const ascii = isPrintableAscii(spec.filename);
  const headers = [
    field('Content-Type', (w) => {
      w.word(`${media.type}/${media.subtype}`);
      writeParams(w, media.params);
      if (ascii) writeParams(w, [['name', spec.filename]]);
      else if (spec.utf8 === true) {
        w.append(';');
        w.word(`name="${spec.filename.replace(/["\\]/g, '\\$&')}"`);
      } else writeEncodedWordParam(w, 'name', spec.filename);
    }),
    simpleField('Content-Transfer-Encoding', encoding),
    field('Content-Disposition', (w) => {
      w.word(spec.disposition);
      writeParams(w, [['filename', spec.filename]]);
    }),
  ];
  if (spec.contentId !== null) headers.push(simpleField('Content-ID', spec.contentId));
  return { headers, body: [body] };
}

function sevenBitMessage(content: Uint8Array, field: string): string {
  for (const b of content) {
    if (b === 0 || b > 0x7f) {
      throw new SmtpMessageError(
        `${field}: a message/rfc822 attachment must be 7-bit (RFC 2046 section 5.2.1); attach it as application/octet-stream or message/global`,
        field,
      );
    }
  }
  const text = normalizeLineBreaks(new TextDecoder().decode(content));
  for (const line of text.split('\r\n')) {
    if (line.length > 998) throw new SmtpMessageError(`${field}: a line is longer than 998 octets`, field);
  }
  return text;
}

/** An entity as it appears inside a multipart: headers, blank line, body. */
function serialize(entity: Entity): Array<string | Uint8Array> {
  return [`${entity.headers.join('')}\r\n`, ...entity.body];
}

const MAX_BOUNDARY_TRIES = 8;

/**
 * A multipart entity (RFC 2046 section 5.1.1): `--boundary` CRLF before each part, the CRLF
 * before each delimiter belonging to the delimiter, and a closing `--boundary--` CRLF. The
 * boundary is 36 characters (limit 70), random, made of bchars, and checked not to occur in any
 * enclosed part.
 */
export function multipartEntity(
  subtype: 'mixed' | 'alternative' | 'related',
  parts: Entity[],
  params: Array<[string, string]> = [],
): Entity {
  const texts = parts.map(serialize);
  const searchable = texts.flat().filter((c): c is string => typeof c === 'string');
  let boundary = '';
  for (let attempt = 0; ; attempt++) {
    boundary = `=_smtp-edge_${randomHex(12)}`;
    if (!searchable.some((t) => t.includes(`--${boundary}`))) break;
    if (attempt >= MAX_BOUNDARY_TRIES)
      throw new SmtpMessageError('could not find a boundary absent from the content');
  }
  const chunks: Array<string | Uint8Array> = [];
  for (const t of texts) chunks.push(`--${boundary}\r\n`, ...t, '\r\n');
  chunks.push(`--${boundary}--\r\n`);
  return {
    headers: [
      field('Content-Type', (w) => {
        w.word(`multipart/${subtype}`);
        writeParams(w, [['boundary', boundary], ...params]);
      }),
    ],
    body: chunks,
  };
}
