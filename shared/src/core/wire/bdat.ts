/**
 * BDAT chunk framing, server side (RFC 3030 section 2, CHUNKING).
 *
 * `BDAT <chunk-size> [LAST]` is followed by exactly chunk-size octets of message data, with no
 * dot-stuffing and no terminator. The size is an unbounded decimal number on the wire, so it is
 * parsed as a bigint: a 2^63 (or 400-digit) size never overflows a Number, and the reader never
 * allocates from it. `BdatChunk` hands out the octets that belong to the chunk as they arrive,
 * so a chunk of any declared size is streamed (or discarded) in pieces of the size received.
 */

export interface BdatCommandArgs {
  readonly kind: 'bdat';
  /** The declared chunk size in octets. */
  readonly size: bigint;
  /** `LAST` was given: this chunk ends the message. */
  readonly last: boolean;
}

export interface BdatArgsError {
  readonly kind: 'error';
}

// RFC 3030 section 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF;
// chunk-size = 1*DIGIT; end-marker = "LAST".
const BDAT_ARGS = /^([0-9]+)(?:[ \t]+(LAST))?$/i;

/** Parse the argument string of a BDAT command (`"1024"`, `"0 LAST"`). Never throws. */
export function parseBdatArgs(args: string): BdatCommandArgs | BdatArgsError {
  const m = BDAT_ARGS.exec(args.trim());
  if (m === null) return { kind: 'error' };
  return { kind: 'bdat', size: BigInt(m[1]!), last: m[2] !== undefined };
}

export interface BdatTakeResult {
  /** The part of the input that belongs to this chunk (a view, no copy). */
  readonly data: Uint8Array;
  /** Octets of the input used (`data.length`); the rest follows the chunk. */
  readonly consumed: number;
  /** The chunk is complete. */
  readonly done: boolean;
}

/** The octets of one BDAT chunk, counted down as they are received. */
export class BdatChunk {
  readonly size: bigint;
  readonly last: boolean;
  #remaining: bigint;

  constructor(size: bigint, last: boolean) {
    if (size < 0n) throw new RangeError('BDAT chunk size must not be negative');
    this.size = size;
    this.last = last;
    this.#remaining = size;
  }

  /** Octets still to come. */
  get remaining(): bigint {
    return this.#remaining;
  }

  get done(): boolean {
    return this.#remaining === 0n;
  }

  /** How many octets to read next, at most `max` (0 when the chunk is complete). */
  want(max: number): number {
    return this.#remaining >= BigInt(max) ? max : Number(this.#remaining);
  }

  /** Take this chunk's octets from the front of `input`. */
  take(input: Uint8Array): BdatTakeResult {
    const n = this.want(input.length);
    this.#remaining -= BigInt(n);
    return { data: input.subarray(0, n), consumed: n, done: this.#remaining === 0n };
  }
}
