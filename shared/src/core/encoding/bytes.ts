/**
 * Octet-string helpers for the wire: UTF-8, "latin1" (one char per octet), concatenation,
 * hex, constant-time comparison. Web-standard APIs only (no Buffer), so the core runs in
 * Workers, browsers and Node alike.
 */
import { SmtpMessageError, SmtpProtocolError } from '../errors.ts';

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** UTF-8 encode a string (lone surrogates become U+FFFD, as TextEncoder does). */
export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

export interface Utf8DecodeOptions {
  /** Throw `SmtpProtocolError` on malformed UTF-8 instead of substituting U+FFFD. Default false. */
  fatal?: boolean;
}

/** UTF-8 decode. A leading BOM is kept as U+FEFF (octets on the wire are never silently dropped). */
export function utf8Decode(bytes: Uint8Array, options: Utf8DecodeOptions = {}): string {
  if (options.fatal !== true) return lenientDecoder.decode(bytes);
  try {
    return strictDecoder.decode(bytes);
  } catch (cause) {
    throw new SmtpProtocolError('malformed UTF-8', { cause });
  }
}

/** True when `bytes` is well-formed UTF-8 (RFC 3629). */
export function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    strictDecoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Concatenate byte arrays into one new array (a single part is returned as is, without a copy). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const CHUNK = 0x2000;

/**
 * One char per octet (U+0000..U+00FF). Not `TextDecoder('latin1')`, which is windows-1252 in
 * the WHATWG Encoding standard and remaps 0x80..0x9F.
 */
export function bytesToLatin1(bytes: Uint8Array): string {
  if (bytes.length <= CHUNK) return String.fromCharCode(...bytes);
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) {
    parts.push(String.fromCharCode(...bytes.subarray(i, i + CHUNK)));
  }
  return parts.join('');
}

/** Inverse of `bytesToLatin1`; throws `SmtpMessageError` for a char above U+00FF. */
export function latin1ToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff)
      throw new SmtpMessageError(`character U+${c.toString(16).padStart(4, '0')} is not one octet`);
    out[i] = c;
  }
  return out;
}

/** True when every char of `s` is US-ASCII (U+0000..U+007F). */
export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case hexadecimal, two digits per octet (RFC 2195 uses this form for the CRAM-MD5 digest). */
export function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += HEX[b];
  return s;
}

/**
 * Compare two octet strings in time that depends only on their lengths, never on where they
 * differ. Arrays of different lengths are unequal (their length is not secret).
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * An aligned 32-bit view over a byte array, made once per array, for `skipPlainWords`. `head` is
 * the offset of the first octet on a 4-octet boundary of the underlying buffer.
 */
export interface WordView {
  readonly head: number;
  readonly words: number;
  readonly view: Uint32Array;
}

const NO_WORDS = new Uint32Array(0);

export function wordView(bytes: Uint8Array): WordView {
  const base = bytes.byteOffset;
  const head = (4 - (base & 3)) & 3;
  const words = bytes.length > head ? (bytes.length - head) >>> 2 : 0;
  const view = words > 0 ? new Uint32Array(bytes.buffer, base + head, words) : NO_WORDS;
  return { head, words, view };
}

/**
 * From an aligned offset `i` (`(byteOffset + i) % 4 === 0`), skip whole words whose four octets
 * are all in 14..127 (no NUL, CR, LF or 8-bit octet) and return the offset of the first word that
 * holds another octet (or the end of the words). `((v - 0x0e0e0e0e) | v) & 0x80808080` is non-zero
 * exactly when some octet of v is below 14 or above 127 (a borrow can only start at an octet
 * below 14). Used by the scanners that look only at line ends and 8-bit octets.
 */
export function skipPlainWords(w: WordView, i: number): number {
  const { view, words } = w;
  let k = (i - w.head) >>> 2;
  while (k < words) {
    const v = view[k]!;
    if ((((v - 0x0e0e0e0e) | v) & 0x80808080) !== 0) break;
    k++;
  }
  return w.head + (k << 2);
}
