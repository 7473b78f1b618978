/**
 * docs/examples/workers/send-from-a-worker.ts runs under `wrangler dev` as the page says, and
 * sends through a real SMTP server (our Node server, STARTTLS with the test CA, AUTH PLAIN).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
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

describe('the Worker example', () => {
  const received: Received[] = [];
  let server: NodeSmtpServer;
  let wrangler: ChildProcess;
  let output = '';
  let workerPort = 0;

  beforeAll(async () => {
    const pki = testPki();
    server = createSmtpServer(
      {
        auth: (_session, credentials) =>
          credentials.username === 'me@example.com' && credentials.password === 's3cret'
            ? { user: credentials.username }
            : null,
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
    const { port: smtpPort } = await server.listen({
      port: 0,
      host: '127.0.0.1',
      startTls: true,
      submission: true,
    });
    workerPort = await freePort();
    wrangler = spawn(
      process.execPath,
      [
        join(REPO, 'node_modules/wrangler/bin/wrangler.js'),
        'dev',
        'docs/examples/workers/send-from-a-worker.ts',
        '--compatibility-date',
        '2025-11-17',
        '--ip',
        '127.0.0.1',
        '--port',
        String(workerPort),
        '--show-interactive-dev-session=false',
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
      {
        cwd: REPO,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          NODE_EXTRA_CA_CERTS: pki.caCertPath,
          CLOUDFLARE_CF_FETCH_ENABLED: 'false',
          WRANGLER_SEND_METRICS: 'false',
        },
      },
    );
    wrangler.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    wrangler.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    await waitForHttp(`http://127.0.0.1:${workerPort}/`, {
      timeoutMs: 90_000,
      ready: (status) => status === 405,
      abandon: () => (wrangler.exitCode !== null ? `wrangler exited:\n${output}` : null),
    });
  }, 120_000);

  afterAll(async () => {
    if (wrangler?.pid !== undefined) {
      try {
        process.kill(-wrangler.pid, 'SIGTERM');
      } catch {}
      const until = Date.now() + 10_000;
      while (processGroupAlive(wrangler.pid) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 100));
      if (processGroupAlive(wrangler.pid)) process.kill(-wrangler.pid, 'SIGKILL');
    }
    await server?.close({ deadlineMs: 1_000 });
  }, 30_000);

  it('sends with STARTTLS and AUTH from inside workerd', { timeout: 60_000 }, async () => {
    const response = await fetch(`http://127.0.0.1:${workerPort}/`, {
      method: 'POST',
      body: JSON.stringify({ to: 'zoe@example.org', subject: 'From a Worker', text: 'Sent by workerd.' }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    expect({ status: response.status, body }).toMatchObject({
      status: 200,
      body: { accepted: ['zoe@example.org'], rejected: [] },
    });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      user: 'me@example.com',
      from: 'me@example.com',
      to: ['zoe@example.org'],
    });
    expect(received[0]?.tls).toMatch(/^TLSv1\.[23]$/);
    expect(received[0]?.text).toContain('\r\nSubject: From a Worker\r\n');
    expect(received[0]?.text).toContain(`\r\nMessage-ID: ${body['messageId']}\r\n`);
  });

  it('answers a header-injection attempt with its 400 JSON error, before connecting', {
    timeout: 60_000,
  }, async () => {
    const response = await fetch(`http://127.0.0.1:${workerPort}/`, {
      method: 'POST',
      body: JSON.stringify({ to: 'zoe@example.org\r\nBcc: x@y', subject: 'x', text: 'x' }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'message' });
    expect(received).toHaveLength(1); // nothing more reached the server
  });
});
