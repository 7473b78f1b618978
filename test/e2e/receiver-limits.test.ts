/**
 * Abuse limits of the running receiver: failed-AUTH lockout, messages per address per minute,
 * and a flood of 500 concurrent connections against the total and per-address limits.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  listFiles,
  PASSWORD,
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
import { RawSmtp, type Reply } from '../../receiver/test/support/smtp.ts';

const pki = testPki();
let rx: ReceiverProcess;
let state: string;

beforeAll(async () => {
  state = tempDir('limits');
  rx = await startReceiver({
    ...baseEnv(),
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_TLS_CERT: pki.certPath,
    RECEIVER_TLS_KEY: pki.keyPath,
    RECEIVER_USERS_FILE: await usersFile(state),
    RECEIVER_STORE: `file://${state}/data`,
    RECEIVER_AUTH_MAX_FAILURES_PER_IP: '2',
    RECEIVER_MESSAGES_PER_IP_PER_MINUTE: '3',
    RECEIVER_MAX_CONNECTIONS: '100',
    RECEIVER_MAX_CONNECTIONS_PER_IP: '60',
    RECEIVER_MAX_MESSAGE_BYTES: '4096',
    RECEIVER_MAX_RECIPIENTS: '2',
  });
});

afterAll(async () => {
  expect(await rx.stop()).toBe(0);
});

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

async function authSession(localAddress: string): Promise<RawSmtp> {
  const c = await RawSmtp.connect(rx.ports.submission!, { localAddress });
  expect((await c.reply())?.code).toBe(220);
  await c.cmd('EHLO client.test.example');
  expect((await c.startTls(pki.caCert))?.code).toBe(220);
  await c.cmd('EHLO client.test.example');
  return c;
}

describe('receiver limits', () => {
  it('wrong passwords lock the address out, even for the right password (454 4.7.0)', async () => {
    const c = await authSession('127.0.0.7');
    expect((await c.cmd(`AUTH PLAIN ${plain(USER, 'wrong')}`))?.text).toMatch(/^535 5\.7\.8 /);
    expect((await c.cmd(`AUTH PLAIN ${plain('nobody', 'wrong')}`))?.text).toMatch(/^535 5\.7\.8 /);
    expect((await c.cmd(`AUTH PLAIN ${plain(USER, PASSWORD)}`))?.text).toBe(
      '454 4.7.0 Too many failed authentication attempts, try again later',
    );
    c.close();
    const again = await authSession('127.0.0.7');
    expect((await again.cmd(`AUTH PLAIN ${plain(USER, PASSWORD)}`))?.text).toMatch(/^454 4\.7\.0 /);
    again.close();
    // Another address is not affected.
    const other = await authSession('127.0.0.8');
    expect((await other.cmd(`AUTH PLAIN ${plain(USER, PASSWORD)}`))?.text).toMatch(/^235 2\.7\.0/);
    other.close();
    const text = await (await fetch(`http://127.0.0.1:${rx.ports.http}/metrics`)).text();
    expect(text).toMatch(/receiver_auth_failures_total\{listener="submission",reason="bad_credentials"\} 2/);
    expect(text).toMatch(/receiver_auth_failures_total\{listener="submission",reason="locked_out"\} 2/);
  });

  it('failures for a user from many addresses do not lock that user out of a clean address', async () => {
    // Eleven addresses each fail once for USER: more than RECEIVER_AUTH_MAX_FAILURES_PER_USER (10) in
    // total, but each address is below its own limits. The user's own address still gets in.
    for (let i = 20; i < 31; i++) {
      const c = await authSession(`127.0.0.${i}`);
      expect((await c.cmd(`AUTH PLAIN ${plain(USER, 'wrong')}`))?.text).toMatch(/^535 5\.7\.8 /);
      c.close();
    }
    const own = await authSession('127.0.0.40');
    expect((await own.cmd(`AUTH PLAIN ${plain(USER, PASSWORD)}`))?.text).toMatch(/^235 2\.7\.0/);
    own.close();
    const failedOnce = await authSession('127.0.0.20');
    expect((await failedOnce.cmd(`AUTH PLAIN ${plain(USER, PASSWORD)}`))?.text).toMatch(/^235 2\.7\.0/);
    failedOnce.close();
  });

  it('limits transactions per address per minute (451 4.7.1 at MAIL)', async () => {
    const c = await RawSmtp.connect(rx.ports.mx!, { localAddress: '127.0.0.9' });
    await c.reply();
    await c.cmd('EHLO client.test.example');
    for (let i = 0; i < 3; i++) {
      expect((await c.cmd('MAIL FROM:<a@example.org>'))?.code).toBe(250);
      expect((await c.cmd('RSET'))?.code).toBe(250);
    }
    expect((await c.cmd('MAIL FROM:<a@example.org>'))?.text).toBe(
      '451 4.7.1 Too many messages from your address, try again later',
    );
    c.close();
  });

  it('applies RECEIVER_MAX_MESSAGE_BYTES (SIZE, 552 5.3.4) and RECEIVER_MAX_RECIPIENTS (452 4.5.3)', async () => {
    const c = await RawSmtp.connect(rx.ports.mx!, { localAddress: '127.0.0.10' });
    await c.reply();
    expect((await c.cmd('EHLO client.test.example'))?.lines).toContain('SIZE 4096');
    expect((await c.cmd('MAIL FROM:<a@example.org> SIZE=5000'))?.text).toMatch(/^552 5\.3\.4 /);
    expect((await c.cmd('MAIL FROM:<a@example.org>'))?.code).toBe(250);
    expect((await c.cmd('RCPT TO:<a@example.com>'))?.code).toBe(250);
    expect((await c.cmd('RCPT TO:<b@example.com>'))?.code).toBe(250);
    expect((await c.cmd('RCPT TO:<c@example.com>'))?.text).toMatch(/^452 4\.5\.3 /);
    expect((await c.cmd('DATA'))?.code).toBe(354);
    c.write(`Subject: big\r\n\r\n${'z'.repeat(8000)}\r\n.\r\n`);
    expect((await c.reply())?.text).toMatch(/^552 5\.3\.4 /);
    expect((await c.cmd('QUIT'))?.code).toBe(221);
    c.close();
    const line = await rx.waitFor((l) => l['event'] === 'message' && l['result'] === 'aborted');
    expect(line).toMatchObject({ client: '127.0.0.10', recipients: 2 });
    expect(existsSync(join(state, 'data')) ? listFiles(join(state, 'data')) : []).toEqual([]);
  });

  it('500 concurrent connections: exactly the limits get a session, the rest 421 4.7.0', async () => {
    const clients: RawSmtp[] = [];
    const firsts: Promise<{ addr: string; reply: Reply | null }>[] = [];
    for (let i = 0; i < 500; i++) {
      const addr = `127.0.1.${(i % 5) + 1}`;
      const c = await RawSmtp.connect(rx.ports.mx!, { localAddress: addr });
      clients.push(c);
      firsts.push(c.reply().then((reply) => ({ addr, reply })));
    }
    const results = await Promise.all(firsts);
    const greeted = results.filter((r) => r.reply?.code === 220);
    const refused = results.filter((r) => r.reply?.text.startsWith('421 4.7.0 '));
    expect(greeted).toHaveLength(100);
    expect(refused).toHaveLength(400);
    for (const a of ['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4', '127.0.1.5']) {
      expect(greeted.filter((g) => g.addr === a).length).toBeLessThanOrEqual(60);
    }
    // The refused connections were closed by the server.
    for (const [i, r] of results.entries())
      if (r.reply?.code === 421) expect(await clients[i]!.reply()).toBeNull();
    // The sessions that got in still work.
    const first = clients[results.findIndex((r) => r.reply?.code === 220)]!;
    expect((await first.cmd('EHLO client.test.example'))?.code).toBe(250);
    for (const c of clients) c.close();

    // Slots are released: a new connection is served again, and the process stayed healthy and small.
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      const c = await RawSmtp.connect(rx.ports.mx!);
      ok = (await c.reply())?.code === 220;
      c.close();
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ok).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${rx.ports.http}/metrics`)).text();
    const rss = Number(/^process_resident_memory_bytes (\d+)/m.exec(metrics)?.[1]);
    expect(rss).toBeLessThan(512 * 1024 * 1024);
    expect(metrics).toMatch(
      /receiver_smtp_connections_refused_total\{listener="mx",reason="max_connections(_per_ip)?"\} \d+/,
    );
  });
  it('a failed implicit-TLS handshake is closed and counted (reason tls_handshake)', async () => {
    const c = await RawSmtp.connect(rx.ports.submissions!, { localAddress: '127.0.0.11' });
    c.write('EHLO client.test.example\r\n'); // plaintext where a ClientHello belongs
    expect(await c.reply()).toBeNull();
    const metrics = await (await fetch(`http://127.0.0.1:${rx.ports.http}/metrics`)).text();
    expect(metrics).toMatch(
      /receiver_smtp_connections_refused_total\{listener="submissions",reason="tls_handshake"\} 1/,
    );
    // The slot it held is free again: a real TLS client is served.
    const ok = await RawSmtp.connect(rx.ports.submissions!, { tls: { ca: pki.caCert } });
    expect((await ok.reply())?.code).toBe(220);
    ok.close();
  });
});
