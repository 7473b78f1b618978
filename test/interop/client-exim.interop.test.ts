/**
 * Our client against Exim 4.96 as a CHUNKING server (RFC 3030): BDAT chunks seen on the wire by a
 * recording proxy, octets compared with what Exim delivered, STARTTLS + AUTH, SMTPUTF8 and DSN
 * (Exim returns a success notification with our ENVID).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendMail } from '../../shared/src/adapter/node/client.ts';
import type { SmtpClientOptions } from '../../shared/src/core/client/options.ts';
import {
  type EximMessage,
  type EximServer,
  pollUntil,
  type RecordingProxy,
  startExim,
  startRecordingProxy,
} from '../support/peers.ts';
import { testPki } from '../support/tls.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

let ex: EximServer;
let proxy: RecordingProxy;
beforeAll(async () => {
  ex = await startExim({ auth: { users: { edge: 'pa:ss' } }, rejectRecipients: ['nobody@exim.test'] });
  proxy = await startRecordingProxy(ex.port);
});
afterAll(async () => {
  await proxy?.stop();
  await ex?.stop();
});

const base = (over: Partial<SmtpClientOptions> = {}): SmtpClientOptions => ({
  host: '127.0.0.1',
  port: ex.port,
  security: 'starttls',
  tls: { ca: testPki().caCert, servername: 'localhost' },
  helo: 'edge.test',
  ...over,
});

const message = (subject: string, extra = '') =>
  [
    'From: edge@exim.test',
    'To: bob@exim.test',
    `Subject: ${subject}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    '.leading dot',
    '.',
    'Grüße',
    extra,
  ].join('\r\n');

function delivered(subject: string, recipient?: string): Promise<EximMessage> {
  return pollUntil(
    () =>
      ex
        .messages()
        .find(
          (m) =>
            (recipient === undefined || m.recipient === recipient) &&
            text(m.contentCrlf).includes(`Subject: ${subject}\r\n`),
        ),
    20_000,
    () => `exim delivery of "${subject}":\n${ex.mainlog()}`,
  );
}

describe('smtp-edge client -> exim (CHUNKING server)', () => {
  it('BDAT in 16 KiB chunks, pipelined with MAIL/RCPT; octets exact', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) lines.push(`${String(i).padStart(6, '0')} ${'abcdefghij'.repeat(6)}`);
    const body = message('chunks', `${lines.join('\r\n')}\r\n`);
    const size = Buffer.byteLength(body);
    const res = await sendMail(
      base({ port: proxy.port, security: 'none', chunking: { chunkSize: 16_384 } }),
      { from: 'edge@exim.test', to: ['bob@exim.test', 'carol@exim.test'] },
      body,
    );
    expect(res.accepted).toEqual(['bob@exim.test', 'carol@exim.test']);
    const conn = proxy.events.at(-1)!.conn;
    const commands = proxy.clientLines(conn);
    const sent = commands.map((l) => l.line);
    // PIPELINING (RFC 2920): both RCPTs leave before the reply to MAIL arrives.
    const mail = commands.find((l) => l.line.startsWith('MAIL FROM:'))!;
    for (const l of commands.filter((x) => x.line.startsWith('RCPT TO:')))
      expect(l.repliesBefore).toBe(mail.repliesBefore);
    const bdat = sent.filter((l) => l.startsWith('BDAT '));
    const expected: string[] = [];
    for (let at = 0; at < size; at += 16_384) {
      const n = Math.min(16_384, size - at);
      expected.push(at + n >= size ? `BDAT ${n} LAST` : `BDAT ${n}`);
    }
    expect(bdat).toEqual(expected);
    expect(sent.some((l) => l === 'DATA')).toBe(false);
    const bob = await delivered('chunks', 'bob@exim.test');
    const carol = await delivered('chunks', 'carol@exim.test');
    for (const m of [bob, carol]) {
      expect(m.sender).toBe('edge@exim.test');
      expect(Buffer.from(m.contentCrlf).equals(Buffer.from(body))).toBe(true);
    }
    expect(ex.mainlog()).toMatch(/<= edge@exim\.test H=\(edge\.test\) \[127\.0\.0\.1\] P=esmtp K S=/);
  });

  it('STARTTLS + AUTH LOGIN, then BDAT', async () => {
    await sendMail(
      base({ auth: { username: 'edge', password: 'pa:ss', mechanism: 'LOGIN' } }),
      { from: 'edge@exim.test', to: ['bob@exim.test'] },
      message('auth-login'),
    );
    const m = await delivered('auth-login');
    expect(text(m.contentCrlf)).toBe(message('auth-login'));
    expect(ex.mainlog()).toMatch(/P=esmtpsa X=TLS[^ ]+ CV=no A=login:edge K S=/);
  });

  it('SMTPUTF8 sender and headers', async () => {
    const body = ['From: Zoë <zoë@exim.test>', 'To: bob@exim.test', 'Subject: utf8 ✓', '', 'hi', ''].join(
      '\r\n',
    );
    await sendMail(base(), { from: 'zoë@exim.test', to: ['bob@exim.test'] }, body);
    const m = await delivered('utf8 ✓');
    expect(m.sender).toBe('zoë@exim.test');
    expect(text(m.contentCrlf)).toBe(body);
  });

  it('DSN: NOTIFY=SUCCESS makes Exim send a success report to the sender with our ENVID', async () => {
    await sendMail(
      base(),
      {
        from: 'edge@exim.test',
        to: ['dsn@exim.test'],
        dsn: { notify: ['SUCCESS'], ret: 'HDRS', envid: 'edge-exim-1', orcpt: true },
      },
      message('dsn'),
    );
    await delivered('dsn');
    const report = await pollUntil(
      () => ex.messages().find((m) => m.sender === '' && text(m.contentCrlf).includes('edge-exim-1')),
      20_000,
      () => `a success DSN:\n${ex.mainlog()}`,
    );
    expect(report.recipient).toBe('edge@exim.test');
    const t = text(report.contentCrlf);
    expect(t).toContain('Original-Envelope-ID: edge-exim-1');
    expect(t).toMatch(/Original-Recipient: rfc822;dsn@exim\.test/);
    expect(t).toMatch(/Action: delivered/);
  });

  it('one refused recipient: 550 with Exim text, the other delivered', async () => {
    const res = await sendMail(
      base(),
      { from: 'edge@exim.test', to: ['nobody@exim.test', 'bob@exim.test'] },
      message('partial'),
    );
    expect(res.accepted).toEqual(['bob@exim.test']);
    expect(res.rejected).toEqual([
      { recipient: 'nobody@exim.test', code: 550, enhancedCode: '5.1.1', message: 'no such user' },
    ]);
    await delivered('partial', 'bob@exim.test');
  });
});
