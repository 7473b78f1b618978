/**
 * Benchmark child: nodemailer's `smtp-server`, set up like ours: plain SMTP on 127.0.0.1, no AUTH,
 * no STARTTLS, reverse lookup off, a discarding `onData` that drains the stream.
 *
 * smtp-server waits a fixed 100 ms before its greeting (early-talker check; not configurable in
 * 3.x: `setTimeout(() => this.connectionReady(), 100)` in smtp-connection.js). With --no-delay
 * that one timer is shortened to 0 by wrapping `setTimeout` in this process: a like-for-like
 * engine comparison with our default (no greeting delay). It is labelled wherever it is used.
 */
import { SMTPServer } from 'smtp-server';
import { arg, serveIpc } from './child.ts';

if (process.argv.includes('--no-delay')) {
  const original = globalThis.setTimeout;
  const patched = ((fn: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) =>
    original(fn, ms === 100 ? 0 : ms, ...rest)) as typeof setTimeout;
  globalThis.setTimeout = Object.assign(patched, original);
}

let messages = 0;
let bytes = 0;
const server = new SMTPServer({
  name: 'bench.localhost',
  disableReverseLookup: true,
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  logger: false,
  size: 100 * 1024 * 1024,
  onData(stream, _session, callback) {
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    stream.on('end', () => {
      messages++;
      callback(null, 'Ok: discarded');
    });
  },
});
server.on('error', (e) => process.stderr.write(`smtp-server: ${String(e)}\n`));

const port = await new Promise<number>((ok) => {
  server.listen(Number(arg('port', '0')), '127.0.0.1', () => {
    const a = server.server.address();
    ok(typeof a === 'object' && a !== null ? a.port : 0);
  });
});
serveIpc({
  stats: () => ({ messages, bytes }),
  stop: () => new Promise<void>((ok) => server.close(() => ok())),
});
process.send?.({ type: 'ready', port });
