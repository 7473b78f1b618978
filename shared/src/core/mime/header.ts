/**
 * Header fields: folding (RFC 5322 section 2.2.3), RFC 2047 encoded-words, unstructured text
 * (RFC 5322 section 3.2.5 / 3.6.5) and display-name phrases (RFC 5322 section 3.2.5, RFC 2047
 * section 5(3)).
 *
 * A field is written as a sequence of words separated by single spaces; each space is a place
 * where the field may fold (CRLF is inserted before it, so unfolding restores the exact value).
 * Lines stay within 78 characters whenever a single word allows it, and never exceed 998
 * octets (RFC 5322 section 2.1.1): no raw word is longer than `MAX_RAW_WORD`, anything longer
 * is carried in encoded-words, which are at most 75 characters (RFC 2047 section 2).
 */
import { utf8Encode } from '../encoding/index.ts';
import { SmtpMessageError } from '../errors.ts';

/** Preferred line length, without CRLF (RFC 5322 section 2.1.1). */
export const LINE_SOFT_LIMIT = 78;
/** The longest raw (unencoded) word placed in a header; with a name of at most 76 chars the
 * longest possible line is 76 + 2 + 900 + 2, far below 998. */
export const MAX_RAW_WORD = 900;
/** The longest field name we accept (RFC 5322 sets none; this keeps lines short and bounded). */
export const MAX_FIELD_NAME = 76;
/** RFC 2047 section 2: an encoded-word is at most 75 characters. */
const MAX_ENCODED_WORD = 75;
const PREFIX = '=?utf-8?';
// `=?utf-8?X?` + `?=`
const OVERHEAD = PREFIX.length + 2 + 2;

/** RFC 5322 section 3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126. */
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

export function isFieldName(name: string): boolean {
  return name.length <= MAX_FIELD_NAME && FIELD_NAME.test(name);
}

/** Builds one header field line by line. */
export class FieldWriter {
  readonly #lines: string[] = [];
  #line: string;
  #words = 0;

  constructor(name: string) {
    if (!isFieldName(name))
      throw new SmtpMessageError(`invalid header field name: ${name}`, `headers.${name}`);
    this.#line = `${name}:`;
  }

  /** Characters left on the current line after a separating space, within 78. */
  get room(): number {
    return LINE_SOFT_LIMIT - this.#line.length - 1;
  }

  /**
   * Append `text` after one space, folding before it when it does not fit. The first word
   * always stays on the field-name line (a fold right after the colon helps nobody).
   */
  word(text: string): void {
    if (this.#words > 0 && this.#line.length + 1 + text.length > LINE_SOFT_LIMIT) {
      this.#lines.push(this.#line);
      this.#line = ` ${text}`;
    } else {
      this.#line += ` ${text}`;
    }
    this.#words++;
  }

  /** Append `text` to the last word with no space in between (e.g. the comma of a list). */
  append(text: string): void {
    this.#line += text;
  }

  /** The field, each line ending in CRLF. */
  toString(): string {
    return [...this.#lines, this.#line].join('\r\n') + '\r\n';
  }
}

// RFC 2047 section 5(3): in a phrase, Q-encoded text may contain only letters, digits and
// "!" "*" "+" "-" "/" (plus "_" for space). Using that strictest set everywhere makes every
// encoded-word valid in any position.
function isQSafe(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) ||
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    byte === 0x21 ||
    byte === 0x2a ||
    byte === 0x2b ||
    byte === 0x2d ||
    byte === 0x2f
  );
}

const HEX = '0123456789ABCDEF';

