/**
 * Starting and stopping the receiver: configuration errors (exit 1, the variable named),
 * `hash-password`, SIGTERM during a transaction (it finishes, is stored, exit 0), and the PROXY
 * protocol from a trusted load balancer.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { UserDb } from '../../receiver/src/users.ts';
import {
  listFiles,
  rawMessage,
  readJson,
  splitStored,
  tempDir,
  testPki,
  usersFile,
} from '../../receiver/test/support/fixtures.ts';
import { baseEnv, runReceiver, startReceiver } from '../../receiver/test/support/receiver-process.ts';
import { eventually } from '../../receiver/test/support/s3.ts';
import { RawSmtp } from '../../receiver/test/support/smtp.ts';

const pki = testPki();

describe('configuration errors stop the receiver with exit code 1 and name the variable', () => {
  const good = () => ({
    ...baseEnv(),
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_SUBMISSION_PORT: 'off',
    RECEIVER_SUBMISSIONS_PORT: 'off',
    RECEIVER_STORE: `file://${tempDir('cfg')}`,
  });

  it.each([
    ['RECEIVER_DOMAINS', { RECEIVER_DOMAINS: '' }],
    ['RECEIVER_MX_PORT', { RECEIVER_MX_PORT: 'twenty-five' }],
    ['RECEIVER_STORE', { RECEIVER_STORE: 'ftp://nowhere/x' }],
    ['RECEIVER_MAX_MESSAGE_BYTES', { RECEIVER_MAX_MESSAGE_BYTES: 'lots' }],
    ['RECEIVER_TLS_CERT', { RECEIVER_SUBMISSION_PORT: '0' }],
    [
      'RECEIVER_USERS_FILE',
      { RECEIVER_TLS_CERT: pki.certPath, RECEIVER_TLS_KEY: pki.keyPath, RECEIVER_SUBMISSION_PORT: '0' },
    ],
    ['RECEIVER_STORE_TIMEOUT', { RECEIVER_STORE_TIMEOUT: '30' }],
  ])('%s', async (variable, change) => {
    const r = await runReceiver({ ...good(), ...change });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${variable}: `);
  });

  it('unreadable files and busy ports are named too', async () => {
    const missingCert = await runReceiver({
      ...good(),
      RECEIVER_TLS_CERT: '/nonexistent/cert.pem',
      RECEIVER_TLS_KEY: pki.keyPath,
    });
    expect(missingCert.code).toBe(1);
    expect(missingCert.stderr).toContain('RECEIVER_TLS_CERT: cannot read /nonexistent/cert.pem: ENOENT');

    const dir = tempDir('cfg-users');
    writeFileSync(join(dir, 'users'), 'alice:{MD5}abc\n');
    const badUsers = await runReceiver({
      ...good(),
      RECEIVER_SUBMISSION_PORT: '0',
      RECEIVER_TLS_CERT: pki.certPath,
      RECEIVER_TLS_KEY: pki.keyPath,
      RECEIVER_USERS_FILE: join(dir, 'users'),
    });
    expect(badUsers.code).toBe(1);
    expect(badUsers.stderr).toContain('RECEIVER_USERS_FILE: ');
    expect(badUsers.stderr).toContain('line 1 (alice)');

    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    const inUse = await runReceiver({ ...good(), RECEIVER_MX_PORT: String(port) });
    busy.close();
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toContain(`RECEIVER_MX_PORT: port ${port} on 127.0.0.1 is already in use`);
  });

  it('an unknown subcommand is a usage error (exit 2)', async () => {
    const r = await runReceiver(good(), ['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command');
  });
});

describe('hash-password', () => {
  it('reads the password from stdin and prints a users-file line that verifies', async () => {
    const r = await runReceiver(baseEnv(), ['hash-password', 'carol'], 'pa:ss wörd\n');
    expect(r.code).toBe(0);
    const line = r.stdout.trim();
    expect(line).toMatch(/^carol:\{SCRYPT\}\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(r.stdout).not.toContain('pa:ss');
    const db = UserDb.parse(line);
    expect(await db.verify('carol', 'pa:ss wörd')).toBe(true);
    expect(await db.verify('carol', 'pa:ss wörd\n')).toBe(false);
    const empty = await runReceiver(baseEnv(), ['hash-password'], '');
    expect(empty.code).toBe(1);
  });
});

describe('SIGTERM', () => {
  it('lets a transaction in progress finish and be stored, refuses new work, exits 0', async () => {
    const dir = tempDir('sigterm');
    const rx = await startReceiver({
      ...baseEnv(),
      RECEIVER_DOMAINS: 'example.com',
      RECEIVER_SUBMISSION_PORT: 'off',
      RECEIVER_SUBMISSIONS_PORT: 'off',
      RECEIVER_STORE: `file://${dir}`,
      RECEIVER_DRAIN_TIMEOUT: '20s',
    });
    const c = await RawSmtp.connect(rx.ports.mx!);
    await c.reply();
    await c.cmd('EHLO client.test.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<bob@example.com>');
    expect((await c.cmd('DATA'))?.code).toBe(354);
    c.write('Subject: drain\r\n\r\nfirst half\r\n');

    rx.child.kill('SIGTERM');
    await rx.waitFor((l) => l['event'] === 'shutdown', 'shutdown log');
    expect((await fetch(`http://127.0.0.1:${rx.ports.http}/readyz`)).status).toBe(503);
    await eventually(
      () =>
        RawSmtp.connect(rx.ports.mx!).then(
          (n) => {
            n.close();
            return false;
          },
          () => true,
        ),
      'listener closed',
    );

    c.write('second half\r\n.\r\n');
    const done = await c.reply();
    expect(done?.text).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Z]{26}$/);
    const next = await c.reply(); // the engine ends the session at the next command boundary
    expect(next?.text).toMatch(/^421 4\.3\.2 /);
    expect(await rx.exited).toBe(0);
    const files = listFiles(dir);
    expect(files.filter((f) => f.endsWith('.eml'))).toHaveLength(1);
    const eml = readFileSync(join(dir, files.find((f) => f.endsWith('.eml'))!));
    expect(splitStored(eml).body.toString()).toBe('Subject: drain\r\n\r\nfirst half\r\nsecond half\r\n');
  });
});

describe('PROXY protocol from a trusted load balancer', () => {
  it('uses the client address from v1 and v2 headers; refuses missing and untrusted headers', async () => {
    const state = tempDir('proxy');
    const dir = join(state, 'data');
    const rx = await startReceiver({
      ...baseEnv(),
      RECEIVER_DOMAINS: 'example.com',
      RECEIVER_TLS_CERT: pki.certPath,
      RECEIVER_TLS_KEY: pki.keyPath,
      RECEIVER_USERS_FILE: await usersFile(state),
      RECEIVER_STORE: `file://${dir}`,
      RECEIVER_PROXY_PROTOCOL_TRUSTED: '127.0.0.2/32',
      RECEIVER_MAX_CONNECTIONS_PER_IP: '1',
    });
    try {
      // v1 on the MX port.
      const c = await RawSmtp.connect(rx.ports.mx!, { localAddress: '127.0.0.2' });
      c.write('PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n');
      expect((await c.reply())?.code).toBe(220);
      // Per-address limit 1: a second proxied client (another address) still gets in.
      const c2 = await RawSmtp.connect(rx.ports.mx!, { localAddress: '127.0.0.2' });
      c2.write('PROXY TCP4 203.0.113.8 192.0.2.1 40001 25\r\n');
      expect((await c2.reply())?.code).toBe(220);
      c2.close();
      await c.cmd('EHLO client.test.example');
      await c.cmd('MAIL FROM:<a@example.org>');
      await c.cmd('RCPT TO:<bob@example.com>');
      await c.cmd('DATA');
      const done = await c.cmd('Subject: proxied\r\n\r\nhi\r\n.');
      const id = /queued as ([0-9A-Z]{26})/.exec(done?.text ?? '')?.[1];
      expect(id).toBeDefined();
      c.close();
      const jsonFile = listFiles(dir).find((f) => f.endsWith(`${id}.json`))!;
      expect(readJson(join(dir, jsonFile))).toMatchObject({
        remoteAddress: '203.0.113.7',
        remotePort: 40000,
        proxiedBy: '127.0.0.2',
      });
      const eml = readFileSync(join(dir, jsonFile.replace(/json$/, 'eml')));
      expect(splitStored(eml).received).toContain('from client.test.example ([203.0.113.7])');

      // v2 in front of implicit TLS.
      const v2 = Buffer.from([
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 198,
        51, 100, 20, 192, 0, 2, 1, 0x9c, 0x40, 0x01, 0xd1,
      ]);
      const raw = await new Promise<Socket>((resolve, reject) => {
        const s = connect({ port: rx.ports.submissions!, host: '127.0.0.1', localAddress: '127.0.0.2' });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
      raw.write(v2);
      const info = await sendOverSocket(raw);
      expect(info).toMatch(/^250 /);

      // From the trusted source, no header: closed without a greeting.
      const bare = await RawSmtp.connect(rx.ports.mx!, { localAddress: '127.0.0.2' });
      bare.write('EHLO client.test.example\r\n');
      expect(await bare.reply()).toBeNull();
      // From an untrusted source, a PROXY header: closed.
      const spoof = await RawSmtp.connect(rx.ports.mx!, { localAddress: '127.0.0.3' });
      expect((await spoof.reply())?.code).toBe(220);
      spoof.write('PROXY TCP4 10.9.9.9 192.0.2.1 1 25\r\n');
      expect(await spoof.reply()).toBeNull();
    } finally {
      expect(await rx.stop()).toBe(0);
    }
    const jsons = listFiles(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => readJson(join(dir, f)));
    expect(jsons.find((j) => j['listener'] === 'submissions')).toMatchObject({
      remoteAddress: '198.51.100.20',
      remotePort: 40000,
    });
  });
});

/** Implicit TLS + AUTH + one message over an already connected socket; returns the final reply text. */
async function sendOverSocket(socket: Socket): Promise<string> {
  const secure = tls.connect({ socket, ca: pki.caCert, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  let buf = '';
  secure.setEncoding('latin1');
  const waiters: (() => void)[] = [];
  secure.on('data', (d: string) => {
    buf += d;
    for (const w of waiters.splice(0)) w();
  });
  const reply = async (): Promise<string> => {
    for (;;) {
      const m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(buf);
      if (m) {
        const end = m.index + m[0].length;
        const line = buf.slice(0, end).split('\r\n').filter(Boolean).pop()!;
        buf = buf.slice(end);
        return line;
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const cmd = async (line: string) => {
    secure.write(`${line}\r\n`);
    return reply();
  };
  await reply();
  await cmd('EHLO client.test.example');
  await cmd(`AUTH PLAIN ${Buffer.from('\0bob\0bob-secret').toString('base64')}`);
  await cmd('MAIL FROM:<bob@example.com>');
  await cmd('RCPT TO:<x@y.example>');
  await cmd('DATA');
  const done = await cmd(`${Buffer.from(rawMessage('proxy-v2')).toString('latin1')}.`);
  secure.destroy();
  return done;
}

/** Resolve true when a TCP connection to host:port is accepted, false when it is refused. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('the ops HTTP endpoint (review finding 10)', () => {
  const env = (over: Record<string, string>) => ({
    ...baseEnv(),
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_SUBMISSION_PORT: 'off',
    RECEIVER_SUBMISSIONS_PORT: 'off',
    RECEIVER_STORE: `file://${tempDir('ops')}`,
    ...over,
  });

  it('binds loopback by default, not RECEIVER_BIND; RECEIVER_HTTP_BIND moves it', async () => {
    // SMTP on 127.0.0.2; the HTTP endpoint must stay on 127.0.0.1 unless asked.
    const rx = await startReceiver(env({ RECEIVER_BIND: '127.0.0.2' }));
    try {
      const listening = await rx.waitFor((l) => l['event'] === 'listening');
      expect(listening).toMatchObject({ bind: '127.0.0.2', httpBind: '127.0.0.1' });
      expect(await accepts('127.0.0.2', rx.ports.mx!)).toBe(true);
      expect(await accepts('127.0.0.1', rx.ports.mx!)).toBe(false);
      const r = await fetch(`http://127.0.0.1:${rx.ports.http}/readyz`);
      expect([r.status, await r.text()]).toEqual([200, 'ready\n']);
      expect(await accepts('127.0.0.2', rx.ports.http!)).toBe(false);
    } finally {
      expect(await rx.stop()).toBe(0);
    }
    const moved = await startReceiver(env({ RECEIVER_HTTP_BIND: '127.0.0.3' }));
    try {
      expect((await fetch(`http://127.0.0.3:${moved.ports.http}/healthz`)).status).toBe(200);
      expect(await accepts('127.0.0.1', moved.ports.http!)).toBe(false);
    } finally {
      expect(await moved.stop()).toBe(0);
    }
  });

  it('/readyz says store_unavailable, never the store error text, which goes to the log', async () => {
    const dir = tempDir('ops-bad');
    writeFileSync(join(dir, 'not-a-directory'), 'x');
    const storeDir = join(dir, 'not-a-directory', 'secret-store-path');
    const rx = await startReceiver(env({ RECEIVER_STORE: `file://${storeDir}` }));
    try {
      const r = await fetch(`http://127.0.0.1:${rx.ports.http}/readyz`);
      expect([r.status, await r.text()]).toEqual([503, 'store_unavailable\n']);
      const line = await rx.waitFor((l) => l['event'] === 'store_check', 'store_check log');
      expect(line).toMatchObject({ level: 'warn', reason: 'store_unavailable' });
      expect(String(line['error'])).toContain('secret-store-path');
    } finally {
      expect(await rx.stop()).toBe(0);
    }
  });
});
