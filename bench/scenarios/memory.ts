/**
 * Scenario 5 (issue 7), memory:
 * - heap per idle connection with 1,000 open connections (target <= 32 KB), ours and smtp-server;
 * - peak resident memory of the server while 20 MB arrives by BDAT (target: growth < 64 MB, the
 *   same whatever the size: 5, 20 and 50 MB are measured), and by DATA for comparison.
 * The 50 MB message streamed to S3 is measured by the s3 scenario (it needs s3rver).
 */
import * as net from 'node:net';
import { join } from 'node:path';
import { connectSmtp } from '../../shared/src/adapter/node/client.ts';
import { BENCH_DIR, NodeChild, rssBytes, sleep } from '../lib/proc.ts';
import { MB, RssSampler } from '../lib/rss.ts';
import { type BenchContext, round, type ScenarioResult } from '../lib/types.ts';
import { rawMessage } from '../peers/message.ts';

/** Open `n` connections, read each greeting, send EHLO and read its whole reply; keep them open. */
async function openIdle(port: number, n: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  const one = () =>
    new Promise<net.Socket>((ok, fail) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      let buf = '';
      let stage: 'greeting' | 'ehlo' = 'greeting';
      const timer = setTimeout(() => fail(new Error('idle connection: no reply in 30 s')), 30_000);
      s.setEncoding('utf8');
      s.on('error', fail);
      s.on('data', (d: string) => {
        buf += d;
        // A complete reply ends with a line "NNN text\r\n" (space after the code).
        if (!/(?:^|\r\n)\d{3} [^\r\n]*\r\n$/.test(buf)) return;
        if (stage === 'greeting') {
          stage = 'ehlo';
          buf = '';
          s.write('EHLO bench.test\r\n');
        } else {
          clearTimeout(timer);
          s.removeAllListeners('data');
          ok(s);
        }
      });
    });
  for (let i = 0; i < n; i += 100) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, one))));
  }
  return sockets;
}

interface IdleResult {
  heapPerConn: number;
  externalPerConn: number;
  rssPerConn: number;
}

async function idleConnections(
  label: string,
  script: string,
  args: string[],
  n: number,
): Promise<IdleResult> {
  const child = new NodeChild(join(BENCH_DIR, script), { args, execArgv: ['--expose-gc'] });
  try {
    const port = (await child.ready)['port'] as number;
    // Warm up: code paths and lazily built structures are not per-connection costs.
    const warm = await openIdle(port, 50);
    for (const s of warm) s.destroy();
    await sleep(300);
    const m0 = await child.request({ type: 'mem' });
    const sockets = await openIdle(port, n);
    await sleep(500);
    const m1 = await child.request({ type: 'mem' });
    for (const s of sockets) s.destroy();
    const per = (k: string) => ((m1[k] as number) - (m0[k] as number)) / n;
    void label;
    return {
      heapPerConn: per('heapUsed'),
      externalPerConn: per('external'),
      rssPerConn: per('rss'),
    };
  } finally {
    await child.stop();
  }
}

async function bigMessage(port: number, bytes: number, chunking: boolean): Promise<void> {
  const session = await connectSmtp({
    host: '127.0.0.1',
    port,
    security: 'none',
    helo: 'bench.test',
    chunking: chunking ? { chunkSize: 64 * 1024 } : false,
  });
  try {
    // A stream, so the sender does not hold the whole message either.
    const line = new TextEncoder().encode(`${'x'.repeat(74)}\r\n`);
    const head = new TextEncoder().encode(rawMessage(0));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) {
          controller.enqueue(head);
          sent += head.length;
          return;
        }
        if (sent >= bytes) {
          controller.close();
          return;
        }
        const block = new Uint8Array(64 * 1024 - ((64 * 1024) % line.length));
        for (let o = 0; o + line.length <= block.length; o += line.length) block.set(line, o);
        controller.enqueue(block);
        sent += block.length;
      },
    });
    const res = await session.send({ from: 'sender@bench.test', to: ['rcpt@bench.test'], size: bytes }, body);
    if (res.response.code !== 250) throw new Error(`big message refused: ${JSON.stringify(res.response)}`);
  } finally {
    await session.quit();
  }
}

