/**
 * Postfix's stand-alone test programs, used without any Postfix daemon:
 * - `smtp-sink`: a fast SMTP server with fault injection that dumps each transaction to a file;
 * - `smtp-source`: a load-generating SMTP client (plain DATA, no pipelining).
 * See smtp-sink(1) and smtp-source(1).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
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
  retryOnPortClash,
  runCommand,
  userIds,
  waitForGreeting,
} from './process.ts';

export interface SmtpSinkOptions {
  /** Name in the greeting and EHLO reply (`-h`); default `smtp-sink`. */
  hostname?: string;
  /** false: do not announce PIPELINING (`-p`). */
  pipelining?: boolean;
  /** false: do not announce DSN (`-N`). */
  dsn?: boolean;
  /** false: do not announce 8BITMIME (`-8`). */
  eightBitMime?: boolean;
  /** false: do not announce ENHANCEDSTATUSCODES (`-E`). */
  enhancedStatusCodes?: boolean;
  /** false: do not announce AUTH (`-a`). smtp-sink accepts any credentials. */
  auth?: boolean;
  /** false: no ESMTP at all, EHLO is refused (`-e`). */
  esmtp?: boolean;
  /** Commands answered with a hard error (`-f`), e.g. ['RCPT'] or ['.']. Implies no PIPELINING. */
  hardReject?: string[];
  /** Commands answered with a soft error (`-r`). Implies no PIPELINING. */
  softReject?: string[];
  /** Commands after which the sink drops the connection without replying (`-q`). */
  disconnect?: string[];
  /** Commands answered with 421 and a disconnect (`-Q`). */
  disconnect421?: string[];
  /** Reply text for hard rejects (`-B`), default "500 5.3.0 Error: command failed". */
  hardBounceReply?: string;
  /** Reply text for soft rejects (`-b`), default "450 4.3.0 Error: command failed". */
  softBounceReply?: string;
  /** Seconds to wait before answering DATA (`-w`). */
  dataDelaySeconds?: number;
  /** Per-command delays (`-W command:delay[:odds]`). */
  commandDelays?: string[];
  /** Abort with 550 this many seconds after answering DATA (`-A`). */
  abortAfterDataSeconds?: number;
  /** Maximal simultaneous connections (`-m`, default 256). */
  maxConcurrency?: number;
  /** Per-command read/write time limit in seconds (`-t`, default 100). */
  timeoutSeconds?: number;
  /** false: do not dump messages (fast path for load tests). Default true. */
  dump?: boolean;
  /** Wait for a 220 greeting before returning (default true; set false when CONNECT is faulted). */
  waitForGreeting?: boolean;
  extraArgs?: string[];
}

/** One transaction as smtp-sink dumped it (see "DUMP FILE FORMAT" in smtp-sink(1)). */
export interface SinkMessage {
  file: string;
  clientAddr: string;
  proto: string;
  helo: string | undefined;
  /** The MAIL command's arguments as sent, e.g. `<a@b> RET=HDRS ENVID=x`. */
  mailArgs: string;
  /** Each RCPT command's arguments as sent, in order. */
  rcptArgs: string[];
  /** Reverse-path without the angle brackets. */
  mailFrom: string;
  /** Forward-paths without the angle brackets. */
  rcptTo: string[];
  /** The 3-line `Received:` header smtp-sink wrote (not part of what the client sent). */
  received: string;
  /** Message content as received, dot-unstuffed, lines ending in LF (smtp-sink's storage form). */
  content: Uint8Array;
  /** `content` with CRLF line endings: the bytes the client meant to send. */
  contentCrlf: Uint8Array;
}

export interface SmtpSink {
  host: string;
  port: number;
  pid: number | undefined;
  dumpDir: string;
  /** Every complete dumped transaction, oldest first. */
  messages(): SinkMessage[];
  /** Wait until at least `count` transactions have been dumped. */
  waitForMessages(count: number, timeoutMs?: number): Promise<SinkMessage[]>;
  /** smtp-sink's own stdout/stderr. */
  output(): string;
  stop(): Promise<void>;
}

