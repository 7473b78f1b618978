/**
 * Our client against a private Postfix 3.7: STARTTLS and implicit TLS verified against the test
 * CA, AUTH PLAIN/LOGIN/CRAM-MD5 (Cyrus sasldb), BDAT/CHUNKING (Postfix counts the chunks in its
 * log), SMTPUTF8, DSN (Postfix sends the success notification back with our ENVID and ORCPT),
 * refused recipients. Every delivered message is compared with what we sent, octet for octet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSmtp, sendMail } from '../../shared/src/adapter/node/client.ts';
import type { SmtpClientOptions } from '../../shared/src/core/client/options.ts';
import { SmtpError } from '../../shared/src/core/errors.ts';
import {
  type PostfixMessage,
  type PrivatePostfix,
  pollUntil,
  startPrivatePostfix,
} from '../support/peers.ts';
import { testPki } from '../support/tls.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const USER = 'edge';
const PASS = 'p@ss word:1';

let pf: PrivatePostfix;
beforeAll(async () => {
  pf = await startPrivatePostfix({
    implicitTls: true,
    sasl: { users: { [USER]: PASS } },
    rejectRecipients: ['nobody@postfix.test'],
  });
});
afterAll(async () => pf?.stop());

const base = (over: Partial<SmtpClientOptions> = {}): SmtpClientOptions => ({
  host: '127.0.0.1',
  port: pf.port,
  security: 'starttls',
  tls: { ca: testPki().caCert, servername: 'localhost' },
  helo: 'edge.test',
  ...over,
});

const message = (subject: string, extra = '') =>
  [
    'From: edge@postfix.test',
    'To: bob@postfix.test',
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    '.leading dot',
    '.',
    'Grüße',
    extra,
  ].join('\r\n');

/** The delivery whose content has this Subject (waits for Postfix's queue manager). */
function delivered(subject: string, sender?: string): Promise<PostfixMessage> {
  return pollUntil(
    () =>
      pf
        .messages()
        .find(
          (m) =>
            (sender === undefined || m.sender === sender) &&
            text(m.content).includes(`Subject: ${subject}\r\n`),
        ),
    30_000,
    () => `delivery of "${subject}"; maillog:\n${pf.maillog()}`,
  );
}

/** Postfix's per-session command counts (e.g. `bdat=3`) for the session that queued `queueId`. */
function sessionOf(queueId: string): string {
  const log = pf.maillog().split('\n');
  const client = log.find((l) => l.includes(`${queueId}: client=`));
  const pid = client ? /smtpd\[(\d+)\]/.exec(client)?.[1] : undefined;
  const idx = client ? log.indexOf(client) : -1;
  return log.slice(idx).find((l) => l.includes(`smtpd[${pid}]: disconnect from`)) ?? '';
}

