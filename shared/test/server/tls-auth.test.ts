import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { SaslCredentials } from '../../src/core/sasl/server.ts';
import { reject } from '../../src/core/server/replies.ts';
import type { SmtpSession } from '../../src/core/server/types.ts';
import { RawClient, startTestServer, type TestServer } from './harness.ts';

let srv: TestServer;
afterEach(async () => {
  await srv?.close();
});

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

/** Accepts alice / secret (PLAIN, LOGIN, CRAM-MD5). */
function auth(_s: SmtpSession, c: SaslCredentials): { user: string } | null {
  if (c.username !== 'alice') return null;
  if (c.mechanism === 'CRAM-MD5') return c.verify?.('secret') ? { user: 'alice' } : null;
  return c.password === 'secret' ? { user: 'alice' } : null;
}

async function starttls(c: RawClient): Promise<void> {
  expect((await c.command('STARTTLS')).raw).toBe('220 2.0.0 Ready to start TLS\r\n');
  await c.startTls();
}

describe('server: STARTTLS (RFC 3207)', () => {
  it('advertises STARTTLS only before TLS, upgrades, resets the session and requires EHLO again', async () => {
    srv = await startTestServer({ options: { startTls: true }, handler: { auth } });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    const before = await c.command('EHLO client.test');
    expect(before.lines).toContain('STARTTLS');
    expect(before.lines.some((l) => l.startsWith('AUTH'))).toBe(false);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    await starttls(c);
    expect((c.socket as import('node:tls').TLSSocket).getProtocol()).toMatch(/^TLSv1\.[23]$/);
    // The transaction and the EHLO are forgotten.
    expect((await c.command('MAIL FROM:<a@example.org>')).raw).toBe('503 5.5.1 Send HELO/EHLO first\r\n');
    const after = await c.command('EHLO client.test');
    expect(after.lines).not.toContain('STARTTLS');
    expect(after.lines).toContain('AUTH PLAIN LOGIN');
    expect((await c.command('STARTTLS')).raw).toBe('503 5.5.1 TLS already active\r\n');
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org>')).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    c.send('secret\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    expect(srv.messages[0]!.session.secure).toBe(true);
    c.close();
  });

  it('discards commands pipelined after STARTTLS in the same packet (RFC 3207 section 4.2)', async () => {
    srv = await startTestServer({ options: { startTls: true } });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.command('EHLO client.test');
    c.send('STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\nRCPT TO:<x@example.org>\r\n');
    expect((await c.reply()).raw).toBe('220 2.0.0 Ready to start TLS\r\n');
    expect(c.pending).toBe('');
    await c.startTls();
    // If the injected MAIL had run, this would be 503 Nested MAIL / the RCPT would be accepted.
    expect((await c.command('EHLO client.test')).code).toBe(250);
    expect((await c.command('RCPT TO:<x@example.org>')).raw).toBe('503 5.5.1 Need MAIL command first\r\n');
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    c.close();
  });

  it('STARTTLS with arguments is 501, without the option is 502', async () => {
    srv = await startTestServer({ options: { startTls: true } });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.command('EHLO client.test');
    expect((await c.command('STARTTLS now')).raw).toBe(
      '501 5.5.4 Syntax: STARTTLS (no parameters allowed)\r\n',
    );
    c.close();
    await srv.close();
    srv = await startTestServer();
    const d = await RawClient.connect(srv.port);
    await d.reply();
    const e = await d.command('EHLO client.test');
    expect(e.lines).not.toContain('STARTTLS');
    expect((await d.command('STARTTLS')).raw).toBe('502 5.5.1 Command not implemented\r\n');
    d.close();
  });

  it('serves implicit TLS (port 465 style) with TLS 1.2 minimum', async () => {
    srv = await startTestServer({ listen: [{ implicitTls: true }], handler: { auth } });
    const c = await RawClient.connect(srv.port, { implicitTls: true });
    expect((await c.reply()).code).toBe(220);
    const e = await c.command('EHLO client.test');
    expect(e.lines).not.toContain('STARTTLS');
    expect(e.lines).toContain('AUTH PLAIN LOGIN');
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).raw).toBe(
      '235 2.7.0 Authentication successful\r\n',
    );
    c.close();
    const tls = await import('node:tls');
    const { testPki } = await import('../../../test/support/tls.ts');
    const old = tls.connect({
      port: srv.port,
      host: '127.0.0.1',
      ca: testPki().caCert,
      servername: 'localhost',
      maxVersion: 'TLSv1.1',
      minVersion: 'TLSv1',
    });
    const outcome = await new Promise<string>((resolve) => {
      old.once('secureConnect', () => resolve('connected'));
      old.once('error', () => resolve('refused'));
    });
    old.destroy();
    expect(outcome).toBe('refused');
  });
});

