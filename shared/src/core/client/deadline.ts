/**
 * Bounding every wait: a promise raced against a timer and an AbortSignal. The core uses
 * only `setTimeout`/`clearTimeout` and `AbortSignal`, which Node and workerd both provide.
 */
import { SmtpAbortError, SmtpTimeoutError } from '../errors.ts';

export interface Bound {
  /** Stage name reported by `SmtpTimeoutError`, e.g. `greeting`, `RCPT`, `data`. */
  stage: string;
  ms: number;
  command?: string;
  signal?: AbortSignal | undefined;
}

/**
 * Settle with `promise`, or reject with `SmtpTimeoutError` after `ms`, or with `SmtpAbortError`
 * when `signal` fires. A late rejection of `promise` is swallowed (the caller has moved on and
 * will close the connection).
 */
export function bounded<T>(promise: Promise<T>, bound: Bound): Promise<T> {
  const { signal } = bound;
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) {
      promise.catch(() => {});
      reject(new SmtpAbortError(signal.reason));
      return;
    }
    const onAbort = (): void => {
      cleanup();
      reject(new SmtpAbortError(signal?.reason));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new SmtpTimeoutError(
          bound.stage,
          bound.ms,
          bound.command === undefined ? {} : { command: bound.command },
        ),
      );
    }, bound.ms);
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (err: unknown) => {
        cleanup();
        reject(err);
      },
    );
  });
}

/** Resolve after `ms` (used to cap waits whose outcome does not matter, such as close()). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait for `promise` at most `ms`; never rejects. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const cap = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise.then(noop, noop), cap]);
  } finally {
    clearTimeout(timer);
  }
}

function noop(): void {}

/** One signal that fires when any of the given ones does. */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}
