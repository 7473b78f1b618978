/**
 * Interleaved measurement: a pilot run of each contender (estimates the rate), a warm-up run of
 * about `ctx.warmupSeconds` (not measured: every contender but smtp-sink is JavaScript, whose JIT
 * needs thousands of messages to reach the code a long-running server runs; the pilot alone
 * left rounds measuring half-compiled code, and the contender with more code to compile lost
 * most), then `ctx.rounds` measured rounds in rotating order, so a burst of load from elsewhere
 * on a shared machine hits every contender alike. Counts adapt to the warm rate so each run
 * lasts about `ctx.targetSeconds`. Reported: the best rate of the rounds and the lowest CPU
 * milliseconds per message of the measured process.
 */
import { machineTicks } from './proc.ts';
import type { RunningServer } from './servers.ts';
import { smtpSource } from './smtp-source.ts';
import { type BenchContext, type Measurement, round } from './types.ts';

export interface OneRun {
  wallMs: number;
  /** CPU ms of the measured process for the whole run. */
  cpuMs: number | null;
  /** CPU ms of the load generator for the whole run, when known. */
  loadGenCpuMs?: number | null;
}

export interface Contender {
  label: string;
  once(count: number): Promise<OneRun>;
}

export interface CountBounds {
  min: number;
  max: number;
  pilot: number;
}

export async function measureInterleaved(
  ctx: BenchContext,
  contenders: Contender[],
  bounds: CountBounds,
): Promise<Measurement[]> {
  const counts = new Map<Contender, number>();
  const out = new Map<Contender, Measurement>();
  const failed = new Map<Contender, string>();
  for (const c of contenders) {
    try {
      const clamp = (n: number): number => Math.min(bounds.max, Math.max(bounds.min, Math.round(n)));
      const p = await c.once(bounds.pilot);
      let rate = bounds.pilot / (p.wallMs / 1000);
      if (ctx.warmupSeconds > 0) {
        const n = clamp(rate * ctx.warmupSeconds);
        const w = await c.once(n);
        rate = n / (w.wallMs / 1000);
      }
      counts.set(c, clamp(rate * ctx.targetSeconds));
    } catch (e) {
      failed.set(c, (e as Error).message);
      ctx.log(`    ${c.label}: FAILED ${(e as Error).message}`);
    }
  }
  for (let r = 0; r < ctx.rounds; r++) {
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]!);
    for (const c of order) {
      if (failed.has(c)) continue;
      const count = counts.get(c)!;
      try {
        const t0 = machineTicks();
        const m = await c.once(count);
        const t1 = machineTicks();
        const busy = t1.total > t0.total ? round((100 * (t1.busy - t0.busy)) / (t1.total - t0.total)) : 0;
        const rate = count / (m.wallMs / 1000);
        const cpu = m.cpuMs === null ? null : m.cpuMs / count;
        ctx.log(
          `    ${c.label.padEnd(44)} ${String(Math.round(rate)).padStart(7)}/s  ${cpu === null ? '' : `${cpu.toFixed(3)} CPU ms each`}  (${count}; machine ${busy}% busy)`,
        );
        const prev = out.get(c);
        if (prev === undefined) {
          out.set(c, {
            peer: c.label,
            count,
            wallMs: round(m.wallMs),
            rate: round(rate, 1),
            rounds: [round(rate, 1)],
            cpuMsPerMsg: cpu === null ? null : round(cpu, 4),
            machineBusyPct: busy,
            ...(m.loadGenCpuMs ? { loadGenCpuMsPerMsg: round(m.loadGenCpuMs / count, 4) } : {}),
          });
        } else {
          prev.rounds.push(round(rate, 1));
          if (rate > prev.rate) {
            prev.rate = round(rate, 1);
            prev.wallMs = round(m.wallMs);
            prev.machineBusyPct = busy;
            if (m.loadGenCpuMs) prev.loadGenCpuMsPerMsg = round(m.loadGenCpuMs / count, 4);
          }
          if (cpu !== null)
            prev.cpuMsPerMsg = round(Math.min(prev.cpuMsPerMsg ?? Number.POSITIVE_INFINITY, cpu), 4);
        }
      } catch (e) {
        failed.set(c, (e as Error).message);
        ctx.log(`    ${c.label}: FAILED ${(e as Error).message}`);
      }
    }
  }
  return contenders.map((c) => {
    const m = out.get(c);
    const error = failed.get(c);
    if (m && error === undefined) return m;
    return {
      peer: c.label,
      count: counts.get(c) ?? 0,
      wallMs: m?.wallMs ?? 0,
      rate: m?.rate ?? 0,
      rounds: m?.rounds ?? [],
      cpuMsPerMsg: m?.cpuMsPerMsg ?? null,
      error: error ?? 'not measured',
    };
  });
}

// ---- servers driven by smtp-source ----------------------------------------------------------

export interface LoadShape {
  sessions: number;
  bytes: number;
  reuse: boolean;
}

export function sourceBounds(ctx: BenchContext, shape: LoadShape): CountBounds {
  const big = shape.bytes >= 512 * 1024;
  // Each session must send a few messages for connection reuse to mean anything.
  const perSession = shape.reuse ? 4 : 1;
  const min = Math.max(shape.sessions * perSession, big ? 20 : 100);
  const max = Math.max(min, big ? (ctx.quick ? 300 : 1_000) : ctx.quick ? 4_000 : 20_000);
  const pilot = Math.min(max, Math.max(min, big ? 40 : shape.sessions * (shape.reuse ? 4 : 2), 100));
  return { min, max, pilot };
}

/** A server as a contender: smtp-source sends `count` messages; the server's CPU is measured. */
export function sourceContender(s: RunningServer, shape: LoadShape, label = s.label): Contender {
  return {
    label,
    async once(count) {
      const before = await s.accepted();
      const cpu0 = s.cpuMs();
      const r = await smtpSource({ ...shape, messages: count, port: s.port, timeoutMs: 180_000 });
      const cpuMs = s.cpuMs() - cpu0;
      const after = await s.accepted();
      if (before !== null && after !== null && after - before !== count) {
        throw new Error(`${s.label} accepted ${after - before} of ${count} messages`);
      }
      return { wallMs: r.wallMs, cpuMs, loadGenCpuMs: r.sourceCpuMs };
    },
  };
}

export function measureServers(
  ctx: BenchContext,
  servers: RunningServer[],
  shape: LoadShape,
): Promise<Measurement[]> {
  return measureInterleaved(
    ctx,
    servers.map((s) => sourceContender(s, shape)),
    sourceBounds(ctx, shape),
  );
}
