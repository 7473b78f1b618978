/**
 * One timer for a run of waits: every wait on the peer is bounded (RFC 5321 section 4.5.3.2),
 * and a busy connection waits several times per message (each command, each reply written,
 * each piece of message data). Starting and cancelling a timer for every one of those waits
 * cost more than the rest of a small command, so a connection keeps one `Alarm` per purpose
 * and moves its deadline instead.
 *
 * With a clock (`Timers.now`), `set` only records the new deadline when the timer already
 * scheduled fires no later than it; a timer that fires before the deadline schedules itself
 * again for the time left. Timers are scheduled at most `period` ahead (the shortest timeout
 * the connection uses), so a later `set` with a timeout at least that long never has to cancel
 * and reschedule. Without a clock, `set` replaces the timer each time (exact, and slower).
 *
 * `stop()` cancels the timer for good: call it when the connection ends, or the pending timer
 * would keep the runtime (and the connection's memory) alive until it fires.
 */
import type { Timers } from './types.ts';

export class Alarm {
  readonly #timers: Timers;
  readonly #now: (() => number) | undefined;
  readonly #period: number;
  /** The scheduled timer, or null. */
  #handle: unknown = null;
  /** When the scheduled timer fires, on the clock. */
  #firesAt = 0;
  /** When the alarm rings, on the clock (with a clock only). */
  #due = 0;
  #onRing: (() => void) | null = null;
  /** Counts `set` calls, so a stale `clear(token)` cannot switch off a newer setting. */
  #generation = 0;

  constructor(timers: Timers, period: number) {
    this.#timers = timers;
    this.#now = timers.now === undefined ? undefined : () => (timers.now as () => number)();
    this.#period = Math.max(1, period);
  }

  /** Ring (call `onRing`, once) in `ms` unless set again or cleared first. Returns a token for `clear`. */
  set(ms: number, onRing: () => void): number {
    this.#onRing = onRing;
    this.#generation++;
    const now = this.#now?.();
    if (now === undefined) {
      // No clock: an exact timer per setting.
      if (this.#handle !== null) this.#timers.clearTimeout(this.#handle);
      this.#handle = this.#timers.setTimeout(this.#fire, ms);
      return this.#generation;
    }
    this.#due = now + ms;
    if (this.#handle === null || this.#firesAt > this.#due) this.#schedule(now, ms);
    return this.#generation;
  }

  /** Do not ring (for the setting `token` names, or whatever is set when no token is given). */
  clear(token?: number): void {
    if (token !== undefined && token !== this.#generation) return;
    this.#onRing = null;
    if (this.#now === undefined && this.#handle !== null) {
      this.#timers.clearTimeout(this.#handle);
      this.#handle = null;
    }
    // With a clock the timer stays scheduled: the next `set` most likely reuses it, and if
    // nothing is set by then it fires once and stops.
  }

  /** Cancel everything; the alarm can still be set again. */
  stop(): void {
    this.#onRing = null;
    if (this.#handle !== null) this.#timers.clearTimeout(this.#handle);
    this.#handle = null;
  }

  #schedule(now: number, ms: number): void {
    if (this.#handle !== null) this.#timers.clearTimeout(this.#handle);
    const wait = Math.min(ms, this.#period);
    this.#firesAt = now + wait;
    this.#handle = this.#timers.setTimeout(this.#fire, wait);
  }

  #fire = (): void => {
    this.#handle = null;
    const ring = this.#onRing;
    if (ring === null) return;
    const now = this.#now?.();
    if (now !== undefined && now < this.#due) {
      // Fired ahead of the deadline (the deadline moved, or the period cut the wait): again.
      this.#schedule(now, this.#due - now);
      return;
    }
    this.#onRing = null;
    ring();
  };
}
