/**
 * A recording TCP proxy on 127.0.0.1: put it between a client and a server to see exactly what
 * each side wrote and in which order (for clear-text sessions). Used to prove PIPELINING (RFC 2920):
 * a client that pipelines sends RCPT and DATA before any reply to MAIL comes back through the proxy.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface ProxyEvent {
  /** `c2s`: client to server; `s2c`: server to client. */
  dir: 'c2s' | 's2c';
  /** Connection number, from 1. */
  conn: number;
  bytes: Uint8Array;
}

export interface RecordingProxy {
  port: number;
  /** Every chunk in the order the proxy saw it. */
  events: ProxyEvent[];
  /** The commands the client sent on connection `conn`, one per line, each tagged with how many server chunks preceded it. */
  clientLines(conn?: number): Array<{ line: string; repliesBefore: number }>;
  stop(): Promise<void>;
}

export async function startRecordingProxy(
  targetPort: number,
  targetHost = '127.0.0.1',
): Promise<RecordingProxy> {
  const events: ProxyEvent[] = [];
  const sockets = new Set<Socket>();
  let conns = 0;
  const server = createServer((client) => {
    const conn = ++conns;
    const upstream = connect({ host: targetHost, port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (b: Buffer) => {
      events.push({ dir: 'c2s', conn, bytes: new Uint8Array(b) });
      upstream.write(b);
    });
    upstream.on('data', (b: Buffer) => {
      events.push({ dir: 's2c', conn, bytes: new Uint8Array(b) });
      client.write(b);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    events,
    clientLines: (conn = 1) => {
      const out: Array<{ line: string; repliesBefore: number }> = [];
      let replies = 0;
      let pending = '';
      for (const e of events) {
        if (e.conn !== conn) continue;
        if (e.dir === 's2c') {
          replies++;
          continue;
        }
        pending += Buffer.from(e.bytes).toString('latin1');
        let nl = pending.indexOf('\r\n');
        while (nl !== -1) {
          out.push({ line: pending.slice(0, nl), repliesBefore: replies });
          pending = pending.slice(nl + 2);
          nl = pending.indexOf('\r\n');
        }
      }
      return out;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
