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
  /**
   * The commands the client sent on connection `conn` (message content after DATA and BDAT
   * payloads skipped), each tagged with how many server chunks had arrived before it.
   */
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
      // Walk the client's bytes as SMTP commands: the payload after `BDAT n` (n octets) and the
      // content after DATA (up to CRLF.CRLF, when the server said 354) are skipped, not split.
      const sawData354 = events.some(
        (e) =>
          e.conn === conn &&
          e.dir === 's2c' &&
          /(^|\r\n)354[ -]/.test(Buffer.from(e.bytes).toString('latin1')),
      );
      const out: Array<{ line: string; repliesBefore: number }> = [];
      let replies = 0;
      let pending = Buffer.alloc(0);
      let skip = 0; // BDAT payload octets still to skip
      let inData = false;
      for (const e of events) {
        if (e.conn !== conn) continue;
        if (e.dir === 's2c') {
          replies++;
          continue;
        }
        pending = Buffer.concat([pending, e.bytes]);
        for (;;) {
          if (skip > 0) {
            const n = Math.min(skip, pending.length);
            pending = pending.subarray(n);
            skip -= n;
            if (skip > 0) break;
          }
          if (inData) {
            const end = pending.indexOf('\r\n.\r\n');
            const atStart = pending.subarray(0, 3).toString('latin1') === '.\r\n';
            if (atStart) pending = pending.subarray(3);
            else if (end !== -1) pending = pending.subarray(end + 5);
            else break;
            inData = false;
            continue;
          }
          const nl = pending.indexOf('\r\n');
          if (nl === -1) break;
          const line = pending.subarray(0, nl).toString('latin1');
          pending = pending.subarray(nl + 2);
          out.push({ line, repliesBefore: replies });
          const bdat = /^BDAT (\d+)/i.exec(line);
          if (bdat) skip = Number(bdat[1]);
          else if (/^DATA$/i.test(line) && sawData354) inData = true;
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
