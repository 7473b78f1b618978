/**
 * Node side of the Worker tests: SMTP relays for the Worker to send through, each one a fault
 * or a feature, plus a small HTTP endpoint on 127.0.0.1 where the tests (running inside workerd)
 * read what a relay received. Started by `global-setup.ts`; every port is ephemeral.
 *
 * Behaviour of the main relays, chosen by address so one server serves every case:
 * - MAIL FROM `tempfail@…` → 451 (temporary), `blocked@…` → 550 (permanent),
 *   `stall@…` → the final reply after DATA never comes;
 * - RCPT TO `reject…@…` → 550, `later…@…` → 450; anything else is accepted.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
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
}

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

  // GET /received?to=<address> → JSON list of messages whose envelope includes that recipient.
  // GET /sessions?helo=<name> → number of SMTP sessions that sent MAIL FROM after EHLO <name>.
  const inspect: HttpServer = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
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
    },
    close: async () => {
      await Promise.all(closers.map((close) => close()));
    },
  };
}
