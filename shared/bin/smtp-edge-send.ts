#!/usr/bin/env node
/**
 * smtp-edge-send: send one message to an SMTP server from a shell, strictly, on the Node adapter.
 *
 *   smtp-edge-send --host smtp.example.org --port 587 --security starttls \
 *     --user ann --password '…' --from ann@example.org --to bob@example.net message.eml
 *
 * Prints one JSON line on stdout (the result, or the error) and exits with a documented code.
 * Runs under Node 22 type stripping; no build step.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { connectSmtp } from '../src/adapter/node/client.ts';
import type { DsnOptions, SendEnvelope, SendResult, SmtpClientOptions } from '../src/core/client/options.ts';
import { SmtpConfigError, SmtpError } from '../src/core/errors.ts';
import { composeMessage } from '../src/core/mime/compose.ts';
import { replyToString } from '../src/core/status.ts';

/** Exit codes (also in --help and docs/how-to/send-with-the-client.md). */
export const EXIT = {
  /** Every recipient accepted. */
  ok: 0,
  /** The message was accepted for some recipients, refused for others. */
  partial: 1,
  /** Bad command line or option (config). */
  usage: 2,
  /** The server refused: MAIL, every RCPT, DATA/BDAT, or the greeting (reply). */
  refused: 3,
  /** Authentication failed or impossible (auth). */
  auth: 4,
  /** TLS failed, or STARTTLS required and not available (tls). */
  tls: 5,
  /** Connection failed or lost, timeout, protocol violation, abort. */
  connection: 6,
  /** The message or an envelope field cannot be sent as given (message). */
  message: 7,
} as const;

const HELP = `Usage: smtp-edge-send [options] [FILE|-]

Send one message (an .eml FILE, stdin with "-" or no FILE, or one composed from --subject/--text)
and print one JSON line: {"accepted":[...],"rejected":[...],"response":"250 ..."} or {"error":{...}}.

Connection:
  --host HOST               SMTP server (required)
  --port PORT               default: 465 for tls, 587 for starttls, 25 for none
  --security MODE           starttls (default) | tls (implicit, RFC 8314) | none
  --starttls-policy P       required | opportunistic (default: required with --user)
  --helo NAME               EHLO name (default: this host's FQDN, else its address literal)
  --ca FILE                 trust this CA (PEM) instead of the system roots
  --insecure-tls            do not verify the server certificate (testing only)
  --timeout MS              per-command timeout (default 300000, RFC 5321 section 4.5.3.2)
  --no-pipelining           never batch commands
  --no-chunking             never use BDAT
  --chunk-size OCTETS       BDAT chunk size (default 65536)
Authentication:
  --user NAME               AUTH user name
  --password SECRET         password (or set SMTP_EDGE_PASSWORD to keep it out of ps)
  --auth-mechanism M        PLAIN | LOGIN | CRAM-MD5 | XOAUTH2 (default: best offered)
  --insecure-auth           allow AUTH without TLS
Envelope:
  --from ADDRESS            reverse-path (required; "" for the null path <>)
  --to ADDRESS              recipient (repeatable, required)
  --dsn-notify LIST         NEVER or a comma list of SUCCESS,FAILURE,DELAY (RFC 3461)
  --dsn-ret FULL|HDRS       return the full message or headers only
  --envid ID                DSN envelope identifier
  --dsn-orcpt               send ORCPT for each recipient
  --dsn-drop                send anyway, without DSN, if the server lacks DSN
  --require-tls             REQUIRETLS (RFC 8689)
Composed message (instead of FILE):
  --subject TEXT            Subject
  --text TEXT               plain-text body
  -h, --help                this help

Exit codes: 0 every recipient accepted; 1 some recipients refused; 2 bad usage; 3 refused by the
server (MAIL, all RCPT, DATA); 4 authentication; 5 TLS; 6 connection, timeout or protocol error;
7 the message or an address cannot be sent as given.
`;

interface Output {
  line: string;
  code: number;
}

