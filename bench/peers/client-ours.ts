/**
 * Benchmark child: our Node client. `--connections` sessions (connectSmtp) share a queue of
 * `--messages` sends of the same raw message, like a connection pool; then QUIT. Each session
 * keeps two sends queued, so with PIPELINING the next envelope follows the previous message's
 * data without waiting for its reply (RFC 2920 section 3.1; `SmtpClientSession.send`).
 * Replies over IPC: {type:'done', wallMs, cpuMs, messages}.
 */
import { connectSmtp } from '../../shared/src/adapter/node/client.ts';
import type { SmtpClientSession } from '../../shared/src/core/client/session.ts';
import { arg, exitOnStop } from './child.ts';
import { rawMessage } from './message.ts';

const port = Number(arg('port', '0'));
const connections = Number(arg('connections', '10'));
const messages = Number(arg('messages', '1000'));
const bytes = Number(arg('bytes', '10240'));
const pipelining = arg('pipelining', 'true') === 'true';
const body = new TextEncoder().encode(rawMessage(bytes));
/** Sends queued per session at a time. */
const QUEUE_DEPTH = 2;

async function runOnce(count: number): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    if (next >= count) return;
    const session: SmtpClientSession = await connectSmtp({
      host: '127.0.0.1',
      port,
      security: 'none',
      helo: 'bench.test',
      pipelining,
    });
    const queued = new Set<Promise<void>>();
    try {
      while (next < count) {
        next++;
        const one = session.send({ from: 'sender@bench.test', to: ['rcpt@bench.test'] }, body).then((res) => {
          if (res.accepted.length !== 1) throw new Error(`not accepted: ${JSON.stringify(res.rejected)}`);
        });
        queued.add(one);
        void one.then(
          () => queued.delete(one),
          () => queued.delete(one),
        );
        if (queued.size >= QUEUE_DEPTH) await Promise.race(queued);
      }
      await Promise.all(queued);
    } finally {
      await session.quit();
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const cpu = process.cpuUsage(cpu0);
  return { wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
}

process.on('message', (m: { type: string; messages?: number }) => {
  if (m.type !== 'run') return;
  runOnce(m.messages ?? messages).then(
    (r) => process.send?.({ type: 'run', ...r }),
    (e: unknown) => process.send?.({ type: 'error', message: String((e as Error)?.stack ?? e) }),
  );
});
exitOnStop();
process.send?.({ type: 'ready' });
