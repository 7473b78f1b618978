/**
 * Process plumbing for the interop peers: run a command to completion, keep a daemon alive and
 * stop it by PID, find a free loopback port, wait for an SMTP greeting, and remember every peer
 * started so a crashed test run does not leave servers behind.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

/** Where each third-party peer lives (Debian paths; exim is extracted by .ci/install-peers.sh). */
export const PEER_PATHS = {
  swaks: '/usr/bin/swaks',
  msmtp: '/usr/bin/msmtp',
  smtpSink: '/usr/sbin/smtp-sink',
  smtpSource: '/usr/sbin/smtp-source',
  postfix: '/usr/sbin/postfix',
  saslpasswd2: '/usr/sbin/saslpasswd2',
  /** Debian's interpreter: the one that has python3-aiosmtpd (a pyenv `python3` may not). */
  python3: '/usr/bin/python3',
  exim: process.env['SMTP_EDGE_EXIM'] ?? '/opt/smtp-edge-peers/exim/usr/sbin/exim4',
} as const;

export type PeerName = keyof typeof PEER_PATHS;

/** True when the peer's program is installed. */
export function peerAvailable(name: PeerName): boolean {
  if (!existsSync(PEER_PATHS[name])) return false;
  if (name === 'python3') {
    try {
      execFileSync(PEER_PATHS.python3, ['-c', 'import aiosmtpd'], { stdio: 'ignore' });
    } catch {
      return false;
    }
  }
  return true;
}

/** Throw a clear error (so the test file fails loudly) when a peer is missing. */
export function requirePeers(...names: PeerName[]): void {
  const missing = names.filter((n) => !peerAvailable(n));
  if (missing.length > 0) {
    throw new Error(
      `interop peer(s) missing: ${missing.map((n) => `${n} (${PEER_PATHS[n]})`).join(', ')}; ` +
        'run .ci/install-peers.sh as root',
    );
  }
}

