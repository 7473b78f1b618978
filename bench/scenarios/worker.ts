/**
 * Scenario 4 (issue 7): our Worker's `POST /send` under the local Workers runtime (wrangler dev,
 * workerd) against a Worker doing the same sends with the `worker-mailer` package in the same
 * runtime, both relaying with STARTTLS to one local sink (our engine with a discarding handler
 * and a test-CA certificate that workerd trusts through NODE_EXTRA_CA_CERTS).
 * Sends per second and workerd CPU time per send. Target: >= 1.5x worker-mailer's sends/s.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { testPki } from '../../test/support/tls.ts';
import { type Contender, measureInterleaved } from '../lib/measure.ts';
import { BENCH_DIR, NodeChild, REPO_DIR } from '../lib/proc.ts';
import { type BenchContext, type Row, ratio, type ScenarioResult } from '../lib/types.ts';
import { startWorker, type WranglerWorker } from '../lib/wrangler.ts';

export const API_KEY = 'bench-key-0123456789abcdef';

/** The two request shapes of the scenario, keyed for tools (`text`, `attachment`). */
export function workerShapes(): { key: 'text' | 'attachment'; label: string; body: string }[] {
  const text = `${'The quick brown fox jumps over the lazy dog. '.repeat(44)}\n`;
  const attachment = Buffer.alloc(256 * 1024, 7).toString('base64');
  return [
    {
      key: 'text',
      label: 'text (2 KB)',
      body: JSON.stringify({ from: 'sender@bench.test', to: 'rcpt@bench.test', subject: 'bench', text }),
    },
    {
      key: 'attachment',
      label: 'text + 256 KB attachment',
      body: JSON.stringify({
        from: 'sender@bench.test',
        to: 'rcpt@bench.test',
        subject: 'bench',
        text,
        attachments: [{ filename: 'data.bin', content: attachment, contentType: 'application/octet-stream' }],
      }),
    },
  ];
}

export type WorkerPeer = 'ours' | 'worker-mailer';

export interface WorkerBench {
  sink: NodeChild;
  workers: Partial<Record<WorkerPeer, WranglerWorker>>;
  stop(): Promise<void>;
}

/**
 * The sink (our engine with a discarding handler and a test-CA certificate, trusted by workerd
 * through NODE_EXTRA_CA_CERTS) and the requested Workers under `wrangler dev`, all in `dir`.
 */
export async function startWorkerBench(
  dir: string,
  peers: WorkerPeer[],
  log: (line: string) => void,
): Promise<WorkerBench> {
  mkdirSync(join(dir, 'pki'), { recursive: true });
  const pki = testPki(join(dir, 'pki'));
  const sink = new NodeChild(join(BENCH_DIR, 'peers/ours-server.ts'), {
    args: [`--tls=${pki.certPath},${pki.keyPath}`],
  });
  const workers: Partial<Record<WorkerPeer, WranglerWorker>> = {};
  const stopAllOf = async (): Promise<void> => {
    await Promise.all(Object.values(workers).map((w) => w.stop()));
    await sink.stop();
  };
  try {
    const port = (await sink.ready)['port'] as number;
    const relay = { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(port) };
    log(`  starting wrangler dev (${peers.join(', ')})`);
    for (const peer of peers) {
      workers[peer] =
        peer === 'ours'
          ? await startWorker({
              name: 'smtp-edge-bench',
              main: join(REPO_DIR, 'workers/src/index.ts'),
              dir,
              caCertPath: pki.caCertPath,
              vars: {
                ...relay,
                API_KEYS: API_KEY,
                SMTP_SECURITY: 'starttls',
                SMTP_USERNAME: '',
                SMTP_HELO: 'bench.test',
              },
            })
          : await startWorker({
              name: 'worker-mailer-bench',
              main: join(BENCH_DIR, 'worker/worker-mailer-app.ts'),
              dir,
              caCertPath: pki.caCertPath,
              vars: { ...relay, API_KEYS: API_KEY },
            });
    }
  } catch (err) {
    await stopAllOf();
    throw err;
  }
  return { sink, workers, stop: stopAllOf };
}

