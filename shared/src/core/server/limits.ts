/**
 * Counting limits: per-connection error counters and the connection limiter (total and per
 * remote address) adapters use before handing a connection to the engine.
 */

/** True once `count` exceeds `max` (a limit of 10 allows 10, the 11th trips it). */
export function limitReached(count: number, max: number): boolean {
  return count > max;
}

/** Connections open in total and per remote address; `acquire` says whether one more fits. */
export class ConnectionLimiter {
  readonly maxTotal: number;
  readonly maxPerAddress: number;
  #total = 0;
  readonly #perAddress = new Map<string, number>();

  /** `0` or `Infinity` means no limit. */
  constructor(maxTotal = 0, maxPerAddress = 0) {
    this.maxTotal = maxTotal > 0 ? maxTotal : Number.POSITIVE_INFINITY;
    this.maxPerAddress = maxPerAddress > 0 ? maxPerAddress : Number.POSITIVE_INFINITY;
  }

  get total(): number {
    return this.#total;
  }

  count(address: string): number {
    return this.#perAddress.get(address) ?? 0;
  }

  /** Take a slot for `address`; returns the reason when none is free. */
  acquire(address: string): 'ok' | 'total' | 'per-address' {
    if (this.#total >= this.maxTotal) return 'total';
    const n = this.count(address);
    if (n >= this.maxPerAddress) return 'per-address';
    this.#total++;
    this.#perAddress.set(address, n + 1);
    return 'ok';
  }

  release(address: string): void {
    const n = this.count(address);
    if (n <= 0) return;
    this.#total--;
    if (n === 1) this.#perAddress.delete(address);
    else this.#perAddress.set(address, n - 1);
  }
}
