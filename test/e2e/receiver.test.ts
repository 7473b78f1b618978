/**
 * The receiver as a user runs it (child process, environment only), directory store:
 * nodemailer over each listener, byte-for-byte storage, envelopes, policy refusals, client cut off.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  listFiles,
  PASSWORD,
  rawMessage,
  readJson,
  sendWithNodemailer,
  splitStored,
  tempDir,
  testPki,
  USER,
  usersFile,
} from '../../receiver/test/support/fixtures.ts';
import {
  baseEnv,
  type ReceiverProcess,
  startReceiver,
} from '../../receiver/test/support/receiver-process.ts';
import { eventually } from '../../receiver/test/support/s3.ts';
import { RawSmtp } from '../../receiver/test/support/smtp.ts';

const pki = testPki();
let dir: string;
let rx: ReceiverProcess;

beforeAll(async () => {
  const state = tempDir('file');
  dir = join(state, 'data');
  rx = await startReceiver({
    ...baseEnv(),
    RECEIVER_DOMAINS: 'example.com,Example.NET',
    RECEIVER_TLS_CERT: pki.certPath,
    RECEIVER_TLS_KEY: pki.keyPath,
    RECEIVER_USERS_FILE: await usersFile(state),
    RECEIVER_STORE: `file://${dir}`,
  });
});

afterAll(async () => {
  expect(await rx.stop()).toBe(0);
});

/** The stored pair for the message with this id. */
function stored(id: string): { eml: Uint8Array; json: Record<string, unknown> } {
  const files = listFiles(dir).filter((f) => f.includes(id));
  expect(files).toHaveLength(2);
  const eml = files.find((f) => f.endsWith('.eml'))!;
  return {
    eml: new Uint8Array(readFileSync(join(dir, eml))),
    json: readJson(join(dir, eml.replace(/\.eml$/, '.json'))),
  };
}

function idFrom(response: string): string {
  const m = /^250 2\.0\.0 Ok: queued as ([0-9A-Z]{26})$/.exec(response);
  expect(m, response).not.toBeNull();
  return m![1]!;
}

