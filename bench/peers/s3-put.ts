/**
 * Benchmark child: the S3 ceiling. `--concurrency` workers issue bare PutObject calls of
 * `--bytes` octets (one in-memory body, unique keys) with the same SDK and settings as the
 * receiver's store. Replies over IPC: {type:'run', wallMs, cpuMs}.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { arg, exitOnStop } from './child.ts';

const concurrency = Number(arg('concurrency', '10'));
const bytes = Number(arg('bytes', '10240'));
const bucket = arg('bucket', 'bench');
/** 2 = also a small `.json` PutObject after each body, as the receiver's store does. */
const objects = Number(arg('objects', '1'));
const json = new TextEncoder().encode(
  JSON.stringify({
    id: 'x'.repeat(20),
    mailFrom: 'sender@bench.test',
    rcptTo: ['rcpt@bench.test'],
    pad: 'p'.repeat(600),
  }),
);
const body = new Uint8Array(bytes).fill(0x61);
const client = new S3Client({
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
});
let serial = 0;

async function runOnce(count: number): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const key = `put/${process.pid}/${serial++}`;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${key}.eml`, Body: body }));
      if (objects === 2)
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${key}.json`, Body: json }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpu0);
  return { wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
}

process.on('message', (m: { type: string; messages?: number }) => {
  if (m.type !== 'run') return;
  runOnce(m.messages ?? 100).then(
    (r) => process.send?.({ type: 'run', ...r }),
    (e: unknown) => process.send?.({ type: 'error', message: String((e as Error)?.stack ?? e) }),
  );
});
exitOnStop();
process.send?.({ type: 'ready' });