async function peakGrowth(
  bytes: number,
  chunking: boolean,
): Promise<{ growthMb: number; baseMb: number; afterGcMb: number }> {
  const child = new NodeChild(join(BENCH_DIR, 'peers/ours-server.ts'), { execArgv: ['--expose-gc'] });
  try {
    const port = (await child.ready)['port'] as number;
    await bigMessage(port, 1 * MB, chunking); // warm-up
    await sleep(200);
    const m0 = await child.request({ type: 'mem' });
    const base = rssBytes(child.pid);
    const sampler = new RssSampler(child.pid, 5);
    await bigMessage(port, bytes, chunking);
    const peak = sampler.stop();
    const stats = await child.request({ type: 'stats' });
    if ((stats['bytes'] as number) < bytes)
      throw new Error(`server read ${stats['bytes']} of ${bytes} bytes`);
    // After two full GCs: what the message left behind (a leak would show here).
    const m1 = await child.request({ type: 'mem' });
    const held = (m: typeof m0) => (m['heapUsed'] as number) + (m['external'] as number);
    return {
      growthMb: round((peak - base) / MB, 1),
      baseMb: round(base / MB, 1),
      afterGcMb: round((held(m1) - held(m0)) / MB, 1),
    };
  } finally {
    await child.stop();
  }
}

export async function memoryScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const facts: Record<string, string | number | null> = {};
  const targets: NonNullable<ScenarioResult['targets']> = [];
  const notes: string[] = [];
  const n = 1000;

  ctx.log(`  ${n} idle connections`);
  const ours = await idleConnections('ours', 'peers/ours-server.ts', [], n);
  const theirs = await idleConnections('smtp-server', 'peers/smtp-server-peer.ts', ['--no-delay'], n);
  const kb = (x: number) => round(x / 1024, 1);
  facts[`ours: heap per idle connection (${n} open, after EHLO)`] = `${kb(ours.heapPerConn)} KB`;
  facts['ours: external (Buffers) per idle connection'] = `${kb(ours.externalPerConn)} KB`;
  facts['ours: RSS per idle connection'] = `${kb(ours.rssPerConn)} KB`;
  facts[`smtp-server: heap per idle connection (${n} open, after EHLO)`] = `${kb(theirs.heapPerConn)} KB`;
  facts['smtp-server: external (Buffers) per idle connection'] = `${kb(theirs.externalPerConn)} KB`;
  facts['smtp-server: RSS per idle connection'] = `${kb(theirs.rssPerConn)} KB`;
  ctx.log(
    `    ours ${kb(ours.heapPerConn)} KB heap/conn, smtp-server ${kb(theirs.heapPerConn)} KB heap/conn`,
  );
  targets.push({
    label: `${n} idle connections`,
    name: 'heap per idle connection',
    value: `${kb(ours.heapPerConn)} KB`,
    target: '≤ 32 KB',
    met: ours.heapPerConn <= 32 * 1024,
  });

  for (const [mb, chunking] of [
    [5, true],
    [20, true],
    [50, true],
    [20, false],
  ] as const) {
    const how = chunking ? 'BDAT (64 KB chunks)' : 'DATA';
    ctx.log(`  ${mb} MB by ${how}`);
    const g = await peakGrowth(mb * MB, chunking);
    facts[`ours: peak RSS growth while ${mb} MB arrives by ${how}`] =
      `${g.growthMb} MB (base ${g.baseMb} MB; ${g.afterGcMb} MB of heap + external still held after GC)`;
    ctx.log(`    growth ${g.growthMb} MB over ${g.baseMb} MB, ${g.afterGcMb} MB held after GC`);
    if (chunking && mb === 20) {
      targets.push({
        label: '20 MB by BDAT',
        name: 'peak RSS growth',
        value: `${g.growthMb} MB`,
        target: '< 64 MB',
        met: g.growthMb < 64,
      });
    }
  }
  notes.push(
    'Idle connections: 1,000 TCP connections from the bench process, each greeted and after EHLO, then idle; per-connection figures are (after - before) / 1000 with two full GCs (`--expose-gc`) before each reading, after a warm-up of 50 connections.',
    'Peak RSS: /proc/PID/status VmRSS of the server process sampled every 5 ms while our client streams the message (64 KB BDAT chunks, or DATA); growth = peak - RSS just before the message (after a 1 MB warm-up message). The handler drains the stream.',
  );
  return {
    id: 'memory',
    title: 'Memory: idle connections and large messages',
    method:
      'Server: our engine with the discarding handler (bench/peers/ours-server.ts); smtp-server set up the same way for the idle comparison.',
    rows: [],
    facts,
    targets,
    notes,
    durationMs: Math.round(performance.now() - started),
  };
}
