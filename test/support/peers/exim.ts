/**
 * Exim 4.96, extracted from Debian's exim4-daemon-light/exim4-base by .ci/install-peers.sh (a real
 * apt install would remove postfix). Two roles, each with a generated configuration (`-C`):
 * - server (`exim -bdf -oX PORT`): CHUNKING, PIPELINING, DSN, SMTPUTF8, 8BITMIME, optional STARTTLS
 *   and AUTH; each delivery goes through a `pipe` transport to files (content + envelope);
 * - client (`exim -odf -oi -v`): submits one message from stdin and delivers it in the foreground
 *   through a manualroute + smtp transport to host:port with `hosts_try_chunking`, so the message
 *   goes out with BDAT when the server offers CHUNKING. The -v transcript shows every command.
 * Exim adds no header here: `received_header_text` is empty and local fix-ups are suppressed.
 */
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { testPki } from '../tls.ts';
import {
  Daemon,
  freePort,
  lfToCrlf,
  PEER_PATHS,
  peerDir,
  pollUntil,
  type RunResult,
  removePeerDir,
  requirePeers,
  requireRoot,
  retryOnPortClash,
  runCommand,
  userIds,
  waitForGreeting,
} from './process.ts';

const EXIM_USER = 'Debian-exim';

function eximDirs(prefix: string): { dir: string; spool: string; log: string; mail: string } {
  requirePeers('exim');
  requireRoot('exim with -C');
  const dir = peerDir(prefix);
  chmodSync(dir, 0o755);
  const spool = join(dir, 'spool');
  const log = join(dir, 'log');
  const mail = join(dir, 'mail');
  const ids = userIds(EXIM_USER);
  for (const d of [spool, log, mail]) {
    mkdirSync(d);
    chownSync(d, ids.uid, ids.gid);
  }
  return { dir, spool, log, mail };
}

function readLog(log: string): string {
  const f = join(log, 'mainlog');
  const p = join(log, 'paniclog');
  const main = existsSync(f) ? readFileSync(f, 'utf8') : '';
  const panic = existsSync(p) ? readFileSync(p, 'utf8') : '';
  return main + (panic ? `\n--- paniclog ---\n${panic}` : '');
}

export interface EximServerOptions {
  hostname?: string;
  /** Announce CHUNKING (default true). */
  chunking?: boolean;
  /** Offer STARTTLS with the test PKI's localhost certificate (default true). */
  tls?: boolean;
  /** Announce DSN (default true). */
  dsn?: boolean;
  /** Announce SMTPUTF8 (default true). */
  smtputf8?: boolean;
  /** Announce PIPELINING (default true). */
  pipelining?: boolean;
  /** AUTH PLAIN and LOGIN for these users (name -> password), offered after STARTTLS only unless tlsOnly=false. */
  auth?: { users: Record<string, string>; tlsOnly?: boolean };
  /** message_size_limit in bytes (default 50 MB). */
  messageSizeLimit?: number;
  /** Recipients refused with 550 at RCPT. */
  rejectRecipients?: string[];
}

/** One delivery by Exim's pipe transport (Exim delivers once per recipient). */
export interface EximMessage {
  id: string;
  sender: string;
  recipient: string;
  /** As Exim stored it: LF endings. */
  content: Uint8Array;
  /** CRLF endings: the bytes as on the wire. */
  contentCrlf: Uint8Array;
}

export interface EximServer {
  host: string;
  port: number;
  pid: number | undefined;
  dir: string;
  caCertPath: string;
  mainlog(): string;
  /** One entry per recipient delivery, oldest first. */
  messages(): EximMessage[];
  waitForMessages(count: number, timeoutMs?: number): Promise<EximMessage[]>;
  stop(): Promise<void>;
}

// The pipe transport passes SENDER, RECIPIENT and MESSAGE_ID in the environment (tainted values may
// not appear in the command line).
const DELIVER_SH = `#!/bin/sh
f="$1/$MESSAGE_ID.$$"
cat > "$f.tmp" || exit 75
printf '%s\\n%s\\n' "$SENDER" "$RECIPIENT" > "$f.env" || exit 75
mv "$f.tmp" "$f.eml" || exit 75
`;

function list(xs: string[] | undefined): string {
  return (xs ?? []).map((x) => x.replace(/[:\\]/g, (c) => `\\${c}`)).join(' : ');
}

/** Start an Exim daemon on a free 127.0.0.1 port. */
export function startExim(opts: EximServerOptions = {}): Promise<EximServer> {
  return retryOnPortClash(() => startEximOnce(opts));
}

