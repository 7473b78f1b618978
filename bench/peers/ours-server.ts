/**
 * Benchmark child: our SMTP server engine (Node adapter) with a discarding handler that drains
 * every message stream, plain SMTP on 127.0.0.1. Arguments: --delay=MS (earlyTalkerDelayMs,
 * the greeting delay; 0 by default), --port=N (0 = ephemeral), --tls=CERT,KEY (PEM paths:
 * offer STARTTLS), --no-dsn (do not advertise DSN).
 */
import { readFileSync } from 'node:fs';
import { createSmtpServer } from '../../shared/src/adapter/node/server.ts';
import { arg, serveIpc } from './child.ts';

const delay = Number(arg('delay', '0'));
const tlsFiles = arg('tls', '');
const [certPath, keyPath] = tlsFiles.split(',');
const tls =
  certPath && keyPath
    ? { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') }
    : undefined;
let messages = 0;
let bytes = 0;

const server = createSmtpServer(
  {
    async data(_session, _envelope, stream) {
      const reader = stream.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
      }
      messages++;
      return { message: 'Ok: discarded' };
    },
  },
  {
    hostname: 'bench.localhost',
    earlyTalkerDelayMs: delay,
    maxMessageBytes: 100 * 1024 * 1024,
    ...(tls === undefined ? {} : { tls, startTls: true }),
    ...(process.argv.includes('--no-dsn') ? { extensions: { dsn: false } } : {}),
    onError: (_s, e) => process.stderr.write(`ours-server: ${String(e)}\n`),
  },
);

const info = await server.listen({ port: Number(arg('port', '0')), host: '127.0.0.1', backlog: 4096 });
serveIpc({
  stats: () => ({ messages, bytes, connections: server.connections }),
  stop: () => server.close({ deadlineMs: 500 }),
});
process.send?.({ type: 'ready', port: info.port });