describe('server: REQUIRETLS (RFC 8689), opt-in', () => {
  it('is advertised and accepted only over TLS when enabled', async () => {
    srv = await startTestServer({
      options: { extensions: { requireTls: true } },
      listen: [{}, { implicitTls: true }],
    });
    const plain = await RawClient.connect(srv.ports[0]!);
    await plain.reply();
    expect((await plain.command('EHLO client.test')).lines).not.toContain('REQUIRETLS');
    expect((await plain.command('MAIL FROM:<a@example.org> REQUIRETLS')).raw).toBe(
      '555 5.5.4 Unsupported parameter REQUIRETLS\r\n',
    );
    plain.close();
    const secure = await RawClient.connect(srv.ports[1]!, { implicitTls: true });
    await secure.reply();
    expect((await secure.command('EHLO client.test')).lines).toContain('REQUIRETLS');
    expect((await secure.command('MAIL FROM:<a@example.org> REQUIRETLS')).code).toBe(250);
    await secure.command('RCPT TO:<b@example.org>');
    await secure.command('DATA');
    secure.send('x\r\n.\r\n');
    await secure.reply();
    expect(srv.messages[0]!.envelope.mailFrom.params).toEqual({ requiretls: true, other: {} });
    secure.close();
  });
});

describe('server: AUTH (RFC 4954)', () => {
  it('refuses AUTH before TLS with 538 5.7.11 and does not advertise it', async () => {
    srv = await startTestServer({ options: { startTls: true }, handler: { auth } });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.command('EHLO client.test');
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).raw).toBe(
      '538 5.7.11 Encryption required for requested authentication mechanism\r\n',
    );
    c.close();
  });

  it('PLAIN with initial response, then a second AUTH is 503', async () => {
    srv = await startTestServer({ options: { startTls: true }, handler: { auth } });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.command('EHLO client.test');
    await starttls(c);
    await c.command('EHLO client.test');
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).raw).toBe(
      '235 2.7.0 Authentication successful\r\n',
    );
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).raw).toBe(
      '503 5.5.1 Already authenticated\r\n',
    );
    await c.command('MAIL FROM:<a@example.org>');
    await c.command('RCPT TO:<b@example.org>');
    await c.command('DATA');
    c.send('x\r\n.\r\n');
    await c.reply();
    expect(srv.messages[0]!.session.user).toBe('alice');
    c.close();
  });

  it('PLAIN without initial response (334 empty challenge), LOGIN, and CRAM-MD5', async () => {
    srv = await startTestServer({
      options: { allowInsecureAuth: true, authMechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5'] },
      handler: { auth },
    });
    const login = async (): Promise<RawClient> => {
      const c = await RawClient.connect(srv.port);
      await c.reply();
      const e = await c.command('EHLO client.test');
      expect(e.lines).toContain('AUTH PLAIN LOGIN CRAM-MD5');
      return c;
    };
    const a = await login();
    expect((await a.command('AUTH PLAIN')).raw).toBe('334 \r\n');
    expect((await a.command(b64('\0alice\0secret'))).code).toBe(235);
    a.close();

    const b = await login();
    const u = await b.command('AUTH LOGIN');
    expect(u.code).toBe(334);
    expect(unb64(u.lines[0]!)).toBe('Username:');
    const p = await b.command(b64('alice'));
    expect(unb64(p.lines[0]!)).toBe('Password:');
    expect((await b.command(b64('secret'))).code).toBe(235);
    b.close();

    const c = await login();
    const ch = await c.command('AUTH CRAM-MD5');
    expect(ch.code).toBe(334);
    const challenge = unb64(ch.lines[0]!);
    expect(challenge).toMatch(/^<.+@mx\.test>$/);
    const digest = createHmac('md5', 'secret').update(challenge).digest('hex');
    expect((await c.command(b64(`alice ${digest}`))).raw).toBe('235 2.7.0 Authentication successful\r\n');
    c.close();

    const d = await login();
    const ch2 = await d.command('AUTH CRAM-MD5');
    const bad = createHmac('md5', 'wrong').update(unb64(ch2.lines[0]!)).digest('hex');
    expect((await d.command(b64(`alice ${bad}`))).raw).toBe(
      '535 5.7.8 Authentication credentials invalid\r\n',
    );
    d.close();
  });

  it('cancel with * is 501 5.7.0; unknown mechanism 504 5.5.4; AUTH in a transaction 503', async () => {
    srv = await startTestServer({ options: { allowInsecureAuth: true }, handler: { auth } });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.command('EHLO client.test');
    expect((await c.command('AUTH LOGIN')).code).toBe(334);
    expect((await c.command('*')).raw).toBe('501 5.7.0 Authentication cancelled\r\n');
    expect((await c.command('AUTH GSSAPI')).raw).toBe('504 5.5.4 Unrecognized authentication type\r\n');
    expect((await c.command('AUTH CRAM-MD5')).code).toBe(504);
    await c.command('MAIL FROM:<a@example.org>');
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).raw).toBe(
      '503 5.5.1 AUTH not permitted during a mail transaction\r\n',
    );
    c.close();
  });

  it("initial response '=' is the empty response; XOAUTH2 success and its 334 error exchange", async () => {
    srv = await startTestServer({
      options: { allowInsecureAuth: true, authMechanisms: ['PLAIN', 'XOAUTH2'] },
      handler: {
        auth: (_s, c) =>
          c.mechanism === 'XOAUTH2' && c.token === 'good-token' ? { user: c.username } : null,
      },
    });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.command('EHLO client.test');
    // An empty PLAIN message is malformed (RFC 4616 section 2).
    expect((await c.command('AUTH PLAIN =')).code).toBe(501);
    const bad = b64('user=alice@example.org\x01auth=Bearer bad-token\x01\x01');
    const challenge = await c.command(`AUTH XOAUTH2 ${bad}`);
    expect(challenge.code).toBe(334);
    expect(JSON.parse(unb64(challenge.lines[0]!))).toMatchObject({ status: '401' });
    expect((await c.command('')).raw).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    const good = b64('user=alice@example.org\x01auth=Bearer good-token\x01\x01');
    expect((await c.command(`AUTH XOAUTH2 ${good}`)).code).toBe(235);
    c.close();
  });

  it('counts failures: 535 5.7.8, then 421 4.7.0 and close past maxAuthFailures', async () => {
    srv = await startTestServer({
      options: { allowInsecureAuth: true, maxAuthFailures: 2 },
      handler: { auth },
    });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.command('EHLO client.test');
    const wrong = `AUTH PLAIN ${b64('\0alice\0nope')}`;
    expect((await c.command(wrong)).raw).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect((await c.command(wrong)).raw).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect((await c.command(wrong)).raw).toBe(
      '421 4.7.0 mx.test Too many authentication failures, closing connection\r\n',
    );
    await c.waitClosed();
  });

  it('an auth handler exception is 454 4.7.0; its reject() is its reply', async () => {
    srv = await startTestServer({
      options: { allowInsecureAuth: true },
      handler: {
        auth: (_s, cred) => {
          if (cred.username === 'boom') throw new Error('ldap down');
          throw reject(535, '5.7.8', 'No such luck');
        },
      },
    });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.command('EHLO client.test');
    expect((await c.command(`AUTH PLAIN ${b64('\0boom\0x')}`)).raw).toBe(
      '454 4.7.0 Temporary authentication failure\r\n',
    );
    expect((await c.command(`AUTH PLAIN ${b64('\0bob\0x')}`)).raw).toBe('535 5.7.8 No such luck\r\n');
    expect(srv.errors.map((e) => (e as Error).message)).toEqual(['ldap down']);
    c.close();
  });

  it('submission mode: MAIL before AUTH is 530 5.7.0; after AUTH it is accepted', async () => {
    srv = await startTestServer({
      options: { allowInsecureAuth: true, submission: true },
      handler: { auth },
    });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.command('EHLO client.test');
    expect((await c.command('MAIL FROM:<a@example.org>')).raw).toBe('530 5.7.0 Authentication required\r\n');
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).code).toBe(235);
    expect((await c.command('MAIL FROM:<a@example.org> AUTH=alice+40example.org')).code).toBe(250);
    c.close();
  });

  it('per-listener overrides: one server, a plain MX port and a submission port', async () => {
    srv = await startTestServer({
      options: { allowInsecureAuth: true },
      handler: { auth },
      listen: [{}, { submission: true }],
    });
    const mx = await RawClient.connect(srv.ports[0]!);
    await mx.reply();
    await mx.command('EHLO client.test');
    expect((await mx.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    const sub = await RawClient.connect(srv.ports[1]!);
    await sub.reply();
    await sub.command('EHLO client.test');
    expect((await sub.command('MAIL FROM:<a@example.org>')).code).toBe(530);
    mx.close();
    sub.close();
  });
});

