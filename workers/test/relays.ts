/**
 * Node side of the Worker tests: SMTP relays for the Worker to send through, each one a fault
 * or a feature, plus a small HTTP endpoint on 127.0.0.1 where the tests (running inside workerd)
 * read what a relay received. Started by `global-setup.ts`; every port is ephemeral.
 *
 * Behaviour of the main relays, chosen by address so one server serves every case:
 * - MAIL FROM `tempfail@…` → 451 (temporary), `blocked@…` → 550 (permanent),
 *   `stall@…` → the final reply after DATA never comes;
 * - RCPT TO `reject…@…` → 550, `later…@…` → 450; anything else is accepted.
 *
 * The slow-QUIT relay (implicit TLS, a small hand-written SMTP server) holds its 221 until the test
 * says it has its response (`/slow-quit/release?to=`) or 5 s have passed, and records which came
 * first (`/slow-quit?to=`): it shows whether the Worker answered before its QUIT was done. It
 * refuses RCPT TO `reject…@…` with 550 and accepts everything else.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface TestPkiFiles {
  caCert: string;
  cert: string;
  key: string;
  untrustedCert: string;
  untrustedKey: string;
  wrongNameCert: string;
  wrongNameKey: string;
}

export interface Received {
  relay: string;
  mailFrom: string;
  rcptTo: string[];
  /** base64 of the exact bytes after DATA (dot-unstuffed by smtp-server). */
  raw: string;
  authUser: string | null;
  secure: boolean;
  /** MAIL FROM DSN parameters (RET, ENVID) and each RCPT's (NOTIFY, ORCPT), as smtp-server parsed them. */
  dsn: unknown;
  rcptDsn: unknown[];
}

export const RELAY_USER = 'mailer';
export const RELAY_PASSWORD = 'correct horse battery staple';

export interface RelayPorts {
  relayPort: number;
  relayTlsPort: number;
  noStarttlsPort: number;
  noDsnPort: number;
  untrustedPort: number;
  wrongNamePort: number;
  silentPort: number;
  closedPort: number;
  inspectPort: number;
  slowQuitPort: number;
}

/** One connection to the slow-QUIT relay, as `/slow-quit?to=` reports it. */
export interface SlowQuitSession {
  rcptTo: string[];
  /** The message's final reply was sent (250 after the data). */
  delivered: boolean;
  /** QUIT was received. */
  quit: boolean;
  /** What let the 221 go: the test's release (it had its response), or the 5 s fall back. */
  answeredAfter: 'release' | 'timeout' | null;
  /** The connection is closed. */
  closed: boolean;
}

