/**
 * Our client against postfix's smtp-sink: PIPELINING proved on the wire (a recording proxy sees
 * RCPT and DATA leave before any reply to MAIL), DSN parameters exactly as RFC 3461 spells them,
 * message octets through dot-stuffing, and every fault smtp-sink can inject mapped to the right
 * typed error.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectSmtp, sendMail } from '../../shared/src/adapter/node/client.ts';
import { SmtpRecipientsRejectedError } from '../../shared/src/core/client/errors.ts';
import { SmtpError, SmtpReplyError } from '../../shared/src/core/errors.ts';
import { type RecordingProxy, type SmtpSink, startRecordingProxy, startSmtpSink } from '../support/peers.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

// ASCII header (smtp-sink has no SMTPUTF8), 8-bit body (it has 8BITMIME).
const BODY = [
  'From: Zoe <zoe@example.org>',
  'To: bob@example.net',
  'Subject: client -> smtp-sink',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 8bit',
  '',
  '.leading dot',
  '.',
  '..',
  'Grüße',
  '',
].join('\r\n');

let sink: SmtpSink | undefined;
let proxy: RecordingProxy | undefined;
afterEach(async () => {
  await proxy?.stop();
  await sink?.stop();
  proxy = undefined;
  sink = undefined;
});

const opts = (port: number) => ({ host: '127.0.0.1', port, security: 'none' as const, helo: 'edge.test' });

async function failure(p: Promise<unknown>): Promise<SmtpError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SmtpError);
  return e as SmtpError;
}

describe('smtp-edge client -> smtp-sink', () => {
  it('pipelines MAIL, RCPTs and DATA in one round trip (RFC 2920) and the octets arrive', async () => {
    sink = await startSmtpSink();
    proxy = await startRecordingProxy(sink.port);
    const res = await sendMail(
      opts(proxy.port),
      { from: 'zoe@example.org', to: ['bob@example.net', 'carol@example.net'] },
      BODY,
    );
    expect(res.accepted).toEqual(['bob@example.net', 'carol@example.net']);
    expect(res.rejected).toEqual([]);
    expect(res.response).toMatchObject({ code: 250, enhancedCode: '2.0.0' });
    const lines = proxy.clientLines();
    const mail = lines.find((l) => l.line.startsWith('MAIL FROM:'))!;
    const batch = lines.filter((l) => /^(RCPT TO:|DATA$)/.test(l.line));
    expect(batch.map((l) => l.line)).toEqual([
      'RCPT TO:<bob@example.net>',
      'RCPT TO:<carol@example.net>',
      'DATA',
    ]);
    for (const l of batch) expect(l.repliesBefore).toBe(mail.repliesBefore);
    const [m] = await sink.waitForMessages(1);
    expect(m?.helo).toBe('edge.test');
    expect(m?.mailArgs).toBe('<zoe@example.org> BODY=8BITMIME');
    expect(m?.rcptTo).toEqual(['bob@example.net', 'carol@example.net']);
    expect(text(m!.contentCrlf)).toBe(BODY);
  });

  it('queued sends: each next envelope leaves with the end of data, before its reply (RFC 2920 section 3.1)', async () => {
    sink = await startSmtpSink();
    proxy = await startRecordingProxy(sink.port);
    const session = await connectSmtp(opts(proxy.port));
    const results = await Promise.all(
      [1, 2, 3].map((n) => session.send({ from: `a${n}@example.org`, to: [`b${n}@example.net`] }, BODY)),
    );
    await session.quit();
    expect(results.map((r) => [r.accepted, r.response.code])).toEqual([
      [['b1@example.net'], 250],
      [['b2@example.net'], 250],
      [['b3@example.net'], 250],
    ]);
    // What the client had read when it sent the next MAIL: message n's 354, not yet the reply to
    // its end of data.
    for (const n of [2, 3]) {
      const at = proxy.events.findIndex(
        (e) => e.dir === 'c2s' && Buffer.from(e.bytes).toString('latin1').includes(`MAIL FROM:<a${n}@`),
      );
      const seen = proxy.events
        .slice(0, at)
        .filter((e) => e.dir === 's2c')
        .map((e) => Buffer.from(e.bytes).toString('latin1'))
        .join('');
      expect(seen.trimEnd().split('\r\n').at(-1)).toMatch(/^354 /);
      expect(proxy.events[at]!.bytes.length).toBeGreaterThan(BODY.length); // same write as the data
    }
    expect(proxy.clientLines().some((l) => l.line === 'RSET')).toBe(false);
    const got = await sink.waitForMessages(3);
    // smtp-sink's dump files are not in arrival order.
    expect(got.map((m) => [m.mailArgs, m.rcptTo, text(m.contentCrlf)]).sort()).toEqual(
      [1, 2, 3].map((n) => [`<a${n}@example.org> BODY=8BITMIME`, [`b${n}@example.net`], BODY]),
    );
  });

  it('without PIPELINING it waits for each reply', async () => {
    sink = await startSmtpSink({ pipelining: false });
    proxy = await startRecordingProxy(sink.port);
    await sendMail(
      opts(proxy.port),
      { from: 'zoe@example.org', to: ['bob@example.net', 'carol@example.net'] },
      BODY,
    );
    const seq = proxy.clientLines().filter((l) => /^(MAIL|RCPT|DATA)/.test(l.line));
    expect(seq.map((l) => l.line.split(':')[0])).toEqual(['MAIL FROM', 'RCPT TO', 'RCPT TO', 'DATA']);
    for (let i = 1; i < seq.length; i++)
      expect(seq[i]!.repliesBefore).toBeGreaterThan(seq[i - 1]!.repliesBefore);
    const [m] = await sink.waitForMessages(1);
    expect(text(m!.contentCrlf)).toBe(BODY);
  });

  it('DSN: RET, ENVID (xtext), NOTIFY and ORCPT exactly as RFC 3461 section 4 spells them', async () => {
    sink = await startSmtpSink();
    await sendMail(
      opts(sink.port),
      {
        from: 'zoe@example.org',
        to: ['bob@example.net', 'carol+tag@example.net'],
        dsn: { ret: 'HDRS', envid: 'QQ+314159=x', notify: ['SUCCESS', 'FAILURE'], orcpt: true },
      },
      'Subject: dsn\r\n\r\nhi\r\n',
    );
    const [m] = await sink.waitForMessages(1);
    expect(m?.mailArgs).toBe('<zoe@example.org> RET=HDRS ENVID=QQ+2B314159+3Dx');
    expect(m?.rcptArgs).toEqual([
      '<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.net',
      '<carol+tag@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;carol+2Btag@example.net',
    ]);
  });

  it('DSN asked of a server without DSN: refused before MAIL by default, dropped when told to', async () => {
    sink = await startSmtpSink({ dsn: false });
    const envelope = { from: 'zoe@example.org', to: ['bob@example.net'], dsn: { notify: 'NEVER' as const } };
    const e = await failure(sendMail(opts(sink.port), envelope, 'Subject: x\r\n\r\nx\r\n'));
    expect(e.kind).toBe('message');
    expect(sink.messages()).toHaveLength(0);
    await sendMail({ ...opts(sink.port), dsnUnsupported: 'drop' }, envelope, 'Subject: x\r\n\r\nx\r\n');
    const [m] = await sink.waitForMessages(1);
    expect(m?.rcptArgs).toEqual(['<bob@example.net>']);
  });

  it('8-bit body to a server without 8BITMIME is refused before sending (RFC 6152)', async () => {
    sink = await startSmtpSink({ eightBitMime: false });
    const e = await failure(
      sendMail(opts(sink.port), { from: 'zoe@example.org', to: ['bob@example.net'] }, BODY),
    );
    expect(e.kind).toBe('message');
    expect(sink.messages()).toHaveLength(0);
  });

  it('every recipient refused (hard): SmtpRecipientsRejectedError with each reply, no DATA', async () => {
    sink = await startSmtpSink({ hardReject: ['RCPT'], hardBounceReply: '550 5.1.1 No such user' });
    const e = await failure(
      sendMail(opts(sink.port), { from: 'zoe@example.org', to: ['a@example.net', 'b@example.net'] }, BODY),
    );
    expect(e).toBeInstanceOf(SmtpRecipientsRejectedError);
    const r = e as SmtpRecipientsRejectedError;
    expect(r.temporary).toBe(false);
    expect(r.rejected).toEqual([
      { recipient: 'a@example.net', code: 550, enhancedCode: '5.1.1', message: 'No such user' },
      { recipient: 'b@example.net', code: 550, enhancedCode: '5.1.1', message: 'No such user' },
    ]);
    expect(sink.messages()).toHaveLength(0);
  });

  it('soft RCPT refusal is temporary (450 4.3.0)', async () => {
    sink = await startSmtpSink({ softReject: ['RCPT'] });
    const e = await failure(
      sendMail(opts(sink.port), { from: 'zoe@example.org', to: ['a@example.net'] }, BODY),
    );
    expect(e).toBeInstanceOf(SmtpRecipientsRejectedError);
    expect(e.temporary).toBe(true);
    expect((e as SmtpRecipientsRejectedError).rejected[0]).toMatchObject({
      code: 450,
      enhancedCode: '4.3.0',
    });
  });

  it('the final "." refused: SmtpReplyError on DATA with the server reply', async () => {
    sink = await startSmtpSink({ hardReject: ['.'], hardBounceReply: '554 5.6.0 Message content rejected' });
    const e = await failure(
      sendMail(opts(sink.port), { from: 'zoe@example.org', to: ['a@example.net'] }, BODY),
    );
    expect(e).toBeInstanceOf(SmtpReplyError);
    expect((e as SmtpReplyError).code).toBe(554);
    expect((e as SmtpReplyError).enhancedCode).toBe('5.6.0');
    expect(e.command).toBe('DATA');
  });

  it('421 at MAIL (not pipelined): a temporary SmtpReplyError carrying the 421', async () => {
    sink = await startSmtpSink({ disconnect421: ['MAIL'] });
    const e = await failure(
      sendMail(
        { ...opts(sink.port), pipelining: false },
        { from: 'zoe@example.org', to: ['a@example.net'] },
        BODY,
      ),
    );
    expect(e).toBeInstanceOf(SmtpReplyError);
    expect((e as SmtpReplyError).code).toBe(421);
    expect(e.command).toBe('MAIL');
    expect(e.temporary).toBe(true);
  });

  // MAIL, RCPT and DATA pipelined; the server answers MAIL with 421 and closes (RFC 5321
  // section 3.8) while the client still waits for the RCPT and DATA replies: the 421 wins over
  // the end of stream that follows it.
  it('421 at MAIL (pipelined): the 421 reply is reported, not a connection error', async () => {
    sink = await startSmtpSink({ disconnect421: ['MAIL'] });
    const e = await failure(
      sendMail(opts(sink.port), { from: 'zoe@example.org', to: ['a@example.net'] }, BODY),
    );
    expect(e).toBeInstanceOf(SmtpReplyError);
    expect((e as SmtpReplyError).code).toBe(421);
    expect(e.command).toBe('MAIL');
    expect(e.temporary).toBe(true);
  });

  it('the connection dropped after DATA: a temporary connection error, nothing delivered', async () => {
    sink = await startSmtpSink({ disconnect: ['DATA'] });
    const lost = await failure(
      sendMail(opts(sink.port), { from: 'zoe@example.org', to: ['a@example.net'] }, BODY),
    );
    expect(lost.kind).toBe('connection');
    expect(lost.temporary).toBe(true);
    expect(sink.messages().filter((m) => m.content.byteLength > 0)).toHaveLength(0);
  });
});
