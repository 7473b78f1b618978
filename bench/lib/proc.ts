/**
 * Process plumbing for the benchmarks: start children (Node scripts and Debian binaries), wait for
 * them to listen, read their CPU time from /proc, and stop exactly the processes we started.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = resolve(BENCH_DIR, '..');

const CLK_TCK = 100;

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once('error', fail);
    s.listen({ port: 0, host: '127.0.0.1' }, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => ok(port));
    });
  });
}

/** Resolve when something accepts TCP connections on 127.0.0.1:port (or reject after timeoutMs). */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((done) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        done(true);
      });
      s.once('error', () => done(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** User+system CPU time of a process (and its waited-for children) in milliseconds, from /proc. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) may contain spaces: split after the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After comm: state is index 0, so utime (field 14) is index 11 and stime index 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / CLK_TCK;
}

/** Whole-machine CPU jiffies (all cores) from /proc/stat: busy and total. */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Resident set size of a process in bytes, from /proc. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Stop one child we started: SIGTERM, then SIGKILL after graceMs. */
export async function stop(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Every child started through this module, so `stopAll` can clean up after a failure or Ctrl-C. */
const children = new Set<ChildProcess>();

export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stop(c, 1_000)));
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** Run a program to completion (bounded by timeoutMs, then SIGKILL). */
export function run(
  file: string,
  args: readonly string[],
  options: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<RunResult> {
  return new Promise((ok, fail) => {
    const started = performance.now();
    const child = track(
      spawn(file, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: options.env ?? process.env,
        cwd: options.cwd,
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < 1_000_000) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 1_000_000) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      ok({ code, signal, stdout, stderr, wallMs: performance.now() - started });
    });
  });
}

/** Messages a Node child sends over IPC. */
export type ChildMessage = { type: string; [key: string]: unknown };

/**
 * A Node child process (run with the same Node 22 binary as this script) that talks over IPC:
 * it sends `{type:'ready', ...}` once listening; `request()` sends a message and waits for the
 * reply of the same type.
 */
export class NodeChild {
  readonly child: ChildProcess;
  readonly ready: Promise<ChildMessage>;
  #stderr = '';

  constructor(
    script: string,
    options: { args?: string[]; env?: NodeJS.ProcessEnv; execArgv?: string[] } = {},
  ) {
    this.child = track(
      fork(script, options.args ?? [], {
        execArgv: options.execArgv ?? [],
        env: options.env ?? process.env,
        stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      }),
    );
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (this.#stderr.length < 100_000) this.#stderr += d;
    });
    this.ready = this.#next('ready', 30_000);
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error('child has no pid');
    return pid;
  }

  get stderr(): string {
    return this.#stderr;
  }

  #next(type: string, timeoutMs: number): Promise<ChildMessage> {
    return new Promise((ok, fail) => {
      const onMessage = (m: unknown): void => {
        const msg = m as ChildMessage;
        if (msg.type === 'error') done(() => fail(new Error(String(msg['message']))));
        else if (msg.type === type) done(() => ok(msg));
      };
      const onExit = (code: number | null): void =>
        done(() =>
          fail(new Error(`child exited (${code}) waiting for ${type}: ${this.#stderr.slice(-2000)}`)),
        );
      const timer = setTimeout(
        () =>
          done(() => fail(new Error(`child: no ${type} in ${timeoutMs} ms: ${this.#stderr.slice(-2000)}`))),
        timeoutMs,
      );
      const done = (f: () => void): void => {
        clearTimeout(timer);
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        f();
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
    });
  }

  request(message: ChildMessage, timeoutMs = 60_000): Promise<ChildMessage> {
    const reply = this.#next(message.type, timeoutMs);
    this.child.send(message);
    return reply;
  }

  cpuMs(): number {
    return cpuMs(this.pid);
  }

  stop(): Promise<void> {
    return stop(this.child);
  }
}
