/**
 * `npm start` end to end, as a newcomer runs it: spawn `scripts/start.ts` (with a temporary state
 * and data directory and free ports), wait for the printed `curl`, run that exact request with
 * fetch, find the stored message, press Ctrl-C (SIGINT), and check that the receiver, wrangler and
 * its workerd children are all gone.
 *
 * Needs the receiver (`receiver/src/main.ts`) and the Worker (`workers/src/index.ts`, `wrangler.toml`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processGroupAlive } from '../../scripts/lib/children.ts';
import { freePort } from '../../scripts/lib/net.ts';

const REPO = resolve(import.meta.dirname, '../..');
const missing = ['receiver/src/main.ts', 'workers/src/index.ts', 'wrangler.toml'].filter(
  (p) => !existsSync(join(REPO, p)),
);

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stateDir: string;
  dataDir: string;
  ports: Record<'worker' | 'mx' | 'submission' | 'submissions' | 'http', number>;
}

const runs: Run[] = [];
const temp: string[] = [];

async function startStack(extraEnv: Record<string, string> = {}): Promise<Run> {
  const root = mkdtempSync(join(tmpdir(), 'smtp-edge-npm-start-'));
  temp.push(root);
  const ports = {
    worker: await freePort(),
    mx: await freePort(),
    submission: await freePort(),
    submissions: await freePort(),
    http: await freePort(),
  };
  const stateDir = join(root, 'state');
  const dataDir = join(root, 'data');
  const child = spawn(process.execPath, [join(REPO, 'scripts/start.ts')], {
    cwd: REPO,
    env: {
      ...process.env,
      SMTP_EDGE_STATE_DIR: stateDir,
      SMTP_EDGE_DATA_DIR: dataDir,
      SMTP_EDGE_WORKER_PORT: String(ports.worker),
      SMTP_EDGE_MX_PORT: String(ports.mx),
      SMTP_EDGE_SUBMISSION_PORT: String(ports.submission),
      SMTP_EDGE_SUBMISSIONS_PORT: String(ports.submissions),
      SMTP_EDGE_HTTP_PORT: String(ports.http),
      SMTP_EDGE_READY_TIMEOUT: '90',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const run: Run = { child, output: () => out, exited, stateDir, dataDir, ports };
  runs.push(run);
  return run;
}

async function waitForOutput(run: Run, marker: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let done = false;
  void run.exited.then(() => {
    done = true;
  });
  while (!run.output().includes(marker)) {
    if (done) throw new Error(`npm start exited before printing "${marker}":\n${run.output()}`);
    if (Date.now() > until) throw new Error(`no "${marker}" within ${timeoutMs} ms:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((r) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      r(true);
    });
    socket.on('error', () => r(false));
  });
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

afterEach(async () => {
  for (const run of runs.splice(0)) {
    if (run.child.exitCode === null) {
      run.child.kill('SIGKILL');
      await run.exited;
    }
  }
  for (const d of temp.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(missing.length > 0)(`npm start (needs ${missing.join(', ') || 'nothing more'})`, () => {
  it('runs the stack, sends the printed curl through Worker -> receiver -> disk, and stops cleanly on Ctrl-C', {
    timeout: 180_000,
  }, async () => {
    const repoDevVars = existsSync(join(REPO, '.dev.vars'));
    const run = await startStack();
    await waitForOutput(run, 'Press Ctrl-C to stop both.', 120_000);
    const out = run.output();

    // The printed request, taken apart exactly as a shell would see it.
    const url = /curl -sS (http:\/\/127\.0\.0\.1:\d+\/send) \\/.exec(out)?.[1];
    const auth = /-H 'Authorization: Bearer ([^']+)' \\/.exec(out)?.[1];
    const body = /-d '(\{[^']+\})'/.exec(out)?.[1];
    expect(url).toBe(`http://127.0.0.1:${run.ports.worker}/send`);
    const credentials = JSON.parse(readFileSync(join(run.stateDir, 'credentials.json'), 'utf8')) as {
      apiKey: string;
      username: string;
    };
    expect(auth).toBe(credentials.apiKey);
    expect(body).toBeDefined();
    const pids = /Starting the receiver \(pid (\d+)\) and the Worker under wrangler dev \(pid (\d+)\)/.exec(
      out,
    );
    expect(pids).not.toBeNull();
    const receiverPid = Number(pids?.[1]);
    const workerPid = Number(pids?.[2]);

    const response = await fetch(url as string, {
      method: 'POST',
      headers: { Authorization: `Bearer ${auth}`, 'Content-Type': 'application/json' },
      body,
    });
    const result = (await response.json()) as {
      messageId?: string;
      accepted?: string[];
      rejected?: unknown[];
    };
    expect({ status: response.status, result }).toMatchObject({
      status: 200,
      result: { accepted: ['you@example.org'], rejected: [] },
    });
    expect(result.messageId).toMatch(/^<[^<>@\s]+@localhost>$/);

    // 200 means the relay said 250, which the receiver says only once both files are stored.
    const files = filesUnder(run.dataDir);
    const eml = files.filter((f) => f.endsWith('.eml'));
    const json = files.filter((f) => f.endsWith('.json'));
    expect(eml).toHaveLength(1);
    expect(json).toHaveLength(1);
    const message = readFileSync(eml[0] as string, 'utf8');
    expect(message.startsWith('Received: ')).toBe(true);
    expect(message).toContain('\r\nSubject: Hello from smtp-edge\r\n');
    expect(message).toContain(`\r\nMessage-ID: ${result.messageId}\r\n`);
    expect(message).toContain('It works: Worker -> receiver -> disk.');
    const envelope = JSON.parse(readFileSync(json[0] as string, 'utf8')) as Record<string, unknown>;
    expect(envelope).toMatchObject({
      mailFrom: `${credentials.username}@localhost`,
      authUser: credentials.username,
    });
    expect(JSON.stringify(envelope['rcptTo'])).toContain('you@example.org');

    // Ctrl-C: everything stops, exit code 0, no process of either group left, ports closed.
    expect(processGroupAlive(receiverPid)).toBe(true);
    expect(processGroupAlive(workerPid)).toBe(true);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('Stopped.');
    expect(processGroupAlive(receiverPid)).toBe(false);
    expect(processGroupAlive(workerPid)).toBe(false);
    for (const port of Object.values(run.ports))
      expect({ port, open: await portOpen(port) }).toEqual({ port, open: false });

    // A temporary state directory never touches the repository's .dev.vars.
    expect(existsSync(join(REPO, '.dev.vars'))).toBe(repoDevVars);
  });

  it('Ctrl-C during start-up stops both before they are ready, exit code 0', {
    timeout: 120_000,
  }, async () => {
    const run = await startStack();
    await waitForOutput(run, 'and the Worker under wrangler dev (pid', 60_000);
    const pids = /Starting the receiver \(pid (\d+)\) and the Worker under wrangler dev \(pid (\d+)\)/.exec(
      run.output(),
    );
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.output()).not.toContain('smtp-edge is running.');
    expect(run.output()).toContain('Stopped.');
    expect(processGroupAlive(Number(pids?.[1]))).toBe(false);
    expect(processGroupAlive(Number(pids?.[2]))).toBe(false);
    for (const port of Object.values(run.ports))
      expect({ port, open: await portOpen(port) }).toEqual({ port, open: false });
  });

  it('stops everything and exits 1, naming the culprit, when the receiver cannot start', {
    timeout: 120_000,
  }, async () => {
    const run = await startStack({ RECEIVER_MAX_RECIPIENTS: 'banana' });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/npm start failed: the receiver stopped during start-up \(exit code 1\)/);
    expect(run.output()).toContain('RECEIVER_MAX_RECIPIENTS');
    const pids = /Starting the receiver \(pid (\d+)\) and the Worker under wrangler dev \(pid (\d+)\)/.exec(
      run.output(),
    );
    expect(processGroupAlive(Number(pids?.[1]))).toBe(false);
    expect(processGroupAlive(Number(pids?.[2]))).toBe(false);
    for (const port of Object.values(run.ports))
      expect({ port, open: await portOpen(port) }).toEqual({ port, open: false });
  });
});
