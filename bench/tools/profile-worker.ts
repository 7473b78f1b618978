/**
 * A CPU profile of a Worker inside workerd, under the load of the Worker benchmark
 * (bench/scenarios/worker.ts): the same sink, the same `wrangler dev` setup and the same
 * request bodies. `node --cpu-prof` cannot see into workerd, so this drives the V8 profiler of
 * the Worker's isolate through the inspector port wrangler opens (Chrome DevTools Protocol):
 *
 *   npx node bench/tools/profile-worker.ts [--peer=ours|worker-mailer] [--shape=text|attachment]
 *     [--sends=200] [--concurrency=1] [--interval-us=100] [--top=30]
 *
 * Steps: start the sink and the Worker, warm up (sends/5 sends), measure `--sends` sends without
 * the profiler (sends/s and workerd CPU ms per send, as the benchmark counts them), then
 * `Profiler.enable`, `Profiler.setSamplingInterval`, `Profiler.start`, the same sends again,
 * `Profiler.stop`. The profile is written to bench/work/profiles/worker-<peer>-<shape>-<time>/
 * (ignored by git; opens in Chrome DevTools or speedscope) and summarized with
 * `cpuprofile-top.ts`, in ms over the run and µs per send. Sampling costs CPU itself, so the CPU
 * per send of the profiled run is printed too; compare the functions, not the totals.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, stopAll } from '../lib/proc.ts';
import type { WranglerWorker } from '../lib/wrangler.ts';
import { sendMany, startWorkerBench, type WorkerPeer, workerShapes } from '../scenarios/worker.ts';
import { summarize } from './cpuprofile-top.ts';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;

const peer = opt('peer', 'ours') as WorkerPeer;
const shapeKey = opt('shape', 'text');
const sends = Number(opt('sends', '200'));
const concurrency = Number(opt('concurrency', '1'));
const intervalUs = Number(opt('interval-us', '100'));
const top = Number(opt('top', '30'));
const shape = workerShapes().find((s) => s.key === shapeKey);
if ((peer !== 'ours' && peer !== 'worker-mailer') || shape === undefined || !(sends > 0)) {
  process.stderr.write(
    'usage: profile-worker.ts [--peer=ours|worker-mailer] [--shape=text|attachment] [--sends=N] [--concurrency=N] [--interval-us=N] [--top=N]\n',
  );
  process.exit(2);
}

/** A minimal CDP client: one WebSocket, requests matched to responses by id; events ignored. */
class Cdp {
  readonly #ws: WebSocket;
  #next = 1;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
      };
      if (msg.id === undefined) return;
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(msg.error.message));
      else p.resolve(msg.result);
    });
    ws.addEventListener('close', () => {
      for (const p of this.#pending.values()) p.reject(new Error('the inspector closed the connection'));
      this.#pending.clear();
    });
  }

  /** Connect to the first target wrangler's inspector proxy lists at /json. */
  static async attach(worker: WranglerWorker): Promise<Cdp> {
    const base = `http://127.0.0.1:${worker.inspectorPort}`;
    const until = Date.now() + 20_000;
    for (;;) {
      try {
        const targets = (await (await fetch(`${base}/json`)).json()) as { webSocketDebuggerUrl?: string }[];
        const url = targets.find((t) => t.webSocketDebuggerUrl)?.webSocketDebuggerUrl;
        if (url) {
          // The proxy refuses a DevTools connection without an allowed Origin; Node's WebSocket
          // (undici) takes extra headers in its non-standard second argument.
          const ws = new WebSocket(url, {
            headers: { Origin: 'http://127.0.0.1' },
          } as unknown as string[]);
          await new Promise<void>((resolve, reject) => {
            ws.addEventListener('open', () => resolve(), { once: true });
            ws.addEventListener('error', () => reject(new Error(`cannot open ${url}`)), { once: true });
          });
          return new Cdp(ws);
        }
      } catch (err) {
        if (Date.now() > until) throw err;
      }
      if (Date.now() > until) throw new Error(`no inspector target at ${base}/json`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}

const dir = join(BENCH_DIR, 'work', 'profiles', `worker-${peer}-${shape.key}-${Date.now()}`);
mkdirSync(dir, { recursive: true });
const line = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

try {
  const bench = await startWorkerBench(join(dir, 'run'), [peer], line);
  try {
    const worker = bench.workers[peer]!;
    const per = (r: { wallMs: number; cpuMs: number }): string =>
      `${Math.round(sends / (r.wallMs / 1000))} sends/s, ${(r.cpuMs / sends).toFixed(2)} workerd CPU ms per send`;
    await sendMany(worker, bench.sink, shape.body, Math.max(10, Math.round(sends / 5)), concurrency);
    const plain = await sendMany(worker, bench.sink, shape.body, sends, concurrency);
    line(`${peer}, ${shape.label}, ${concurrency} in flight, ${sends} sends: ${per(plain)}`);

    const cdp = await Cdp.attach(worker);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: intervalUs });
    await cdp.send('Profiler.start');
    const profiled = await sendMany(worker, bench.sink, shape.body, sends, concurrency);
    const { profile } = await cdp.send<{ profile: unknown }>('Profiler.stop');
    cdp.close();
    line(`  under the profiler (${intervalUs} µs sampling): ${per(profiled)}`);

    const file = join(dir, `${peer}-${shape.key}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    const s = summarize(file, top);
    const us = (ms: number): string => String(Math.round((ms * 1000) / sends)).padStart(7);
    line(`\n== ${file} (sampled ${s.sampledMs} ms, ${(s.sampledMs / sends).toFixed(2)} ms per send)`);
    line('self time:          ms  µs/send');
    for (const r of s.self)
      line(`${String(r.selfMs).padStart(9)} ${String(r.selfPct).padStart(5)}% ${us(r.selfMs)}  ${r.name}`);
    line('inclusive time:     ms  µs/send');
    for (const r of s.total) line(`${String(r.totalMs).padStart(16)} ${us(r.totalMs)}  ${r.name}`);
  } finally {
    await bench.stop();
  }
} finally {
  await stopAll();
}