describe('receiver, directory store', () => {
  it('MX with STARTTLS: stores Received + the exact bytes, and the envelope', async () => {
    const raw = rawMessage('mx-starttls');
    const info = await sendWithNodemailer({
      port: rx.ports.mx!,
      ca: pki.caCert,
      to: ['bob@example.com'],
      raw,
      dsn: true,
    });
    const id = idFrom(info.response);
    const { eml, json } = stored(id);
    const { received, body } = splitStored(eml);
    expect(Buffer.compare(body, raw)).toBe(0);
    expect(received).toMatch(
      new RegExp(
        `^Received: from client\\.test\\.example \\(\\[127\\.0\\.0\\.1\\]\\)\r\n\tby mx\\.test\\.example with ESMTPS \\(TLSv1\\.[23] cipher [A-Z0-9_-]+\\)\r\n\tid ${id}\r\n\tfor <bob@example\\.com>;\r\n\t[A-Z][a-z]{2}, \\d{1,2} [A-Z][a-z]{2} \\d{4} \\d\\d:\\d\\d:\\d\\d \\+0000\r\n$`,
      ),
    );
    expect(json).toMatchObject({
      id,
      mailFrom: 'zoe@example.org',
      rcptTo: ['bob@example.com'],
      params: {
        mail: { ret: 'HDRS', envid: 'env-1', other: {} },
        rcpt: [
          { notify: ['FAILURE', 'DELAY'], orcpt: { type: 'rfc822', address: 'bob@example.com' }, other: {} },
        ],
      },
      remoteAddress: '127.0.0.1',
      proxiedBy: null,
      listener: 'mx',
      helo: { verb: 'EHLO', name: 'client.test.example' },
      authUser: null,
      size: eml.byteLength,
      messageSize: raw.byteLength,
    });
    expect((json['tls'] as { protocol: string }).protocol).toMatch(/^TLSv1\.[23]$/);
    expect(json['remotePort']).toBeGreaterThan(0);
    expect(Date.parse(json['receivedAt'] as string)).not.toBeNaN();
  });

  it('submission with STARTTLS + AUTH: any recipient, ESMTPSA, the user recorded', async () => {
    const raw = rawMessage('submission', 200_000);
    const info = await sendWithNodemailer({
      port: rx.ports.submission!,
      ca: pki.caCert,
      auth: { user: USER, pass: PASSWORD },
      from: 'alice@example.com',
      to: ['someone@elsewhere.example', 'other@example.org'],
      raw,
    });
    const id = idFrom(info.response);
    const { eml, json } = stored(id);
    const { received, body } = splitStored(eml);
    expect(Buffer.compare(body, raw)).toBe(0);
    expect(received).toContain(' with ESMTPSA (');
    expect(received).not.toContain('for <'); // two recipients: no "for" clause
    expect(json).toMatchObject({
      rcptTo: ['someone@elsewhere.example', 'other@example.org'],
      authUser: USER,
      listener: 'submission',
    });
  });

  it('implicit TLS submission (port 465 style)', async () => {
    const raw = rawMessage('submissions');
    const info = await sendWithNodemailer({
      port: rx.ports.submissions!,
      ca: pki.caCert,
      secure: true,
      auth: { user: 'bob', pass: 'bob-secret' },
      to: ['x@y.example'],
      raw,
    });
    const { eml, json } = stored(idFrom(info.response));
    expect(Buffer.compare(splitStored(eml).body, raw)).toBe(0);
    expect(json).toMatchObject({ listener: 'submissions', authUser: 'bob', rcptTo: ['x@y.example'] });
  });

  it('MX refuses relaying with 550 5.7.1 and accepts Postmaster and listed domains in any case', async () => {
    const c = await RawSmtp.connect(rx.ports.mx!);
    expect((await c.reply())?.code).toBe(220);
    expect((await c.cmd('EHLO client.test.example'))?.code).toBe(250);
    expect((await c.cmd('MAIL FROM:<a@example.org>'))?.text).toMatch(/^250 2\.1\.0/);
    expect((await c.cmd('RCPT TO:<victim@elsewhere.example>'))?.text).toBe('550 5.7.1 Relaying denied');
    expect((await c.cmd('RCPT TO:<bob@sub.example.com>'))?.text).toBe('550 5.7.1 Relaying denied');
    expect((await c.cmd('RCPT TO:<bob@EXAMPLE.net>'))?.code).toBe(250);
    expect((await c.cmd('RCPT TO:<Postmaster>'))?.code).toBe(250);
    expect((await c.cmd('QUIT'))?.code).toBe(221);
    c.close();
  });

  it('MX offers no AUTH; submission refuses AUTH before STARTTLS (538 5.7.11) and MAIL before AUTH', async () => {
    const mx = await RawSmtp.connect(rx.ports.mx!);
    await mx.reply();
    const ehlo = await mx.cmd('EHLO client.test.example');
    expect(ehlo?.lines).toEqual(
      expect.arrayContaining(['STARTTLS', 'PIPELINING', '8BITMIME', 'SMTPUTF8', 'DSN', 'CHUNKING']),
    );
    expect(ehlo?.lines.some((l) => l.startsWith('AUTH'))).toBe(false);
    expect(ehlo?.lines.some((l) => /^SIZE \d+$/.test(l))).toBe(true);
    mx.close();

    const sub = await RawSmtp.connect(rx.ports.submission!);
    await sub.reply();
    await sub.cmd('EHLO client.test.example');
    const plain = Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64');
    expect((await sub.cmd(`AUTH PLAIN ${plain}`))?.text).toMatch(/^538 5\.7\.11 /);
    expect((await sub.startTls(pki.caCert))?.code).toBe(220);
    const ehlo2 = await sub.cmd('EHLO client.test.example');
    expect(ehlo2?.lines).toContain('AUTH PLAIN LOGIN'); // alice has a {SCRYPT} hash: no CRAM-MD5
    expect((await sub.cmd('MAIL FROM:<alice@example.com>'))?.text).toMatch(/^530 5\.7\.0 /);
    expect((await sub.cmd(`AUTH PLAIN ${plain}`))?.text).toMatch(/^235 2\.7\.0/);
    expect((await sub.cmd('MAIL FROM:<alice@example.com>'))?.code).toBe(250);
    sub.close();
  });

  it('a client cut off mid-DATA leaves no file and no temporary file', async () => {
    const before = listFiles(dir);
    const c = await RawSmtp.connect(rx.ports.mx!);
    await c.reply();
    await c.cmd('EHLO client.test.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<bob@example.com>');
    expect((await c.cmd('DATA'))?.code).toBe(354);
    c.write(`Subject: cut\r\n\r\n${'y'.repeat(100_000)}\r\n`);
    // The store has begun writing (a temporary file exists) before the client disappears.
    await eventually(async () => listFiles(dir).some((f) => f.endsWith('.tmp')), 'temporary file');
    c.close();
    await rx.waitFor((l) => l['event'] === 'message' && l['result'] === 'aborted', 'aborted message log');
    await eventually(async () => listFiles(dir).length === before.length, 'temporary file removed');
    expect(listFiles(dir)).toEqual(before);
  });

  it('bare LF in the data is refused after the real end (550 5.6.0) and nothing is stored', async () => {
    const before = listFiles(dir);
    const c = await RawSmtp.connect(rx.ports.mx!);
    await c.reply();
    await c.cmd('EHLO client.test.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<bob@example.com>');
    expect((await c.cmd('DATA'))?.code).toBe(354);
    c.write('Subject: bare\r\n\r\nline one\nline two\r\n.\r\n');
    expect((await c.reply())?.text).toMatch(/^550 5\.6\.0 /);
    expect((await c.cmd('QUIT'))?.code).toBe(221);
    c.close();
    expect(listFiles(dir)).toEqual(before);
  });

  it('reports health, readiness and metrics', async () => {
    const base = `http://127.0.0.1:${rx.ports.http}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/receiver_messages_accepted_total\{listener="mx"\} [1-9]/);
    expect(text).toMatch(/receiver_recipients_rejected_total\{listener="mx",reason="relay_denied"\} [1-9]/);
    expect(text).toMatch(/receiver_store_duration_seconds_count\{store="file",result="ok"\} [1-9]/);
    expect(text).toMatch(/receiver_message_bytes_received_total\{listener="submission"\} [1-9]/);
    expect(text).toMatch(/receiver_smtp_connections_total\{listener="submissions"\} [1-9]/);
  });

  it('logs one JSON line per transaction and per connection', async () => {
    const msg = await rx.waitFor(
      (l) => l['event'] === 'message' && l['result'] === 250 && l['listener'] === 'mx',
    );
    expect(msg).toMatchObject({ client: '127.0.0.1', sender: 'zoe@example.org', recipients: 1 });
    expect(typeof msg['id']).toBe('string');
    expect(typeof msg['size']).toBe('number');
    expect(typeof msg['durationMs']).toBe('number');
    expect(msg['tls']).toMatch(/^TLSv1\.[23]$/);
    const conn = await rx.waitFor(
      (l) => l['event'] === 'connection' && l['listener'] === 'submission' && l['user'] === USER,
    );
    expect(conn).toMatchObject({ client: '127.0.0.1' });
    expect(conn['messages']).toBeGreaterThanOrEqual(1);
  });
});
