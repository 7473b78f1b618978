/**
 * Shared IPC side of a benchmark child process: answer `mem` (after two full GCs when the child
 * runs with --expose-gc), `stats`, and stop on `stop` or SIGTERM.
 */

export interface MemorySample {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

export function memory(): MemorySample {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

export interface ChildHooks {
  stats?: () => Record<string, unknown>;
  stop: () => Promise<void>;
}

export function serveIpc(hooks: ChildHooks): void {
  let stopping = false;
  const stopNow = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await Promise.race([hooks.stop(), new Promise((r) => setTimeout(r, 2_000))]);
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void stopNow());
  process.on('disconnect', () => void stopNow());
  process.on('message', (m: { type: string }) => {
    if (m.type === 'mem') process.send?.({ type: 'mem', ...memory() });
    else if (m.type === 'stats') process.send?.({ type: 'stats', ...(hooks.stats?.() ?? {}) });
    else if (m.type === 'stop') void stopNow();
  });
}

/** `--name=value` arguments of this child. */
export function arg(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  const found = process.argv.find((a) => a.startsWith(prefix));
  return found === undefined ? fallback : found.slice(prefix.length);
}

/** Exit cleanly (so `--cpu-prof` writes its profile) on SIGTERM or when the parent goes away. */
export function exitOnStop(): void {
  const bye = (): void => process.exit(0);
  process.on('SIGTERM', bye);
  process.on('disconnect', bye);
}
