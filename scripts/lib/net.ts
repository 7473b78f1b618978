/** Port checks and readiness polling for `npm start`. */
import { createServer } from 'node:net';

/** Resolves to null when `host:port` can be bound, else to the error code (e.g. `EADDRINUSE`). */
export function portProblem(port: number, host: string): Promise<string | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** An ephemeral port that was free a moment ago (for tests and `SMTP_EDGE_*_PORT=0`). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface WaitOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Stop waiting early (e.g. the process that should answer has exited). Returns a reason. */
  abandon?: () => string | null;
  /** Which HTTP statuses count as ready. Default: any status (the server answers). */
  ready?: (status: number) => boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll `url` until it answers as `ready` says. Throws with the last problem seen. */
export async function waitForHttp(url: string, options: WaitOptions): Promise<void> {
  const until = Date.now() + options.timeoutMs;
  const ready = options.ready ?? (() => true);
  let last = 'no answer yet';
  while (Date.now() < until) {
    const reason = options.abandon?.();
    if (reason) throw new Error(reason);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000), redirect: 'manual' });
      await response.body?.cancel();
      if (ready(response.status)) return;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(
    `${url} did not become ready within ${Math.round(options.timeoutMs / 1000)} s (last: ${last})`,
  );
}
