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

const API_KEY = 'bench-key-0123456789abcdef';

function sendContender(
  label: string,
  worker: WranglerWorker,
  body: string,
  concurrency: number,
  sink: NodeChild,
): Contender {
  return {
    label,
    async once(count) {
      const before = (await sink.request({ type: 'stats' }))['messages'] as number;
      const cpu0 = worker.workerdCpuMs();
      const t0 = performance.now();
      let next = 0;
      let failure: string | null = null;
      const one = async (): Promise<void> => {
        while (next < count && failure === null) {
          next++;
          const res = await fetch(`${worker.url}/send`, {
            method: 'POST',
            headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
            body,
          });
          const text = await res.text();
          if (res.status !== 200 || !text.includes('"ok":true'))
            failure = `${res.status} ${text.slice(0, 300)}`;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, one));
      const wallMs = performance.now() - t0;
      if (failure !== null) throw new Error(`send failed: ${failure}`);
      const after = (await sink.request({ type: 'stats' }))['messages'] as number;
      if (after - before !== count)
        throw new Error(`the sink received ${after - before} of ${count} messages`);
      return { wallMs, cpuMs: worker.workerdCpuMs() - cpu0 };
    },
  };
}

export async function workerScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const dir = join(ctx.workDir, 'worker');
  mkdirSync(dir, { recursive: true });
  mkdirSync(join(dir, 'pki'), { recursive: true });
  const pki = testPki(join(dir, 'pki'));
  const sink = new NodeChild(join(BENCH_DIR, 'peers/ours-server.ts'), {
    args: [`--tls=${pki.certPath},${pki.keyPath}`],
  });
  const workers: WranglerWorker[] = [];
  const rows: Row[] = [];
  try {
    const port = (await sink.ready)['port'] as number;
    const relay = { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(port) };
    ctx.log('  starting wrangler dev (ours, worker-mailer)');
    const ours = await startWorker({
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
    });
    workers.push(ours);
    const wm = await startWorker({
      name: 'worker-mailer-bench',
      main: join(BENCH_DIR, 'worker/worker-mailer-app.ts'),
      dir,
      caCertPath: pki.caCertPath,
      vars: { ...relay, API_KEYS: API_KEY },
    });
    workers.push(wm);
    const text = `${'The quick brown fox jumps over the lazy dog. '.repeat(44)}\n`;
    const attachment = Buffer.alloc(256 * 1024, 7).toString('base64');
    const shapes = [
      {
        label: 'text (2 KB)',
        body: { from: 'sender@bench.test', to: 'rcpt@bench.test', subject: 'bench', text },
      },
      {
        label: 'text + 256 KB attachment',
        body: {
          from: 'sender@bench.test',
          to: 'rcpt@bench.test',
          subject: 'bench',
          text,
          attachments: [
            { filename: 'data.bin', content: attachment, contentType: 'application/octet-stream' },
          ],
        },
      },
    ];
    for (const concurrency of [1, 4]) {
      for (const shape of shapes) {
        const label = `${shape.label}, ${concurrency} request${concurrency === 1 ? '' : 's'} in flight`;
        ctx.log(`  ${label}`);
        const body = JSON.stringify(shape.body);
        const results = await measureInterleaved(
          ctx,
          [
            sendContender('ours (POST /send)', ours, body, concurrency, sink),
            sendContender('worker-mailer', wm, body, concurrency, sink),
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
    await Promise.all(workers.map((w) => w.stop()));
    await sink.stop();
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