/** How long the slow-QUIT relay holds its 221 when nobody releases it. */
export const SLOW_QUIT_HOLD_MS = 5_000;

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export async function startRelays(
  pki: TestPkiFiles,
): Promise<{ ports: RelayPorts; close: () => Promise<void> }> {
  const received: Received[] = [];
  /** EHLO name → ids of the SMTP sessions that reached MAIL FROM with it. */
  const sessionsByHelo = new Map<string, Set<string>>();
  const closers: Array<() => Promise<void>> = [];

  async function relay(name: string, options: Partial<SMTPServerOptions>): Promise<number> {
    const server = new SMTPServer({
      name: 'relay.test',
      key: pki.key,
      cert: pki.cert,
      disableReverseLookup: true,
      logger: false,
      authMethods: ['PLAIN', 'LOGIN'],
      size: 20 * 1024 * 1024,
      closeTimeout: 500,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: false,
      onAuth(auth, _session, callback) {
        if (auth.username === RELAY_USER && auth.password === RELAY_PASSWORD) {
          callback(null, { user: auth.username });
        } else {
          callback(smtpError(535, 'Authentication credentials invalid'));
        }
      },
      onMailFrom(address, session, callback) {
        const sessions = sessionsByHelo.get(session.hostNameAppearsAs) ?? new Set<string>();
        sessions.add(session.id);
        sessionsByHelo.set(session.hostNameAppearsAs, sessions);
        const local = address.address.split('@')[0] ?? '';
        if (local === 'tempfail') return callback(smtpError(451, 'Try again later'));
        if (local === 'blocked') return callback(smtpError(550, 'Sender blocked by policy'));
        callback();
      },
      onRcptTo(address, _session, callback) {
        const local = address.address.split('@')[0] ?? '';
        if (local.startsWith('reject')) return callback(smtpError(550, 'No such user here'));
        if (local.startsWith('later')) return callback(smtpError(450, 'Mailbox busy, try later'));
        callback();
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const from = session.envelope.mailFrom;
          if (from !== false && from.address.startsWith('stall@')) return; // never answer
          received.push({
            relay: name,
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            rcptTo: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('base64'),
            authUser: typeof session.user === 'string' ? session.user : null,
            secure: session.secure,
            dsn: (session.envelope as { dsn?: unknown }).dsn ?? null,
            rcptDsn: session.envelope.rcptTo.map((r) => (r as { dsn?: unknown }).dsn ?? null),
          });
          callback(null, 'Queued as test');
        });
      },
      ...options,
    });
    // workerd may reset a TLS socket after QUIT; that is not a failure of the relay.
    server.on('error', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return (server.server.address() as { port: number }).port;
  }

  const relayPort = await relay('starttls', {});
  const relayTlsPort = await relay('tls', { secure: true });
  const noStarttlsPort = await relay('no-starttls', { hideSTARTTLS: true, allowInsecureAuth: true });
  const noDsnPort = await relay('no-dsn', { hideDSN: true });
  const untrustedPort = await relay('untrusted', { key: pki.untrustedKey, cert: pki.untrustedCert });
  const wrongNamePort = await relay('wrong-name', { key: pki.wrongNameKey, cert: pki.wrongNameCert });

  // Accepts connections and never says a word (no 220 greeting).
  const silentSockets = new Set<Socket>();
  const silent: TcpServer = createTcpServer((socket) => {
    silentSockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => silentSockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as { port: number }).port;
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of silentSockets) s.destroy();
        silent.close(() => resolve());
      }),
  );

  // A port nobody listens on: bind, note, close.
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const closedPort = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  // Implicit TLS, AUTH PLAIN accepted, PIPELINING; QUIT answered only after a release (or 5 s).
  const slowSessions: SlowQuitSession[] = [];
  const released = new Set<string>();
  const releaseWaiters = new Set<() => void>();
  const slowSockets = new Set<TLSSocket>();
  const slow = createTlsServer({ key: pki.key, cert: pki.cert }, (socket) => {
    slowSockets.add(socket);
    const session: SlowQuitSession = {
      rcptTo: [],
      delivered: false,
      quit: false,
      answeredAfter: null,
      closed: false,
    };
    slowSessions.push(session);
    socket.on('error', () => {});
    socket.on('close', () => {
      session.closed = true;
      slowSockets.delete(socket);
    });
    let buffer = '';
    let inData = false;
    let accepted = 0;
    const isReleased = () => session.rcptTo.some((r) => released.has(r));
    const answerQuit = async () => {
      session.quit = true;
      if (!isReleased()) {
        await new Promise<void>((resolve) => {
          const wake = () => {
            if (!isReleased()) return;
            clearTimeout(timer);
            releaseWaiters.delete(wake);
            resolve();
          };
          const timer = setTimeout(() => {
            releaseWaiters.delete(wake);
            resolve();
          }, SLOW_QUIT_HOLD_MS);
          releaseWaiters.add(wake);
        });
      }
      session.answeredAfter = isReleased() ? 'release' : 'timeout';
      socket.end('221 2.0.0 bye\r\n');
    };
    const onLine = (line: string): void => {
      if (inData) {
        if (line === '.') {
          inData = false;
          session.delivered = true;
          socket.write('250 2.0.0 queued\r\n');
        }
        return;
      }
      const verb = line.split(' ', 1)[0]?.toUpperCase() ?? '';
      if (verb === 'EHLO')
        socket.write('250-slow-quit.test\r\n250-AUTH PLAIN\r\n250-PIPELINING\r\n250 8BITMIME\r\n');
      else if (verb === 'AUTH') socket.write('235 2.7.0 ok\r\n');
      else if (verb === 'MAIL') socket.write('250 2.1.0 ok\r\n');
      else if (verb === 'RCPT') {
        const rcpt = /<([^>]*)>/.exec(line)?.[1] ?? '';
        session.rcptTo.push(rcpt);
        if (rcpt.startsWith('reject')) socket.write('550 5.1.1 no such user\r\n');
        else {
          accepted++;
          socket.write('250 2.1.5 ok\r\n');
        }
      } else if (verb === 'DATA') {
        // RFC 2920 section 3.1: DATA after every RCPT failed is refused.
        if (accepted === 0) socket.write('554 5.5.1 no valid recipients\r\n');
        else {
          inData = true;
          socket.write('354 go on\r\n');
        }
      } else if (verb === 'RSET' || verb === 'NOOP') socket.write('250 2.0.0 ok\r\n');
      else if (verb === 'QUIT') void answerQuit();
      else socket.write('502 5.5.1 not here\r\n');
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        onLine(line);
      }
    });
    socket.write('220 slow-quit.test ESMTP\r\n');
  });
  slow.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  const slowQuitPort = (slow.address() as { port: number }).port;
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of slowSockets) s.destroy();
        slow.close(() => resolve());
      }),
  );

  // GET /received?to=<address> → JSON list of messages whose envelope includes that recipient.
  // GET /sessions?helo=<name> → number of SMTP sessions that sent MAIL FROM after EHLO <name>.
  const inspect: HttpServer = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/slow-quit/release') {
      released.add(url.searchParams.get('to') ?? '');
      for (const wake of [...releaseWaiters]) wake();
      res.writeHead(204);
      res.end();
      return;
    }
    if (url.pathname === '/slow-quit') {
      const to = url.searchParams.get('to') ?? '';
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(slowSessions.filter((s) => s.rcptTo.includes(to))));
      return;
    }
    if (url.pathname === '/sessions') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(sessionsByHelo.get(url.searchParams.get('helo') ?? '')?.size ?? 0));
      return;
    }
    const to = url.searchParams.get('to');
    const list = to === null ? received : received.filter((m) => m.rcptTo.includes(to));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(list));
  });
  await new Promise<void>((resolve) => inspect.listen(0, '127.0.0.1', resolve));
  const inspectPort = (inspect.address() as { port: number }).port;
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        inspect.closeAllConnections();
        inspect.close(() => resolve());
      }),
  );

  return {
    ports: {
      relayPort,
      relayTlsPort,
      noStarttlsPort,
      noDsnPort,
      untrustedPort,
      wrongNamePort,
      silentPort,
      closedPort,
      inspectPort,
      slowQuitPort,
    },
    close: async () => {
      await Promise.all(closers.map((close) => close()));
    },
  };
}
