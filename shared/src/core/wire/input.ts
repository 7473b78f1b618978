/**
 * The receive buffer both engines read from. The same buffered octets are read as command or
 * reply lines, as DATA content, or as raw BDAT chunks (RFC 3030), switching mode at any byte.
 *
 * Chunks are kept as pushed in a queue (only small pushes behind buffered octets are copied,
 * into shared blocks, released when the buffer empties); reading a line that lies inside one
 * chunk returns a view of it, and only a line that spans chunks is copied (bounded by the
 * caller's maximum). Searching for a line end resumes where the last unsuccessful search
 * stopped, so a line arriving one octet at a time costs O(n), not O(n^2).
 *
 * Ownership: `push` keeps a reference to the array; the caller must not modify it afterwards.
 * Arrays returned by the read methods may be views into pushed arrays: treat them as read-only,
 * and copy them (`slice()`) before keeping them past the next `push`, if the pusher reuses
 * its memory.
 */

const CR = 0x0d;
const LF = 0x0a;

export type LineResult = { kind: 'line'; line: Uint8Array } | { kind: 'too-long' };

export interface ReadLineOptions {
  /**
   * Also end a line at a bare LF (a preceding CR is then removed too). Only for lenient peers:
   * SMTP lines end with CRLF (RFC 5321 section 2.3.8), and a server that accepts bare LF as a
   * line end is open to SMTP smuggling.
   */
  allowBareLf?: boolean;
}

export class InputBuffer {
  #chunks: Uint8Array[] = [];
  /** Index of the first live chunk in `#chunks` (avoids O(n) `shift()`). */
  #head = 0;
  /** Octets already consumed from `#chunks[#head]`. */
  #offset = 0;
  #length = 0;
  /** Octets at the front already searched for a line end without success. */
  #scanned = 0;
  /** Dropping a too-long line until its end. */
  #discarding = false;
  /** While discarding: the last dropped octet was CR (a CRLF may span two pushes). */
  #discardCr = false;

  /** Owned block that small pushes are copied into, so many tiny reads do not make many chunks. */
  #tail: Uint8Array | null = null;
  #tailStart = 0;
  #tailFill = 0;
  /** Index in `#chunks` of the view of `#tail`, or -1. */
  #tailIndex = -1;
  /** The `allowBareLf` setting `#scanned` was computed with. */
  #scannedBareLf = false;

  /**
   * Append received octets. Empty arrays are ignored. An array pushed into an empty buffer, or a
   * large one, is kept by reference (see the ownership note above); small arrays arriving
   * behind buffered octets are copied into an owned block, so a line dripping in one octet per
   * read does not become one chunk per octet.
   */
  push(bytes: Uint8Array): void {
    const n = bytes.length;
    if (n === 0) return;
    const empty = this.#length === 0;
    this.#length += n;
    if (n > SMALL_PUSH || empty) {
      // The common case: a whole command line or a piece of message data in one read.
      this.#chunks.push(bytes);
      return;
    }
    const last = this.#chunks.length - 1;
    if (
      this.#tail !== null &&
      this.#tailIndex === last &&
      last >= this.#head &&
      this.#tailFill + n <= this.#tail.length
    ) {
      this.#tail.set(bytes, this.#tailFill);
      this.#tailFill += n;
      this.#chunks[last] = this.#tail.subarray(this.#tailStart, this.#tailFill);
      return;
    }
    if (this.#tail === null || this.#tailFill + n > this.#tail.length) {
      this.#tail = new Uint8Array(TAIL_BLOCK);
      this.#tailFill = 0;
    }
    // Continue in the same block after a large push: earlier views stay valid, as the
    // octets they cover are never written again.
    this.#tailStart = this.#tailFill;
    this.#tail.set(bytes, this.#tailFill);
    this.#tailFill += n;
    this.#chunks.push(this.#tail.subarray(this.#tailStart, this.#tailFill));
    this.#tailIndex = this.#chunks.length - 1;
  }

  /** Octets buffered and not yet read. */
  get length(): number {
    return this.#length;
  }

  /** True while the rest of an over-long line is being dropped (see `readLine`). */
  get discarding(): boolean {
    return this.#discarding;
  }