/** Peers that change user (smtp-sink -u, postfix, exim -C) need root. */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root (CI runs as root)`);
}

/** Numeric uid/gid of a system user, e.g. `nobody`, `postfix`, `Debian-exim`. */
export function userIds(name: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** A fresh temp directory for one peer instance. */
export function peerDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `smtp-edge-${prefix}-`));
}

/** Remove a peer's directory unless SMTP_EDGE_KEEP_PEERS=1 (handy when debugging a failure). */
export function removePeerDir(dir: string): void {
  if (process.env['SMTP_EDGE_KEEP_PEERS'] === '1') return;
  rmSync(dir, { recursive: true, force: true });
}

export interface RunResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  input?: string | Uint8Array;
  env?: Record<string, string>;
  cwd?: string;
  /** Killed with SIGKILL after this long (default 60 s). */
  timeoutMs?: number;
}

/** Run a program to completion; never rejects for a non-zero exit (tests assert the code). */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
    child.stdin.on('error', () => {}); // the program may exit before reading all input
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** A loopback port that was free a moment ago (bind port 0, read it, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Run `start` again (up to `attempts` times) when it failed because its port was taken between
 * `freePort()` and the peer's own bind: other processes' outgoing connections draw local ports
 * from the same ephemeral range. Each attempt must pick a new port.
 */
export async function retryOnPortClash<T>(start: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (e) {
      const clash = /address already in use|EADDRINUSE|bind\(\) to port .* failed/i.test(
        String((e as Error)?.message),
      );
      if (!clash || i >= attempts) throw e;
    }
  }
}

/** Something we started and must stop: a child process or a daemonized instance. */
interface Live {
  /** Synchronous last-resort kill, used when the test process exits. */
  killNow(): void;
}
const live = new Set<Live>();
let exitHookInstalled = false;

export function track(item: Live): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const l of live) {
        try {
          l.killNow();
        } catch {
          // best effort at exit
        }
      }
    });
  }
  live.add(item);
  return () => live.delete(item);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A long-running peer process started by us and stopped by its PID. */
export class Daemon {
  readonly child: ChildProcess;
  readonly name: string;
  private readonly chunks: Buffer[] = [];
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private readonly untrack: () => void;

  constructor(
    name: string,
    cmd: string,
    args: readonly string[],
    opts: { env?: Record<string, string>; cwd?: string } = {},
  ) {
    this.name = name;
    this.child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (c: Buffer) => this.chunks.push(c));
    this.child.stderr?.on('data', (c: Buffer) => this.chunks.push(c));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.chunks.push(Buffer.from(`spawn error: ${e.message}\n`));
        this.exitInfo ??= { code: null, signal: null };
        resolve();
      });
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve();
      });
    });
    const pid = this.child.pid;
    this.untrack = track({
      killNow: () => {
        if (pid !== undefined && this.exitInfo === undefined) process.kill(pid, 'SIGKILL');
      },
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Everything the process wrote to stdout and stderr so far. */
  output(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  describeExit(): string {
    const e = this.exitInfo;
    return e === undefined ? 'running' : `exited code=${e.code} signal=${e.signal}`;
  }

  /** SIGTERM by PID, then SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.exitInfo === undefined && this.child.pid !== undefined) {
      this.child.kill('SIGTERM');
      const done = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!done) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    this.untrack();
  }
}

/**
 * Connect to host:port until the server greets with a complete 220 reply (multi-line aware), then
 * say QUIT. Retries on refused connections until `timeoutMs`; gives up early if `alive()` turns false.
 * Returns the greeting text.
 */
export async function waitForGreeting(
  host: string,
  port: number,
  opts: {
    timeoutMs?: number;
    alive?: () => boolean;
    describe?: () => string;
    /** Implicit TLS (port-465 style): handshake first, trusting this CA (PEM). */
    tlsCa?: string;
  } = {},
): Promise<string> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let lastError = '';
  while (Date.now() < deadline) {
    if (opts.alive && !opts.alive()) break;
    try {
      return await readGreeting(host, port, Math.max(500, deadline - Date.now()), opts.tlsCa);
    } catch (e) {
      lastError = (e as Error).message;
      await sleep(50);
    }
  }
  throw new Error(
    `no SMTP greeting from ${host}:${port}: ${lastError}${opts.describe ? `\n${opts.describe()}` : ''}`,
  );
}

function readGreeting(host: string, port: number, timeoutMs: number, tlsCa?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock =
      tlsCa === undefined
        ? connect({ host, port })
        : tlsConnect({ host, port, ca: tlsCa, servername: 'localhost' });
    let text = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('greeting timed out'));
    }, timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error(`closed before a full greeting: ${JSON.stringify(text)}`)));
    sock.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const lines = text.split('\r\n');
      const last = lines.length >= 2 ? lines[lines.length - 2] : undefined;
      if (last !== undefined && /^\d{3}( |$)/.test(last)) {
        clearTimeout(timer);
        sock.removeAllListeners('close');
        sock.removeAllListeners('error');
        sock.on('error', () => {});
        if (last.startsWith('220')) {
          sock.end('QUIT\r\n');
          resolve(text);
        } else {
          sock.destroy();
          reject(new Error(`greeting was not 220: ${JSON.stringify(text)}`));
        }
      }
    });
  });
}

/** Poll `probe` until it returns a value (not undefined) or time runs out. */
export async function pollUntil<T>(
  probe: () => T | undefined,
  timeoutMs: number,
  what: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await sleep(50);
  }
}

/** Is a PID alive (signal 0)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Split bytes on LF and rejoin with CRLF: peers that store mail with LF endings, back to wire form. */
export function lfToCrlf(bytes: Uint8Array): Uint8Array {
  let lf = 0;
  for (const b of bytes) if (b === 0x0a) lf++;
  const out = new Uint8Array(bytes.length + lf);
  let j = 0;
  for (const b of bytes) {
    if (b === 0x0a) out[j++] = 0x0d;
    out[j++] = b;
  }
  return out;
}

/** Drop the first header field (e.g. the `Received:` a peer prepended), with its folded lines. */
export function dropFirstField(bytes: Uint8Array, name: string): { field: string; rest: Uint8Array } {
  const text = Buffer.from(bytes).toString('latin1');
  if (!text.toLowerCase().startsWith(`${name.toLowerCase()}:`)) return { field: '', rest: bytes };
  let end = text.indexOf('\n');
  while (end !== -1 && (text[end + 1] === ' ' || text[end + 1] === '\t')) end = text.indexOf('\n', end + 1);
  if (end === -1) return { field: text, rest: new Uint8Array(0) };
  return { field: text.slice(0, end + 1), rest: bytes.slice(end + 1) };
}