function errorOutput(err: unknown): Output {
  if (!(err instanceof SmtpError)) {
    const message = err instanceof Error ? err.message : String(err);
    return { line: JSON.stringify({ error: { kind: 'internal', message } }), code: EXIT.connection };
  }
  const e = err as SmtpError & {
    code?: number;
    enhancedCode?: string | null;
    rejected?: unknown;
    stage?: string;
    field?: string;
  };
  const error: Record<string, unknown> = {
    kind: e.kind,
    message: e.message,
    temporary: e.temporary,
  };
  if (e.command !== undefined) error.command = e.command;
  if (typeof e.code === 'number') error.code = e.code;
  if (e.enhancedCode !== undefined) error.enhancedCode = e.enhancedCode;
  if (e.rejected !== undefined) error.rejected = e.rejected;
  if (e.stage !== undefined) error.stage = e.stage;
  if (e.field !== undefined) error.field = e.field;
  const code: Record<string, number> = {
    config: EXIT.usage,
    reply: EXIT.refused,
    auth: EXIT.auth,
    tls: EXIT.tls,
    connection: EXIT.connection,
    timeout: EXIT.connection,
    protocol: EXIT.connection,
    aborted: EXIT.connection,
    message: EXIT.message,
  };
  return { line: JSON.stringify({ error }), code: code[e.kind] ?? EXIT.connection };
}

function usage(message: string): never {
  throw new SmtpConfigError(message);
}

async function readStdin(): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Uint8Array);
  return Buffer.concat(parts);
}