describe('smtp-edge client -> private postfix', () => {
  it('STARTTLS + AUTH PLAIN, then BDAT: octets equal, Postfix counts one BDAT chunk', async () => {
    const body = message('plain-bdat');
    const res = await sendMail(
      base({ auth: { username: USER, password: PASS, mechanism: 'PLAIN' } }),
      { from: 'edge@postfix.test', to: ['bob@postfix.test', 'carol@postfix.test'] },
      body,
    );
    expect(res.accepted).toEqual(['bob@postfix.test', 'carol@postfix.test']);
    expect(res.response).toMatchObject({ code: 250, enhancedCode: '2.0.0' });
    const m = await delivered('plain-bdat');
    expect(m.sender).toBe('edge@postfix.test');
    expect(m.recipients.sort()).toEqual(['bob@postfix.test', 'carol@postfix.test']);
    expect(text(m.content)).toBe(body);
    expect(m.received).toMatch(/with ESMTPSA id /);
    // smtpd logs the session summary when it ends, possibly after the delivery: poll.
    await expect
      .poll(() => sessionOf(m.queueId))
      .toMatch(/ ehlo=2 starttls=1 auth=1 mail=1 rcpt=2 bdat=1 quit=1 /);
    expect(pf.maillog()).toContain('sasl_method=PLAIN, sasl_username=edge@postfix.test');
  });

  for (const mechanism of ['LOGIN', 'CRAM-MD5'] as const) {
    it(`AUTH ${mechanism}`, async () => {
      const subject = `auth-${mechanism}`;
      await sendMail(
        base({ auth: { username: USER, password: PASS, mechanism } }),
        { from: 'edge@postfix.test', to: ['bob@postfix.test'] },
        message(subject),
      );
      const m = await delivered(subject);
      expect(pf.maillog()).toContain(`sasl_method=${mechanism}, sasl_username=edge@postfix.test`);
      expect(text(m.content)).toBe(message(subject));
    });
  }

  it('a wrong password is an SmtpAuthError (535 5.7.8), nothing queued', async () => {
    const e = await sendMail(
      base({ auth: { username: USER, password: 'wrong' } }),
      { from: 'edge@postfix.test', to: ['bob@postfix.test'] },
      message('never'),
    ).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(SmtpError);
    expect((e as SmtpError).kind).toBe('auth');
    expect(String((e as Error).message)).toMatch(/535/);
  });

  it('implicit TLS (port-465 style) with AUTH', async () => {
    await sendMail(
      base({ port: pf.implicitTlsPort!, security: 'tls', auth: { username: USER, password: PASS } }),
      { from: 'edge@postfix.test', to: ['bob@postfix.test'] },
      message('implicit'),
    );
    const m = await delivered('implicit');
    expect(text(m.content)).toBe(message('implicit'));
    expect(m.received).toMatch(/with ESMTPSA id /);
  });

  it('a certificate from an untrusted CA is refused with SmtpTlsError before any mail command', async () => {
    const e = await sendMail(
      {
        host: '127.0.0.1',
        port: pf.port,
        security: 'starttls',
        starttlsPolicy: 'required',
        helo: 'edge.test',
      },
      { from: 'edge@postfix.test', to: ['bob@postfix.test'] },
      message('untrusted'),
    ).catch((err: unknown) => err);
    expect((e as SmtpError).kind).toBe('tls');
  });

  it('DATA instead of BDAT when chunking is off (dot-stuffing both ways)', async () => {
    await sendMail(
      base({ chunking: false }),
      { from: 'edge@postfix.test', to: ['bob@postfix.test'] },
      message('data'),
    );
    const m = await delivered('data');
    expect(text(m.content)).toBe(message('data'));
    await expect.poll(() => sessionOf(m.queueId)).toMatch(/ data=1 /);
    expect(sessionOf(m.queueId)).not.toMatch(/bdat=/);
  });

  it('sends queued on one STARTTLS session, each envelope pipelined after the previous data: all delivered intact', async () => {
    const session = await connectSmtp(base({ chunking: false }));
    const subjects = ['queued-1', 'queued-2', 'queued-3'];
    const results = await Promise.all(
      subjects.map((s) => session.send({ from: 'edge@postfix.test', to: ['bob@postfix.test'] }, message(s))),
    );
    await session.quit();
    expect(results.map((r) => r.response.code)).toEqual([250, 250, 250]);
    for (const s of subjects) expect(text((await delivered(s)).content)).toBe(message(s));
  });

  it('a 3 MB message in 64 KiB BDAT chunks arrives intact', async () => {
    const lines: string[] = [];
    for (let i = 0; lines.length < 40_000; i++)
      lines.push(`${String(i).padStart(8, '0')} ${'0123456789'.repeat(7)}`);
    const body = message('big', `${lines.join('\r\n')}\r\n`);
    const size = Buffer.byteLength(body);
    await sendMail(base(), { from: 'edge@postfix.test', to: ['bob@postfix.test'] }, body);
    const m = await delivered('big');
    expect(Buffer.from(m.content).equals(Buffer.from(body))).toBe(true);
    await expect.poll(() => sessionOf(m.queueId)).toContain(` bdat=${Math.ceil(size / 65536)} `);
  });

  it('SMTPUTF8: a UTF-8 sender and a UTF-8 header arrive as sent', async () => {
    const body = [
      'From: Zoë <zoë@postfix.test>',
      'To: bob@postfix.test',
      'Subject: utf8 ✓',
      '',
      'hi',
      '',
    ].join('\r\n');
    await sendMail(base(), { from: 'zoë@postfix.test', to: ['bob@postfix.test'] }, body);
    const m = await delivered('utf8 ✓');
    expect(m.sender).toBe('zoë@postfix.test');
    expect(text(m.content)).toBe(body);
  });

  it('DSN: NOTIFY=SUCCESS brings back a report with our ENVID and ORCPT (RFC 3464)', async () => {
    await sendMail(
      base(),
      {
        from: 'edge@postfix.test',
        to: ['dsn-rcpt@postfix.test'],
        dsn: { notify: ['SUCCESS'], ret: 'HDRS', envid: 'edge-env+1', orcpt: true },
      },
      message('dsn'),
    );
    const report = await pollUntil(
      () => pf.messages().find((m) => m.sender === '' && text(m.content).includes('edge-env+1')),
      30_000,
      () => `a DSN; maillog:\n${pf.maillog()}`,
    );
    expect(report.recipients).toEqual(['edge@postfix.test']);
    const t = text(report.content);
    expect(t).toContain('Original-Envelope-Id: edge-env+1');
    expect(t).toContain('Original-Recipient: rfc822;dsn-rcpt@postfix.test');
    expect(t).toMatch(/Action: delivered/);
    // RET=HDRS: the returned part is headers only.
    expect(t).toContain('Content-Type: text/rfc822-headers');
  });

  it('one refused recipient: reported with Postfix reply and enhanced code, the other delivered', async () => {
    const res = await sendMail(
      base(),
      { from: 'edge@postfix.test', to: ['nobody@postfix.test', 'bob@postfix.test'] },
      message('partial'),
    );
    expect(res.accepted).toEqual(['bob@postfix.test']);
    expect(res.rejected).toHaveLength(1);
    expect(res.rejected[0]).toMatchObject({
      recipient: 'nobody@postfix.test',
      code: 550,
      enhancedCode: '5.7.1',
    });
    expect(res.rejected[0]!.message).toContain('Recipient address rejected: no such user');
    const m = await delivered('partial');
    expect(m.recipients).toEqual(['bob@postfix.test']);
  });
});
