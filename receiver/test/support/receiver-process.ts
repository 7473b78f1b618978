/**
 * Start the receiver the way a user does: a child process `node receiver/src/main.ts` configured
 * only by environment variables. Ports are 0 (ephemeral); the `listening` log line reports them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MAIN = join(REPO, 'receiver', 'src', 'main.ts');

export type LogLine = Record<string, unknown> & { msg?: string; event?: string };

export interface ReceiverProcess {
  child: ChildProcess;
  ports: { mx?: number; submission?: number; submissions?: number; http?: number };
  lines: LogLine[];
  stderr(): string;
  /** Resolve with the first log line (past or future) matching `pred`. */
  waitFor(pred: (l: LogLine) => boolean, what?: string): Promise<LogLine>;
  /** Send a signal and resolve with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Variables that every test run sets (listen on loopback, ephemeral ports, quiet SDK). */
export function baseEnv(): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    RECEIVER_BIND: '127.0.0.1',
    RECEIVER_HOSTNAME: 'mx.test.example',
    RECEIVER_MX_PORT: '0',
    RECEIVER_SUBMISSION_PORT: '0',
    RECEIVER_SUBMISSIONS_PORT: '0',
    RECEIVER_HTTP_PORT: '0',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** Run the receiver to completion (for configuration errors): exit code, stdout and stderr. */
export function runReceiver(
  env: Record<string, string>,
  args: string[] = [],
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env,
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

export async function startReceiver(env: Record<string, string>): Promise<ReceiverProcess> {
  const child = spawn(process.execPath, [MAIN], { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let err = '';
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text };
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (pred: (l: LogLine) => boolean, what = 'a log line') => {
    const found = lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<LogLine>((resolve, reject) => {
      waiters.push({ pred, resolve });
      void exited.then((code) =>
        reject(new Error(`receiver exited (${code}) before ${what}; stderr: ${err}`)),
      );
    });
  };
  const ready = await waitFor((l) => l.event === 'listening', 'listening');
  return {
    child,
    ports: ready['ports'] as ReceiverProcess['ports'],
    lines,
    stderr: () => err,
    waitFor,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(killer);
      return code;
    },
  };
}