function pathOf(args: string): string {
  const m = /^<([^>]*)>/.exec(args.trim());
  return m?.[1] ?? args.trim().split(' ')[0] ?? '';
}

/** Parse one smtp-sink dump file; undefined when it is not complete yet. */
export function parseSinkDump(file: string, bytes: Uint8Array): SinkMessage | undefined {
  const fields: Record<string, string[]> = {};
  let pos = 0;
  const line = (): string | undefined => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl === -1) return undefined;
    const l = Buffer.from(bytes.subarray(pos, nl)).toString('utf8');
    pos = nl + 1;
    return l;
  };
  let received = '';
  for (;;) {
    const l = line();
    if (l === undefined) return undefined;
    const m = /^(X-[A-Za-z-]+|Received): ?(.*)$/.exec(l);
    if (!m) return undefined;
    if (m[1] === 'Received') {
      const l2 = line();
      const l3 = line();
      if (l2 === undefined || l3 === undefined) return undefined;
      received = `${l}\n${l2}\n${l3}\n`;
      break;
    }
    const key = m[1] ?? '';
    fields[key] = [...(fields[key] ?? []), m[2] ?? ''];
  }
  // smtp-sink appends one empty line after the content: a complete dump ends with "\n\n" or is
  // exactly an empty message plus that line.
  const rest = bytes.subarray(pos);
  if (rest.length === 0 || rest[rest.length - 1] !== 0x0a) return undefined;
  if (rest.length >= 2 && rest[rest.length - 2] !== 0x0a) return undefined;
  const content = rest.slice(0, rest.length - 1);
  const mailArgs = fields['X-Mail-Args']?.[0] ?? '';
  const rcptArgs = fields['X-Rcpt-Args'] ?? [];
  return {
    file,
    clientAddr: fields['X-Client-Addr']?.[0] ?? '',
    proto: fields['X-Client-Proto']?.[0] ?? '',
    helo: fields['X-Helo-Args']?.[0],
    mailArgs,
    rcptArgs,
    mailFrom: pathOf(mailArgs),
    rcptTo: rcptArgs.map(pathOf),
    received,
    content,
    contentCrlf: lfToCrlf(content),
  };
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

/** Start postfix's smtp-sink on a free 127.0.0.1 port. */
export function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  return retryOnPortClash(() => startSmtpSinkOnce(opts));
}

