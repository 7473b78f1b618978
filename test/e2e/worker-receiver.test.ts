/**
 * End to end, Worker → receiver → S3: `POST /send` to the Worker running under `wrangler dev`
 * (workerd, the same runtime as production), which relays with STARTTLS and AUTH through the
 * real receiver's submission port (a child process, `node receiver/src/main.ts`), which stores
 * into s3rver. The test CA is trusted by workerd through NODE_EXTRA_CA_CERTS.
 *
 * Checks: the stored `.eml` is our `Received:` line followed by the message the Worker composed
 * (parsed back: subject, text, html, attachment, Message-ID, no Bcc), and the `.json` envelope
 * lists every recipient, Bcc included, with the submission listener, TLS and the AUTH user.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, splitStored, testPki, USER, usersFile } from '../../receiver/test/support/fixtures.ts';
import {
  baseEnv,
  type ReceiverProcess,
  startReceiver,
} from '../../receiver/test/support/receiver-process.ts';
import { eventually, startTestS3, type TestS3 } from '../../receiver/test/support/s3.ts';
import { freePort, waitForHttp } from '../../scripts/lib/net.ts';

const REPO = resolve(import.meta.dirname, '../..');
const WRANGLER = join(REPO, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const API_KEY = 'e2e-worker-key-5f1c';
const PREFIX = 'inbound/worker';

const pki = testPki();
let s3: TestS3;
let rx: ReceiverProcess;
let worker: ChildProcess;
let workerExited: Promise<number | null>;
let workerOutput = '';
let workerUrl: string;
const temp: string[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
  const state = mkdtempSync(join(tmpdir(), 'smtp-edge-worker-e2e-'));
  temp.push(state);
  rx = await startReceiver({
    ...baseEnv(),
    ...s3.env(PREFIX),
    RECEIVER_MX_PORT: 'off',
    RECEIVER_SUBMISSIONS_PORT: 'off',
    RECEIVER_TLS_CERT: pki.certPath,
    RECEIVER_TLS_KEY: pki.keyPath,
    RECEIVER_USERS_FILE: await usersFile(state),
  });

  // The Worker's variables and secrets, as `npm run dev` reads them from .dev.vars.
  const devVars = join(state, 'worker.vars');
  writeFileSync(
    devVars,
    [
      `API_KEYS=${API_KEY}`,
      'SMTP_HOST=localhost',
      `SMTP_PORT=${rx.ports.submission}`,
      'SMTP_SECURITY=starttls',
      `SMTP_USERNAME=${USER}`,
      `SMTP_PASSWORD=${PASSWORD}`,
      'SMTP_HELO=worker.e2e.test',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  workerUrl = `http://127.0.0.1:${port}`;
  worker = spawn(
    process.execPath,
    [
      WRANGLER,
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(await freePort()),
      '--env-file',
      devVars,
      '--persist-to',
      join(state, 'wrangler-state'),
      '--show-interactive-dev-session=false',
    ],
    {
      cwd: REPO,
      // Its own process group, so that stopping it also stops its workerd children.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: pki.caCertPath,
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        WRANGLER_SEND_METRICS: 'false',
        WRANGLER_LOG_PATH: join(state, 'wrangler-logs'),
        CI: '1',
      },
    },
  );
  worker.stdout?.on('data', (d: Buffer) => {
    workerOutput += d.toString();
  });
  worker.stderr?.on('data', (d: Buffer) => {
    workerOutput += d.toString();
  });
  workerExited = new Promise((r) => worker.once('exit', (code) => r(code)));
  await waitForHttp(`${workerUrl}/openapi.json`, {
    timeoutMs: 90_000,
    ready: (status) => status === 200,
    abandon: () => (worker.exitCode !== null ? `wrangler dev exited:\n${workerOutput}` : null),
  });
}, 120_000);

afterAll(async () => {
  if (worker?.pid !== undefined && worker.exitCode === null) {
    process.kill(-worker.pid, 'SIGTERM');
    const stopped = await Promise.race([
      workerExited,
      new Promise((r) => setTimeout(() => r('timeout'), 10_000)),
    ]);
    if (stopped === 'timeout') process.kill(-worker.pid, 'SIGKILL');
  }
  const code = await rx?.stop();
  await s3?.close();
  for (const d of temp) rmSync(d, { recursive: true, force: true });
  expect(code).toBe(0);
}, 60_000);

const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0xff]);

async function send(body: unknown): Promise<Response> {
  return fetch(`${workerUrl}/send`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('Worker → receiver submission (STARTTLS + AUTH) → S3', () => {
  it('stores the composed message, and the envelope holds every recipient including Bcc', async () => {
    const res = await send({
      from: { name: 'Edge Sender', address: 'app@example.org' },
      to: ['zoe@example.com', '"Jan Novák" <jan@example.net>'],
      cc: 'team@example.org',
      bcc: ['audit@example.org', 'archive@example.com'],
      subject: 'Quarterly report — Q3',
      text: 'Hello,\r\n\r\nthe report is attached.\r\n.\r\nBye',
      html: '<p>Hello,</p><p>the report is attached.</p>',
      attachments: [{ filename: 'chart.png', content: Buffer.from(PNG).toString('base64') }],
      headers: { 'X-Report': 'q3' },
    });
    const body = (await res.json()) as {
      ok: boolean;
      messageId: string;
      accepted: string[];
      rejected: unknown[];
    };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(res.headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/);
    const everyone = [
      'zoe@example.com',
      'jan@example.net',
      'team@example.org',
      'audit@example.org',
      'archive@example.com',
    ];
    expect(body.accepted).toEqual(everyone);
    expect(body.rejected).toEqual([]);

    // Find the stored pair by the Message-ID the Worker returned.
    let eml: Uint8Array | undefined;
    let emlKey = '';
    await eventually(async () => {
      for (const key of await s3.keys()) {
        if (!key.endsWith('.eml')) continue;
        const bytes = await s3.get(key);
        if (Buffer.from(bytes).includes(`Message-ID: ${body.messageId}`)) {
          eml = bytes;
          emlKey = key;
          return true;
        }
      }
      return false;
    }, 'the stored message');
    expect(emlKey.startsWith(`${PREFIX}/`)).toBe(true);
    const envelope = JSON.parse(
      Buffer.from(await s3.get(emlKey.replace(/\.eml$/, '.json'))).toString('utf8'),
    ) as Record<string, unknown>;
    expect(envelope).toMatchObject({
      listener: 'submission',
      mailFrom: 'app@example.org',
      rcptTo: everyone,
      authUser: USER,
      helo: { verb: 'EHLO', name: 'worker.e2e.test' },
    });
    expect((envelope['tls'] as { protocol: string }).protocol).toMatch(/^TLSv1\.[23]$/);

    const { received, body: message } = splitStored(eml!);
    // The client declared the exact size of what it sent (RFC 1870), and that is what was stored.
    expect(envelope['messageSize']).toBe(message.byteLength);
    expect((envelope['params'] as { mail: { size: number } }).mail.size).toBe(message.byteLength);
    expect(received).toMatch(/^Received: from worker\.e2e\.test /);
    const text = Buffer.from(message).toString('utf8');
    expect(text).not.toMatch(/^bcc:/im);
    expect(text).not.toContain('audit@example.org');
    expect(text).not.toContain('archive@example.com');
    expect(text).toMatch(/^X-Report: q3\r$/m);
    const parsed = await PostalMime.parse(message);
    expect(parsed.messageId).toBe(body.messageId);
    expect(parsed.subject).toBe('Quarterly report — Q3');
    expect(parsed.from).toEqual({ name: 'Edge Sender', address: 'app@example.org' });
    expect(parsed.to).toEqual([
      { name: '', address: 'zoe@example.com' },
      { name: 'Jan Novák', address: 'jan@example.net' },
    ]);
    expect(parsed.cc).toEqual([{ name: '', address: 'team@example.org' }]);
    expect(parsed.text?.replace(/\n$/, '')).toBe('Hello,\n\nthe report is attached.\n.\nBye');
    expect(parsed.html?.trimEnd()).toBe('<p>Hello,</p><p>the report is attached.</p>');
    expect(parsed.attachments).toHaveLength(1);
    expect(parsed.attachments[0]?.filename).toBe('chart.png');
    expect(parsed.attachments[0]?.mimeType).toBe('image/png');
    expect(new Uint8Array(parsed.attachments[0]?.content as ArrayBuffer)).toEqual(PNG);
  });
});
