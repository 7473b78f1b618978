/**
 * Scenario 1 (issue 7): the server engine with a discarding handler, driven by postfix
 * smtp-source, against nodemailer's smtp-server (discarding, reverse lookup off) and postfix
 * smtp-sink (the C ceiling). Targets: >= 1.5x smtp-server and >= 0.5x smtp-sink everywhere.
 *
 * smtp-server waits a fixed 100 ms before every greeting (not configurable). Two pairs are
 * therefore measured: ours with the same 100 ms (`earlyTalkerDelayMs: 100`) against stock
 * smtp-server, and ours at its default (no delay) against smtp-server with that one timer
 * patched to 0. Both pairs are like for like; the second compares the engines themselves.
 */
import { measureServers } from '../lib/measure.ts';
import { type RunningServer, type ServerKind, startServer } from '../lib/servers.ts';
import { type BenchContext, type Row, ratio, type ScenarioResult } from '../lib/types.ts';

const KINDS: ServerKind[] = ['ours', 'ours-delay100', 'smtp-server', 'smtp-server-nodelay', 'smtp-sink'];

export function engineRow(label: string, config: Row['config'], results: Row['results']): Row {
  const exact = (peer: string) => results.find((m) => m.peer === peer);
  return {
    label,
    config,
    results,
    ratios: [
      ratio('ours (100 ms) / smtp-server', exact('ours (100 ms greeting delay)'), exact('smtp-server'), 1.5),
      ratio(
        'ours / smtp-server (no delay)',
        exact('ours'),
        exact('smtp-server (greeting delay patched to 0)'),
        1.5,
      ),
      ratio('ours / smtp-sink', exact('ours'), exact('smtp-sink'), 0.5),
    ],
  };
}

export async function engineScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const rows: Row[] = [];
  const shapes = [
    { sessions: 10, bytes: 10 * 1024 },
    { sessions: 100, bytes: 10 * 1024 },
    { sessions: 10, bytes: 1024 * 1024 },
    { sessions: 100, bytes: 1024 * 1024 },
  ];
  for (const s of shapes) {
    for (const reuse of [false, true]) {
      const label = `${s.sessions} sessions, ${s.bytes >= 1024 * 1024 ? '1 MB' : '10 KB'}, ${reuse ? 'reused connections' : 'new connection per message'}`;
      ctx.log(`  ${label}`);
      const servers: RunningServer[] = [];
      try {
        for (const k of KINDS) servers.push(await startServer(k));
        const results = await measureServers(ctx, servers, { ...s, reuse });
        rows.push(engineRow(label, { ...s, reuse }, results));
      } finally {
        await Promise.all(servers.map((x) => x.stop()));
      }
    }
  }
  return {
    id: 'engine',
    title: 'Receiver engine (discarding handler) driven by smtp-source',
    method:
      'postfix smtp-source (HELO, no pipelining, `-l` bytes of body, `-d` for reused connections) against each server in its own process on 127.0.0.1. ' +
      'Each server drains and discards every message. Rate = messages / wall time of smtp-source (best of the rounds); CPU = server process CPU per message (lowest of the rounds). ' +
      'smtp-server has a fixed 100 ms greeting delay: "ours (100 ms greeting delay)" sets `earlyTalkerDelayMs: 100` to match it, and "smtp-server (greeting delay patched to 0)" removes it to match our default.',
    rows,
    durationMs: Math.round(performance.now() - started),
  };
}

/** Scenario 6: messages per second as sessions go 1, 10, 100, 500 (10 KB, reused connections). */
export async function scalingScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const rows: Row[] = [];
  const kinds: ServerKind[] = ['ours', 'smtp-server-nodelay', 'smtp-sink'];
  for (const sessions of [1, 10, 100, 500]) {
    const label = `${sessions} session${sessions === 1 ? '' : 's'}`;
    ctx.log(`  ${label}`);
    const servers: RunningServer[] = [];
    try {
      for (const k of kinds) servers.push(await startServer(k));
      const results = await measureServers(ctx, servers, { sessions, bytes: 10 * 1024, reuse: true });
      const exact = (p: string) => results.find((m) => m.peer === p);
      rows.push({
        label,
        config: { sessions, bytes: 10 * 1024, reuse: true },
        results,
        notes: [
          `best round: machine CPU busy ${results.map((m) => `${m.peer} ${m.machineBusyPct ?? '?'}%`).join(', ')}; smtp-source CPU per message ${results.map((m) => `${m.peer} ${m.loadGenCpuMsPerMsg?.toFixed(3) ?? '?'} ms`).join(', ')}`,
        ],
        ratios: [
          ratio(
            'ours / smtp-server (no delay)',
            exact('ours'),
            exact('smtp-server (greeting delay patched to 0)'),
          ),
          ratio('ours / smtp-sink', exact('ours'), exact('smtp-sink')),
        ],
      });
    } finally {
      await Promise.all(servers.map((x) => x.stop()));
    }
  }
  return {
    id: 'scaling',
    title: 'Scaling: messages per second as sessions grow (10 KB, reused connections)',
    method:
      'Same harness as the engine scenario, 10 KB messages over reused connections, 1, 10, 100 and 500 concurrent smtp-source sessions. ' +
      'smtp-server runs with its 100 ms greeting delay patched to 0 (with reused connections it would be paid once per session anyway).',
    rows,
    durationMs: Math.round(performance.now() - started),
  };
}
