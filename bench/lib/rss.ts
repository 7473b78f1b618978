/** Sample a process's resident set size every `everyMs` until stopped; report the peak. */
import { rssBytes } from './proc.ts';

export class RssSampler {
  readonly #pid: number;
  #peak = 0;
  #timer: ReturnType<typeof setInterval>;

  constructor(pid: number, everyMs = 5) {
    this.#pid = pid;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #sample(): void {
    try {
      this.#peak = Math.max(this.#peak, rssBytes(this.#pid));
    } catch {
      // the process is gone
    }
  }

  /** Stop sampling; the peak RSS in bytes. */
  stop(): number {
    clearInterval(this.#timer);
    this.#sample();
    return this.#peak;
  }
}

export const MB = 1024 * 1024;
