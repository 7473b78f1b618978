/**
 * docs/tutorials/run-your-first-receiver.md is executable: this test runs the shell commands of the
 * page itself, in order (s3rver, openssl, the receiver with the page's environment, smtp-edge-send,
 * the AWS CLI when installed, read-from-s3.ts), with only the directory and the ports replaced
 * so that it can run beside anything else. If the page drifts from the code, this fails.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processGroupAlive } from '../../scripts/lib/children.ts';
import { fencedBlocks } from '../../scripts/lib/doc-examples.ts';
import { freePort, waitForHttp } from '../../scripts/lib/net.ts';

const REPO = resolve(import.meta.dirname, '../..');
const PAGE = join(REPO, 'docs/tutorials/run-your-first-receiver.md');
const PAGE_DIR = '/tmp/smtp-edge-tutorial';

/** The page's shell commands: continuation lines joined, comments and blank lines dropped. */
function shellCommands(): string[] {
  const commands: string[] = [];
  for (const block of fencedBlocks(readFileSync(PAGE, 'utf8'))) {
    if (block.lang !== 'sh') continue;
    const joined = block.code.replace(/\\\n\s*/g, '');
    for (const line of joined.split('\n'))
      if (line.trim() !== '' && !line.trim().startsWith('#')) commands.push(line.trim());
  }
  return commands;
}

const hasAws = spawnSync('aws', ['--version'], { stdio: 'ignore' }).status === 0;

describe('tutorial: run your first receiver', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-edge-tutorial-'));
  const background: ChildProcess[] = [];
  let ports: { s3: number; mx: number; http: number };
  let commands: string[];
  const outputs = new Map<ChildProcess, string>();

  /** The page's command with our directory and ports. */
  const adapt = (command: string) =>
    command
      .replaceAll(PAGE_DIR, dir)
      .replaceAll('4568', String(ports.s3))
      .replaceAll('--port 2525', `--port ${ports.mx}`)
      .replaceAll('127.0.0.1:9025', `127.0.0.1:${ports.http}`);

  const run = (command: string) =>
    spawnSync('bash', ['-c', adapt(command)], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });

  const startBackground = (command: string, extraEnv: Record<string, string> = {}) => {
    const child = spawn('bash', ['-c', adapt(command)], {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...extraEnv },
    });
    outputs.set(child, '');
    const collect = (d: Buffer) => outputs.set(child, `${outputs.get(child)}${d.toString()}`);
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    background.push(child);
    return child;
  };

  beforeAll(async () => {
    ports = { s3: await freePort(), mx: await freePort(), http: await freePort() };
    commands = shellCommands();
  });

  afterAll(async () => {
    for (const child of background.reverse()) {
      if (child.pid === undefined) continue;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
      const until = Date.now() + 15_000;
      while (processGroupAlive(child.pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      if (processGroupAlive(child.pid)) process.kill(-child.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }, 40_000);

  it('steps 1-3: s3rver, a certificate and the receiver start as the page says', {
    timeout: 120_000,
  }, async () => {
    const mkdir = commands.find((c) => c.startsWith('mkdir -p'));
    expect(mkdir).toBe(`mkdir -p ${PAGE_DIR}`);
    const s3rver = commands.find((c) => c.includes('s3rver.js'));
    expect(s3rver).toBeDefined();
    const s3 = startBackground(s3rver as string);
    const until = Date.now() + 30_000;
    while (!outputs.get(s3)?.includes('S3rver listening') && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    expect(outputs.get(s3)).toContain(`S3rver listening on 127.0.0.1:${ports.s3}`);

    const openssl = commands.find((c) => c.startsWith('openssl req'));
    expect(openssl).toBeDefined();
    const cert = run(`cd ${PAGE_DIR} && ${openssl}`);
    expect(cert.status).toBe(0);
    const verify = execFileSync(
      'openssl',
      ['x509', '-in', join(dir, 'tls.crt'), '-noout', '-ext', 'subjectAltName'],
      {
        encoding: 'utf8',
      },
    );
    expect(verify).toContain('DNS:localhost');

    const receiver = commands.find((c) => c.endsWith('npm run receiver'));
    expect(receiver).toMatch(
      /^RECEIVER_HOSTNAME=mx\.localhost .*RECEIVER_STORE=s3:\/\/mail\/inbound .*npm run receiver$/,
    );
    // The page uses the default MX and HTTP ports; the test moves them.
    const child = startBackground(receiver as string, {
      RECEIVER_MX_PORT: String(ports.mx),
      RECEIVER_HTTP_PORT: String(ports.http),
    });
    await waitForHttp(`http://127.0.0.1:${ports.http}/readyz`, {
      timeoutMs: 60_000,
      ready: (status) => status === 200,
      abandon: () => (child.exitCode !== null ? `the receiver exited:\n${outputs.get(child)}` : null),
    });
    expect(outputs.get(child)).toContain('"msg":"receiver ready"');
  });

  it('step 4: a message for example.com is accepted, a relay attempt refused with 550 5.7.1', {
    timeout: 60_000,
  }, () => {
    const sends = commands.filter((c) => c.startsWith('npx smtp-edge-send'));
    expect(sends).toHaveLength(2);
    const accepted = run(sends[0] as string);
    expect({ status: accepted.status, stderr: accepted.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(accepted.stdout)).toMatchObject({
      accepted: ['bob@example.com'],
      rejected: [],
      response: expect.stringMatching(/^250 2\.0\.0 Ok: queued as \w+$/),
    });
    const relay = run(sends[1] as string);
    expect(relay.status).toBe(3);
    expect(JSON.parse(relay.stdout)).toMatchObject({
      error: { kind: 'reply', code: 550, enhancedCode: '5.7.1', command: 'RCPT' },
    });
  });

  it.skipIf(!hasAws)('step 5: the AWS CLI lists the .eml and .json pair', { timeout: 60_000 }, () => {
    const exportLine = commands.find((c) => c.startsWith('export AWS_ACCESS_KEY_ID'));
    const ls = commands.find((c) => c.startsWith('aws ') && c.includes(' s3 ls '));
    expect(exportLine).toBeDefined();
    const r = run(`${exportLine} && ${ls}`);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ inbound\/\d{4}\/\d{2}\/\d{2}\/\w+\.eml\n/);
    expect(r.stdout).toMatch(/ inbound\/\d{4}\/\d{2}\/\d{2}\/\w+\.json\n/);
  });

  it('step 5: read-from-s3.ts prints the envelope and the exact message', { timeout: 60_000 }, () => {
    const read = commands.find((c) => c.includes('docs/examples/read-from-s3.ts'));
    expect(read).toBeDefined();
    const r = run(read as string);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toMatch(/^1 message\(s\) in s3:\/\/mail\/inbound\n/);
    expect(r.stdout).toContain('envelope: from <alice@example.net> to <bob@example.com>,');
    // The message is printed as stored: CRLF line ends.
    expect(r.stdout).toMatch(
      /^Received: from client\.localhost \(\[127\.0\.0\.1\]\)\r\n\tby mx\.localhost with ESMTPS /m,
    );
    expect(r.stdout).toContain('\r\nSubject: Hello, bucket\r\n');
    expect(r.stdout).toContain('\r\n\r\nThis message is stored in S3.\r\n');
  });
});
