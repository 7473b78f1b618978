/**
 * aiosmtpd (Debian's python3-aiosmtpd) as a receiving server. It runs under /usr/bin/python3 (a
 * pyenv `python3` on PATH may lack the module) from a small launcher that builds aiosmtpd's own
 * `SMTP` protocol class, exactly as `python3 -m aiosmtpd` does, plus what the CLI cannot set: AUTH
 * (PLAIN/LOGIN through an authenticator), implicit TLS, and a handler that writes each message's
 * bytes and its envelope (ESMTP parameters per command, HELO, TLS, auth login) to a folder.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testPki } from '../tls.ts';
import {
  Daemon,
  freePort,
  PEER_PATHS,
  peerDir,
  pollUntil,
  removePeerDir,
  requirePeers,
  retryOnPortClash,
  waitForGreeting,
} from './process.ts';

export interface AiosmtpdOptions {
  hostname?: string;
  /** Offer STARTTLS with the test PKI's localhost certificate (default true). */
  tls?: boolean;
  /** Serve implicit TLS on the port instead of STARTTLS. */
  implicitTls?: boolean;
  /** Refuse MAIL until STARTTLS. */
  requireTls?: boolean;
  /** Enable SMTPUTF8 (default true). */
  smtputf8?: boolean;
  /** SIZE limit in bytes (default aiosmtpd's 33554432). */
  size?: number;
  /** Offer AUTH PLAIN/LOGIN for these users (name -> password). */
  auth?: { users: Record<string, string>; requireTls?: boolean };
  /** Recipients refused with `550 5.1.1 User unknown`. */
  rejectRecipients?: string[];
}

export interface AiosmtpdMessage {
  id: string;
  mailFrom: string;
  mailOptions: string[];
  rcptTo: string[];
  /** ESMTP parameters of each RCPT, parallel to rcptTo. */
  rcptOptions: string[][];
  smtputf8: boolean;
  helo: string | null;
  tls: boolean;
  /** AUTH identity, when the client authenticated. */
  login: string | null;
  /** Message bytes as received (after dot-unstuffing), CRLF endings as on the wire. */
  content: Uint8Array;
}

export interface Aiosmtpd {
  host: string;
  port: number;
  pid: number | undefined;
  dir: string;
  caCertPath: string;
  messages(): AiosmtpdMessage[];
  waitForMessages(count: number, timeoutMs?: number): Promise<AiosmtpdMessage[]>;
  output(): string;
  stop(): Promise<void>;
}

const LAUNCHER = `
import asyncio, json, os, ssl, sys, uuid
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

cfg = json.loads(sys.argv[1])
out = cfg['dir']
users = {k.encode(): v.encode() for k, v in (cfg.get('users') or {}).items()}
reject = set(cfg.get('reject') or [])

class Dump:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in reject:
            return '550 5.1.1 User unknown'
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if not hasattr(envelope, 'per_rcpt'):
            envelope.per_rcpt = []
        envelope.per_rcpt.append(list(rcpt_options))
        return '250 2.1.5 OK'

    async def handle_DATA(self, server, session, envelope):
        mid = uuid.uuid4().hex
        base = os.path.join(out, mid)
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode('utf-8', 'replace')
        meta = {
            'id': mid,
            'mailFrom': envelope.mail_from,
            'mailOptions': list(envelope.mail_options),
            'rcptTo': list(envelope.rcpt_tos),
            'rcptOptions': getattr(envelope, 'per_rcpt', []),
            'smtputf8': bool(envelope.smtp_utf8),
            'helo': session.host_name,
            # session.ssl is only set by STARTTLS; ask the transport (covers implicit TLS too).
            'tls': server.transport.get_extra_info('ssl_object') is not None,
            'login': login,
        }
        with open(base + '.json', 'w') as f:
            json.dump(meta, f)
        with open(base + '.tmp', 'wb') as f:
            f.write(envelope.original_content)
        os.rename(base + '.tmp', base + '.eml')
        return '250 2.0.0 OK queued as ' + mid

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and users.get(auth_data.login) == auth_data.password
    return AuthResult(success=ok, auth_data=auth_data if ok else None)

async def main():
    ctx = None
    if cfg.get('cert'):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cfg['cert'], cfg['key'])
    implicit = bool(cfg.get('implicitTls'))
    kw = dict(
        hostname=cfg['hostname'],
        data_size_limit=cfg['size'],
        enable_SMTPUTF8=cfg['smtputf8'],
        decode_data=False,
        require_starttls=bool(cfg.get('requireTls')) and not implicit,
    )
    if ctx is not None and not implicit:
        kw['tls_context'] = ctx
    if users:
        kw['authenticator'] = authenticator
        kw['auth_require_tls'] = bool(cfg.get('authRequireTls'))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Dump(), **kw), host=cfg['host'], port=cfg['port'],
                                      ssl=ctx if implicit else None)
    print('aiosmtpd listening', flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
`;

