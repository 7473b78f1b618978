/**
 * A private Postfix instance (`postfix -c DIR start|stop`) on a high 127.0.0.1 port. It leaves
 * /etc/postfix and any system Postfix alone: its own main.cf/master.cf, queue, data directory and
 * log file live in a temp directory. Every recipient is delivered by a `pipe` transport that writes
 * the message (as Postfix would hand it to a mailbox, LF line endings, with Postfix's `Received:`
 * first) and its envelope to files that tests read back.
 *
 * STARTTLS (and optionally an implicit-TLS listener) uses the test PKI; SASL uses Cyrus with an
 * sasldb file written by saslpasswd2 (Debian package sasl2-bin); BDAT/CHUNKING, SMTPUTF8, DSN,
 * 8BITMIME and PIPELINING are Postfix 3.7 defaults.
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
  dropFirstField,
  freePort,
  lfToCrlf,
  PEER_PATHS,
  peerDir,
  pidAlive,
  pollUntil,
  removePeerDir,
  requirePeers,
  requireRoot,
  retryOnPortClash,
  runCommand,
  track,
  userIds,
  waitForGreeting,
} from './process.ts';

export interface PrivatePostfixOptions {
  /** myhostname; default `postfix.test`. Local and any other domain are all delivered to files. */
  hostname?: string;
  /** Offer STARTTLS with the test PKI's localhost certificate (default true). */
  tls?: boolean;
  /** Refuse mail until STARTTLS (smtpd_tls_security_level=encrypt). */
  requireTls?: boolean;
  /** Also listen on a second port with implicit TLS (smtpd_tls_wrappermode, as on port 465). */
  implicitTls?: boolean;
  /** Cyrus SASL with an sasldb holding these users (name -> password). */
  sasl?: {
    users: Record<string, string>;
    /** Default PLAIN LOGIN CRAM-MD5. */
    mechanisms?: string[];
    /** Offer AUTH only after STARTTLS (smtpd_tls_auth_only); default true. */
    tlsOnly?: boolean;
  };
  /** Announce CHUNKING (default true). */
  chunking?: boolean;
  /** smtputf8_enable (default true). */
  smtputf8?: boolean;
  /** Announce DSN (default true). */
  dsn?: boolean;
  /** message_size_limit in bytes (default Postfix's 10240000). */
  messageSizeLimit?: number;
  /** Recipients rejected at RCPT with `550 5.7.1 <addr>: Recipient address rejected: no such user`. */
  rejectRecipients?: string[];
  /**
   * Relay mail for every domain except our own (`hostname`, `localhost`) to this SMTP server with
   * Postfix's smtp(8) client: `relayhost = [host]:port`. `tls`: 'none', 'may', 'encrypt' (TLS
   * required, not verified) or 'verify' (TLS required, chain checked against the test CA and the
   * name `localhost`). Local recipients (e.g. the sender of a bounce) still go to the files.
   */
  relayHost?: { host: string; port: number; tls?: 'none' | 'may' | 'encrypt' | 'verify' };
  /** Extra main.cf settings, applied last. */
  main?: Record<string, string>;
}

/** One delivered copy (a message to several recipients is delivered once, with all of them). */
export interface PostfixMessage {
  queueId: string;
  /** Envelope sender; '' for the null reverse-path (bounces and DSNs). */
  sender: string;
  recipients: string[];
  /** What the pipe transport received: Postfix's Received: header + the message, LF endings. */
  raw: Uint8Array;
  /** The Received: header Postfix prepended (unfolded lines, LF endings). */
  received: string;
  /** The message as the client sent it (Postfix's Received: removed), CRLF endings. */
  content: Uint8Array;
}

export interface PrivatePostfix {
  host: string;
  /** The SMTP port (STARTTLS when enabled). */
  port: number;
  /** The implicit-TLS port, when `implicitTls` was asked for. */
  implicitTlsPort: number | undefined;
  dir: string;
  /** CA that signed the server certificate (trust it in clients). */
  caCertPath: string;
  maillog(): string;
  messages(): PostfixMessage[];
  waitForMessages(count: number, timeoutMs?: number): Promise<PostfixMessage[]>;
  /** smtpd's "disconnect from" lines, e.g. `... ehlo=1 starttls=1 mail=1 rcpt=1 bdat=1 quit=1 commands=6`. */
  sessionSummaries(): string[];
  stop(): Promise<void>;
}

const DELIVER_SH = `#!/bin/sh
# Postfix pipe(8) delivery for the interop suite: $1 = mail dir, $2 = queue id, $3 = sender,
# then the recipients. Message on stdin. The .eml appears last (rename), so a reader that sees it
# also sees the complete .env.
dir=$1; id=$2; shift 2
f="$dir/$id.$$"
cat > "$f.tmp" || exit 75
printf '%s\\n' "$@" > "$f.env" || exit 75
mv "$f.tmp" "$f.eml" || exit 75
`;