/** Parse argv, send, and return the line to print and the exit code. Never throws. */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<Output> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        security: { type: 'string' },
        'starttls-policy': { type: 'string' },
        helo: { type: 'string' },
        ca: { type: 'string' },
        'insecure-tls': { type: 'boolean' },
        timeout: { type: 'string' },
        'no-pipelining': { type: 'boolean' },
        'no-chunking': { type: 'boolean' },
        'chunk-size': { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        'auth-mechanism': { type: 'string' },
        'insecure-auth': { type: 'boolean' },
        from: { type: 'string' },
        to: { type: 'string', multiple: true },
        'dsn-notify': { type: 'string' },
        'dsn-ret': { type: 'string' },
        envid: { type: 'string' },
        'dsn-orcpt': { type: 'boolean' },
        'dsn-drop': { type: 'boolean' },
        'require-tls': { type: 'boolean' },
        subject: { type: 'string' },
        text: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) return { line: HELP.trimEnd(), code: EXIT.ok };
    const security = (values.security ?? 'starttls') as SmtpClientOptions['security'];
    if (!['starttls', 'tls', 'none'].includes(security)) usage('--security must be starttls, tls or none');
    if (values.host === undefined) usage('--host is required');
    if (values.from === undefined) usage('--from is required ("" for the null reverse-path)');
    const to = values.to ?? [];
    if (to.length === 0) usage('at least one --to is required');
    const port =
      values.port === undefined ? { tls: 465, starttls: 587, none: 25 }[security] : Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) usage('--port must be a number from 1 to 65535');
    const policy = values['starttls-policy'];
    if (policy !== undefined && policy !== 'required' && policy !== 'opportunistic') {
      usage('--starttls-policy must be required or opportunistic');
    }
    const num = (name: string, v: string | undefined): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) usage(`--${name} must be a positive integer`);
      return n;
    };

    const options: SmtpClientOptions = { host: values.host, port, security };
    if (policy !== undefined) options.starttlsPolicy = policy;
    if (values.helo !== undefined) options.helo = values.helo;
    const tls: NonNullable<SmtpClientOptions['tls']> = {};
    if (values.ca !== undefined) tls.ca = readFileSync(values.ca, 'utf8');
    if (values['insecure-tls']) tls.rejectUnauthorized = false;
    if (Object.keys(tls).length > 0) options.tls = tls;
    const timeout = num('timeout', values.timeout);
    if (timeout !== undefined)
      options.timeouts = { commandMs: timeout, greetingMs: timeout, dataMs: timeout };
    if (values['no-pipelining']) options.pipelining = false;
    const chunkSize = num('chunk-size', values['chunk-size']);
    if (values['no-chunking']) options.chunking = false;
    else if (chunkSize !== undefined) options.chunking = { chunkSize };
    if (values.user !== undefined) {
      const password = values.password ?? env.SMTP_EDGE_PASSWORD;
      if (password === undefined) usage('--user needs --password (or SMTP_EDGE_PASSWORD)');
      const mechanism = values['auth-mechanism'];
      if (mechanism !== undefined && !['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'].includes(mechanism)) {
        usage('--auth-mechanism must be PLAIN, LOGIN, CRAM-MD5 or XOAUTH2');
      }
      options.auth =
        mechanism === 'XOAUTH2'
          ? { username: values.user, accessToken: password, mechanism }
          : {
              username: values.user,
              password,
              ...(mechanism === undefined ? {} : { mechanism: mechanism as 'PLAIN' | 'LOGIN' | 'CRAM-MD5' }),
            };
    } else if (values.password !== undefined) {
      usage('--password needs --user');
    }
    if (values['insecure-auth']) options.allowInsecureAuth = true;
    if (values['dsn-drop']) options.dsnUnsupported = 'drop';

    const envelope: SendEnvelope = { from: values.from, to };
    const dsn: DsnOptions = {};
    const notify = values['dsn-notify'];
    if (notify !== undefined) {
      const list = notify.split(',').map((s) => s.trim().toUpperCase());
      if (list.length === 1 && list[0] === 'NEVER') dsn.notify = 'NEVER';
      else if (list.every((n) => n === 'SUCCESS' || n === 'FAILURE' || n === 'DELAY')) {
        dsn.notify = list as ('SUCCESS' | 'FAILURE' | 'DELAY')[];
      } else usage('--dsn-notify must be NEVER or a comma list of SUCCESS, FAILURE, DELAY');
    }
    const ret = values['dsn-ret']?.toUpperCase();
    if (ret !== undefined) {
      if (ret !== 'FULL' && ret !== 'HDRS') usage('--dsn-ret must be FULL or HDRS');
      dsn.ret = ret;
    }
    if (values.envid !== undefined) dsn.envid = values.envid;
    if (values['dsn-orcpt']) dsn.orcpt = true;
    if (Object.keys(dsn).length > 0) envelope.dsn = dsn;
    if (values['require-tls']) envelope.requireTls = true;

    // The message: a file, stdin, or composed.
    const composing = values.subject !== undefined || values.text !== undefined;
    if (positionals.length > 1) usage('give at most one FILE');
    if (composing && positionals.length > 0) usage('give either FILE or --subject/--text, not both');
    let body: Uint8Array;
    let messageId: string | undefined;
    if (composing) {
      if (values.from === '') usage('a composed message needs a --from address');
      const composed = composeMessage({
        from: values.from,
        to,
        subject: values.subject ?? '',
        text: values.text ?? '',
      });
      body = composed.bytes;
      messageId = composed.messageId;
    } else {
      const file = positionals[0] ?? '-';
      // Read whole, so line length, 8-bit content and SIZE are checked before anything is sent.
      body = file === '-' ? await readStdin() : readFileSync(file);
    }

    const session = await connectSmtp(options);
    let result: SendResult;
    try {
      result = await session.send(envelope, body);
    } finally {
      await session.quit();
    }
    const out: Record<string, unknown> = {
      accepted: result.accepted,
      rejected: result.rejected,
      response: replyToString(result.response),
    };
    if (messageId !== undefined) out.messageId = messageId;
    return { line: JSON.stringify(out), code: result.rejected.length === 0 ? EXIT.ok : EXIT.partial };
  } catch (err) {
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      return errorOutput(new SmtpConfigError(err.message));
    }
    if (err instanceof Error && 'code' in err && (err.code === 'ENOENT' || err.code === 'EACCES')) {
      return errorOutput(
        new SmtpConfigError(`cannot read ${(err as NodeJS.ErrnoException).path}: ${err.code}`),
      );
    }
    return errorOutput(err);
  }
}

function isMain(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isMain()) {
  const { line, code } = await run(process.argv.slice(2));
  process.stdout.write(`${line}\n`);
  process.exitCode = code;
}