describe('server: graceful shutdown', () => {
  it('sends 421 4.3.2 to idle sessions, lets a message in transfer finish, then closes', async () => {
    srv = await startTestServer();
    const idle = await RawClient.connect(srv.port);
    await idle.reply();
    await idle.command('EHLO idle.test');
    const busy = await RawClient.connect(srv.port);
    await busy.reply();
    await busy.command('EHLO busy.test');
    await busy.command('MAIL FROM:<a@example.org>');
    await busy.command('RCPT TO:<b@example.org>');
    await busy.command('DATA');
    busy.send('part one\r\n');
    const closing = srv.server.close({ deadlineMs: 5000 });
    expect((await idle.reply()).raw).toBe('421 4.3.2 mx.test Service shutting down, closing connection\r\n');
    await idle.waitClosed();
    busy.send('part two\r\n.\r\n');
    expect((await busy.reply()).raw).toBe('250 2.0.0 queued as 1\r\n');
    expect((await busy.reply()).raw).toBe('421 4.3.2 mx.test Service shutting down, closing connection\r\n');
    await busy.waitClosed();
    await closing;
    expect(Buffer.from(srv.messages[0]!.bytes).toString()).toBe('part one\r\npart two\r\n');
  });

  it('cuts a transfer that does not finish by the deadline (nothing acknowledged)', async () => {
    srv = await startTestServer();
    const busy = await RawClient.connect(srv.port);
    await busy.reply();
    await busy.command('EHLO busy.test');
    await busy.command('MAIL FROM:<a@example.org>');
    await busy.command('RCPT TO:<b@example.org>');
    await busy.command('DATA');
    busy.send('never ends');
    await srv.server.close({ deadlineMs: 100 });
    await busy.waitClosed();
    expect(busy.pending).toBe('');
    expect(srv.messages).toHaveLength(0);
  });
});