  /**
   * The next line without its CRLF, `{kind: 'too-long'}` once for a line longer than
   * `maxLength` octets (the CRLF counted, as RFC 5321 section 4.5.3.1.4 counts it for the
   * 512-octet command line), or null when no complete line is buffered yet.
   *
   * After `too-long` the buffer drops octets through the end of that line, whatever its
   * length, so memory stays bounded by `maxLength` plus one pushed chunk. Bare CR and bare LF
   * inside a line are returned as part of it; the caller decides whether to refuse them.
   */
  readLine(maxLength: number, options: ReadLineOptions = {}): LineResult | null {
    const bareLf = options.allowBareLf === true;
    if (bareLf !== this.#scannedBareLf) {
      this.#scanned = 0;
      this.#scannedBareLf = bareLf;
    }
    if (this.#discarding && !this.#discard(bareLf)) return null;
    // Find the first LF that ends a line, starting after what earlier calls already searched.
    let from = this.#scanned;
    for (;;) {
      const lf = this.indexOf(LF, from);
      if (lf < 0) break;
      const crlf = lf > 0 && this.#byteAt(lf - 1) === CR;
      if (crlf || bareLf) {
        const end = lf + 1;
        this.#scanned = 0;
        if (end > maxLength) {
          this.skip(end);
          return { kind: 'too-long' };
        }
        const line = this.#take(crlf ? lf - 1 : lf);
        this.skip(end);
        return { kind: 'line', line };
      }
      from = lf + 1;
    }
    // No line end yet. A CR in the last octet may still pair with an LF in the next push.
    this.#scanned = this.#length;
    if (this.#length >= maxLength) {
      // Even a CRLF arriving next would end the line beyond maxLength.
      this.#discarding = true;
      this.#discardCr = false;
      this.#discard(bareLf);
      return { kind: 'too-long' };
    }
    return null;
  }

  /**
   * Drop octets of an over-long line. Returns true when its end was found (and the buffer is
   * back in normal line mode), false when everything buffered was dropped.
   */
  #discard(bareLf: boolean): boolean {
    if (this.#length === 0) return false;
    if (this.#discardCr && this.#byteAt(0) === LF) {
      this.skip(1);
      this.#endDiscard();
      return true;
    }
    let from = 0;
    for (;;) {
      const lf = this.indexOf(LF, from);
      if (lf < 0) break;
      if (bareLf || (lf > 0 && this.#byteAt(lf - 1) === CR)) {
        this.skip(lf + 1);
        this.#endDiscard();
        return true;
      }
      from = lf + 1;
    }
    this.#discardCr = this.#byteAt(this.#length - 1) === CR;
    this.skip(this.#length);
    return false;
  }

  #endDiscard(): void {
    this.#discarding = false;
    this.#discardCr = false;
    this.#scanned = 0;
  }

  /**
   * Up to `max` buffered octets (at least one), or null when the buffer is empty. Returns a
   * view of the first chunk without copying, so it may return fewer than `max` even when more
   * is buffered: call again.
   */
  readBytes(max: number): Uint8Array | null {
    const out = this.peekBytes(max);
    if (out !== null) this.skip(out.length);
    return out;
  }

  /**
   * Like `readBytes` without consuming: a view of up to `max` octets of the first chunk (at
   * least one), or null when the buffer is empty. Never copies.
   */
  peekBytes(max: number): Uint8Array | null {
    if (this.#length === 0 || max <= 0) return null;
    const chunk = this.#chunks[this.#head]!;
    const n = Math.min(max, chunk.length - this.#offset);
    return chunk.subarray(this.#offset, this.#offset + n);
  }

  /** Exactly `n` octets, or null (consuming nothing) when fewer are buffered. Copies only across chunks. */
  readExactly(n: number): Uint8Array | null {
    if (n > this.#length) return null;
    const out = this.#take(n);
    this.skip(n);
    return out;
  }

  /** A copy-free look at the octet at `index` (0 = next to read), or undefined past the end. */
  peekByte(index = 0): number | undefined {
    if (index < 0 || index >= this.#length) return undefined;
    return this.#byteAt(index);
  }

  /** The first `n` buffered octets (fewer if fewer are buffered) without consuming them. */
  peek(n: number = this.#length): Uint8Array {
    return this.#take(Math.min(n, this.#length));
  }

  /** True when the buffered octets start with `prefix` (false when fewer are buffered). */
  startsWith(prefix: Uint8Array): boolean {
    if (prefix.length > this.#length) return false;
    for (let i = 0; i < prefix.length; i++) if (this.#byteAt(i) !== prefix[i]) return false;
    return true;
  }

  /**
   * Position (from the next octet to read) of the first occurrence of `needle` at or after
   * `from`, or -1. `needle` is one octet or a sequence; a sequence may span chunks.
   */
  indexOf(needle: number | Uint8Array, from = 0): number {
    if (typeof needle !== 'number') return this.#indexOfSequence(needle, from);
    let base = 0;
    for (let c = this.#head; c < this.#chunks.length; c++) {
      const chunk = this.#chunks[c]!;
      const start = c === this.#head ? this.#offset : 0;
      const size = chunk.length - start;
      if (from < base + size) {
        const at = chunk.indexOf(needle, start + Math.max(0, from - base));
        if (at >= 0) return base + at - start;
      }
      base += size;
    }
    return -1;
  }

  #indexOfSequence(needle: Uint8Array, from: number): number {
    if (needle.length === 0) return from <= this.#length ? Math.max(0, from) : -1;
    const first = needle[0]!;
    let at = this.indexOf(first, from);
    while (at >= 0 && at + needle.length <= this.#length) {
      let i = 1;
      while (i < needle.length && this.#byteAt(at + i) === needle[i]) i++;
      if (i === needle.length) return at;
      at = this.indexOf(first, at + 1);
    }
    return -1;
  }

  /** Drop `n` octets (at most what is buffered) and return how many were dropped. */
  skip(n: number): number {
    let left = Math.min(Math.max(0, n), this.#length);
    const dropped = left;
    this.#length -= left;
    this.#scanned = Math.max(0, this.#scanned - dropped);
    while (left > 0) {
      const chunk = this.#chunks[this.#head]!;
      const avail = chunk.length - this.#offset;
      if (left < avail) {
        this.#offset += left;
        break;
      }
      left -= avail;
      this.#chunks[this.#head] = EMPTY;
      this.#head++;
      this.#offset = 0;
    }
    this.#compact();
    return dropped;
  }

  /** Everything buffered, as one array (a view when it is all in one chunk). */
  takeAll(): Uint8Array {
    const out = this.#take(this.#length);
    this.skip(this.#length);
    return out;
  }

  /**
   * Discard everything buffered and any pending line discard; returns how many octets were
   * dropped. Used when TLS starts: octets received before the handshake must not be read as
   * if they came over TLS (RFC 3207 section 4.2).
   */
  clear(): number {
    const dropped = this.#length;
    this.#chunks = [];
    this.#head = 0;
    this.#offset = 0;
    this.#length = 0;
    this.#scanned = 0;
    this.#discarding = false;
    this.#discardCr = false;
    this.#tailIndex = -1;
    this.#tail = null;
    return dropped;
  }

  #byteAt(index: number): number {
    let i = index + this.#offset;
    for (let c = this.#head; c < this.#chunks.length; c++) {
      const chunk = this.#chunks[c]!;
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
    return -1;
  }

  /** The first `n` octets (n <= length) without consuming them: a view if in one chunk. */
  #take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.#chunks[this.#head]!;
    if (first.length - this.#offset >= n) return first.subarray(this.#offset, this.#offset + n);
    const out = new Uint8Array(n);
    let at = 0;
    for (let c = this.#head; at < n; c++) {
      const chunk = this.#chunks[c]!;
      const start = c === this.#head ? this.#offset : 0;
      const part = chunk.subarray(start, start + Math.min(n - at, chunk.length - start));
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  #compact(): void {
    if (this.#head === this.#chunks.length) {
      // Empty: let go of everything, the copy block too, so an idle connection holds no
      // buffer memory (views handed out earlier keep what they need alive).
      this.#chunks = [];
      this.#head = 0;
      this.#tailIndex = -1;
      this.#tail = null;
    } else if (this.#head >= 64 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#tailIndex = this.#tailIndex >= this.#head ? this.#tailIndex - this.#head : -1;
      this.#head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);
/** Pushes up to this size are copied into an owned block. */
const SMALL_PUSH = 1024;
const TAIL_BLOCK = 8192;
