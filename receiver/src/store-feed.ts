/**
 * The bridge between the engine's message stream and the store, with the store time-out.
 *
 * The time-out (RECEIVER_STORE_TIMEOUT) measures only the store's own slowness: the clock runs
 * while the store holds data it has not asked the next piece for, and from the end of the message
 * until the store reports it durable. Waiting for a slow client does not count (the engine's DATA
 * timeouts cover that, RFC 5321 section 4.5.3.2). When the clock runs out, `signal` aborts.
 *
 * When the store gives up early, `abandon()` cancels the engine's stream: the engine then discards
 * the rest of the message and replies only after the real end of the data (only `<CRLF>.<CRLF>`
 * ends DATA), with the reply the handler threw.
 */

export class StoreFeed {
  readonly stream: ReadableStream<Uint8Array>;
  readonly signal: AbortSignal;
  /** Message bytes read from the source so far. */
  bytes = 0;
  /** True once the source ended normally. */
  ended = false;
  /** `Date.now()` when the source ended (the client's end of data), else null. */
  endedAt: number | null = null;
  /** The source's error (client gone, message too big, bare line endings…), if it failed. */
  sourceError: unknown = undefined;

  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #controller = new AbortController();
  readonly #timeoutMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(source: ReadableStream<Uint8Array>, timeoutMs: number, outer?: AbortSignal) {
    this.#reader = source.getReader();
    this.#timeoutMs = timeoutMs;
    this.signal =
      outer === undefined ? this.#controller.signal : AbortSignal.any([outer, this.#controller.signal]);
    this.stream = new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          this.#stop();
          const read = this.#reader.read();
          let r: Awaited<typeof read>;
          try {
            r = await read;
          } catch (e) {
            this.sourceError = e;
            c.error(e);
            return;
          }
          // The store may have cancelled its side meanwhile: then close/enqueue throw, and the
          // bytes are simply dropped.
          if (r.done) {
            this.ended = true;
            this.endedAt = Date.now();
            try {
              c.close();
            } catch {}
          } else {
            this.bytes += r.value.byteLength;
            try {
              c.enqueue(r.value);
            } catch {
              return;
            }
          }
          this.#start();
        },
        cancel: () => {
          this.#stop();
        },
      },
      { highWaterMark: 0 },
    );
    this.#start();
  }

  #start(): void {
    this.#stop();
    this.#timer = setTimeout(() => {
      this.#controller.abort(new DOMException(`store time-out (${this.#timeoutMs} ms)`, 'TimeoutError'));
    }, this.#timeoutMs);
  }

  #stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The store finished (either way): stop the clock. */
  settle(): void {
    this.#stop();
  }

  /**
   * The store gave up: stop reading. Cancelling the engine's stream tells it to discard the rest
   * of the message itself (it still reads to the real end of the data before it replies).
   */
  abandon(reason: unknown): void {
    this.#stop();
    if (this.ended || this.sourceError !== undefined) return;
    this.#reader.cancel(reason).catch(() => {});
  }
}
