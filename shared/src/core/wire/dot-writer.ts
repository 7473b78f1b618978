/**
 * Outgoing message bodies: line-ending normalization, dot-stuffing and the line-length limit.
 *
 * `DotWriter` turns arbitrary message bytes, fed chunk by chunk, into what may follow DATA:
 * - bare CR and bare LF become CRLF (RFC 5321 section 2.3.8: only CRLF ends a line; bare CR or LF
 *   are not allowed in SMTP text),
 * - a line starting with `.` gets one more `.` (RFC 5321 section 4.5.2, transparency),
 * - no line may exceed 998 octets before its CRLF (RFC 5321 section 4.5.3.1.6; RFC 5322 section
 *   2.1.1); the duplicated leading dot does not count,
 * - NUL is refused (RFC 5322 section 3.5 and RFC 2045 section 2.7/2.8: not even 8bit data may hold NUL),
 * - `end()` completes a last line without CRLF and appends `.<CRLF>` (RFC 5321 section 4.1.1.4).
 *
 * With `dotStuff: false` and no terminator the same normalization prepares BDAT chunks
 * (RFC 3030 section 2: BDAT data is not dot-stuffed). `mode: 'binary'` passes bytes through
 * untouched for BODY=BINARYMIME (RFC 3030 section 3).
 *
 * The writer also reports what it saw, so a client can pick BODY=8BITMIME and SMTPUTF8:
 * `eightBit` (any octet above 127) and `headerEightBit` (one in the header section, which needs
 * SMTPUTF8 per RFC 6532 section 3 / RFC 6531 section 3.4).
 *
 * Memory: each call allocates at most `2 * chunk.length + 5` bytes; nothing else is retained.
 */
import { SmtpMessageError } from '../errors.ts';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const NUL = 0x00;

/** RFC 5321 section 4.5.3.1.6: 1000 octets per line including CRLF. */
export const MAX_LINE_OCTETS = 998;

export interface DotWriterOptions {
  /** `text` (default): normalize, check and (by default) stuff. `binary`: pass bytes through unchanged. */
  mode?: 'text' | 'binary';
  /** Duplicate a leading dot (DATA). Default true; false for BDAT. */
  dotStuff?: boolean;
  /** Append `.<CRLF>` on `end()`. Default: same as `dotStuff`. */
  terminator?: boolean;
  /** Longest line allowed, in octets without CRLF. Default 998. */
  maxLineLength?: number;
}

export class DotWriter {
  private readonly binary: boolean;
  private readonly stuff: boolean;
  private readonly terminate: boolean;
  private readonly maxLine: number;
  /** Previous byte was CR and we do not yet know whether LF follows. */
  private pendingCr = false;
  private lineLength = 0;
  private line = 1;
  private inHeader = true;
  private ended = false;

  /** Octets given to `write()`. */
  bytesIn = 0;
  /** Octets returned from `write()` and `end()`. */
  bytesOut = 0;
  /** Some octet above 127 was seen. */
  eightBit = false;
  /** Some octet above 127 was seen before the first empty line (the header section). */
  headerEightBit = false;

  constructor(options: DotWriterOptions = {}) {
    this.binary = options.mode === 'binary';
    this.stuff = !this.binary && (options.dotStuff ?? true);
    this.terminate = !this.binary && (options.terminator ?? this.stuff);
    this.maxLine = options.maxLineLength ?? MAX_LINE_OCTETS;
  }

  /**
   * Encode the next chunk. Throws `SmtpMessageError` (field `body`) on a NUL octet or an
   * over-long line; the caller must then abandon the transaction (nothing partial is valid).
   */
  write(chunk: Uint8Array): Uint8Array {
    if (this.ended) throw new Error('DotWriter: write after end');
    this.bytesIn += chunk.length;
    if (this.binary) {
      this.bytesOut += chunk.length;
      return chunk;
    }
    const out = new Uint8Array(chunk.length * 2 + 2);
    let n = 0;
    const max = this.maxLine;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.pendingCr) {
        this.pendingCr = false;
        out[n++] = CR;
        out[n++] = LF;
        this.endLine();
        if (b === LF) continue;
      }
      if (b === CR) {
        this.pendingCr = true;
        continue;
      }
      if (b === LF) {
        out[n++] = CR;
        out[n++] = LF;
        this.endLine();
        continue;
      }
      if (b === NUL) {
        throw new SmtpMessageError(
          `the message contains a NUL octet on line ${this.line}; NUL is not allowed in 7bit or 8bit text ` +
            '(RFC 5322 section 3.5); send it base64-encoded or as BINARYMIME',
          'body',
        );
      }
      if (b === DOT && this.lineLength === 0 && this.stuff) out[n++] = DOT;
      if (b > 127) {
        this.eightBit = true;
        if (this.inHeader) this.headerEightBit = true;
      }
      if (++this.lineLength > max) {
        throw new SmtpMessageError(
          `line ${this.line} of the message is longer than ${max} octets (RFC 5321 section 4.5.3.1.6); ` +
            'wrap it or use quoted-printable or base64',
          'body',
        );
      }
      out[n++] = b;
    }
    this.bytesOut += n;
    return out.subarray(0, n);
  }

  /** Finish the body: complete the last line with CRLF and, for DATA, add `.<CRLF>`. */
  end(): Uint8Array {
    if (this.ended) throw new Error('DotWriter: end called twice');
    this.ended = true;
    if (this.binary) return new Uint8Array(0);
    const out = new Uint8Array(5);
    let n = 0;
    if (this.pendingCr || this.lineLength > 0) {
      out[n++] = CR;
      out[n++] = LF;
    }
    this.pendingCr = false;
    if (this.terminate) {
      out[n++] = DOT;
      out[n++] = CR;
      out[n++] = LF;
    }
    this.bytesOut += n;
    return out.subarray(0, n);
  }

  private endLine(): void {
    if (this.lineLength === 0) this.inHeader = false;
    this.lineLength = 0;
    this.line++;
  }
}

/** Encode a whole in-memory body for DATA (normalized, stuffed, terminated). */
export function dotStuff(body: Uint8Array, options: DotWriterOptions = {}): Uint8Array {
  const w = new DotWriter(options);
  const a = w.write(body);
  const b = w.end();
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