/** One `POST /send`; null when it answered 200 with ok:true, else what it answered. */
export async function postSend(worker: WranglerWorker, body: string): Promise<string | null> {
  const res = await fetch(`${worker.url}/send`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  return res.status === 200 && text.includes('"ok":true') ? null : `${res.status} ${text.slice(0, 300)}`;
}

/**
 * `count` sends with `concurrency` requests in flight; throws unless every send succeeded and
 * the sink received every message. Wall ms and workerd CPU ms of the run.
 */
export async function sendMany(
  worker: WranglerWorker,
  sink: NodeChild,
  body: string,
  count: number,
  concurrency: number,
): Promise<{ wallMs: number; cpuMs: number }> {
  const before = (await sink.request({ type: 'stats' }))['messages'] as number;
  const cpu0 = worker.workerdCpuMs();
  const t0 = performance.now();
  let next = 0;
  let failure: string | null = null;
  const one = async (): Promise<void> => {
    while (next < count && failure === null) {
      next++;
      const outcome = await postSend(worker, body);
      if (outcome !== null) failure = outcome;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  const wallMs = performance.now() - t0;
  if (failure !== null) throw new Error(`send failed: ${failure}`);
  const after = (await sink.request({ type: 'stats' }))['messages'] as number;
  if (after - before !== count) throw new Error(`the sink received ${after - before} of ${count} messages`);
  return { wallMs, cpuMs: worker.workerdCpuMs() - cpu0 };
}

function sendContender(
  label: string,
  worker: WranglerWorker,
  body: string,
  concurrency: number,
  sink: NodeChild,
): Contender {
  return { label, once: (count) => sendMany(worker, sink, body, count, concurrency) };
}

export async function workerScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const dir = join(ctx.workDir, 'worker');
  mkdirSync(dir, { recursive: true });
  const bench = await startWorkerBench(dir, ['ours', 'worker-mailer'], ctx.log);
  const ours = bench.workers.ours!;
  const wm = bench.workers['worker-mailer']!;
  const rows: Row[] = [];
  try {
    for (const concurrency of [1, 4]) {
      for (const shape of workerShapes()) {
        const label = `${shape.label}, ${concurrency} request${concurrency === 1 ? '' : 's'} in flight`;
        ctx.log(`  ${label}`);
        const results = await measureInterleaved(
          ctx,
          [
            sendContender('ours (POST /send)', ours, shape.body, concurrency, bench.sink),
            sendContender('worker-mailer', wm, shape.body, concurrency, bench.sink),
          ],
          { min: 20, max: ctx.quick ? 200 : 1_000, pilot: 20 },
        );
        rows.push({
          label,
          config: { concurrency, message: shape.label },
          results,
          ratios: [ratio('ours / worker-mailer', results[0], results[1], 1.5)],
        });
      }
    }
  } finally {
    await bench.stop();
  }
  return {
    id: 'worker',
    title: 'Worker POST /send vs worker-mailer, both under local workerd',
    method:
      'Both Workers run under `wrangler dev` (local workerd) with the same compatibility date, and relay each send over a new connection with STARTTLS (certificate verified against a test CA) to one sink: our engine with a discarding handler. ' +
      'Ours: the real `workers/src/index.ts` (Bearer check, zod validation, composition, protocol client). worker-mailer: bench/worker/worker-mailer-app.ts, the same HTTP contract written with `WorkerMailer.send`. ' +
      'The bench process sends the same JSON with N requests in flight; each response must be 200 with ok:true, and the sink must have received every message. CPU = workerd processes per send.',
    rows,
    unit: 'sends/s',
    unitSingular: 'send',
    durationMs: Math.round(performance.now() - started),
  };
}
