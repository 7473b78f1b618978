/**
 * Our client against nodemailer's `smtp-server` (npm), a real third-party implementation:
 * STARTTLS with certificate verification, each AUTH mechanism (PLAIN, LOGIN, CRAM-MD5,
 * XOAUTH2), DSN parameters as the server parsed them, and the exact message bytes received.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPki } from '../../../test/support/tls.ts';
import { connectSmtp, sendMail } from '../../src/adapter/node/client.ts';
import { SmtpAuthError } from '../../src/core/errors.ts';
import { rejection } from './support/client.ts';

const pki = testPki();

interface Received {
  session: { user: unknown; secure: boolean; envelope: SMTPServerSession['envelope'] };
  raw: Buffer;
}

const received: Received[] = [];
let server: SMTPServer;
let port: number;

beforeAll(async () => {
  const options: SMTPServerOptions = {
    key: pki.key,
    cert: pki.cert,
    disableReverseLookup: true,
    hideDSN: false,
    hideENHANCEDSTATUSCODES: false,
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'],
    logger: false,
    onAuth(auth, _session, callback) {
      const ok =
        auth.username === 'ann' &&
        (auth.method === 'XOAUTH2'
          ? auth.accessToken === 'token-123'
          : auth.method === 'CRAM-MD5'
            ? auth.validatePassword?.('secret pass') === true
            : auth.password === 'secret pass');
      if (!ok) {
        callback(new Error('Invalid username or password'));
        return;
      }
      callback(null, { user: 'ann' });
    },
    onData(stream, session, callback) {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        received.push({
          session: {
            user: session.user,
            secure: session.secure,
            envelope: structuredClone(session.envelope),
          },
          raw: Buffer.concat(parts),
        });
        callback();
      });
    },
  };
  server = new SMTPServer(options);
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const base = () => ({
  host: 'localhost',
  port,
  security: 'starttls' as const,
  helo: 'client.test',
  tls: { ca: pki.caCert },
});

describe('against nodemailer smtp-server', () => {
  it('STARTTLS + AUTH PLAIN + DSN: the server sees the parameters and the exact bytes', async () => {
    const body = 'From: a@x.test\r\nTo: b@y.test\r\nSubject: dsn\r\n\r\n.starts with a dot\r\nend\r\n';
    const before = received.length;
    const result = await sendMail(
      { ...base(), auth: { username: 'ann', password: 'secret pass' } },
      {
        from: 'a@x.test',
        to: ['b@y.test'],
        dsn: { ret: 'HDRS', envid: 'env+1', notify: ['SUCCESS', 'FAILURE'], orcpt: true },
      },
      body,
    );
    expect(result.accepted).toEqual(['b@y.test']);
    expect(result.response.code).toBe(250);
    const got = received[before]!;
    expect(got.session.user).toBe('ann');
    expect(got.session.secure).toBe(true);
    expect(got.raw.toString('latin1')).toBe(body);
    expect(got.session.envelope.dsn).toMatchObject({ ret: 'HDRS', envid: 'env+1' });
    const rcpt = got.session.envelope.rcptTo[0]!;
    expect(rcpt.address).toBe('b@y.test');
    expect(rcpt.dsn?.notify).toEqual(['SUCCESS', 'FAILURE']);
    expect(rcpt.dsn?.orcpt).toBe('rfc822;b@y.test');
  });

  for (const mechanism of ['LOGIN', 'CRAM-MD5'] as const) {
    it(`AUTH ${mechanism}`, async () => {
      const session = await connectSmtp({
        ...base(),
        auth: { username: 'ann', password: 'secret pass', mechanism },
      });
      expect(session.authenticatedAs).toBe('ann');
      const r = await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'Subject: m\r\n\r\nx\r\n');
      expect(r.accepted).toEqual(['b@y.test']);
      await session.quit();
    });
  }

  it('AUTH XOAUTH2 with an access token', async () => {
    const session = await connectSmtp({ ...base(), auth: { username: 'ann', accessToken: 'token-123' } });
    expect(session.authenticatedAs).toBe('ann');
    await session.quit();
  });

  it('a wrong XOAUTH2 token ends in SmtpAuthError after the error challenge', async () => {
    const err = await rejection(connectSmtp({ ...base(), auth: { username: 'ann', accessToken: 'bad' } }));
    expect(err).toBeInstanceOf(SmtpAuthError);
    expect((err.reply as { code: number } | undefined)?.code).toBe(535);
  });

  it('several messages on one connection, each received intact', async () => {
    const session = await connectSmtp({ ...base(), auth: { username: 'ann', password: 'secret pass' } });
    const before = received.length;
    for (let i = 0; i < 3; i++) {
      await session.send({ from: 'a@x.test', to: [`r${i}@y.test`] }, `Subject: ${i}\r\n\r\nmessage ${i}\r\n`);
    }
    await session.quit();
    expect(received.slice(before).map((r) => r.raw.toString())).toEqual([
      'Subject: 0\r\n\r\nmessage 0\r\n',
      'Subject: 1\r\n\r\nmessage 1\r\n',
      'Subject: 2\r\n\r\nmessage 2\r\n',
    ]);
  });
});
