/**
 * A real client (nodemailer, npm) delivering to our server over STARTTLS with AUTH; the bytes
 * the data handler read are compared with the bytes nodemailer was given.
 */
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { testPki } from '../../../test/support/tls.ts';
import { startTestServer, type TestServer } from './harness.ts';

let srv: TestServer;
afterEach(async () => {
  await srv?.close();
});

const auth = {
  auth: (
    _s: unknown,
    c: { username: string; password?: string; mechanism: string; verify?: (s: string) => boolean },
  ) => {
    if (c.username !== 'alice') return null;
    if (c.mechanism === 'CRAM-MD5') return c.verify?.('s3cret') ? { user: 'alice' } : null;
    return c.password === 's3cret' ? { user: 'alice' } : null;
  },
};

function raw(extra = ''): string {
  return [
    'From: Alice <alice@example.org>',
    'To: Bob <bob@example.net>',
    'Subject: interop',
    'Message-ID: <1@example.org>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Hello Bob,',
    '.a line starting with a dot',
    '.',
    '..two dots',
    `caf\u00e9 ${extra}`,
    '',
  ].join('\r\n');
}

describe('interop: nodemailer -> our server', () => {
  for (const method of ['PLAIN', 'LOGIN', 'CRAM-MD5'] as const) {
    it(`STARTTLS + AUTH ${method}, pipelined envelope, exact bytes`, async () => {
      srv = await startTestServer({
        options: { startTls: true, submission: true, authMechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5'] },
        handler: auth,
      });
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: srv.port,
        secure: false,
        requireTLS: true,
        name: 'client.test',
        tls: { ca: testPki().caCert, servername: 'localhost' },
        auth: { user: 'alice', pass: 's3cret' },
        authMethod: method,
      });
      const message = raw(method);
      const info = await transport.sendMail({
        envelope: { from: 'alice@example.org', to: ['bob@example.net', 'carol@example.net'] },
        raw: message,
      });
      transport.close();
      expect(info.accepted).toEqual(['bob@example.net', 'carol@example.net']);
      expect(info.response).toBe('250 2.0.0 queued as 1');
      expect(srv.messages).toHaveLength(1);
      const m = srv.messages[0]!;
      expect(Buffer.from(m.bytes).toString('utf8')).toBe(message);
      expect(m.session).toMatchObject({
        user: 'alice',
        secure: true,
        helo: { verb: 'EHLO', name: 'client.test' },
      });
      expect(m.envelope.rcptTo.map((r) => r.address)).toEqual(['bob@example.net', 'carol@example.net']);
    });
  }

  it('implicit TLS (secure: true), DSN and SMTPUTF8 parameters, a composed message', async () => {
    srv = await startTestServer({ listen: [{ implicitTls: true }], handler: auth });
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: srv.port,
      secure: true,
      tls: { ca: testPki().caCert, servername: 'localhost' },
      auth: { user: 'alice', pass: 's3cret' },
    });
    const info = await transport.sendMail({
      from: 'alice@example.org',
      to: 'jörg@exämple.org',
      subject: 'grüße',
      text: 'Hallo',
      dsn: { id: 'env-42', return: 'headers', notify: ['failure', 'delay'], recipient: 'alice@example.org' },
    });
    transport.close();
    expect(info.accepted).toEqual(['jörg@exämple.org']);
    const m = srv.messages[0]!;
    expect(m.envelope.mailFrom.params).toMatchObject({ smtputf8: true, ret: 'HDRS', envid: 'env-42' });
    expect(m.envelope.rcptTo[0]).toMatchObject({
      address: 'jörg@exämple.org',
      params: { notify: ['FAILURE', 'DELAY'], orcpt: { type: 'rfc822', address: 'alice@example.org' } },
    });
    expect(Buffer.from(m.bytes).toString('utf8')).toContain('Hallo');
  });

  it('wrong password: nodemailer gets EAUTH with 535 5.7.8', async () => {
    srv = await startTestServer({ options: { startTls: true }, handler: auth });
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: srv.port,
      requireTLS: true,
      tls: { ca: testPki().caCert, servername: 'localhost' },
      auth: { user: 'alice', pass: 'nope' },
    });
    await expect(
      transport.sendMail({ envelope: { from: 'a@example.org', to: ['b@example.org'] }, raw: raw() }),
    ).rejects.toMatchObject({
      code: 'EAUTH',
      responseCode: 535,
    });
    transport.close();
  });
});