async function startSmtpSinkOnce(opts: SmtpSinkOptions): Promise<SmtpSink> {
  requirePeers('smtpSink');
  const dir = peerDir('sink');
  chmodSync(dir, 0o755); // smtp-sink writes as nobody
  const dumpDir = join(dir, 'dump');
  mkdirSync(dumpDir);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const nobody = userIds('nobody');
    chownSync(dumpDir, nobody.uid, nobody.gid);
  }
  const host = '127.0.0.1';
  const port = await freePort(host);
  const args: string[] = [];
  if (asRoot) args.push('-u', 'nobody');
  if (opts.hostname) args.push('-h', opts.hostname);
  if (opts.pipelining === false) args.push('-p');
  if (opts.dsn === false) args.push('-N');
  if (opts.eightBitMime === false) args.push('-8');
  if (opts.enhancedStatusCodes === false) args.push('-E');
  if (opts.auth === false) args.push('-a');
  if (opts.esmtp === false) args.push('-e');
  if (opts.hardReject?.length) args.push('-f', opts.hardReject.join(','));
  if (opts.softReject?.length) args.push('-r', opts.softReject.join(','));
  if (opts.disconnect?.length) args.push('-q', opts.disconnect.join(','));
  if (opts.disconnect421?.length) args.push('-Q', opts.disconnect421.join(','));
  if (opts.hardBounceReply) args.push('-B', opts.hardBounceReply);
  if (opts.softBounceReply) args.push('-b', opts.softBounceReply);
  if (opts.dataDelaySeconds !== undefined) args.push('-w', String(opts.dataDelaySeconds));
  for (const d of opts.commandDelays ?? []) args.push('-W', d);
  if (opts.abortAfterDataSeconds !== undefined) args.push('-A', String(opts.abortAfterDataSeconds));
  if (opts.maxConcurrency !== undefined) args.push('-m', String(opts.maxConcurrency));
  if (opts.timeoutSeconds !== undefined) args.push('-t', String(opts.timeoutSeconds));
  // Each transaction to its own file; "%s." is the epoch, smtp-sink appends a random hex suffix.
  if (opts.dump !== false) args.push('-d', `${dumpDir}/%s.`);
  args.push(...(opts.extraArgs ?? []), `${host}:${port}`, '256');

  const daemon = new Daemon('smtp-sink', PEER_PATHS.smtpSink, args);
  const stop = async () => {
    await daemon.stop();
    removePeerDir(dir);
  };
  try {
    if (opts.waitForGreeting !== false) {
      await waitForGreeting(host, port, {
        alive: () => daemon.running,
        describe: () => `smtp-sink ${daemon.describeExit()}: ${daemon.output()}`,
      });
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const messages = (): SinkMessage[] => {
    const files = listFiles(dumpDir)
      .map((f) => ({ f, t: statSync(f).mtimeMs }))
      .sort((a, b) => a.t - b.t || a.f.localeCompare(b.f));
    const out: SinkMessage[] = [];
    for (const { f } of files) {
      const m = parseSinkDump(f, readFileSync(f));
      if (m) out.push(m);
    }
    return out;
  };
  return {
    host,
    port,
    pid: daemon.pid,
    dumpDir,
    messages,
    waitForMessages: (count, timeoutMs = 30_000) =>
      pollUntil(
        () => {
          const m = messages();
          return m.length >= count ? m : undefined;
        },
        timeoutMs,
        () => `${count} smtp-sink messages (have ${messages().length}); sink output: ${daemon.output()}`,
      ),
    output: () => daemon.output(),
    stop,
  };
}

export interface SmtpSourceOptions {
  host?: string;
  port: number;
  /** Messages in total (`-m`), default 1. */
  messages?: number;
  /** Parallel sessions (`-s`), default 1. */
  sessions?: number;
  /** Recipients per transaction (`-r`). */
  recipients?: number;
  /** Payload bytes per message, headers excluded (`-l`). */
  bodyBytes?: number;
  /** Send this pre-formatted message file (`-F`); smtp-source dot-stuffs it and ends lines with CRLF. */
  messageFile?: string;
  from?: string;
  to?: string;
  /** HELO name and default address domain (`-M`). */
  helo?: string;
  subject?: string;
  /** Keep the connection open and send the next message over it (`-d`). */
  reuseConnection?: boolean;
  /** Do not abort on an unexpected reply (`-A`). */
  noAbort?: boolean;
  /** Count DATA completions on stdout (`-c`). */
  counter?: boolean;
  timeoutMs?: number;
  extraArgs?: string[];
}

/** Run postfix's smtp-source against host:port; resolves when it exits. */
export function runSmtpSource(opts: SmtpSourceOptions): Promise<RunResult> {
  requirePeers('smtpSource');
  const args: string[] = ['-4'];
  if (opts.messages !== undefined) args.push('-m', String(opts.messages));
  if (opts.sessions !== undefined) args.push('-s', String(opts.sessions));
  if (opts.recipients !== undefined) args.push('-r', String(opts.recipients));
  if (opts.bodyBytes !== undefined) args.push('-l', String(opts.bodyBytes));
  if (opts.messageFile !== undefined) args.push('-F', opts.messageFile);
  if (opts.from !== undefined) args.push('-f', opts.from);
  if (opts.to !== undefined) args.push('-t', opts.to);
  if (opts.helo !== undefined) args.push('-M', opts.helo);
  if (opts.subject !== undefined) args.push('-S', opts.subject);
  if (opts.reuseConnection) args.push('-d');
  if (opts.noAbort) args.push('-A');
  if (opts.counter) args.push('-c');
  args.push(...(opts.extraArgs ?? []), `inet:${opts.host ?? '127.0.0.1'}:${opts.port}`);
  return runCommand(PEER_PATHS.smtpSource, args, { timeoutMs: opts.timeoutMs ?? 120_000 });
}
