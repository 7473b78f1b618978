/**
 * Scenario 3 (issue 7): our Node client against nodemailer's pooled SMTP transport, both sending
 * to postfix smtp-sink with the same concurrency, the same raw message and the same counts;
 * with PIPELINING (smtp-sink's default) and without (smtp-sink -p does not advertise it, so
 * neither client may pipeline). Target: >= 2x nodemailer.
 */
import { join } from 'node:path';
import { type Contender, measureInterleaved } from '../lib/measure.ts';
import { BENCH_DIR, NodeChild } from '../lib/proc.ts';
import { startSink } from '../lib/servers.ts';
import { type BenchContext, type Row, ratio, type ScenarioResult } from '../lib/types.ts';

function clientContender(label: string, child: NodeChild): Contender {
  return {
    label,
    async once(count) {
      const r = await child.request({ type: 'run', messages: count }, 180_000);
      return { wallMs: r['wallMs'] as number, cpuMs: r['cpuMs'] as number };
    },
  };
}

export async function clientScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const rows: Row[] = [];
  const shapes = [
    { connections: 10, bytes: 10 * 1024, pipelining: true },
    { connections: 10, bytes: 10 * 1024, pipelining: false },
    { connections: 1, bytes: 10 * 1024, pipelining: true },
    { connections: 1, bytes: 10 * 1024, pipelining: false },
    { connections: 10, bytes: 1024 * 1024, pipelining: true },
  ];
  for (const s of shapes) {
    const size = s.bytes >= 1024 * 1024 ? '1 MB' : '10 KB';
    const label = `${s.connections} connection${s.connections === 1 ? '' : 's'}, ${size}, ${s.pipelining ? 'PIPELINING' : 'no PIPELINING'}`;
    ctx.log(`  ${label}`);
    const sink = await startSink(s.pipelining ? [] : ['-p']);
    const children: NodeChild[] = [];
    try {
      const args = [`--port=${sink.port}`, `--connections=${s.connections}`, `--bytes=${s.bytes}`];
      const ours = new NodeChild(join(BENCH_DIR, 'peers/client-ours.ts'), { args });
      const nm = new NodeChild(join(BENCH_DIR, 'peers/client-nodemailer.ts'), { args });
      children.push(ours, nm);
      await Promise.all([ours.ready, nm.ready]);
      const big = s.bytes >= 512 * 1024;
      const results = await measureInterleaved(
        ctx,
        [clientContender('ours', ours), clientContender('nodemailer (pool)', nm)],
        {
          min: Math.max(s.connections * 5, big ? 20 : 100),
          max: big ? (ctx.quick ? 200 : 600) : ctx.quick ? 3_000 : 15_000,
          pilot: big ? 30 : 200,
        },
      );
      rows.push({
        label,
        config: s,
        results,
        ratios: [ratio('ours / nodemailer', results[0], results[1], 2)],
      });
    } finally {
      await Promise.all(children.map((c) => c.stop()));
      await sink.stop();
    }
  }
  return {
    id: 'client',
    title: 'Node client vs nodemailer pooled transport, to smtp-sink',
    method:
      'Each client runs in its own process and sends the same raw message (`--bytes` of headers and 76-character lines) to postfix smtp-sink with an explicit envelope. ' +
      'Ours: N `connectSmtp` sessions sharing a queue of sends, each session with two sends queued (with PIPELINING the next envelope follows the previous end of data before its reply, RFC 2920 section 3.1), QUIT at the end. nodemailer: `createTransport({ pool: true, maxConnections: N, maxMessages: Infinity })`, every `sendMail({ envelope, raw })` queued at once, `close()` at the end. ' +
      'Time and CPU include connecting and QUIT. "no PIPELINING" runs smtp-sink with `-p`, so neither client can pipeline.',
    rows,
    durationMs: Math.round(performance.now() - started),
  };
}
