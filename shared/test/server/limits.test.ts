import { afterEach, describe, expect, it } from 'vitest';
import { reject } from '../../src/core/server/replies.ts';
import { ehlo, RawClient, readAll, startTestServer, type TestServer } from './harness.ts';

let srv: TestServer;
afterEach(async () => {
  await srv?.close();
});

/** A syntactically valid mailbox of exactly `length` octets (64-octet local part, labels of at most 63). */
function mailbox(length: number): string {
  let domain = 'org';
  while (65 + domain.length < length) {
    domain = `${'d'.repeat(Math.min(63, Math.max(1, length - 66 - domain.length)))}.${domain}`;
  }
  const m = `${'l'.repeat(64)}@${domain}`;
  if (m.length !== length) throw new Error(`mailbox of ${m.length} octets, wanted ${length}`);
  return m;
}

async function transaction(c: RawClient, rcpts = 1): Promise<void> {
  expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
  for (let i = 0; i < rcpts; i++) expect((await c.command(`RCPT TO:<r${i}@example.org>`)).code).toBe(250);
}

describe('server: limits', () => {
  it('refuses a command line over 512 octets with 500 5.5.2 and keeps serving', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    // 510 octets + CRLF = 512: allowed.
    const ok = `NOOP ${'x'.repeat(505)}`;
    expect(ok.length).toBe(510);
    expect((await c.command(ok)).code).toBe(250);
    const long = `NOOP ${'x'.repeat(506)}`;
    expect((await c.command(long)).raw).toBe('500 5.5.2 Line too long\r\n');
    // A huge line (more than one read) is dropped through its end, and the next command is parsed.
    c.send(`MAIL FROM:<${'y'.repeat(100_000)}@example.org>\r\nNOOP\r\n`);
    expect((await c.replies(2)).map((r) => r.raw)).toEqual([
      '500 5.5.2 Line too long\r\n',
      '250 2.0.0 OK\r\n',
    ]);
    c.close();
  });

  it("MAIL and RCPT get the extensions' line allowances by default (RFC 5321 section 4.5.3.1.4)", async () => {
    srv = await startTestServer({ handler: { auth: () => ({ user: 'u' }) } });
    const { c } = await ehlo(srv.port);
    const path = `<${mailbox(254)}>`; // 256 octets: the longest path (RFC 5321 section 4.5.3.1.3)
    // Every MAIL parameter at its largest (SIZE 20 digits, ENVID 100, AUTH a 254-octet mailbox
    // whose local part is half `+`, which xtext triples): 759 octets.
    const auth = `${'a+'.repeat(32)}${mailbox(254).slice(64)}`.replaceAll('+', '+2B');
    const mail = `MAIL FROM:${path} SIZE=00000000000000001000 BODY=BINARYMIME SMTPUTF8 RET=HDRS ENVID=${'e'.repeat(100)} AUTH=${auth}`;
    expect(mail.length + 2).toBe(759);
    expect((await c.command(mail)).raw).toBe('250 2.1.0 Sender OK\r\n');
    // RCPT with NOTIFY (28) and ORCPT (500) at their largest: 802 octets.
    const rcpt = `RCPT TO:${path} NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;${mailbox(493)}`;
    expect(rcpt.length + 2).toBe(802);
    expect((await c.command(rcpt)).raw).toBe('250 2.1.5 Recipient OK\r\n');
    expect((await c.command('RSET')).code).toBe(250);
    // The limits themselves: 1186 octets for MAIL, 1048 for RCPT, CRLF included.
    const mailHead = `MAIL FROM:${path} ENVID=`;
    const mailMax = mailHead + 'e'.repeat(1186 - 2 - mailHead.length);
    expect((await c.command(mailMax)).raw).toBe('501 5.5.4 ENVID too long\r\n');
    expect((await c.command(`${mailMax}e`)).raw).toBe('500 5.5.2 Line too long\r\n');
    expect((await c.command('MAIL FROM:<>')).code).toBe(250);
    const rcptHead = `RCPT TO:${path} ORCPT=rfc822;`;
    const rcptMax = rcptHead + mailbox(1048 - 2 - rcptHead.length);
    expect((await c.command(rcptMax)).raw).toBe('501 5.5.4 Invalid ORCPT value\r\n');
    expect((await c.command(`${rcptMax}x`)).raw).toBe('500 5.5.2 Line too long\r\n');
    // Other commands keep 512.
    expect((await c.command(`NOOP ${'x'.repeat(506)}`)).raw).toBe('500 5.5.2 Line too long\r\n');
    c.close();
  });

  it('without DSN, RCPT keeps 512; an explicit maxCommandLineBytes is one flat limit for every command', async () => {
    srv = await startTestServer({ options: { extensions: { dsn: false } } });
    const { c } = await ehlo(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    const rcpt = `RCPT TO:<${mailbox(254)}>`;
    expect((await c.command(`${rcpt} ${'x'.repeat(512 - 3 - rcpt.length)}`)).raw).toBe(
      '555 5.5.4 Unsupported parameter ' + 'X'.repeat(512 - 3 - rcpt.length) + '\r\n',
    );
    expect((await c.command(`${rcpt} ${'x'.repeat(512 - 2 - rcpt.length)}`)).raw).toBe(
      '500 5.5.2 Line too long\r\n',
    );
    c.close();
    await srv.close();
    srv = await startTestServer({ options: { maxCommandLineBytes: 600 } });
    const { c: d } = await ehlo(srv.port);
    expect((await d.command(`NOOP ${'x'.repeat(600 - 7)}`)).raw).toBe('250 2.0.0 OK\r\n');
    expect((await d.command(`NOOP ${'x'.repeat(600 - 6)}`)).raw).toBe('500 5.5.2 Line too long\r\n');
    const mail = 'MAIL FROM:<a@example.org> ENVID=';
    expect((await d.command(mail + 'e'.repeat(600 - 1 - mail.length))).raw).toBe(
      '500 5.5.2 Line too long\r\n',
    );
    d.close();
  });

  it('closes with 421 4.7.0 after too many bad commands', async () => {
    srv = await startTestServer({ options: { maxBadCommands: 3 } });
    const { c } = await ehlo(srv.port);
    c.send('BAD1\r\nBAD2\r\nBAD3\r\nBAD4\r\nNOOP\r\n');
    const replies = await c.replies(4);
    expect(replies.map((r) => r.code)).toEqual([500, 500, 500, 421]);
    expect(replies[3]!.raw).toBe('421 4.7.0 mx.test Too many errors, closing connection\r\n');
    await c.waitClosed();
    expect(c.pending).toBe('');
  });

  it('answers 452 4.5.3 past maxRecipients and keeps the accepted ones', async () => {
    srv = await startTestServer({ options: { maxRecipients: 2 } });
    const { c } = await ehlo(srv.port);
    await transaction(c, 2);
    expect((await c.command('RCPT TO:<third@example.org>')).raw).toBe('452 4.5.3 Too many recipients\r\n');
    expect((await c.command('DATA')).code).toBe(354);
    c.send('x\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    expect(srv.messages[0]!.envelope.rcptTo).toHaveLength(2);
    c.close();
  });

  it('counts RCPTs past maxRecipients per transaction: a client deferring one recipient per message is never cut', async () => {
    srv = await startTestServer({ options: { maxRecipients: 2, maxBadCommands: 3 } });
    const { c } = await ehlo(srv.port);
    for (let i = 0; i < 8; i++) {
      await transaction(c, 2);
      // RFC 5321 section 4.5.3.1.10: the client keeps the 452 recipient for a later transaction.
      expect((await c.command('RCPT TO:<deferred@example.org>')).raw).toBe(
        '452 4.5.3 Too many recipients\r\n',
      );
      expect((await c.command('DATA')).code).toBe(354);
      expect((await c.command('x\r\n.')).raw).toBe(`250 2.0.0 queued as ${i + 1}\r\n`);
    }
    expect(srv.messages).toHaveLength(8);
    // Within one transaction a flood still ends: maxRecipients 452s, then each counts as an error.
    await transaction(c, 2);
    c.send('RCPT TO:<x@example.org>\r\n'.repeat(6));
    const replies = await c.replies(6);
    expect(replies.map((r) => r.code)).toEqual([452, 452, 452, 452, 452, 421]);
    expect(replies[5]!.raw).toBe('421 4.7.0 mx.test Too many errors, closing connection\r\n');
    await c.waitClosed();
  });

  it('refuses a declared SIZE over the limit with 552 5.3.4', async () => {
    srv = await startTestServer({ options: { maxMessageBytes: 100 } });
    const { c } = await ehlo(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org> SIZE=101')).raw).toBe(
      '552 5.3.4 Message size exceeds fixed maximum message size\r\n',
    );
    expect((await c.command('MAIL FROM:<a@example.org> SIZE=100')).code).toBe(250);
    c.close();
  });

  it('refuses an actual DATA size over the limit with 552 5.3.4 after the end, erroring the stream', async () => {
    let streamError: unknown = null;
    srv = await startTestServer({
      options: { maxMessageBytes: 100 },
      handler: {
        data: async (_s, _e, stream) => {
          try {
            await readAll(stream);
          } catch (e) {
            streamError = e;
            throw e;
          }
        },
      },
    });
    const { c } = await ehlo(srv.port);
    await transaction(c);
    expect((await c.command('DATA')).code).toBe(354);
    c.send(`${'z'.repeat(98)}\r\n`);
    c.send(`${'z'.repeat(5000)}\r\n.\r\nNOOP\r\n`);
    expect((await c.replies(2)).map((r) => r.raw)).toEqual([
      '552 5.3.4 Message size exceeds fixed maximum message size\r\n',
      '250 2.0.0 OK\r\n',
    ]);
    expect(streamError).toMatchObject({ code: 552 });
    // The transaction is over: a new MAIL is accepted.
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect(srv.errors).toEqual([]);
    c.close();
  });

  it('accepts a message of exactly maxMessageBytes', async () => {
    srv = await startTestServer({ options: { maxMessageBytes: 10 } });
    const { c } = await ehlo(srv.port);
    await transaction(c);
    await c.command('DATA');
    c.send('12345678\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    c.close();
  });

  it('turns away connections over maxConnections and maxConnectionsPerIp with 421 4.7.0', async () => {
    srv = await startTestServer({ options: { maxConnectionsPerIp: 2 } });
    const a = await RawClient.connect(srv.port);
    const b = await RawClient.connect(srv.port);
    await a.reply();
    await b.reply();
    const c = await RawClient.connect(srv.port);
    expect((await c.reply()).raw).toBe('421 4.7.0 mx.test Too many connections, try again later\r\n');
    await c.waitClosed();
    a.send('QUIT\r\n');
    await a.reply();
    await a.waitClosed();
    // Wait until the server has released the slot (the close hook runs at the end of the session).
    while (srv.closed.length < 1) await new Promise((r) => setTimeout(r, 5));
    const d = await RawClient.connect(srv.port);
    expect((await d.reply()).code).toBe(220);
    b.close();
    d.close();
    await srv.close();

    srv = await startTestServer({ options: { maxConnections: 1 } });
    const e = await RawClient.connect(srv.port);
    await e.reply();
    const f = await RawClient.connect(srv.port);
    expect((await f.reply()).code).toBe(421);
    e.close();
  });

  it('closes an idle connection with 421 4.4.2 after the command timeout', async () => {
    srv = await startTestServer({ options: { timeouts: { commandMs: 100 } } });
    const { c } = await ehlo(srv.port);
    expect((await c.reply()).raw).toBe('421 4.4.2 mx.test Timeout, closing connection\r\n');
    await c.waitClosed();
  });

  it('times out with injected timers that have no clock (a timer per wait, no Timers.now)', async () => {
    const timers = {
      setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
      clearTimeout: (h: unknown): void => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    srv = await startTestServer({ options: { timers, timeouts: { commandMs: 100 } } });
    const { c } = await ehlo(srv.port);
    expect((await c.reply()).raw).toBe('421 4.4.2 mx.test Timeout, closing connection\r\n');
    await c.waitClosed();
  });

  it('bounds a command line dripping one octet at a time by one command timeout (not per read)', async () => {
    srv = await startTestServer({ options: { timeouts: { commandMs: 300 } } });
    const { c } = await ehlo(srv.port);
    let closed = false;
    const drip = (async () => {
      // A whole command with its CRLF, each octet well inside the timeout, the line not.
      for (const ch of 'NOOP          \r\n') {
        if (closed) break;
        c.send(ch);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    expect((await c.reply()).raw).toBe('421 4.4.2 mx.test Timeout, closing connection\r\n');
    closed = true;
    await drip;
    await c.waitClosed();
  });

  it('times out a stalled DATA with 421 4.4.2 and errors the stream; nothing is stored', async () => {
    let streamError: unknown = null;
    srv = await startTestServer({
      options: { timeouts: { dataBlockMs: 100, dataInitMs: 100 } },
      handler: {
        data: async (_s, _e, stream) => {
          try {
            await readAll(stream);
          } catch (e) {
            streamError = e;
            throw e;
          }
        },
      },
    });
    const { c } = await ehlo(srv.port);
    await transaction(c);
    await c.command('DATA');
    c.send('partial line');
    expect((await c.reply()).raw).toBe('421 4.4.2 mx.test Timeout, closing connection\r\n');
    await c.waitClosed();
    expect(streamError).toMatchObject({ kind: 'timeout' });
  });

  it('a handler exception gives 451 4.3.0, is reported, and the server keeps serving', async () => {
    let calls = 0;
    srv = await startTestServer({
      handler: {
        mailFrom: () => {
          calls++;
          if (calls === 1) throw new Error('database down');
        },
        data: async (_s, _e, stream) => {
          await readAll(stream);
          throw new Error('disk full');
        },
      },
    });
    const { c } = await ehlo(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org>')).raw).toBe(
      '451 4.3.0 Temporary failure, try again later\r\n',
    );
    await transaction(c);
    await c.command('DATA');
    c.send('hi\r\n.\r\n');
    expect((await c.reply()).raw).toBe(
      '451 4.3.0 Temporary failure storing the message, try again later\r\n',
    );
    expect(srv.errors.map((e) => (e as Error).message)).toEqual(['database down', 'disk full']);
    expect((await c.command('NOOP')).code).toBe(250);
    c.close();
  });

  it("a handler's reject() becomes the exact reply", async () => {
    srv = await startTestServer({
      handler: {
        rcptTo: (_s, r) => {
          if (r.address === 'relay@elsewhere.example') throw reject(550, '5.7.1', 'Relaying denied');
        },
        data: async (_s, _e, stream) => {
          await readAll(stream);
          throw reject(554, '5.7.1', 'Message refused\nsecond line');
        },
      },
    });
    const { c } = await ehlo(srv.port);
    await c.command('MAIL FROM:<a@example.org>');
    expect((await c.command('RCPT TO:<relay@elsewhere.example>')).raw).toBe('550 5.7.1 Relaying denied\r\n');
    await c.command('RCPT TO:<ok@example.org>');
    await c.command('DATA');
    c.send('x\r\n.\r\n');
    expect((await c.reply()).raw).toBe('554-5.7.1 Message refused\r\n554 5.7.1 second line\r\n');
    c.close();
  });

  it('a connect hook that throws refuses the session with 554, then 503 until QUIT', async () => {
    srv = await startTestServer({
      handler: {
        connect: () => {
          throw reject(554, '5.7.1', 'Your address is blocked');
        },
      },
    });
    const c = await RawClient.connect(srv.port);
    expect((await c.reply()).raw).toBe('554 mx.test Your address is blocked\r\n');
    expect((await c.command('EHLO x.test')).raw).toBe('503 5.5.1 No service, send QUIT\r\n');
    expect((await c.command('QUIT')).code).toBe(221);
    await c.waitClosed();
  });
});
