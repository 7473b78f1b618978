/**
 * Content-Type values (RFC 2045 section 5.1), default types from file extensions, and MIME
 * parameters with RFC 2231 extended values for non-ASCII and long file names.
 */
import { SmtpMessageError } from '../errors.ts';
import { encodedWords, type FieldWriter } from './header.ts';
import { assertHeaderText } from './text.ts';

/** A validated media type with its parameters, names lower-cased. */
export interface MediaType {
  type: string;
  subtype: string;
  params: Array<[string, string]>;
}

// RFC 2045 section 5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>
const TOKEN = "[!#$%&'*+\\-.0-9A-Z^_`a-z{|}~]+";
const TOKEN_RE = new RegExp(`^${TOKEN}$`);
const HEAD = new RegExp(`^(${TOKEN})/(${TOKEN})[ \\t]*`);
const PARAM = new RegExp(
  `^;[ \\t]*(${TOKEN})[ \\t]*=[ \\t]*(?:(${TOKEN})|"((?:[^"\\\\\\x00-\\x1f\\x7f]|\\\\[\\x20-\\x7e])*)")[ \\t]*`,
);

/**
 * Parse and validate `type/subtype *(; attribute=value)` (RFC 2045 section 5.1). Throws
 * `SmtpMessageError` with `field` on anything else.
 */
export function parseMediaType(value: string, field: string): MediaType {
  assertHeaderText(value, field);
  const text = value.trim();
  const head = HEAD.exec(text);
  if (head === null)
    throw new SmtpMessageError(`${field}: "${value}" is not a type/subtype media type`, field);
  let rest = text.slice(head[0].length);
  const params: Array<[string, string]> = [];
  while (rest.length > 0) {
    const m = PARAM.exec(rest);
    if (m === null) throw new SmtpMessageError(`${field}: bad parameter syntax in "${value}"`, field);
    const raw = m[2] ?? m[3]!.replace(/\\(.)/g, '$1');
    params.push([m[1]!.toLowerCase(), raw]);
    rest = rest.slice(m[0].length);
  }
  return { type: head[1]!.toLowerCase(), subtype: head[2]!.toLowerCase(), params };
}

const BY_EXTENSION: Record<string, string> = {
  txt: 'text/plain',
  text: 'text/plain',
  csv: 'text/csv',
  htm: 'text/html',
  html: 'text/html',
  ics: 'text/calendar',
  md: 'text/markdown',
  pdf: 'application/pdf',
  json: 'application/json',
  xml: 'application/xml',
  zip: 'application/zip',
  gz: 'application/gzip',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  ico: 'image/vnd.microsoft.icon',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  mp4: 'video/mp4',
};

/** The media type for a file name's extension, `application/octet-stream` when unknown. */
export function mediaTypeForFilename(filename: string): string {
  const dot = filename.lastIndexOf('.');
  const ext = dot < 0 ? '' : filename.slice(dot + 1).toLowerCase();
  return BY_EXTENSION[ext] ?? 'application/octet-stream';
}

/** A parameter value as a token or quoted-string (RFC 2045 section 5.1, RFC 5322 section 3.2.4). */
function plainParam(name: string, value: string): string {
  return TOKEN_RE.test(value) ? `${name}=${value}` : `${name}="${value.replace(/["\\]/g, '\\$&')}"`;
}

// RFC 2231 section 7: attribute-char := <any (US-ASCII) CHAR except SPACE, CTLs, "*", "'", "%", or tspecials>
const ATTRIBUTE_CHAR = /^[!#$&+\-.0-9A-Z^_`a-z{|}~]$/;
const PERCENT_SEGMENT = 60;

/**
 * Write `; name=value` parameters into a field, one fold point per parameter. Printable ASCII
 * values that fit are written as a token or quoted-string; non-ASCII or long values use
 * RFC 2231 extended syntax with UTF-8 and, when needed, continuations (`name*0*=utf-8''…;
 * name*1*=…`, RFC 2231 sections 3-4), never splitting a `%XX` triplet.
 */
export function writeParams(writer: FieldWriter, params: ReadonlyArray<[string, string]>): void {
  for (const [name, value] of params) {
    writer.append(';');
    const plain = plainParam(name, value);
    if (/^[\x20-\x7e]*$/.test(value) && plain.length <= 76) {
      writer.word(plain);
      continue;
    }
    const segments: string[] = [];
    let seg = '';
    for (const b of new TextEncoder().encode(value)) {
      const ch = String.fromCharCode(b);
      const piece =
        b < 0x80 && ATTRIBUTE_CHAR.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
      if (seg.length + piece.length > PERCENT_SEGMENT) {
        segments.push(seg);
        seg = '';
      }
      seg += piece;
    }
    segments.push(seg);
    if (segments.length === 1) {
      writer.word(`${name}*=utf-8''${segments[0]}`);
      continue;
    }
    segments.forEach((s, i) => {
      if (i > 0) writer.append(';');
      writer.word(`${name}*${i}*=${i === 0 ? "utf-8''" : ''}${s}`);
    });
  }
}

/**
 * The `name="=?utf-8?…?="` fallback many mail clients still read (RFC 2047 encoded-words in a
 * quoted parameter value: not sanctioned by RFC 2047 section 5, but common practice). Written
 * only for non-ASCII names; an ASCII name goes through `writeParams`.
 */
export function writeEncodedWordParam(writer: FieldWriter, name: string, value: string): void {
  writer.append(';');
  const words = [...encodedWords(value, () => 60)];
  words.forEach((w, i) => {
    const first = i === 0 ? `${name}="` : '';
    const last = i === words.length - 1 ? '"' : '';
    writer.word(`${first}${w}${last}`);
  });
}
