/**
 * Our client against aiosmtpd 1.4 (Python): a server with SIZE, 8BITMIME, SMTPUTF8, STARTTLS and
 * AUTH but no PIPELINING, CHUNKING or DSN, so the client must fall back to one command at a time,
 * DATA with dot-stuffing, and say no to what the server cannot do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendMail } from '../../shared/src/adapter/node/client.ts';
import type { SmtpClientOptions } from '../../shared/src/core/client/options.ts';
import { type SmtpError, SmtpReplyError } from '../../shared/src/core/errors.ts';
import {
  type Aiosmtpd,
  type AiosmtpdMessage,
  pollUntil,
  type RecordingProxy,
  startAiosmtpd,
  startRecordingProxy,
} from '../support/peers.ts';
import { testPki } from '../support/tls.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

let aio: Aiosmtpd;
let proxy: RecordingProxy;
beforeAll(async () => {
  aio = await startAiosmtpd({
    auth: { users: { edge: 'pa ss' }, requireTls: true },
    rejectRecipients: ['nobody@example.net'],
    size: 200_000,
  });
  proxy = await startRecordingProxy(aio.port);
});
afterAll(async () => {
  await proxy?.stop();
  await aio?.stop();
});

const base = (over: Partial<SmtpClientOptions> = {}): SmtpClientOptions => ({
  host: '127.0.0.1',
  port: aio.port,
  security: 'starttls',
  tls: { ca: testPki().caCert, servername: 'localhost' },
  helo: 'edge.test',
  ...over,
});

const message = (subject: string) =>
  [
    'From: edge@example.org',
    'To: bob@example.net',
    `Subject: ${subject}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    '.leading dot',
    '.',
    '..',
    'Grüße',
    '',
  ].join('\r\n');

function delivered(subject: string): Promise<AiosmtpdMessage> {
  return pollUntil(
    () => aio.messages().find((m) => text(m.content).includes(`Subject: ${subject}\r\n`)),
    20_000,
    () => `aiosmtpd delivery of "${subject}": ${aio.output()}`,
  );
}

describe('smtp-edge client -> aiosmtpd', () => {
  it('STARTTLS + AUTH PLAIN, SIZE and BODY=8BITMIME declared, octets exact through DATA', async () => {
    const body = message('plain');
    const res = await sendMail(
      base({ auth: { username: 'edge', password: 'pa ss', mechanism: 'PLAIN' } }),
      { from: 'edge@example.org', to: ['bob@example.net', 'carol@example.net'] },
      body,
    );
    expect(res.accepted).toEqual(['bob@example.net', 'carol@example.net']);
    expect(res.response.code).toBe(250);
    const m = await delivered('plain');
    expect(m).toMatchObject({
      mailFrom: 'edge@example.org',
      mailOptions: [`SIZE=${Buffer.byteLength(body)}`, 'BODY=8BITMIME'],
      rcptTo: ['bob@example.net', 'carol@example.net'],
      rcptOptions: [[], []],
      smtputf8: false,
      helo: 'edge.test',
      tls: true,
      login: 'edge',
    });
    expect(text(m.content)).toBe(body);
  });

  it('AUTH LOGIN', async () => {
    await sendMail(
      base({ auth: { username: 'edge', password: 'pa ss', mechanism: 'LOGIN' } }),
      { from: 'edge@example.org', to: ['bob@example.net'] },
      message('login'),
    );
    expect((await delivered('login')).login).toBe('edge');
  });

  it('no PIPELINING offered: each command waits for its reply (seen through a proxy)', async () => {
    await sendMail(
      base({ port: proxy.port, security: 'none' }),
      { from: 'edge@example.org', to: ['bob@example.net', 'carol@example.net'] },
      message('serial'),
    );
    const conn = proxy.events.at(-1)!.conn;
    const seq = proxy.clientLines(conn).filter((l) => /^(MAIL|RCPT|DATA)/.test(l.line));
    expect(seq.map((l) => l.line)).toEqual([
      `MAIL FROM:<edge@example.org> SIZE=${Buffer.byteLength(message('serial'))} BODY=8BITMIME`,
      'RCPT TO:<bob@example.net>',
      'RCPT TO:<carol@example.net>',
      'DATA',
    ]);
    for (let i = 1; i < seq.length; i++)
      expect(seq[i]!.repliesBefore).toBeGreaterThan(seq[i - 1]!.repliesBefore);
    expect(text((await delivered('serial')).content)).toBe(message('serial'));
  });

  it('SMTPUTF8 addresses (RFC 6531)', async () => {
    const body = ['From: Zoë <zoë@exämple.org>', 'To: bob@example.net', 'Subject: utf8 ✓', '', 'hi', ''].join(
      '\r\n',
    );
    await sendMail(base(), { from: 'zoë@exämple.org', to: ['bøb@example.net'] }, body);
    const m = await delivered('utf8 ✓');
    expect(m.mailFrom).toBe('zoë@exämple.org');
    expect(m.rcptTo).toEqual(['bøb@example.net']);
    expect(m.smtputf8).toBe(true);
    expect(m.mailOptions).toContain('SMTPUTF8');
    expect(text(m.content)).toBe(body);
  });

  it('DSN asked but not offered: dropped when dsnUnsupported is "drop"', async () => {
    await sendMail(
      base({ dsnUnsupported: 'drop' }),
      { from: 'edge@example.org', to: ['bob@example.net'], dsn: { notify: ['FAILURE'], ret: 'HDRS' } },
      message('dsn-drop'),
    );
    const m = await delivered('dsn-drop');
    expect(m.mailOptions.some((o) => o.startsWith('RET='))).toBe(false);
    expect(m.rcptOptions).toEqual([[]]);
  });

  it('a message over the advertised SIZE is refused before MAIL (RFC 1870 section 6)', async () => {
    const big = `${message('too-big')}${'x'.repeat(998)}\r\n`.repeat(201);
    const e = await sendMail(base(), { from: 'edge@example.org', to: ['bob@example.net'] }, big).catch(
      (err: unknown) => err,
    );
    expect((e as SmtpError).kind).toBe('message');
    expect(aio.messages().some((m) => text(m.content).includes('too-big'))).toBe(false);
  });

  it('one recipient refused (550 5.1.1), the other delivered', async () => {
    const res = await sendMail(
      base(),
      { from: 'edge@example.org', to: ['nobody@example.net', 'bob@example.net'] },
      message('partial'),
    );
    expect(res.accepted).toEqual(['bob@example.net']);
    expect(res.rejected).toEqual([
      { recipient: 'nobody@example.net', code: 550, enhancedCode: '5.1.1', message: 'User unknown' },
    ]);
    expect((await delivered('partial')).rcptTo).toEqual(['bob@example.net']);
  });

  it('a server that requires STARTTLS refuses a clear-text client with 530', async () => {
    const strict = await startAiosmtpd({ requireTls: true });
    try {
      const e = await sendMail(
        { host: '127.0.0.1', port: strict.port, security: 'none', helo: 'edge.test' },
        { from: 'edge@example.org', to: ['bob@example.net'] },
        message('clear'),
      ).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(SmtpReplyError);
      expect((e as SmtpReplyError).code).toBe(530);
      expect(strict.messages()).toHaveLength(0);
    } finally {
      await strict.stop();
    }
  });

  it('implicit TLS', async () => {
    const tlsServer = await startAiosmtpd({ implicitTls: true });
    try {
      await sendMail(
        { ...base({ port: tlsServer.port, security: 'tls' }) },
        { from: 'edge@example.org', to: ['bob@example.net'] },
        message('implicit'),
      );
      const [m] = await tlsServer.waitForMessages(1);
      expect(m?.tls).toBe(true);
      expect(text(m!.content)).toBe(message('implicit'));
    } finally {
      await tlsServer.stop();
    }
  });

  it('no STARTTLS offered: "required" fails with SmtpTlsError, "opportunistic" sends in clear text', async () => {
    const plain = await startAiosmtpd({ tls: false });
    try {
      const envelope = { from: 'edge@example.org', to: ['bob@example.net'] };
      const e = await sendMail(
        base({ port: plain.port, starttlsPolicy: 'required' }),
        envelope,
        message('req'),
      ).catch((err: unknown) => err);
      expect((e as SmtpError).kind).toBe('tls');
      expect(plain.messages()).toHaveLength(0);
      await sendMail(base({ port: plain.port, starttlsPolicy: 'opportunistic' }), envelope, message('opp'));
      const [m] = await plain.waitForMessages(1);
      expect(m?.tls).toBe(false);
      expect(text(m!.content)).toBe(message('opp'));
    } finally {
      await plain.stop();
    }
  });
});
