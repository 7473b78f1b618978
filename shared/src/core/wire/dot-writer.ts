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
 * Speed: the writer reads four octets at a time and looks at single octets only where a word
 * holds NUL, CR, LF, an 8-bit octet (or TAB and the other controls below 14); the state lives in
 * locals during a chunk. A chunk that needs no change (CRLF lines, no line starting with `.`, the
 * usual case) is returned as is, without a copy; otherwise the unchanged runs are copied with
 * `set` into one new buffer, around the few octets that are inserted. The returned bytes may therefore share memory with the input: do
 * not modify the input until the output has been used.
 */
import { skipPlainWords, wordView } from '../encoding/bytes.ts';
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
  /**
   * The last octet written out was a CR that ended a line. If the next input octet is LF it is
   * that CR's LF (a CRLF split between chunks); anything else means the CR was bare and still
   * owes its LF.
   */
  private crEnded = false;
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
  /** Lines that start with `.` (each got one more `.` when dot-stuffing). */
  dotLines = 0;

  constructor(options: DotWriterOptions = {}) {
    this.binary = options.mode === 'binary';
    this.stuff = !this.binary && (options.dotStuff ?? true);
    this.terminate = !this.binary && (options.terminator ?? this.stuff);
    this.maxLine = options.maxLineLength ?? MAX_LINE_OCTETS;
  }

  /**
   * Encode the next chunk. Throws `SmtpMessageError` (field `body`) on a NUL octet or an
   * over-long line; the caller must then abandon the transaction (nothing partial is valid).
   * The result may be `chunk` itself or share its memory (see the module comment).
   */
  write(chunk: Uint8Array): Uint8Array {
    if (this.ended) throw new Error('DotWriter: write after end');
    const len = chunk.length;
    this.bytesIn += len;
    if (this.binary) {
      this.bytesOut += len;
      return chunk;
    }
    if (len === 0) return chunk;

    // The state lives in locals while the chunk is scanned and is written back at the end.
    const max = this.maxLine;
    const stuff = this.stuff;
    let line = this.line;
    let inHeader = this.inHeader;
    let eightBit = this.eightBit;
    let headerEightBit = this.headerEightBit;
    let dotLines = this.dotLines;
    let crEnded = false;
    const out = new Splicer(chunk);

    let i = 0;
    if (this.crEnded) {
      if (chunk[0] === LF)
        i = 1; // the LF of a CRLF split between chunks: that line has ended
      else out.insert(LF, 0); // the previous chunk ended with a bare CR: complete it as CRLF
    }
    // The current line's content in this chunk starts at lineStart; `carry` octets of it came
    // in earlier chunks. Its length at position p is carry + (p - lineStart).
    let carry = this.crEnded ? 0 : this.lineLength;
    let lineStart = i;
    // RFC 5321 section 4.5.2: a line that starts with "." gets one more.
    if (carry === 0 && i < len && chunk[i] === DOT) {
      dotLines++;
      if (stuff) out.insert(DOT, i);
    }

    // Four octets at a time (`skipPlainWords`): a word whose octets are all in 14..127 (no NUL,
    // CR, LF or 8-bit octet) needs nothing.
    const base = chunk.byteOffset;
    const words = wordView(chunk);

    while (i < len) {
      if (((base + i) & 3) === 0) {
        i = skipPlainWords(words, i);
        if (i >= len) break;
      }
      const b = chunk[i]!;
      if (b > 127) {
        eightBit = true;
        if (inHeader) headerEightBit = true;
        i++;
      } else if (b === CR || b === LF) {
        // A line ends at i (CRLF, bare CR or bare LF).
        const lineLength = carry + (i - lineStart);
        if (lineLength > max) throw lineTooLong(line, max);
        // An empty line ends the header section (RFC 5322 section 2.1).
        if (lineLength === 0) inHeader = false;
        if (b === LF) {
          out.insert(CR, i); // bare LF: put a CR before it (RFC 5321 section 2.3.8)
          i++;
        } else if (i + 1 === len) {
          crEnded = true; // an LF may still come at the start of the next chunk
          i++;
        } else if (chunk[i + 1] === LF) {
          i += 2; // CRLF: kept as is
        } else {
          out.insert(LF, i + 1); // bare CR: add its LF (RFC 5321 section 2.3.8)
          i++;
        }
        line++;
        carry = 0;
        lineStart = i;
        if (i < len && chunk[i] === DOT) {
          dotLines++;
          if (stuff) out.insert(DOT, i);
        }
      } else if (b === NUL) {
        // Report what an octet-by-octet reading meets first: the line passing the limit before
        // the NUL, or the NUL.
        if (carry + (i - lineStart) > max) throw lineTooLong(line, max);
        throw nulOctet(line);
      } else {
        i++; // an ordinary octet that shares its word with a special one
      }
    }
    const lineLength = carry + (len - lineStart);
    if (lineLength > max) throw lineTooLong(line, max);

    this.crEnded = crEnded;
    this.lineLength = lineLength;
    this.line = line;
    this.inHeader = inHeader;
    this.eightBit = eightBit;
    this.headerEightBit = headerEightBit;
    this.dotLines = dotLines;
    const result = out.finish();
    this.bytesOut += result.length;
    return result;
  }

  /** Finish the body: complete the last line with CRLF and, for DATA, add `.<CRLF>`. */
  end(): Uint8Array {
    if (this.ended) throw new Error('DotWriter: end called twice');
    this.ended = true;
    if (this.binary) return new Uint8Array(0);
    const out = new Uint8Array(5);
    let n = 0;
    if (this.crEnded) {
      out[n++] = LF; // the body ended with a bare CR, already written out
    } else if (this.lineLength > 0) {
      out[n++] = CR;
      out[n++] = LF;
    }
    this.crEnded = false;
    if (this.terminate) {
      out[n++] = DOT;
      out[n++] = CR;
      out[n++] = LF;
    }
    this.bytesOut += n;
    return out.subarray(0, n);
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

function lineTooLong(line: number, max: number): SmtpMessageError {
  return new SmtpMessageError(
    `line ${line} of the message is longer than ${max} octets (RFC 5321 section 4.5.3.1.6); ` +
      'wrap it or use quoted-printable or base64',
    'body',
  );
}

function nulOctet(line: number): SmtpMessageError {
  return new SmtpMessageError(
    `the message contains a NUL octet on line ${line}; NUL is not allowed in 7bit or 8bit text ` +
      '(RFC 5322 section 3.5); send it base64-encoded or as BINARYMIME',
    'body',
  );
}

/**
 * Builds the output of one `write()`: the input with a few octets inserted. Nothing is copied
 * until the first insertion; then runs of input are copied with `set`.
 */
class Splicer {
  readonly #src: Uint8Array;
  #out: Uint8Array | null = null;
  #n = 0;
  /** Input before this index is already in `#out`. */
  #from = 0;

  constructor(src: Uint8Array) {
    this.#src = src;
  }

  /** Output the input up to `at`, then `octet`. */
  insert(octet: number, at: number): void {
    const run = at - this.#from;
    let out = this.#out;
    if (out === null || out.length < this.#n + run + 1) out = this.#grow(run + 1);
    out.set(this.#src.subarray(this.#from, at), this.#n);
    this.#n += run;
    out[this.#n++] = octet;
    this.#from = at;
  }

  /** The input with every insertion: the input itself when there was none. */
  finish(): Uint8Array {
    const src = this.#src;
    if (this.#out === null) return src;
    const run = src.length - this.#from;
    const out = this.#out.length < this.#n + run ? this.#grow(run) : this.#out;
    out.set(src.subarray(this.#from), this.#n);
    this.#n += run;
    return out.subarray(0, this.#n);
  }

  #grow(need: number): Uint8Array {
    const size = Math.max(this.#n + need, this.#src.length + (this.#src.length >>> 4) + 16, this.#n * 2);
    const next = new Uint8Array(size);
    if (this.#out !== null) next.set(this.#out.subarray(0, this.#n));
    this.#out = next;
    return next;
  }
}
