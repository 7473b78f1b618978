/**
 * Benchmark child: nodemailer's pooled SMTP transport (`pool: true`, `maxConnections`), sending
 * the same raw message with an explicit envelope (no composing), all sends queued at once so
 * the pool keeps every connection busy. Replies over IPC: {type:'run', wallMs, cpuMs}.
 */
import nodemailer from 'nodemailer';
import { arg, exitOnStop } from './child.ts';
import { rawMessage } from './message.ts';

const port = Number(arg('port', '0'));
const connections = Number(arg('connections', '10'));
const bytes = Number(arg('bytes', '10240'));
const body = Buffer.from(rawMessage(bytes));

async function runOnce(count: number): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: connections,
    maxMessages: Number.POSITIVE_INFINITY,
    name: 'bench.test',
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  try {
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      sends.push(
        transport.sendMail({ envelope: { from: 'sender@bench.test', to: ['rcpt@bench.test'] }, raw: body }),
      );
    }
    const infos = (await Promise.all(sends)) as { accepted: unknown[] }[];
    for (const info of infos) if (info.accepted.length !== 1) throw new Error('not accepted');
  } finally {
    transport.close();
  }
  const cpu = process.cpuUsage(cpu0);
  return { wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
}

process.on('message', (m: { type: string; messages?: number }) => {
  if (m.type !== 'run') return;
  runOnce(m.messages ?? 1000).then(
    (r) => process.send?.({ type: 'run', ...r }),
    (e: unknown) => process.send?.({ type: 'error', message: String((e as Error)?.stack ?? e) }),
  );
});
exitOnStop();
process.send?.({ type: 'ready' });
