/**
 * Base64 (RFC 4648 section 4), as SMTP AUTH uses it (RFC 4954 section 4). The decoder is
 * strict: canonical padding, no characters outside the alphabet, no whitespace unless asked,
 * and zero pad bits (RFC 4648 section 3.5), so every byte string has exactly one accepted form.
 */
import { SmtpProtocolError } from '../errors.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/** Encode octets as padded base64 with no line breaks. */
export function base64Encode(bytes: Uint8Array): string {
  const parts: string[] = [];
  let s = '';
  const full = bytes.length - (bytes.length % 3);
  for (let i = 0; i < full; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    s += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + ALPHABET[n & 63]!;
    if (s.length >= 8192) {
      parts.push(s);
      s = '';
    }
  }
  const rest = bytes.length - full;
  if (rest === 1) {
    const n = bytes[full]! << 16;
    s += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[full]! << 16) | (bytes[full + 1]! << 8);
    s += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + '=';
  }
  parts.push(s);
  return parts.join('');
}

export interface Base64DecodeOptions {
  /** Skip SP, HT, CR and LF anywhere in the input (e.g. folded MIME bodies). Default false. */
  allowWhitespace?: boolean;
}

/** Decode strict base64; throws `SmtpProtocolError` on anything but canonical padded base64. */
export function base64Decode(text: string, options: Base64DecodeOptions = {}): Uint8Array {
  const input = options.allowWhitespace === true ? text.replace(/[ \t\r\n]+/g, '') : text;
  if (input.length % 4 !== 0) throw new SmtpProtocolError('invalid base64: length is not a multiple of 4');
  if (input.length === 0) return new Uint8Array(0);
  let pad = 0;
  if (input.charCodeAt(input.length - 1) === 0x3d) pad = input.charCodeAt(input.length - 2) === 0x3d ? 2 : 1;
  const out = new Uint8Array((input.length / 4) * 3 - pad);
  const end = input.length - pad;
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < end; i++) {
    const c = input.charCodeAt(i);
    const v = c < 128 ? DECODE[c]! : -1;
    if (v < 0) throw new SmtpProtocolError(`invalid base64: unexpected character at offset ${i}`);
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  // Leftover bits must be zero: RFC 4648 section 3.5 (canonical encoding).
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) {
    throw new SmtpProtocolError('invalid base64: non-zero pad bits');
  }
  return out;
}