function qEncode(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x20) out += '_';
    else if (isQSafe(b)) out += String.fromCharCode(b);
    else out += `=${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

function qLength(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) n += b === 0x20 || isQSafe(b) ? 1 : 3;
  return n;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function bEncode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!;
    const b = bytes[i + 1];
    const c = bytes[i + 2];
    const n = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    out += B64[n >>> 18]! + B64[(n >>> 12) & 63]!;
    out += b === undefined ? '=' : B64[(n >>> 6) & 63]!;
    out += c === undefined ? '=' : B64[n & 63]!;
  }
  return out;
}

function bLength(byteCount: number): number {
  return 4 * Math.ceil(byteCount / 3);
}

/**
 * `text` as encoded-words (RFC 2047 sections 2-5), produced lazily: `budget()` is asked before
 * each word for the longest word that fits (at most 75 characters, RFC 2047 section 2), so the
 * caller can size each word to the room left on its line. Words are cut only between code
 * points, so a UTF-8 sequence is never split (RFC 2047 section 5, last paragraph). B or Q is
 * chosen once for the text: Q unless it is more than a third longer than B, so mostly-Latin
 * text stays readable (`Caf=C3=A9`) while CJK and emoji take the compact B form.
 */
export function* encodedWords(text: string, budget: () => number): Generator<string> {
  const all = utf8Encode(text);
  const useQ = qLength(all) * 3 <= bLength(all.length) * 4;
  const mode = useQ ? 'Q' : 'B';
  const chars = Array.from(text);
  let i = 0;
  while (i < chars.length) {
    const payload = Math.min(MAX_ENCODED_WORD, budget()) - OVERHEAD;
    const taken: number[] = [];
    let qSize = 0;
    let j = i;
    while (j < chars.length) {
      const bytes = utf8Encode(chars[j]!);
      const encodedLen = useQ ? qSize + qLength(bytes) : bLength(taken.length + bytes.length);
      if (encodedLen > payload && j > i) break;
      for (const b of bytes) taken.push(b);
      qSize += useQ ? qLength(bytes) : 0;
      j++;
    }
    const chunk = Uint8Array.from(taken);
    yield `${PREFIX}${mode}?${useQ ? qEncode(chunk) : bEncode(chunk)}?=`;
    i = j;
  }
}

/**
 * Write `text` as encoded-words into a field, each filling the room left on its line (or a
 * whole new line). Adjacent encoded-words are separated by folding whitespace, which decoders
 * drop (RFC 2047 section 6.2), so the run decodes to exactly `text`.
 */
export function writeEncodedWords(writer: FieldWriter, text: string): void {
  const budget = (): number => {
    const room = writer.room;
    return room >= OVERHEAD + 12 ? room : MAX_ENCODED_WORD;
  };
  for (const word of encodedWords(text, budget)) writer.word(word);
}

// Something a decoder would take for an encoded-word: such text must itself be encoded so it
// round-trips as the literal characters (RFC 2047 section 6.2).
const LOOKS_ENCODED = /=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=/;

/**
 * Whether one space-free word can appear raw: printable ASCII (plus, in an SMTPUTF8 message,
 * non-ASCII characters other than C1 controls and Unicode spaces, RFC 6532 section
 * 3.2), at most `MAX_RAW_WORD` octets (RFC 6532 section 3.4 counts octets), not like an
 * encoded-word.
 */
const UNICODE_SPACE = /[\s\u0085\u180e\u200b-\u200d\u2060\ufeff]/u;

function isRawWord(word: string, utf8: boolean): boolean {
  if (word.length === 0 || word.length > MAX_RAW_WORD) return false;
  let ascii = true;
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
    if (c > 0x7f) {
      if (!utf8 || c <= 0x9f) return false;
      ascii = false;
    }
  }
  // Unicode spaces (NBSP, U+3000, line/paragraph separators…) are trimmed or split on by
  // readers: keep them inside encoded-words.
  if (!ascii && (UNICODE_SPACE.test(word) || utf8Encode(word).length > MAX_RAW_WORD)) return false;
  return !LOOKS_ENCODED.test(word);
}

/**
 * Words of `text` when it is a plain sequence of raw words separated by single spaces (no
 * leading, trailing or repeated whitespace, no tabs), else null.
 */
function simpleWords(text: string): string[] | null {
  const words = text.split(' ');
  for (const w of words) if (w.length === 0 || /[\t]/.test(w)) return null;
  return words;
}

/**
 * Unstructured text (RFC 5322 section 3.2.5), e.g. Subject: raw words stay raw, runs of words
 * that need encoding (non-ASCII, too long, or looking like an encoded-word) become
 * encoded-words. Text whose whitespace would not survive unfolding (leading, trailing, repeated
 * spaces, tabs) is encoded whole, so the decoded value is always exactly `text`. With `utf8`
 * (the message needs SMTPUTF8 anyway) non-ASCII words are written as raw UTF-8, since RFC 6532
 * section 3.6 says encoded-words SHOULD NOT be generated in such messages.
 */
export function writeUnstructured(writer: FieldWriter, text: string, utf8 = false): void {
  if (text.length === 0) return;
  const words = simpleWords(text);
  if (words === null) {
    writeEncodedWords(writer, text);
    return;
  }
  let run: string[] = [];
  const flush = (): void => {
    if (run.length > 0) writeEncodedWords(writer, run.join(' '));
    run = [];
  };
  for (const w of words) {
    if (isRawWord(w, utf8)) {
      flush();
      writer.word(w);
    } else {
      run.push(w);
    }
  }
  flush();
}

// RFC 5322 section 3.2.3: atext (RFC 6532 section 3.2 adds non-ASCII; isRawWord vets those).
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\uffff]+$/;

/**
 * A display name as a phrase (RFC 5322 section 3.2.5): atoms when every word is an atom,
 * a quoted-string (section 3.2.4) when it holds specials such as `,` `.` `"`, and
 * encoded-words (RFC 2047 section 5(3)) for anything else (non-ASCII, odd whitespace). With
 * `utf8`, non-ASCII stays raw UTF-8 in atoms and quoted-strings (RFC 6532 sections 3.2, 3.6).
 */
export function writePhrase(writer: FieldWriter, name: string, utf8 = false): void {
  const words = simpleWords(name);
  if (words === null || !words.every((w) => isRawWord(w, utf8))) {
    writeEncodedWords(writer, name);
    return;
  }
  if (words.every((w) => ATEXT.test(w))) {
    for (const w of words) writer.word(w);
    return;
  }
  // Quoted-string, folded at its spaces (the CRLF of FWS inside it is invisible, section 3.2.4).
  const quoted = words.map((w) => w.replace(/["\\]/g, '\\$&'));
  if (quoted.some((w) => utf8Encode(w).length > MAX_RAW_WORD)) {
    writeEncodedWords(writer, name);
    return;
  }
  quoted[0] = `"${quoted[0]}`;
  quoted[quoted.length - 1] = `${quoted[quoted.length - 1]}"`;
  for (const w of quoted) writer.word(w);
}
