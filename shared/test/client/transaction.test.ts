/**
 * The client's mail transaction, checked byte for byte against a scripted server on
 * 127.0.0.1: pipelining, per-recipient results, DATA dot-stuffing, BDAT framing, ESMTP
 * parameters (SIZE, BODY, SMTPUTF8, DSN), RSET between messages, HELO fallback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectSmtp, sendMail } from '../../src/adapter/node/client.ts';
import { SmtpRecipientsRejectedError } from '../../src/core/client/errors.ts';
import { SmtpConfigError, SmtpMessageError, SmtpReplyError } from '../../src/core/errors.ts';
import { recordedSession, rejection } from './support/client.ts';
import { digestReply, type FakeSmtp, type FakeSmtpOptions, startFakeSmtp } from './support/fake-server.ts';

let server: FakeSmtp | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function fake(options: FakeSmtpOptions): Promise<FakeSmtp> {
  server = await startFakeSmtp(options);
  return server;
}

const base = { host: '127.0.0.1', security: 'none' as const, helo: 'client.test' };

describe('pipelined transaction (RFC 2920)', () => {
  it('sends MAIL, every RCPT and DATA in one write and reports each recipient', async () => {
    const s = await fake({
      extensions: ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'],
      rcpt: (a) => (a === 'nobody@y.test' ? '550 5.1.1 No such user here' : '250 2.1.5 OK'),
    });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    const result = await session.send(
      { from: 'a@x.test', to: ['b@y.test', 'nobody@y.test', 'c@y.test'] },
      'Subject: hi\r\n\r\nbody\r\n',
    );
    expect(writes).toContain(
      'MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<nobody@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n',
    );
    expect(result.accepted).toEqual(['b@y.test', 'c@y.test']);
    expect(result.rejected).toEqual([
      { recipient: 'nobody@y.test', code: 550, enhancedCode: '5.1.1', message: 'No such user here' },
    ]);
    expect(result.response.code).toBe(250);
    expect(result.response.enhancedCode).toBe('2.0.0');
    expect(result.envelope).toEqual({ from: 'a@x.test', to: ['b@y.test', 'nobody@y.test', 'c@y.test'] });
    expect(s.sessions[0]!.messages[0]!.raw.toString('latin1')).toBe('Subject: hi\r\n\r\nbody\r\n.\r\n');
    await session.quit();
    expect(s.sessions[0]!.commands.at(-1)).toBe('QUIT');
  });

  it('without PIPELINING sends one command per write and waits for each reply', async () => {
    const s = await fake({ extensions: ['8BITMIME'] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    await session.send({ from: 'a@x.test', to: ['b@y.test', 'c@y.test'] }, 'x\r\n');
    expect(writes).toEqual([
      'EHLO client.test\r\n',
      'MAIL FROM:<a@x.test>\r\n',
      'RCPT TO:<b@y.test>\r\n',
      'RCPT TO:<c@y.test>\r\n',
      'DATA\r\n',
      'x\r\n.\r\n',
    ]);
    await session.quit();
  });

  it('throws SmtpRecipientsRejectedError with every result when all recipients are refused, then recovers with RSET', async () => {
    const s = await fake({
      extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'],
      rcpt: (a) => (a.startsWith('bad') ? '550 5.1.1 unknown' : '250 2.1.5 OK'),
    });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    const err = await rejection(session.send({ from: 'a@x.test', to: ['bad1@y.test', 'bad2@y.test'] }, 'x'));
    expect(err).toBeInstanceOf(SmtpRecipientsRejectedError);
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect(err.command).toBe('RCPT');
    expect(err.kind).toBe('reply');
    expect(err.code).toBe(550);
    expect(err.temporary).toBe(false);
    expect(err.rejected).toEqual([
      { recipient: 'bad1@y.test', code: 550, enhancedCode: '5.1.1', message: 'unknown' },
      { recipient: 'bad2@y.test', code: 550, enhancedCode: '5.1.1', message: 'unknown' },
    ]);
    // No message data went out.
    expect(s.sessions[0]!.messages).toHaveLength(0);
    const ok = await session.send({ from: 'a@x.test', to: ['good@y.test'] }, 'y');
    expect(ok.accepted).toEqual(['good@y.test']);
    expect(writes.at(-2)).toBe('RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<good@y.test>\r\nDATA\r\n');
    await session.quit();
  });

  it('sends an empty message end when DATA got 354 although every recipient was refused', async () => {
    const s = await fake({
      extensions: ['PIPELINING'],
      rcpt: () => '550 5.1.1 unknown',
      override: (line) => (line === 'DATA' ? '354 go on anyway' : undefined),
    });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'secret body'));
    expect(err).toBeInstanceOf(SmtpRecipientsRejectedError);
    expect(writes).toContain('.\r\n');
    expect(writes.join('')).not.toContain('secret body');
    await session.noop();
    await session.quit();
  });

  it('a refused MAIL throws SmtpReplyError(MAIL) and reads the rest of the batch', async () => {
    const s = await fake({
      extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'],
      override: (line) =>
        line.startsWith('MAIL')
          ? '451 4.3.0 try later'
          : line.startsWith('RCPT') || line === 'DATA'
            ? '503 5.5.1 no MAIL'
            : undefined,
    });
    const { session } = await recordedSession(s.port);
    await session.greet();
    const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x'));
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect(err.command).toBe('MAIL');
    expect(err.code).toBe(451);
    expect(err.enhancedCode).toBe('4.3.0');
    expect(err.temporary).toBe(true);
    await session.noop(); // still in sync
    await session.quit();
  });

  it('a refused message throws SmtpReplyError(DATA)', async () => {
    const s = await fake({ accept: () => '554 5.6.0 content rejected' });
    const { session } = await recordedSession(s.port);
    await session.greet();
    const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x'));
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect(err.command).toBe('DATA');
    expect(err.code).toBe(554);
    expect(err.message).toBe('DATA: 554 5.6.0 content rejected');
    await session.quit();
  });
});

describe('message data', () => {
  it('dot-stuffs and normalizes line ends on the wire (RFC 5321 section 4.5.2)', async () => {
    const s = await fake({});
    const { session } = await recordedSession(s.port);
    await session.greet();
    await session.send(
      { from: 'a@x.test', to: ['b@y.test'] },
      'A: b\n\n.leading\r\n.\r\nbare\rcr\n..two\nlast',
    );
    expect(s.sessions[0]!.messages[0]!.raw.toString('latin1')).toBe(
      'A: b\r\n\r\n..leading\r\n..\r\nbare\r\ncr\r\n...two\r\nlast\r\n.\r\n',
    );
    await session.quit();
  });

  it('sends a ReadableStream and an async iterable body', async () => {
    const s = await fake({});
    const { session } = await recordedSession(s.port);
    await session.greet();
    const enc = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode('Subject: s\r\n\r\n.a'));
        c.enqueue(enc.encode('\r'));
        c.enqueue(enc.encode('\n.b\r\n'));
        c.close();
      },
    });
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, stream);
    async function* gen() {
      yield enc.encode('X: 1\r\n');
      yield enc.encode('\r\nbody');
    }
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, gen());
    const msgs = s.sessions[0]!.messages;
    expect(msgs[0]!.raw.toString('latin1')).toBe('Subject: s\r\n\r\n..a\r\n..b\r\n.\r\n');
    expect(msgs[1]!.raw.toString('latin1')).toBe('X: 1\r\n\r\nbody\r\n.\r\n');
    await session.quit();
  });

  it('refuses a line over 998 octets before anything is sent', async () => {
    const s = await fake({});
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    const err = await rejection(
      session.send({ from: 'a@x.test', to: ['b@y.test'] }, `ok\r\n${'x'.repeat(999)}\r\n`),
    );
    expect(err).toBeInstanceOf(SmtpMessageError);
    expect(err.field).toBe('body');
    expect(writes).toEqual(['EHLO client.test\r\n']);
    await session.noop(); // the session is still usable
    await session.quit();
  });

  it('a streamed body with an over-long line aborts the connection instead of completing the message', async () => {
    const s = await fake({});
    const { session } = await recordedSession(s.port);
    await session.greet();
    async function* gen() {
      yield new TextEncoder().encode('Subject: s\r\n\r\n');
      yield new TextEncoder().encode('y'.repeat(2000));
    }
    const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, gen()));
    expect(err).toBeInstanceOf(SmtpMessageError);
    expect(err.command).toBe('DATA');
    expect(session.state).toBe('closed');
    expect(s.sessions[0]!.messages).toHaveLength(0);
  });

  it('declares SIZE and refuses a message over the advertised limit before MAIL', async () => {
    const s = await fake({ extensions: ['SIZE 20', 'PIPELINING'] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'abc\n');
    expect(writes[1]).toBe('MAIL FROM:<a@x.test> SIZE=5\r\nRCPT TO:<b@y.test>\r\nDATA\r\n');
    const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x'.repeat(30)));
    expect(err).toBeInstanceOf(SmtpMessageError);
    expect(err.field).toBe('size');
    await session.quit();
  });

  it('sets BODY=8BITMIME for 8-bit content and refuses it when the server lacks 8BITMIME', async () => {
    const s = await fake({ extensions: ['8BITMIME'] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'Subject: x\r\n\r\ncafé\r\n');
    expect(writes[1]).toBe('MAIL FROM:<a@x.test> BODY=8BITMIME\r\n');
    await session.quit();
    await server!.close();
    const s2 = await fake({ extensions: [] });
    const c2 = await recordedSession(s2.port);
    await c2.session.greet();
    const err = await rejection(
      c2.session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'Subject: x\r\n\r\ncafé'),
    );
    expect(err).toBeInstanceOf(SmtpMessageError);
    expect(err.message).toContain('8BITMIME');
    await c2.session.quit();
  });
});

describe('BDAT (RFC 3030)', () => {
  it('frames the message in chunks of the configured size, the last with LAST, without dot-stuffing', async () => {
    const s = await fake({ extensions: ['CHUNKING', 'PIPELINING', '8BITMIME'] });
    const { session, writes } = await recordedSession(s.port, { chunking: { chunkSize: 10 } });
    await session.greet();
    const result = await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'Subject: 1\n\n.dot line\n');
    const body = 'Subject: 1\r\n\r\n.dot line\r\n';
    expect(body.length).toBe(25);
    const msg = s.sessions[0]!.messages[0]!;
    expect(msg.bdat).toEqual(['BDAT 10', 'BDAT 10', 'BDAT 5 LAST']);
    expect(msg.raw.toString('latin1')).toBe(body);
    // MAIL and RCPT go as one batch, the data only after the RCPT replies.
    expect(writes[1]).toBe('MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n');
    expect(writes.slice(2, 5)).toEqual([
      `BDAT 10\r\n${body.slice(0, 10)}`,
      `BDAT 10\r\n${body.slice(10, 20)}`,
      `BDAT 5 LAST\r\n${body.slice(20)}`,
    ]);
    expect(result.response.lines[0]).toMatch(/^OK size=25 /);
    await session.quit();
  });

  it('a message of exactly one chunk goes as a single BDAT n LAST', async () => {
    const s = await fake({ extensions: ['CHUNKING'] });
    const { session } = await recordedSession(s.port, { chunking: { chunkSize: 5 } });
    await session.greet();
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'abc\r\n');
    expect(s.sessions[0]!.messages[0]!.bdat).toEqual(['BDAT 5 LAST']);
    await session.quit();
  });

  it('sends binary content unchanged with BODY=BINARYMIME', async () => {
    const s = await fake({ extensions: ['CHUNKING', 'BINARYMIME', '8BITMIME'] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    const bytes = Uint8Array.of(
      ...new TextEncoder().encode('X: y\r\n\r\n'),
      0x41,
      0x00,
      0x0a,
      0x2e,
      0x0d,
      0xff,
    );
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, bytes);
    expect(writes[1]).toBe('MAIL FROM:<a@x.test> BODY=BINARYMIME\r\n');
    expect([...s.sessions[0]!.messages[0]!.raw]).toEqual([...bytes]);
    await session.quit();
  });

  it('a refused BDAT chunk throws SmtpReplyError(BDAT) and sends no more chunks', async () => {
    const s = await fake({
      extensions: ['CHUNKING'],
      override: (line) => (line.startsWith('BDAT') ? '552 5.3.4 too big' : undefined),
    });
    const { session, writes } = await recordedSession(s.port, { chunking: { chunkSize: 4 } });
    await session.greet();
    const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, '0123456789abcdef'));
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect(err.command).toBe('BDAT');
    expect(err.code).toBe(552);
    expect(writes.filter((w) => w.startsWith('BDAT'))).toHaveLength(1);
    await session.quit();
  });

  it('RSET follows a refused BDAT (RFC 3030 section 2), not a completed BDAT LAST', async () => {
    const s = await fake({
      extensions: ['CHUNKING'],
      override: (line, session) =>
        line.startsWith('BDAT') && session.commands.some((c) => c === 'RCPT TO:<no@y.test>')
          ? '452 4.3.1 out of space'
          : undefined,
    });
    const { session, writes } = await recordedSession(s.port, { chunking: { chunkSize: 4 } });
    await session.greet();
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, '0123456789');
    await session.send({ from: 'a@x.test', to: ['c@y.test'] }, 'ab');
    const err = await rejection(session.send({ from: 'a@x.test', to: ['no@y.test'] }, '0123456789'));
    expect(err.code).toBe(452);
    expect(err.command).toBe('BDAT');
    expect(writes.filter((w) => /^(RSET|MAIL)/.test(w))).toEqual([
      'MAIL FROM:<a@x.test>\r\n',
      'MAIL FROM:<a@x.test>\r\n',
      'MAIL FROM:<a@x.test>\r\n',
    ]);
    await session.quit();
    const s2 = await startFakeSmtp({
      extensions: ['CHUNKING'],
      override: (line) => (line === 'BDAT 4' ? '452 4.3.1 out of space' : undefined),
    });
    try {
      const c2 = await recordedSession(s2.port, { chunking: { chunkSize: 4 } });
      await c2.session.greet();
      await rejection(c2.session.send({ from: 'a@x.test', to: ['b@y.test'] }, '0123456789'));
      await c2.session.send({ from: 'a@x.test', to: ['c@y.test'] }, 'ab');
      expect(c2.writes.filter((w) => /^(RSET|MAIL)/.test(w))).toEqual([
        'MAIL FROM:<a@x.test>\r\n',
        'RSET\r\n',
        'MAIL FROM:<a@x.test>\r\n',
      ]);
      expect(c2.writes.at(-1)).toBe('BDAT 4 LAST\r\nab\r\n');
      await c2.session.quit();
    } finally {
      await s2.close();
    }
  });

  it('does not use BDAT when chunking is disabled', async () => {
    const s = await fake({ extensions: ['CHUNKING'] });
    const { session, writes } = await recordedSession(s.port, { chunking: false });
    await session.greet();
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x');
    expect(writes).toContain('DATA\r\n');
    await session.quit();
  });
});

describe('ESMTP parameters', () => {
  it('sends DSN parameters xtext-encoded (RFC 3461 section 4)', async () => {
    const s = await fake({ extensions: ['DSN', 'PIPELINING'] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    await session.send(
      {
        from: 'a@x.test',
        to: ['b+tag@y.test'],
        dsn: { ret: 'HDRS', envid: 'id=1 +x', notify: ['SUCCESS', 'FAILURE'], orcpt: true },
      },
      'x',
    );
    expect(writes[1]).toBe(
      'MAIL FROM:<a@x.test> RET=HDRS ENVID=id+3D1+20+2Bx\r\n' +
        'RCPT TO:<b+tag@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Btag@y.test\r\nDATA\r\n',
    );
    await session.quit();
  });

  it('ORCPT of a UTF-8 recipient is utf-8;utf-8-addr-xtext (RFC 6533 section 3), not dropped', async () => {
    const s = await fake({ extensions: ['DSN', 'SMTPUTF8', '8BITMIME', 'PIPELINING'] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    const result = await session.send(
      {
        from: 'a@x.test',
        to: ['bøb+1@y.test', 'c@y.test'],
        dsn: { notify: ['FAILURE'], orcpt: true },
      },
      'x',
    );
    expect(result.accepted).toEqual(['bøb+1@y.test', 'c@y.test']);
    expect(writes[1]).toBe(
      'MAIL FROM:<a@x.test> BODY=8BITMIME SMTPUTF8\r\n' +
        'RCPT TO:<bøb+1@y.test> NOTIFY=FAILURE ORCPT=utf-8;b\\x{F8}b\\x{2B}1@y.test\r\n' +
        'RCPT TO:<c@y.test> NOTIFY=FAILURE ORCPT=rfc822;c@y.test\r\nDATA\r\n',
    );
    await session.quit();
  });

  it('refuses DSN when the server lacks it, or drops it when asked to', async () => {
    const s = await fake({ extensions: ['PIPELINING'] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    const err = await rejection(
      session.send({ from: 'a@x.test', to: ['b@y.test'], dsn: { notify: 'NEVER' } }, 'x'),
    );
    expect(err).toBeInstanceOf(SmtpMessageError);
    expect(err.field).toBe('dsn');
    expect(writes).toEqual(['EHLO client.test\r\n']);
    await session.quit();
    const c2 = await recordedSession(s.port, { dsnUnsupported: 'drop' });
    await c2.session.greet();
    await c2.session.send({ from: 'a@x.test', to: ['b@y.test'], dsn: { notify: 'NEVER' } }, 'x');
    expect(c2.writes[1]).toBe('MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n');
    await c2.session.quit();
  });

  it('sets SMTPUTF8 for a UTF-8 address or header and refuses when not offered (RFC 6531)', async () => {
    const s = await fake({ extensions: ['SMTPUTF8', '8BITMIME', 'PIPELINING'] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    await session.send({ from: 'zoë@x.test', to: ['b@y.test'] }, 'x');
    expect(writes[1]).toBe('MAIL FROM:<zoë@x.test> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<b@y.test>\r\nDATA\r\n');
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'Subject: café\r\n\r\nx');
    // The first transaction completed, so no RSET (RFC 5321 section 4.1.1.4).
    expect(writes[3]).toBe('MAIL FROM:<a@x.test> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<b@y.test>\r\nDATA\r\n');
    await session.quit();
    const s2 = await startFakeSmtp({ extensions: ['8BITMIME'] });
    try {
      const c2 = await recordedSession(s2.port);
      await c2.session.greet();
      const err = await rejection(c2.session.send({ from: 'a@x.test', to: ['zoë@y.test'] }, 'x'));
      expect(err).toBeInstanceOf(SmtpMessageError);
      expect(err.field).toBe('to[0]');
      const err2 = await rejection(
        c2.session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'Subject: é\r\n\r\nx'),
      );
      expect(err2.field).toBe('body');
      expect(c2.writes).toEqual(['EHLO client.test\r\n']);
      await c2.session.quit();
    } finally {
      await s2.close();
    }
  });

  it('refuses CR, LF and NUL in addresses before anything is sent', async () => {
    const s = await fake({ extensions: ['PIPELINING'] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    for (const bad of ['a@x.test>\r\nRCPT TO:<evil@x.test', 'a@x.test\n', 'a\0@x.test']) {
      const err = await rejection(session.send({ from: bad, to: ['b@y.test'] }, 'x'));
      expect(err).toBeInstanceOf(SmtpMessageError);
      const err2 = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test', bad] }, 'x'));
      expect(err2).toBeInstanceOf(SmtpMessageError);
      expect(err2.field).toBe('to[1]');
    }
    expect(writes).toEqual(['EHLO client.test\r\n']);
    await session.quit();
  });

  it('refuses CR/LF in the EHLO name with SmtpConfigError', async () => {
    const s = await fake({});
    const err = await rejection(recordedSession(s.port, { helo: 'client.test\r\nMAIL FROM:<x@y>' }));
    expect(err).toBeInstanceOf(SmtpConfigError);
  });

  it('sends the null reverse path as <>', async () => {
    const s = await fake({ extensions: [] });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    await session.send({ from: '', to: ['b@y.test'] }, 'x');
    expect(writes[1]).toBe('MAIL FROM:<>\r\n');
    await session.quit();
  });
});

describe('session', () => {
  it('sends RSET only when the previous transaction did not complete (RFC 5321 sections 4.1.1.4, 4.1.1.5)', async () => {
    const s = await fake({
      extensions: [],
      rcpt: (a) => (a.startsWith('bad') ? '550 5.1.1 No such user here' : '250 2.1.5 OK'),
      accept: (m) => (m.raw.toString().startsWith('refuse') ? '554 5.6.0 refused' : digestReply(m.raw)),
    });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    const from = 'a@x.test';
    await session.send({ from, to: ['b@y.test'] }, '1');
    // completed with 250: no RSET
    await session.send({ from, to: ['c@y.test'] }, '2');
    // the end of data was refused: the transaction is still over, no RSET
    const refused = await rejection(session.send({ from, to: ['c@y.test'] }, 'refuse'));
    expect(refused.code).toBe(554);
    await session.send({ from, to: ['d@y.test'] }, '3');
    // every recipient refused: the transaction never completed, so RSET comes first
    const noRcpt = await rejection(session.send({ from, to: ['bad@y.test'] }, 'x'));
    expect(noRcpt).toBeInstanceOf(SmtpRecipientsRejectedError);
    await session.send({ from, to: ['e@y.test'] }, '4');
    // an explicit RSET leaves nothing to clear
    await session.reset();
    await session.send({ from, to: ['f@y.test'] }, '5');
    expect(writes.slice(1)).toEqual([
      ...['MAIL FROM:<a@x.test>\r\n', 'RCPT TO:<b@y.test>\r\n', 'DATA\r\n', '1\r\n.\r\n'],
      ...['MAIL FROM:<a@x.test>\r\n', 'RCPT TO:<c@y.test>\r\n', 'DATA\r\n', '2\r\n.\r\n'],
      ...['MAIL FROM:<a@x.test>\r\n', 'RCPT TO:<c@y.test>\r\n', 'DATA\r\n', 'refuse\r\n.\r\n'],
      ...['MAIL FROM:<a@x.test>\r\n', 'RCPT TO:<d@y.test>\r\n', 'DATA\r\n', '3\r\n.\r\n'],
      ...['MAIL FROM:<a@x.test>\r\n', 'RCPT TO:<bad@y.test>\r\n'],
      ...['RSET\r\n', 'MAIL FROM:<a@x.test>\r\n', 'RCPT TO:<e@y.test>\r\n', 'DATA\r\n', '4\r\n.\r\n'],
      'RSET\r\n',
      ...['MAIL FROM:<a@x.test>\r\n', 'RCPT TO:<f@y.test>\r\n', 'DATA\r\n', '5\r\n.\r\n'],
    ]);
    expect(s.sessions[0]!.messages.map((m) => m.raw.toString())).toEqual(
      ['1', '2', 'refuse', '3', '4', '5'].map((b) => `${b}\r\n.\r\n`),
    );
    await session.quit();
  });

  it('with PIPELINING, RSET rides in the batch only after a transaction that did not complete', async () => {
    const s = await fake({
      extensions: ['PIPELINING'],
      rcpt: (a) => (a.startsWith('bad') ? '550 5.1.1 No such user here' : '250 2.1.5 OK'),
    });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, '1');
    await session.send({ from: 'a@x.test', to: ['c@y.test'] }, '2');
    await rejection(session.send({ from: 'a@x.test', to: ['bad@y.test'] }, 'x'));
    await session.send({ from: 'a@x.test', to: ['d@y.test'] }, '3');
    expect(writes.filter((w) => w.includes('MAIL FROM'))).toEqual([
      'MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n',
      'MAIL FROM:<a@x.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n',
      'MAIL FROM:<a@x.test>\r\nRCPT TO:<bad@y.test>\r\nDATA\r\n',
      'RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n',
    ]);
    await session.quit();
  });

  it('falls back to HELO when EHLO is refused (RFC 5321 section 4.1.4)', async () => {
    const s = await fake({
      override: (line) => (line.startsWith('EHLO') ? '502 5.5.1 EHLO not implemented' : undefined),
    });
    const { session, writes } = await recordedSession(s.port);
    await session.greet();
    expect(writes).toEqual(['EHLO client.test\r\n', 'HELO client.test\r\n']);
    expect(session.capabilities.size).toBe(0);
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x');
    await session.quit();
  });

  it('without a configured name, says EHLO with the literal of the local address it connects from', async () => {
    const s = await fake({});
    const { session, writes } = await recordedSession(s.port, { helo: undefined });
    await session.greet();
    expect(writes[0]).toBe('EHLO [127.0.0.1]\r\n');
    await session.quit();
  });

  it('exposes the EHLO capabilities', async () => {
    const s = await fake({ extensions: ['SIZE 1000', 'AUTH PLAIN LOGIN', 'PIPELINING'] });
    const { session } = await recordedSession(s.port);
    await session.greet();
    expect(session.capabilities.get('SIZE')).toEqual(['1000']);
    expect(session.capabilities.get('AUTH')).toEqual(['PLAIN', 'LOGIN']);
    expect(session.capabilities.has('PIPELINING')).toBe(true);
    expect(session.secure).toBe(false);
    await session.quit();
  });

  it('a 554 greeting ends in SmtpReplyError and a closed session', async () => {
    const s = await fake({ greeting: '554 5.7.1 go away' });
    const err = await rejection(connectSmtp({ ...base, port: s.port }));
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect(err.code).toBe(554);
    expect(err.command).toBe('CONNECT');
    // RFC 5321 section 3.1: the client SHOULD send QUIT after a 554 greeting
    expect(s.sessions[0]!.commands).toEqual(['QUIT']);
  });

  it('serializes concurrent send() calls on one session', async () => {
    const s = await fake({ extensions: ['PIPELINING'] });
    const session = await connectSmtp({ ...base, port: s.port });
    const results = await Promise.all([
      session.send({ from: 'a@x.test', to: ['1@y.test'] }, 'one'),
      session.send({ from: 'a@x.test', to: ['2@y.test'] }, 'two'),
    ]);
    expect(results.map((r) => r.accepted)).toEqual([['1@y.test'], ['2@y.test']]);
    expect(s.sessions[0]!.messages.map((m) => m.raw.toString())).toEqual(['one\r\n.\r\n', 'two\r\n.\r\n']);
    await session.quit();
  });

  it('sendMail connects, sends and quits', async () => {
    const s = await fake({ extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'] });
    const result = await sendMail({ ...base, port: s.port }, { from: 'a@x.test', to: ['b@y.test'] }, 'hello');
    expect(result.accepted).toEqual(['b@y.test']);
    expect(s.sessions[0]!.commands).toEqual([
      'EHLO client.test',
      'MAIL FROM:<a@x.test>',
      'RCPT TO:<b@y.test>',
      'DATA',
      'QUIT',
    ]);
  });

  it('sendMail checks the envelope before connecting', async () => {
    const s = await fake({});
    const err = await rejection(sendMail({ ...base, port: s.port }, { from: 'a@x.test', to: [] }, 'x'));
    expect(err).toBeInstanceOf(SmtpMessageError);
    expect(s.sessions).toHaveLength(0);
  });
});
