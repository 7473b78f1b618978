/**
 * The Workers examples run under `wrangler dev` as the pages say:
 *  - docs/examples/workers/send-from-a-worker.ts sends through a real SMTP server (our Node
 *    server, STARTTLS with the test CA, AUTH PLAIN);
 *  - docs/examples/workers/call-the-mailer.ts calls the smtp-edge Worker's `Mailer` entrypoint
 *    over a service binding (two Workers in one wrangler dev), which relays to the same server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { reject } from '@smtp-edge/protocol';
import { createSmtpServer, type NodeSmtpServer } from '@smtp-edge/protocol/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processGroupAlive } from '../../scripts/lib/children.ts';
import { freePort, waitForHttp } from '../../scripts/lib/net.ts';
import { testPki } from '../support/tls.ts';

const REPO = resolve(import.meta.dirname, '../..');

interface Received {
  user: string | null;
  tls: string | null;
  from: string;
  to: string[];
  text: string;
}

const received: Received[] = [];
let server: NodeSmtpServer;
let smtpPort = 0;
const temp = mkdtempSync(join(tmpdir(), 'smtp-edge-worker-examples-'));

interface Wrangler {
  child: ChildProcess;
  port: number;
  output: () => string;
}

async function startWrangler(args: string[], readyStatus: number): Promise<Wrangler> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      join(REPO, 'node_modules/wrangler/bin/wrangler.js'),
      'dev',
      ...args,
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--show-interactive-dev-session=false',
    ],
    {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: testPki().caCertPath,
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        WRANGLER_SEND_METRICS: 'false',
      },
    },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  await waitForHttp(`http://127.0.0.1:${port}/`, {
    timeoutMs: 90_000,
    ready: (status) => status === readyStatus,
    abandon: () => (child.exitCode !== null ? `wrangler exited:\n${output}` : null),
  });
  return { child, port, output: () => output };
}

async function stopWrangler(w: Wrangler | undefined): Promise<void> {
  const pid = w?.child.pid;
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {}
  const until = Date.now() + 10_000;
  while (processGroupAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  if (processGroupAlive(pid)) process.kill(-pid, 'SIGKILL');
}

beforeAll(async () => {
  const pki = testPki();
  server = createSmtpServer(
    {
      auth: (_session, credentials) =>
        credentials.username === 'me@example.com' && credentials.password === 's3cret'
          ? { user: credentials.username }
          : null,
      rcptTo(_session, rcpt) {
        if (rcpt.address === 'nobody@example.org') throw reject(550, '5.1.1', 'No such user here');
      },
      async data(session, envelope, message) {
        received.push({
          user: session.user,
          tls: session.tls?.protocol ?? null,
          from: envelope.mailFrom.address,
          to: envelope.rcptTo.map((r) => r.address),
          text: await new Response(message).text(),
        });
      },
    },
    { hostname: 'localhost', tls: { key: pki.key, cert: pki.cert } },
  );
  ({ port: smtpPort } = await server.listen({
    port: 0,
    host: '127.0.0.1',
    startTls: true,
    submission: true,
  }));
});

afterAll(async () => {
  await server?.close({ deadlineMs: 1_000 });
  rmSync(temp, { recursive: true, force: true });
});

describe('docs/examples/workers/send-from-a-worker.ts', () => {
  let worker: Wrangler | undefined;
  beforeAll(async () => {
    worker = await startWrangler(
      [
        'docs/examples/workers/send-from-a-worker.ts',
        '--compatibility-date',
        '2025-11-17',
        '--var',
        'SMTP_HOST:localhost',
        '--var',
        `SMTP_PORT:${smtpPort}`,
        '--var',
        'SMTP_USERNAME:me@example.com',
        '--var',
        'SMTP_PASSWORD:s3cret',
        '--var',
        'MAIL_FROM:me@example.com',
      ],
      405,
    );
  }, 120_000);
  afterAll(() => stopWrangler(worker), 30_000);

  it('sends with STARTTLS and AUTH from inside workerd', { timeout: 60_000 }, async () => {
    const before = received.length;
    const response = await fetch(`http://127.0.0.1:${worker?.port}/`, {
      method: 'POST',
      body: JSON.stringify({ to: 'zoe@example.org', subject: 'From a Worker', text: 'Sent by workerd.' }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    expect({ status: response.status, body }).toMatchObject({
      status: 200,
      body: { accepted: ['zoe@example.org'], rejected: [] },
    });
    const got = received.slice(before);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ user: 'me@example.com', from: 'me@example.com', to: ['zoe@example.org'] });
    expect(got[0]?.tls).toMatch(/^TLSv1\.[23]$/);
    expect(got[0]?.text).toContain('\r\nSubject: From a Worker\r\n');
    expect(got[0]?.text).toContain(`\r\nMessage-ID: ${body['messageId']}\r\n`);
  });

  it('answers a header-injection attempt with a 400 JSON error, before connecting', {
    timeout: 60_000,
  }, async () => {
    const before = received.length;
    const response = await fetch(`http://127.0.0.1:${worker?.port}/`, {
      method: 'POST',
      body: JSON.stringify({ to: 'zoe@example.org\r\nBcc: x@y', subject: 'x', text: 'x' }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'message' });
    expect(received.length).toBe(before);
  });
});

describe('docs/examples/workers/call-the-mailer.ts', () => {
  let worker: Wrangler | undefined;
  beforeAll(async () => {
    // The caller as the page shows it, and the smtp-edge Worker as deployed (relay variables only).
    writeFileSync(
      join(temp, 'caller.toml'),
      [
        'name = "caller"',
        `main = "${join(REPO, 'docs/examples/workers/call-the-mailer.ts')}"`,
        'compatibility_date = "2025-11-17"',
        '[[services]]',
        'binding = "MAILER"',
        'service = "smtp-edge-mailer"',
        'entrypoint = "Mailer"',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(temp, 'mailer.toml'),
      [
        'name = "smtp-edge-mailer"',
        `main = "${join(REPO, 'workers/src/index.ts')}"`,
        'compatibility_date = "2025-11-17"',
        '[vars]',
        'SMTP_HOST = "localhost"',
        `SMTP_PORT = "${smtpPort}"`,
        'SMTP_SECURITY = "starttls"',
        'SMTP_USERNAME = "me@example.com"',
        'SMTP_PASSWORD = "s3cret"',
        '',
      ].join('\n'),
    );
    // GET / on the caller: the request has no JSON body, so the example throws: 500.
    worker = await startWrangler(['-c', join(temp, 'caller.toml'), '-c', join(temp, 'mailer.toml')], 500);
  }, 120_000);
  afterAll(() => stopWrangler(worker), 30_000);

  it('sends through the Mailer entrypoint with the DSN option', { timeout: 60_000 }, async () => {
    const before = received.length;
    const response = await fetch(`http://127.0.0.1:${worker?.port}/`, {
      method: 'POST',
      body: JSON.stringify({ email: 'zoe@example.org' }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    expect({ status: response.status, body }).toMatchObject({ status: 200, body: { refused: [] } });
    expect(body['sent']).toMatch(/^<[^<>\s]+@example\.org>$/);
    const got = received.slice(before);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({
      user: 'me@example.com',
      from: 'app@example.org',
      to: ['zoe@example.org'],
    });
    expect(got[0]?.text).toContain('\r\nSubject: Your sign-in link\r\n');
    expect(got[0]?.text).toContain('\r\nFrom: Example App <app@example.org>\r\n');
  });

  it('turns a failure value into the HTTP status the Mailer reports', { timeout: 60_000 }, async () => {
    const response = await fetch(`http://127.0.0.1:${worker?.port}/`, {
      method: 'POST',
      body: JSON.stringify({ email: 'nobody@example.org' }),
    });
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ error: 'recipients_rejected' });
  });
});
