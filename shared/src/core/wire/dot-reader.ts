/**
 * Incoming DATA, server side: find the end of the mail data and undo dot-stuffing, streaming,
 * for any split of the input into chunks.
 *
 * RFC 5321 section 4.1.1.4: the mail data ends with the sequence `<CRLF>.<CRLF>`, where the
 * first CRLF may be the one that ended the DATA command line (so a message that is only `.<CRLF>`
 * is empty). RFC 5321 section 4.5.2: a line starting with `.` followed by other characters has
 * that first `.` removed.
 *
 * Only a real CRLF starts a line here. `<LF>.<LF>`, `<CR>.<CR>`, `<LF>.<CRLF>` and every other
 * variant never end the data (they are how SMTP smuggling attacks work: a receiver that ends DATA
 * on them reads the rest of the message as commands). RFC 5321 section 2.3.8 forbids bare CR and
 * bare LF in SMTP text; the reader reports them (`bareCr`, `bareLf`) and, with
 * `bareLineEndings: 'normalize'`, turns each into CRLF in its output. In both modes the end is
 * found only at a real `<CRLF>.<CRLF>`. A line that begins after a bare LF is not a new line for
 * dot-unstuffing either: its leading dot is kept.
 *
 * Memory: each `push` allocates at most `2 * input.length + 2` octets and the reader keeps three
 * integers of state between calls.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** Where the reader stands between two octets. */
const LINE_START = 0; // just after a CRLF (or at the very start of the data)
const DOT_SEEN = 1; // line start, then '.'
const DOT_CR = 2; // line start, then '.', CR
const TEXT = 3; // inside a line
const CR_SEEN = 4; // inside a line, after a CR not yet known to be part of CRLF
const DONE = 5; // the end sequence has been consumed

export interface DotReaderOptions {
  /** `keep` (default): pass bare CR / LF through unchanged and report them. `normalize`: output CRLF for each. */
  bareLineEndings?: 'keep' | 'normalize';
}

export interface DotReaderResult {
  /** Message octets produced from this input (unstuffed, possibly normalized). May be empty. */
  readonly data: Uint8Array;
  /** Input octets used. Less than `input.length` only when `done`: the rest follows the data (next command). */
  readonly consumed: number;
  /** The terminating `<CRLF>.<CRLF>` has been read; the message is complete. */
  readonly done: boolean;
}

export class DotReader {
  readonly #normalize: boolean;
  #state = LINE_START;
  #lineLength = 0;
  /** Message octets output so far. */
  bytes = 0;
  /** A CR not followed by LF was seen. */
  bareCr = false;
  /** An LF not preceded by CR was seen. */
  bareLf = false;
  /**
   * The longest line seen, in octets including its line ending (after unstuffing, as RFC 5321
   * section 4.5.3.1.6 counts it: 1000 including CRLF is the minimum a server must accept).
   */
  longestLine = 0;

  constructor(options: DotReaderOptions = {}) {
    this.#normalize = options.bareLineEndings === 'normalize';
  }

  /** True once the end of the data has been read. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** Feed received octets. After `done`, returns `{consumed: 0, done: true}` and reads nothing. */
  push(input: Uint8Array): DotReaderResult {
    if (this.#state === DONE) return { data: EMPTY, consumed: 0, done: true };
    const out = new Uint8Array(input.length * (this.#normalize ? 2 : 1) + 2);
    let o = 0;
    let state = this.#state;
    let line = this.#lineLength;
    let i = 0;
    const n = input.length;
    // Emit a bare CR (the CR in `cr` was held back while we waited for a possible LF).
    const bareCr = (): void => {
      this.bareCr = true;
      out[o++] = CR;
      if (this.#normalize) {
        out[o++] = LF;
        // A normalized line break still does not start a line for unstuffing or the end marker.
        this.#endLine(line + 1);
        line = 0;
      } else {
        line++;
      }
    };
    while (i < n) {
      const b = input[i]!;
      switch (state) {
        case LINE_START:
          if (b === DOT) {
            state = DOT_SEEN;
            i++;
            continue;
          }
          state = TEXT;
          continue; // reprocess b as text
        case DOT_SEEN:
          // The '.' at line start is either the end marker (if CRLF follows) or stuffing:
          // in both cases it is not message content (RFC 5321 section 4.5.2).
          if (b === CR) {
            state = DOT_CR;
            i++;
            continue;
          }
          state = TEXT;
          continue;
        case DOT_CR:
          if (b === LF) {
            i++;
            state = DONE;
            this.#state = DONE;
            this.#lineLength = 0;
            this.bytes += o;
            return { data: out.subarray(0, o), consumed: i, done: true };
          }
          // ".<CR>x": the dot was stuffing, the CR is bare; handle x in the CR state.
          state = CR_SEEN;
          continue;
        case TEXT: {
          // Fast path: copy up to the next CR or LF.
          let j = i;
          while (j < n) {
            const c = input[j]!;
            if (c === CR || c === LF) break;
            j++;
          }
          if (j > i) {
            out.set(input.subarray(i, j), o);
            o += j - i;
            line += j - i;
            i = j;
            if (i === n) break;
          }
          const c = input[i]!;
          i++;
          if (c === CR) {
            state = CR_SEEN;
          } else {
            // A bare LF (RFC 5321 section 2.3.8).
            this.bareLf = true;
            if (this.#normalize) out[o++] = CR;
            out[o++] = LF;
            this.#endLine(line + (this.#normalize ? 2 : 1));
            line = 0;
          }
          continue;
        }
        case CR_SEEN:
          if (b === LF) {
            out[o++] = CR;
            out[o++] = LF;
            i++;
            this.#endLine(line + 2);
            line = 0;
            state = LINE_START;
            continue;
          }
          bareCr();
          if (b === CR) {
            i++;
            continue; // stay in CR_SEEN for the new CR
          }
          state = TEXT;
          continue;
      }
    }
    this.#state = state;
    this.#lineLength = line;
    if (line > this.longestLine) this.longestLine = line;
    this.bytes += o;
    return { data: out.subarray(0, o), consumed: n, done: false };
  }

  #endLine(length: number): void {
    if (length > this.longestLine) this.longestLine = length;
  }
}

const EMPTY = new Uint8Array(0);
