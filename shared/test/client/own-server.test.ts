/**
 * End to end: our client against our own server engine (shared/src/adapter/node/server.ts),
 * through the server helper's test harness. STARTTLS and implicit TLS with certificate
 * verification, each AUTH mechanism, DSN/SMTPUTF8/REQUIRETLS parameters as the server parsed
 * them, pipelined DATA and BDAT with large bodies: the octets the server stored are compared
 * with the octets we meant to send.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPki } from '../../../test/support/tls.ts';
import { connectSmtp, sendMail } from '../../src/adapter/node/client.ts';
import type { SmtpClientOptions } from '../../src/core/client/options.ts';
import { SmtpAuthError, SmtpReplyError } from '../../src/core/errors.ts';
import type { SaslCredentials } from '../../src/core/sasl/server.ts';
import { startTestServer, type TestServer } from '../server/harness.ts';
import { rejection } from './support/client.ts';

const pki = testPki();
let srv: TestServer;
let starttlsPort: number;
let implicitPort: number;

function auth(_session: unknown, c: SaslCredentials): { user: string } | null {
  if (c.username !== 'ann') return null;
  if (c.mechanism === 'CRAM-MD5') return c.verify?.('secret pass') ? { user: 'ann' } : null;
  if (c.mechanism === 'XOAUTH2') return c.token === 'token-123' ? { user: 'ann' } : null;
  return c.password === 'secret pass' ? { user: 'ann' } : null;
}

beforeAll(async () => {
  srv = await startTestServer({
    options: {
      startTls: true,
      submission: true,
      authMechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'],
      extensions: { requireTls: true },
    },
    handler: {
      auth,
      rcptTo: (_s, rcpt) => {
        if (rcpt.address.startsWith('unknown')) {
          throw new SmtpReplyError(
            { code: 550, enhancedCode: '5.1.1', lines: ['no such user'] },
            { command: 'RCPT' },
          );
        }
      },
    },
    listen: [{}, { implicitTls: true }],
  });
  [starttlsPort, implicitPort] = srv.ports as [number, number];
});

afterAll(async () => {
  await srv.close();
});

const user = { username: 'ann', password: 'secret pass' };
const options = (o: Partial<SmtpClientOptions> = {}): SmtpClientOptions => ({
  host: 'localhost',
  port: starttlsPort,
  security: 'starttls',
  helo: 'client.test',
  tls: { ca: pki.caCert },
  auth: user,
  ...o,
});
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('client against our own server engine', () => {
  it('STARTTLS + AUTH PLAIN + pipelining + DSN: exact bytes and parameters arrive', async () => {
    const before = srv.messages.length;
    const body = 'From: a@x.test\r\nSubject: e2e\r\n\r\n.dot\r\n..two\r\nend';
    const result = await sendMail(
      options(),
      {
        from: 'a@x.test',
        to: ['b@y.test', 'unknown@y.test', 'c@y.test'],
        dsn: { ret: 'HDRS', envid: 'id 1', notify: ['FAILURE'], orcpt: true },
      },
      body,
    );
    expect(result.accepted).toEqual(['b@y.test', 'c@y.test']);
    expect(result.rejected).toEqual([
      { recipient: 'unknown@y.test', code: 550, enhancedCode: '5.1.1', message: 'no such user' },
    ]);
    const got = srv.messages[before]!;
    expect(text(got.bytes)).toBe(`${body}\r\n`);
    expect(got.session.user).toBe('ann');
    expect(got.session.secure).toBe(true);
    expect(got.session.helo).toEqual({ verb: 'EHLO', name: 'client.test' });
    expect(got.envelope.mailFrom.params).toMatchObject({ ret: 'HDRS', envid: 'id 1' });
    expect(got.envelope.rcptTo.map((r) => r.address)).toEqual(['b@y.test', 'c@y.test']);
    expect(got.envelope.rcptTo[0]!.params).toMatchObject({
      notify: ['FAILURE'],
      orcpt: { type: 'rfc822', address: 'b@y.test' },
    });
  });

  it('DSN ORCPT of a UTF-8 recipient (RFC 6533 utf-8 type) arrives decoded', async () => {
    const before = srv.messages.length;
    await sendMail(
      options(),
      { from: 'a@x.test', to: ['bøb+x@例子.test'], dsn: { notify: ['SUCCESS'], orcpt: true } },
      'Subject: utf8 orcpt\r\n\r\nhi\r\n',
    );
    const got = srv.messages[before]!;
    expect(got.envelope.mailFrom.params).toMatchObject({ smtputf8: true });
    expect(got.envelope.rcptTo).toHaveLength(1);
    expect(got.envelope.rcptTo[0]!.address).toBe('bøb+x@例子.test');
    expect(got.envelope.rcptTo[0]!.params).toMatchObject({
      notify: ['SUCCESS'],
      orcpt: { type: 'utf-8', address: 'bøb+x@例子.test' },
    });
  });

  for (const mechanism of ['LOGIN', 'CRAM-MD5'] as const) {
    it(`AUTH ${mechanism}`, async () => {
      const session = await connectSmtp(options({ auth: { ...user, mechanism } }));
      expect(session.authenticatedAs).toBe('ann');
      await session.quit();
    });
  }

  it('AUTH XOAUTH2, and a wrong token refused with SmtpAuthError', async () => {
    const session = await connectSmtp(options({ auth: { username: 'ann', accessToken: 'token-123' } }));
    expect(session.authenticatedAs).toBe('ann');
    await session.quit();
    const err = await rejection(connectSmtp(options({ auth: { username: 'ann', accessToken: 'nope' } })));
    expect(err).toBeInstanceOf(SmtpAuthError);
  });

  it('implicit TLS on the second listener', async () => {
    const session = await connectSmtp(options({ port: implicitPort, security: 'tls' }));
    expect(session.secure).toBe(true);
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'Subject: 465\r\n\r\nx\r\n');
    await session.quit();
  });

  it('BDAT with a 300 KiB body in 16 KiB chunks, byte for byte', async () => {
    const session = await connectSmtp(options({ chunking: { chunkSize: 16 * 1024 } }));
    expect(session.capabilities.has('CHUNKING')).toBe(true);
    const lines: string[] = ['Subject: big', ''];
    for (let i = 0, size = 0; size < 300 * 1024; i++) {
      const line = `${i % 7 === 0 ? '.' : ''}line ${i} ${'x'.repeat(60)}`;
      lines.push(line);
      size += line.length + 2;
    }
    const body = `${lines.join('\r\n')}\r\n`;
    const before = srv.messages.length;
    const r = await session.send({ from: 'a@x.test', to: ['b@y.test'] }, body);
    expect(r.response.code).toBe(250);
    expect(text(srv.messages[before]!.bytes)).toBe(body);
    await session.quit();
  });

  it('DATA with the same body when chunking is off, dot-stuffing undone by the server', async () => {
    const body = `Subject: dots\r\n\r\n${Array.from({ length: 5000 }, (_, i) => `${i % 3 ? '' : '.'}l${i}`).join('\r\n')}\r\n`;
    const before = srv.messages.length;
    await sendMail(options({ chunking: false }), { from: 'a@x.test', to: ['b@y.test'] }, body);
    expect(text(srv.messages[before]!.bytes)).toBe(body);
  });

  it('BINARYMIME: octets pass untouched', async () => {
    const head = new TextEncoder().encode('Content-Type: application/octet-stream\r\n\r\n');
    const bin = new Uint8Array(70_000).map((_, i) => (i * 31) & 0xff);
    const bytes = new Uint8Array(head.length + bin.length);
    bytes.set(head);
    bytes.set(bin, head.length);
    const before = srv.messages.length;
    await sendMail(options(), { from: 'a@x.test', to: ['b@y.test'] }, bytes);
    const got = srv.messages[before]!;
    expect(got.envelope.mailFrom.params.body).toBe('BINARYMIME');
    expect(Buffer.from(got.bytes).equals(Buffer.from(bytes))).toBe(true);
  });

  it('SMTPUTF8 and REQUIRETLS parameters', async () => {
    const before = srv.messages.length;
    await sendMail(
      options(),
      { from: 'zoë@x.test', to: ['b@y.test'], requireTls: true },
      'Subject: =?utf-8?q?x?=\r\n\r\nx\r\n',
    );
    const got = srv.messages[before]!;
    expect(got.envelope.mailFrom.address).toBe('zoë@x.test');
    expect(got.envelope.mailFrom.params).toMatchObject({ smtputf8: true, requiretls: true });
  });

  it('several messages over one connection with RSET between', async () => {
    const session = await connectSmtp(options());
    const before = srv.messages.length;
    for (let i = 0; i < 5; i++)
      await session.send({ from: 'a@x.test', to: [`r${i}@y.test`] }, `n: ${i}\r\n\r\n${i}\r\n`);
    await session.quit();
    expect(srv.messages.slice(before).map((m) => text(m.bytes))).toEqual(
      [0, 1, 2, 3, 4].map((i) => `n: ${i}\r\n\r\n${i}\r\n`),
    );
  });

  it('sends queued at once over DATA: each envelope pipelined after the previous data, all stored in order', async () => {
    const session = await connectSmtp(options({ chunking: false }));
    const before = srv.messages.length;
    const bodies = [0, 1, 2, 3, 4].map(
      (i) => `n: ${i}\r\n\r\n${`.${'x'.repeat(75)}\r\n`.repeat(i * 300)}end\r\n`,
    );
    const results = await Promise.all(
      bodies.map((b, i) => session.send({ from: 'a@x.test', to: [`q${i}@y.test`] }, b)),
    );
    await session.quit();
    expect(results.map((r) => r.accepted)).toEqual([0, 1, 2, 3, 4].map((i) => [`q${i}@y.test`]));
    const got = srv.messages.slice(before);
    expect(got.map((m) => m.envelope.rcptTo[0]!.address)).toEqual([0, 1, 2, 3, 4].map((i) => `q${i}@y.test`));
    expect(got.map((m) => text(m.bytes))).toEqual(bodies);
  });
});
