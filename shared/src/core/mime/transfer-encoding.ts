/**
 * Content-Transfer-Encodings (RFC 2045 section 6): 7bit for short pure-ASCII text,
 * quoted-printable (section 6.7) for any other text, base64 (section 6.8) for attachments.
 * Every encoder returns ASCII text with CRLF line breaks and lines of at most 76 characters.
 */
import { base64Encode, utf8Encode } from '../encoding/index.ts';

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

const HEX = '0123456789ABCDEF';

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
  const lines = text.split('\r\n');
  const out: string[] = [];
  for (let li = 0; li < lines.length; li++) {
    const bytes = utf8Encode(lines[li]!);
    let line = '';
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      // With softEnd the last line is followed by a soft break `=`, so its last octet is not at the end.
      const atLineEnd = i === bytes.length - 1 && !(softEnd && li === lines.length - 1);
      let enc: string;
      if ((b === 0x20 || b === 0x09) && atLineEnd) enc = `=${HEX[b >> 4]}${HEX[b & 15]}`;
      else if (line.length === 0 && (b === 0x2e || (b === 0x46 && startsWithFrom(bytes, i))))
        enc = `=${HEX[b >> 4]}${HEX[b & 15]}`;
      else if ((b >= 0x21 && b <= 0x7e && b !== 0x3d) || b === 0x20 || b === 0x09)
        enc = String.fromCharCode(b);
      else enc = `=${HEX[b >> 4]}${HEX[b & 15]}`;
      // Keep room for the soft-break `=` unless this is the last octet of the line.
      const limit = atLineEnd ? MAX_ENCODED_LINE : MAX_ENCODED_LINE - 1;
      if (line.length + enc.length > limit) {
        out.push(`${line}=`);
        line = '';
        // A character moved to the start of a new line may now need protecting.
        if (b === 0x2e || (b === 0x46 && startsWithFrom(bytes, i))) enc = `=${HEX[b >> 4]}${HEX[b & 15]}`;
      }
      line += enc;
    }
    out.push(line);
  }
  if (softEnd) {
    const last = out[out.length - 1]!;
    if (last === '') out.pop();
    else out[out.length - 1] = `${last}=`;
    out.push('');
  }
  return out.join('\r\n');
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

/** Base64 (RFC 2045 section 6.8) in lines of 76 characters, each ending in CRLF. */
export function base64Lines(bytes: Uint8Array): string {
  const b64 = base64Encode(bytes);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += MAX_ENCODED_LINE) lines.push(b64.slice(i, i + MAX_ENCODED_LINE));
  return lines.length === 0 ? '' : lines.join('\r\n') + '\r\n';
}
