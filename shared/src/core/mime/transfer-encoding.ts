/**
 * Content-Transfer-Encodings (RFC 2045 section 6): 7bit for short pure-ASCII text,
 * quoted-printable (section 6.7) for any other text, base64 (section 6.8) for attachments.
 * Every encoder returns ASCII text with CRLF line breaks and lines of at most 76 characters.
 */
import { utf8Encode } from '../encoding/index.ts';

export type TransferEncoding = '7bit' | 'quoted-printable' | 'base64';

/** RFC 2045 section 6.7 (5) and section 6.8: encoded lines are at most 76 characters. */
const MAX_ENCODED_LINE = 76;

/**
 * True when CRLF-normalized `text` can be sent as 7bit (RFC 2045 section 2.7) and needs no
 * protection: printable ASCII and HTAB only, lines of at most 76 characters (so the body
 * stays within the 78 recommended by RFC 5322 section 2.1.1), no trailing whitespace (which
 * transports may strip) and no line starting with "From " (which mbox tools may mangle).
 */
export function isSevenBitSafe(text: string): boolean {
  for (const line of text.split('\r\n')) {
    if (line.length > MAX_ENCODED_LINE) return false;
    if (!/^[\x20-\x7e\t]*$/.test(line)) return false;
    if (/[ \t]$/.test(line) || line.startsWith('From ')) return false;
  }
  return true;
}

const HEX = Uint8Array.from('0123456789ABCDEF', (c) => c.charCodeAt(0));
const ascii = new TextDecoder('latin1');

/** A growable octet buffer for the encoders (far faster than string concatenation). */
class ByteSink {
  buf = new Uint8Array(1024);
  length = 0;

  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  push(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/**
 * Quoted-printable (RFC 2045 section 6.7) of CRLF-normalized text, as UTF-8. Line breaks in the
 * text become hard CRLF breaks (rule 4); other octets are literal when printable and not `=`
 * (rule 2), `=XX` otherwise (rule 1); SP/HTAB before a line break are encoded (rule 3); long
 * lines get soft breaks `=` CRLF so no line exceeds 76 characters (rule 5), never inside an
 * `=XX` triplet. A `.` or `F` (of "From ") at the start of a line is encoded too, so the body
 * survives dot-stuffing bugs and mbox quoting. When `softEnd` is true and the text does not end
 * with a line break, the output ends with a soft break, so it ends in CRLF while decoding to
 * exactly `text`.
 */
export function quotedPrintableEncode(text: string, softEnd = false): string {
  const bytes = utf8Encode(text);
  const out = new ByteSink();
  out.reserve(bytes.length + (bytes.length >> 3) + 16);
  let col = 0; // characters on the current output line
  const softBreak = (): void => {
    out.reserve(3);
    out.buf[out.length++] = 0x3d;
    out.buf[out.length++] = 0x0d;
    out.buf[out.length++] = 0x0a;
    col = 0;
  };
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x0d && bytes[i + 1] === 0x0a) {
      out.reserve(2);
      out.buf[out.length++] = 0x0d;
      out.buf[out.length++] = 0x0a;
      col = 0;
      i++;
      continue;
    }
    const next = bytes[i + 1];
    const lastOfText = i === bytes.length - 1;
    // The last octet of an encoded line: before a hard break, or at the very end (unless a
    // soft break will follow there, with softEnd).
    const atLineEnd = (next === 0x0d && bytes[i + 2] === 0x0a) || (lastOfText && !softEnd);
    const limit = atLineEnd ? MAX_ENCODED_LINE : MAX_ENCODED_LINE - 1;
    let literal = (b >= 0x21 && b <= 0x7e && b !== 0x3d) || ((b === 0x20 || b === 0x09) && !atLineEnd);
    let width = literal ? 1 : 3;
    if (col + width > limit) softBreak();
    if (col === 0 && (b === 0x2e || (b === 0x46 && startsWithFrom(bytes, i)))) {
      literal = false;
      width = 3;
    }
    out.reserve(3);
    if (literal) {
      out.buf[out.length++] = b;
    } else {
      out.buf[out.length++] = 0x3d;
      out.buf[out.length++] = HEX[b >> 4]!;
      out.buf[out.length++] = HEX[b & 15]!;
    }
    col += width;
  }
  const endsWithBreak =
    bytes.length >= 2 && bytes[bytes.length - 2] === 0x0d && bytes[bytes.length - 1] === 0x0a;
  if (softEnd && bytes.length > 0 && !endsWithBreak) softBreak();
  return ascii.decode(out.bytes());
}

function startsWithFrom(bytes: Uint8Array, i: number): boolean {
  return (
    bytes[i] === 0x46 &&
    bytes[i + 1] === 0x72 &&
    bytes[i + 2] === 0x6f &&
    bytes[i + 3] === 0x6d &&
    bytes[i + 4] === 0x20
  );
}

const B64 = Uint8Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', (c) =>
  c.charCodeAt(0),
);
const GROUPS_PER_LINE = MAX_ENCODED_LINE / 4;

/**
 * Base64 (RFC 2045 section 6.8) in lines of 76 characters, each ending in CRLF, written straight
 * into octets (a 3 MB attachment takes milliseconds, and never exists as one big string).
 */
export function base64Lines(bytes: Uint8Array): Uint8Array {
  const groups = Math.ceil(bytes.length / 3);
  const lines = Math.ceil(groups / GROUPS_PER_LINE);
  const out = new Uint8Array(groups * 4 + lines * 2);
  let o = 0;
  let g = 0;
  const full = bytes.length - (bytes.length % 3);
  for (let i = 0; i < full; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = B64[n >>> 18]!;
    out[o++] = B64[(n >>> 12) & 63]!;
    out[o++] = B64[(n >>> 6) & 63]!;
    out[o++] = B64[n & 63]!;
    if (++g === GROUPS_PER_LINE) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
      g = 0;
    }
  }
  const rest = bytes.length - full;
  if (rest > 0) {
    const n = (bytes[full]! << 16) | (rest === 2 ? bytes[full + 1]! << 8 : 0);
    out[o++] = B64[n >>> 18]!;
    out[o++] = B64[(n >>> 12) & 63]!;
    out[o++] = rest === 2 ? B64[(n >>> 6) & 63]! : 0x3d;
    out[o++] = 0x3d;
    g++;
  }
  if (g > 0) {
    out[o++] = 0x0d;
    out[o++] = 0x0a;
  }
  return out;
}
