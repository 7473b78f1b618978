/**
 * Scenario 2 (issue 7): the receiver (`receiver/src/main.ts`, S3 store) against s3rver, fed by
 * smtp-source, against the rate of bare PutObject calls of the same sizes with the same
 * concurrency from the same machine. Target: >= 0.8x of that ceiling.
 * Also (scenario 5): peak resident memory of the receiver while a 50 MB message streams to S3.
 */
import { join } from 'node:path';
import { connectSmtp } from '../../shared/src/adapter/node/client.ts';
import { type Contender, measureInterleaved } from '../lib/measure.ts';
import { BENCH_DIR, NodeChild, rssBytes, sleep } from '../lib/proc.ts';
import { MB, RssSampler } from '../lib/rss.ts';
import { BUCKET, type RunningProcess, s3Env, startReceiver, startS3rver } from '../lib/s3.ts';
import { smtpSource } from '../lib/smtp-source.ts';
import { type BenchContext, type Row, ratio, round, type ScenarioResult } from '../lib/types.ts';
import { rawMessage } from '../peers/message.ts';

function receiverContender(receiver: RunningProcess, sessions: number, bytes: number): Contender {
  return {
    label: 'receiver → S3 (smtp-source)',
    async once(count) {
      const cpu0 = receiver.cpuMs();
      const r = await smtpSource({
        sessions,
        bytes,
        reuse: true,
        messages: count,
        port: receiver.port,
        timeoutMs: 300_000,
      });
      return { wallMs: r.wallMs, cpuMs: receiver.cpuMs() - cpu0 };
    },
  };
}

function putContender(child: NodeChild, label: string): Contender {
  return {
    label,
    async once(count) {
      const r = await child.request({ type: 'run', messages: count }, 300_000);
      return { wallMs: r['wallMs'] as number, cpuMs: r['cpuMs'] as number };
    },
  };
}

/** Stream `bytes` to the receiver by DATA and return its peak RSS growth (MB). */
async function streamBig(
  receiver: RunningProcess,
  bytes: number,
): Promise<{ growthMb: number; baseMb: number }> {
  const send = async (n: number) => {
    const session = await connectSmtp({
      host: '127.0.0.1',
      port: receiver.port,
      security: 'none',
      helo: 'bench.test',
    });
    try {
      const head = new TextEncoder().encode(rawMessage(0));
      const line = new TextEncoder().encode(`${'y'.repeat(74)}\r\n`);
      const block = new Uint8Array(64 * 1024 - ((64 * 1024) % line.length));
      for (let o = 0; o + line.length <= block.length; o += line.length) block.set(line, o);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent === 0) {
            c.enqueue(head);
            sent += head.length;
          } else if (sent >= n) c.close();
          else {
            c.enqueue(block);
            sent += block.length;
          }
        },
      });
      const res = await session.send({ from: 'sender@bench.test', to: ['rcpt@bench.test'] }, body);
      if (res.response.code !== 250) throw new Error(`refused: ${JSON.stringify(res.response)}`);
    } finally {
      await session.quit();
    }
  };
  await send(6 * MB); // warm-up: one multipart upload
  await sleep(300);
  const base = rssBytes(receiver.pid);
  const sampler = new RssSampler(receiver.pid, 5);
  await send(bytes);
  const peak = sampler.stop();
  return { growthMb: round((peak - base) / MB, 1), baseMb: round(base / MB, 1) };
}

export async function s3Scenario(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const rows: Row[] = [];
  const facts: Record<string, string | number | null> = {};
  const targets: NonNullable<ScenarioResult['targets']> = [];
  const s3 = await startS3rver(join(ctx.workDir, 's3rver'));
  let receiver: RunningProcess | null = null;
  try {
    receiver = await startReceiver(s3.port);
    const sessions = 10;
    for (const bytes of [10 * 1024, 1024 * 1024]) {
      const size = bytes >= MB ? '1 MB' : '10 KB';
      const label = `${sessions} sessions, ${size}`;
      ctx.log(`  ${label}`);
      const args = [`--concurrency=${sessions}`, `--bytes=${bytes}`, `--bucket=${BUCKET}`];
      const env = { ...process.env, ...s3Env(s3.port) };
      const put = new NodeChild(join(BENCH_DIR, 'peers/s3-put.ts'), { args, env });
      const put2 = new NodeChild(join(BENCH_DIR, 'peers/s3-put.ts'), { args: [...args, '--objects=2'], env });
      try {
        await Promise.all([put.ready, put2.ready]);
        const big = bytes >= MB;
        const results = await measureInterleaved(
          ctx,
          [
            receiverContender(receiver, sessions, bytes),
            putContender(put, 'bare PutObject'),
            putContender(put2, 'PutObject .eml + .json'),
          ],
          {
            min: big ? 20 : 100,
            max: big ? (ctx.quick ? 100 : 400) : ctx.quick ? 1_000 : 4_000,
            pilot: big ? 20 : 100,
          },
        );
        rows.push({
          label,
          config: { sessions, bytes },
          results,
          ratios: [
            ratio('receiver / PutObject', results[0], results[1], 0.8),
            ratio('receiver / (PutObject .eml + .json)', results[0], results[2]),
          ],
        });
      } finally {
        await Promise.all([put.stop(), put2.stop()]);
      }
    }
    ctx.log('  50 MB message streamed to S3');
    const g = await streamBig(receiver, 50 * MB);
    facts['receiver: peak RSS growth while a 50 MB message streams to S3 (DATA)'] =
      `${g.growthMb} MB (base ${g.baseMb} MB)`;
    targets.push({
      label: '50 MB to S3',
      name: 'peak RSS growth (receiver)',
      value: `${g.growthMb} MB`,
      target: '< 64 MB',
      met: g.growthMb < 64,
    });
    ctx.log(`    growth ${g.growthMb} MB over ${g.baseMb} MB`);
  } finally {
    await receiver?.stop();
    await s3.stop();
  }
  return {
    id: 's3',
    title: 'Receiver with the S3 store (s3rver) vs bare PutObject',
    method:
      'The real receiver (`node receiver/src/main.ts`, RECEIVER_STORE=s3://bench/msgs, AWS_ENDPOINT_URL_S3 to s3rver, rate limit off, log level warn) fed by smtp-source over 10 reused sessions; ' +
      'every message is stored as `.eml` (lib-storage Upload) plus `.json` (PutObject) before the 250. ' +
      'Ceiling: a separate process issuing PutObject calls of the same size with the same concurrency and SDK settings (one object per message, so the receiver does at least twice the requests); "PutObject .eml + .json" adds the small second PutObject per message that the store contract requires, for reference. ' +
      'CPU = receiver process (or PutObject process) per message; s3rver runs in its own process and is the same for both.',
    rows,
    facts,
    targets,
    unitSingular: 'message or PutObject',
    durationMs: Math.round(performance.now() - started),
  };
}