async function startEximOnce(opts: EximServerOptions): Promise<EximServer> {
  const { dir, spool, log, mail } = eximDirs('exim');
  writeFileSync(join(dir, 'deliver.sh'), DELIVER_SH, { mode: 0o755 });
  const host = '127.0.0.1';
  const port = await freePort(host);
  const pki = testPki();
  const tls = opts.tls !== false;
  // Exim loads the certificate as its own user, which cannot read the test PKI's root-only folder.
  const certPath = join(dir, 'server.crt');
  const keyPath = join(dir, 'server.key');
  if (tls) {
    const ids = userIds(EXIM_USER);
    copyFileSync(pki.certPath, certPath);
    copyFileSync(pki.keyPath, keyPath);
    chmodSync(keyPath, 0o600);
    chownSync(keyPath, ids.uid, ids.gid);
    chmodSync(certPath, 0o644);
  }
  const hostname = opts.hostname ?? 'exim.test';
  const on = (v: boolean | undefined) => (v === false ? '' : '*');
  const users = opts.auth?.users ?? {};
  const usersFile = join(dir, 'users');
  writeFileSync(
    usersFile,
    Object.entries(users)
      .map(([u, p]) => `${u}: ${p}\n`)
      .join(''),
  );
  chmodSync(usersFile, 0o644);
  const authAdvertise = opts.auth
    ? opts.auth.tlsOnly === false || !tls
      ? '*'
      : // biome-ignore lint/suspicious/noTemplateCurlyInString: an Exim expansion, not a JS template
        '${if eq{$tls_in_cipher}{}{}{*}}'
    : '';
  const conf = `
exim_path = ${PEER_PATHS.exim}
spool_directory = ${spool}
log_file_path = ${log}/%slog
primary_hostname = ${hostname}
qualify_domain = ${hostname}
daemon_smtp_ports = ${port}
local_interfaces = 127.0.0.1
host_lookup =
rfc1413_hosts =
keep_environment =
received_header_text =
accept_8bitmime = true
chunking_advertise_hosts = ${on(opts.chunking)}
pipelining_advertise_hosts = ${on(opts.pipelining)}
pipelining_connect_advertise_hosts =
dsn_advertise_hosts = ${on(opts.dsn)}
smtputf8_advertise_hosts = ${on(opts.smtputf8)}
prdr_enable = false
tls_advertise_hosts = ${tls ? '*' : ''}
${tls ? `tls_certificate = ${certPath}\ntls_privatekey = ${keyPath}` : ''}
auth_advertise_hosts = ${authAdvertise}
message_size_limit = ${opts.messageSizeLimit ?? 52_428_800}
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data

begin acl
acl_rcpt:
${opts.rejectRecipients?.length ? `  deny    recipients = ${list(opts.rejectRecipients)}\n          message = 5.1.1 no such user` : ''}
  accept
acl_data:
  accept

begin routers
dump:
  driver = accept
  transport = dump

begin transports
dump:
  driver = pipe
  command = ${dir}/deliver.sh ${mail}
  user = ${EXIM_USER}
  message_prefix =
  message_suffix =
  return_fail_output

begin retry
* * F,1m,1m

begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if and{{!eq{$auth2}{}}{eq{\${lookup{$auth2}lsearch{${usersFile}}}}{$auth3}}}}
  server_set_id = $auth2
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = \${if and{{!eq{$auth1}{}}{eq{\${lookup{$auth1}lsearch{${usersFile}}}}{$auth2}}}}
  server_set_id = $auth1
`;
  const confPath = join(dir, 'exim.conf');
  writeFileSync(confPath, conf, { mode: 0o644 });
  // -bdf: daemon in the foreground (we own its PID); -oX: listening port; no queue runner.
  const daemon = new Daemon('exim', PEER_PATHS.exim, ['-C', confPath, '-bdf', '-oX', String(port)]);
  const stop = async () => {
    // Let deliveries in progress finish (their processes outlive the daemon and would write into a
    // removed folder): wait, briefly, for the spool to hold no message.
    const input = join(spool, 'input');
    await pollUntil(
      () => (!existsSync(input) || readdirSync(input).every((f) => !f.endsWith('-H')) ? true : undefined),
      5_000,
      () => 'exim spool to drain',
    ).catch(() => {});
    await daemon.stop();
    removePeerDir(dir);
  };
  try {
    await waitForGreeting(host, port, {
      alive: () => daemon.running,
      describe: () => `exim ${daemon.describeExit()}: ${daemon.output()}\n${readLog(log)}`,
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const messages = (): EximMessage[] => {
    if (!existsSync(mail)) return [];
    return readdirSync(mail)
      .filter((f) => f.endsWith('.eml'))
      .map((f) => ({ f, t: statSync(join(mail, f)).mtimeMs }))
      .sort((a, b) => a.t - b.t || a.f.localeCompare(b.f))
      .map(({ f }) => {
        const base = f.slice(0, -'.eml'.length);
        const [sender = '', recipient = ''] = readFileSync(join(mail, `${base}.env`), 'utf8').split('\n');
        const content = new Uint8Array(readFileSync(join(mail, f)));
        return { id: base.split('.')[0] ?? base, sender, recipient, content, contentCrlf: lfToCrlf(content) };
      });
  };
  return {
    host,
    port,
    pid: daemon.pid,
    dir,
    caCertPath: pki.caCertPath,
    mainlog: () => readLog(log),
    messages,
    waitForMessages: (count, timeoutMs = 30_000) =>
      pollUntil(
        () => {
          const m = messages();
          return m.length >= count ? m : undefined;
        },
        timeoutMs,
        () => `${count} exim deliveries (have ${messages().length}); log:\n${readLog(log)}`,
      ),
    stop,
  };
}

export interface EximSendOptions {
  host?: string;
  port: number;
  from: string;
  to: string[];
  /** The message (header + body); LF or CRLF line endings. */
  message: string | Uint8Array;
  /** Use BDAT when offered (`hosts_try_chunking`, default true). */
  chunking?: boolean;
  /** 'starttls' requires STARTTLS; 'tls' is implicit TLS (protocol = smtps); default 'none'. */
  security?: 'none' | 'starttls' | 'tls';
  /** PEM CA file to verify the server (default: the test CA). */
  caCertPath?: string;
  auth?: { user: string; pass: string; mechanism?: 'PLAIN' | 'LOGIN' };
  helo?: string;
  timeoutMs?: number;
}

export interface EximSendResult extends RunResult {
  /** Exim's id for the submitted message. */
  messageId: string | undefined;
  /** True when the main log shows every recipient delivered (`=>`/`->`) and none failed or deferred. */
  delivered: boolean;
  /** True when the transcript shows BDAT. */
  usedChunking: boolean;
  /** Client SMTP commands as Exim logged them with -v (`SMTP>> ...`, `SMTP|> ...`, `SMTP+> ...`). */
  commands: string[];
  mainlog: string;
}

function deliveredAll(mainlog: string, id: string, recipients: number): boolean {
  let ok = 0;
  for (const line of mainlog.split('\n')) {
    const m = /^\S+ \S+ (\S+) (=>|->|\*\*|==) /.exec(line);
    if (m?.[1] !== id) continue;
    if (m[2] === '=>' || m[2] === '->') ok++;
    else return false;
  }
  return ok === recipients;
}

/** Submit one message with Exim as the SMTP client, delivering in the foreground to host:port. */
export async function runEximSend(opts: EximSendOptions): Promise<EximSendResult> {
  const { dir, spool, log } = eximDirs('exim-client');
  const security = opts.security ?? 'none';
  // Exim reads the CA after dropping to its own user: give it a copy it can read.
  const ca = join(dir, 'ca.crt');
  copyFileSync(opts.caCertPath ?? testPki().caCertPath, ca);
  chmodSync(ca, 0o644);
  const auth = opts.auth;
  const mech = auth?.mechanism ?? 'PLAIN';
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/\^/g, '^^').replace(/"/g, '\\"');
  const conf = `
exim_path = ${PEER_PATHS.exim}
spool_directory = ${spool}
log_file_path = ${log}/%slog
primary_hostname = exim-client.test
qualify_domain = exim-client.test
host_lookup =
keep_environment =
received_header_text =
acl_not_smtp_start = acl_local

begin acl
acl_local:
  accept control = suppress_local_fixups

begin routers
out:
  driver = manualroute
  route_list = * ${opts.host ?? '127.0.0.1'}
  self = send
  transport = remote

begin transports
remote:
  driver = smtp
  port = ${opts.port}
  allow_localhost
  helo_data = ${opts.helo ?? 'exim-client.test'}
  hosts_try_chunking = ${opts.chunking === false ? '' : '*'}
  hosts_try_prdr =
  hosts_pipe_connect =
  hosts_try_fastopen =
  ${security === 'none' ? 'hosts_avoid_tls = *' : `hosts_require_tls = *\n  tls_verify_certificates = ${ca}\n  tls_verify_hosts = *\n  tls_verify_cert_hostnames =`}
  ${security === 'tls' ? 'protocol = smtps' : ''}
  ${auth ? 'hosts_require_auth = *' : ''}

begin retry
* * F,1m,1m

begin authenticators
${
  auth
    ? mech === 'PLAIN'
      ? `plain:\n  driver = plaintext\n  public_name = PLAIN\n  client_send = ^${esc(auth.user)}^${esc(auth.pass)}`
      : `login:\n  driver = plaintext\n  public_name = LOGIN\n  client_send = : ${esc(auth.user)} : ${esc(auth.pass)}`
    : ''
}
`;
  const confPath = join(dir, 'exim.conf');
  writeFileSync(confPath, conf, { mode: 0o644 });
  try {
    const r = await runCommand(
      PEER_PATHS.exim,
      ['-C', confPath, '-odf', '-oi', '-v', '-f', opts.from, '--', ...opts.to],
      {
        input: opts.message,
        timeoutMs: opts.timeoutMs ?? 60_000,
      },
    );
    const mainlog = readLog(log);
    const messageId = /^\S+ \S+ (\S+) <= /m.exec(mainlog)?.[1];
    // -v writes the SMTP transcript to stderr.
    const commands = `${r.stdout}\n${r.stderr}`
      .split('\n')
      .map((l) => /^\s+SMTP(?:>>|\|>|\+>) (.*)$/.exec(l)?.[1])
      .filter((c): c is string => c !== undefined);
    return {
      ...r,
      messageId,
      delivered: messageId !== undefined && deliveredAll(mainlog, messageId, opts.to.length),
      usedChunking: commands.some((c) => c.startsWith('BDAT ')),
      commands,
      mainlog,
    };
  } finally {
    removePeerDir(dir);
  }
}
