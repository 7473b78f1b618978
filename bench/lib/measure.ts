/**
 * Run smtp-source against several servers, interleaved: a pilot run each (warms the JIT and
 * estimates the rate), then `ctx.rounds` measured rounds in rotating order so a burst of load
 * from elsewhere on a shared machine hits every peer alike. Message counts adapt to the pilot
 * rate so each run lasts about `ctx.targetSeconds`. Reported: the best rate of the rounds and
 * the lowest CPU milliseconds per message of the server process.
 */
import type { RunningServer } from './servers.ts';
import { smtpSource } from './smtp-source.ts';
import { type BenchContext, type Measurement, round } from './types.ts';

export interface LoadShape {
  sessions: number;
  bytes: number;
  reuse: boolean;
}

export interface CountBounds {
  min: number;
  max: number;
  pilot: number;
}

export function countBounds(ctx: BenchContext, shape: LoadShape): CountBounds {
  const big = shape.bytes >= 512 * 1024;
  // Each session must send a few messages for connection reuse to mean anything.
  const perSession = shape.reuse ? 4 : 1;
  const min = Math.max(shape.sessions * perSession, big ? 20 : 100);
  const max = big ? (ctx.quick ? 300 : 1_000) : ctx.quick ? 4_000 : 20_000;
  const pilot = Math.min(max, Math.max(min, big ? 40 : shape.sessions * (shape.reuse ? 4 : 2), 100));
  return { min, max: Math.max(min, max), pilot };
}

export async function measureServers(
  ctx: BenchContext,
  servers: RunningServer[],
  shape: LoadShape,
): Promise<Measurement[]> {
  const bounds = countBounds(ctx, shape);
  const counts = new Map<RunningServer, number>();
  const out = new Map<RunningServer, Measurement>();
  const failed = new Map<RunningServer, string>();

  const once = async (
    s: RunningServer,
    messages: number,
  ): Promise<{ rate: number; cpu: number; wallMs: number }> => {
    const before = await s.accepted();
    const cpu0 = s.cpuMs();
    const r = await smtpSource({ ...shape, messages, port: s.port, timeoutMs: 180_000 });
    const cpu = (s.cpuMs() - cpu0) / messages;
    const after = await s.accepted();
    if (before !== null && after !== null && after - before !== messages) {
      throw new Error(`${s.label} accepted ${after - before} of ${messages} messages`);
    }
    return { rate: r.rate, cpu, wallMs: r.wallMs };
  };

  for (const s of servers) {
    try {
      const p = await once(s, bounds.pilot);
      const n = Math.round(p.rate * ctx.targetSeconds);
      counts.set(s, Math.min(bounds.max, Math.max(bounds.min, n)));
    } catch (e) {
      failed.set(s, (e as Error).message);
    }
  }
  for (let r = 0; r < ctx.rounds; r++) {
    const order = servers.map((_, i) => servers[(i + r) % servers.length]!);
    for (const s of order) {
      if (failed.has(s)) continue;
      const count = counts.get(s)!;
      try {
        const m = await once(s, count);
        const prev = out.get(s);
        ctx.log(
          `    ${s.label.padEnd(44)} ${String(Math.round(m.rate)).padStart(7)} msg/s  ${m.cpu.toFixed(3)} CPU ms/msg  (${count} msgs)`,
        );
        if (prev === undefined) {
          out.set(s, {
            peer: s.label,
            count,
            wallMs: round(m.wallMs),
            rate: round(m.rate),
            rounds: [round(m.rate)],
            cpuMsPerMsg: round(m.cpu, 4),
          });
        } else {
          prev.rounds.push(round(m.rate));
          if (m.rate > prev.rate) {
            prev.rate = round(m.rate);
            prev.wallMs = round(m.wallMs);
          }
          prev.cpuMsPerMsg = round(Math.min(prev.cpuMsPerMsg ?? Infinity, m.cpu), 4);
        }
      } catch (e) {
        failed.set(s, (e as Error).message);
      }
    }
  }
  return servers.map((s) => {
    const m = out.get(s);
    const error = failed.get(s);
    if (m && error === undefined) return m;
    return {
      peer: s.label,
      count: counts.get(s) ?? 0,
      wallMs: m?.wallMs ?? 0,
      rate: m?.rate ?? 0,
      rounds: m?.rounds ?? [],
      cpuMsPerMsg: m?.cpuMsPerMsg ?? null,
      error: error ?? 'not measured',
    };
  });
}