/** Start aiosmtpd on a free 127.0.0.1 port. */
export function startAiosmtpd(opts: AiosmtpdOptions = {}): Promise<Aiosmtpd> {
  return retryOnPortClash(() => startAiosmtpdOnce(opts));
}

async function startAiosmtpdOnce(opts: AiosmtpdOptions): Promise<Aiosmtpd> {
  requirePeers('python3');
  const host = '127.0.0.1';
  const dir = peerDir('aiosmtpd');
  const mail = join(dir, 'mail');
  mkdirSync(mail);
  writeFileSync(join(dir, 'launcher.py'), LAUNCHER);
  const port = await freePort(host);
  const pki = testPki();
  const tls = opts.tls !== false || opts.implicitTls === true;
  const cfg = {
    dir: mail,
    host,
    port,
    hostname: opts.hostname ?? 'aiosmtpd.test',
    size: opts.size ?? 33_554_432,
    smtputf8: opts.smtputf8 !== false,
    cert: tls ? pki.certPath : null,
    key: tls ? pki.keyPath : null,
    implicitTls: opts.implicitTls === true,
    requireTls: opts.requireTls === true,
    users: opts.auth?.users ?? null,
    authRequireTls: opts.auth?.requireTls === true,
    reject: opts.rejectRecipients ?? [],
  };
  const daemon = new Daemon('aiosmtpd', PEER_PATHS.python3, [join(dir, 'launcher.py'), JSON.stringify(cfg)], {
    env: { PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
  });
  const stop = async () => {
    await daemon.stop();
    removePeerDir(dir);
  };
  try {
    await waitForGreeting(host, port, {
      ...(opts.implicitTls ? { tlsCa: pki.caCert } : {}),
      alive: () => daemon.running,
      describe: () => `aiosmtpd ${daemon.describeExit()}: ${daemon.output()}`,
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const messages = (): AiosmtpdMessage[] => {
    if (!existsSync(mail)) return [];
    return readdirSync(mail)
      .filter((f) => f.endsWith('.eml'))
      .map((f) => ({ f, t: statSync(join(mail, f)).mtimeMs }))
      .sort((a, b) => a.t - b.t || a.f.localeCompare(b.f))
      .map(({ f }) => {
        const id = f.slice(0, -'.eml'.length);
        const meta = JSON.parse(readFileSync(join(mail, `${id}.json`), 'utf8')) as Omit<
          AiosmtpdMessage,
          'content'
        >;
        return { ...meta, content: new Uint8Array(readFileSync(join(mail, f))) };
      });
  };
  return {
    host,
    port,
    pid: daemon.pid,
    dir,
    caCertPath: pki.caCertPath,
    messages,
    waitForMessages: (count, timeoutMs = 30_000) =>
      pollUntil(
        () => {
          const m = messages();
          return m.length >= count ? m : undefined;
        },
        timeoutMs,
        () => `${count} aiosmtpd messages (have ${messages().length}); output: ${daemon.output()}`,
      ),
    output: () => daemon.output(),
    stop,
  };
}