/** Start a private Postfix instance; needs root (postfix start/stop) and the postfix package. */
export function startPrivatePostfix(opts: PrivatePostfixOptions = {}): Promise<PrivatePostfix> {
  return retryOnPortClash(() => startPrivatePostfixOnce(opts));
}

async function startPrivatePostfixOnce(opts: PrivatePostfixOptions): Promise<PrivatePostfix> {
  requirePeers('postfix');
  requireRoot('a private postfix instance');
  if (opts.sasl) requirePeers('saslpasswd2');
  const host = '127.0.0.1';
  const hostname = opts.hostname ?? 'postfix.test';
  const dir = peerDir('postfix');
  chmodSync(dir, 0o755); // postfix daemons and the pipe user (nobody) traverse it
  const etc = join(dir, 'etc');
  const queue = join(dir, 'queue');
  const data = join(dir, 'data');
  const mail = join(dir, 'mail');
  // Debian's Postfix looks for $config_directory/sasl/smtpd.conf (whatever cyrus_sasl_config_path says).
  const sasl = join(etc, 'sasl');
  for (const d of [etc, queue, data, mail]) mkdirSync(d);
  const pf = userIds('postfix');
  const nobody = userIds('nobody');
  chownSync(data, pf.uid, pf.gid);
  chownSync(mail, nobody.uid, nobody.gid);
  writeFileSync(join(dir, 'deliver.sh'), DELIVER_SH, { mode: 0o755 });

  const port = await freePort(host);
  const implicitTlsPort = opts.implicitTls ? await freePort(host) : undefined;
  const tls = opts.tls !== false || opts.implicitTls === true;
  const pki = testPki();
  const main: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: queue,
    data_directory: data,
    myhostname: hostname,
    mydomain: hostname,
    myorigin: '$myhostname',
    mydestination: '$myhostname, localhost',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    maillog_file: join(dir, 'maillog'),
    maillog_file_prefixes: dir,
    smtpd_banner: '$myhostname ESMTP Postfix',
    biff: 'no',
    alias_maps: '',
    alias_database: '',
    local_recipient_maps: '',
    // Do not touch headers of mail from 127.0.0.1 (no added Date/Message-ID/From).
    local_header_rewrite_clients: '',
    local_transport: 'dump',
    default_transport: 'dump',
    relay_transport: 'dump',
    virtual_transport: 'dump',
    dump_destination_recipient_limit: '1000',
    smtputf8_enable: opts.smtputf8 === false ? 'no' : 'yes',
    smtpd_relay_restrictions: 'permit_mynetworks, permit_sasl_authenticated, reject',
    delay_warning_time: '0',
    in_flow_delay: '0',
  };
  const discard: string[] = [];
  if (opts.chunking === false) discard.push('chunking');
  if (opts.dsn === false) discard.push('dsn');
  if (discard.length) main['smtpd_discard_ehlo_keywords'] = discard.join(', ');
  if (opts.messageSizeLimit !== undefined) main['message_size_limit'] = String(opts.messageSizeLimit);
  if (opts.rejectRecipients?.length) {
    // texthash: needs no postmap; one "address action" per line.
    const table = join(etc, 'reject_recipients');
    writeFileSync(table, opts.rejectRecipients.map((r) => `${r} REJECT no such user\n`).join(''));
    main['smtpd_recipient_restrictions'] = `check_recipient_access texthash:${table}, permit`;
    main['access_map_reject_code'] = '550';
  }
  if (tls) {
    Object.assign(main, {
      smtpd_tls_cert_file: pki.certPath,
      smtpd_tls_key_file: pki.keyPath,
      smtpd_tls_security_level: opts.requireTls ? 'encrypt' : 'may',
      smtpd_tls_loglevel: '1',
      smtpd_tls_session_cache_database: '',
    });
  } else {
    main['smtpd_tls_security_level'] = 'none';
  }
  if (opts.sasl) {
    mkdirSync(sasl);
    chmodSync(sasl, 0o755);
    const db = join(sasl, 'sasldb2');
    for (const [user, pass] of Object.entries(opts.sasl.users)) {
      const r = await runCommand(PEER_PATHS.saslpasswd2, ['-p', '-c', '-f', db, '-u', hostname, user], {
        input: pass,
      });
      if (r.code !== 0) throw new Error(`saslpasswd2 failed: ${r.stderr}`);
    }
    chownSync(db, pf.uid, pf.gid);
    const mechs = opts.sasl.mechanisms ?? ['PLAIN', 'LOGIN', 'CRAM-MD5'];
    writeFileSync(
      join(sasl, 'smtpd.conf'),
      `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: ${mechs.join(' ')}\nsasldb_path: ${db}\n`,
    );
    Object.assign(main, {
      smtpd_sasl_auth_enable: 'yes',
      smtpd_sasl_type: 'cyrus',
      smtpd_sasl_path: 'smtpd',
      cyrus_sasl_config_path: sasl,
      smtpd_sasl_local_domain: '$myhostname',
      smtpd_sasl_security_options: 'noanonymous',
      smtpd_tls_auth_only: opts.sasl.tlsOnly === false ? 'no' : 'yes',
    });
  }
  if (opts.relayHost) {
    const level = opts.relayHost.tls ?? 'verify';
    // A copy the unprivileged smtp(8) can read (the test PKI's folder is root-only).
    const ca = join(etc, 'relay-ca.crt');
    copyFileSync(pki.caCertPath, ca);
    chmodSync(ca, 0o644);
    Object.assign(main, {
      relayhost: `[${opts.relayHost.host}]:${opts.relayHost.port}`,
      default_transport: 'smtp',
      relay_transport: 'smtp',
      smtp_helo_name: '$myhostname',
      smtp_tls_security_level: level,
      smtp_tls_CAfile: ca,
      smtp_tls_verify_cert_match: 'localhost',
      smtp_tls_loglevel: '1',
      smtp_tls_session_cache_database: '',
      // Tests want an answer now: no retries that outlive them.
      maximal_queue_lifetime: '0',
      bounce_queue_lifetime: '0',
    });
  }
  Object.assign(main, opts.main ?? {});
  writeFileSync(
    join(etc, 'main.cf'),
    Object.entries(main)
      .map(([k, v]) => `${k} = ${v}\n`)
      .join(''),
  );

  // Every service unchrooted (column 5 = n): the instance lives outside /var/spool/postfix.
  const services = [
    `${host}:${port} inet n - n - - smtpd`,
    ...(implicitTlsPort !== undefined
      ? [
          `${host}:${implicitTlsPort} inet n - n - - smtpd`,
          '  -o smtpd_tls_wrappermode=yes',
          '  -o smtpd_tls_security_level=encrypt',
        ]
      : []),
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'tlsmgr unix - - n 1000? 1 tlsmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
    'dump unix - n n - - pipe',
    `  flags=X user=nobody null_sender= argv=${dir}/deliver.sh ${mail} \${queue_id} \${sender} \${recipient}`,
  ];
  writeFileSync(join(etc, 'master.cf'), `${services.join('\n')}\n`);

  const postfix = (cmd: string) => runCommand(PEER_PATHS.postfix, ['-c', etc, cmd], { timeoutMs: 30_000 });
  const masterPid = (): number | undefined => {
    const f = join(queue, 'pid', 'master.pid');
    if (!existsSync(f)) return undefined;
    const n = Number(readFileSync(f, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  };
  const maillog = () => {
    const f = join(dir, 'maillog');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  };
  let stopped = false;
  const untrack = track({
    killNow: () => {
      const pid = masterPid();
      if (pid !== undefined && pidAlive(pid)) process.kill(pid, 'SIGKILL');
    },
  });
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const pid = masterPid();
    await postfix('stop');
    if (pid !== undefined) {
      try {
        await pollUntil(
          () => (pidAlive(pid) ? undefined : true),
          10_000,
          () => `postfix master ${pid} to exit`,
        );
      } catch {
        process.kill(pid, 'SIGKILL');
      }
    }
    untrack();
    removePeerDir(dir);
  };

  const started = await postfix('start');
  if (started.code !== 0) {
    const log = maillog();
    await stop().catch(() => {});
    throw new Error(`postfix start failed (${started.code}): ${started.stdout}${started.stderr}\n${log}`);
  }
  try {
    await waitForGreeting(host, port, { describe: () => `postfix maillog:\n${maillog()}` });
    if (implicitTlsPort !== undefined) {
      await waitForGreeting(host, implicitTlsPort, {
        tlsCa: pki.caCert,
        describe: () => `postfix maillog:\n${maillog()}`,
      });
    }
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }

  const messages = (): PostfixMessage[] => {
    if (!existsSync(mail)) return [];
    const emls = readdirSync(mail)
      .filter((f) => f.endsWith('.eml'))
      .map((f) => ({ f, t: statSync(join(mail, f)).mtimeMs }))
      .sort((a, b) => a.t - b.t || a.f.localeCompare(b.f));
    return emls.map(({ f }) => {
      const base = f.slice(0, -'.eml'.length);
      const raw = readFileSync(join(mail, f));
      const env = readFileSync(join(mail, `${base}.env`), 'utf8').split('\n');
      env.pop(); // trailing newline
      const { field, rest } = dropFirstField(raw, 'Received');
      return {
        queueId: base.split('.')[0] ?? base,
        sender: env[0] ?? '',
        recipients: env.slice(1),
        raw,
        received: field,
        content: lfToCrlf(rest),
      };
    });
  };
  return {
    host,
    port,
    implicitTlsPort,
    dir,
    caCertPath: pki.caCertPath,
    maillog,
    messages,
    waitForMessages: (count, timeoutMs = 30_000) =>
      pollUntil(
        () => {
          const m = messages();
          return m.length >= count ? m : undefined;
        },
        timeoutMs,
        () => `${count} postfix deliveries (have ${messages().length}); maillog:\n${maillog()}`,
      ),
    sessionSummaries: () =>
      maillog()
        .split('\n')
        .filter((l) => /postfix\/smtpd\[\d+\]: disconnect from /.test(l)),
    stop,
  };
}
