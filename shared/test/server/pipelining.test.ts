import { afterEach, describe, expect, it } from 'vitest';
import { ehlo, RawClient, startTestServer, type TestServer } from './harness.ts';

let srv: TestServer;
afterEach(async () => {
  await srv?.close();
});

describe('server: PIPELINING (RFC 2920)', () => {
  it('answers a pipelined batch in order, in one write, and takes the message', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n');
    const replies = await c.replies(4);
    expect(replies.map((r) => r.raw).join('')).toBe(
      '250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.1.5 Recipient OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n',
    );
    c.send('hello\r\n.\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<e@example.org>\r\nDATA\r\n');
    const next = await c.replies(4);
    expect(next.map((r) => r.code)).toEqual([250, 250, 250, 354]);
    c.send('second\r\n.\r\nQUIT\r\n');
    expect((await c.replies(2)).map((r) => r.raw)).toEqual([
      '250 2.0.0 queued as 2\r\n',
      '221 2.0.0 mx.test Bye\r\n',
    ]);
    expect(srv.messages.map((m) => Buffer.from(m.bytes).toString())).toEqual(['hello\r\n', 'second\r\n']);
    expect(srv.messages[0]!.envelope.rcptTo.map((r) => r.address)).toEqual([
      'b@example.org',
      'c@example.org',
    ]);
  });

  it('keeps replies in order when some commands in the batch fail', async () => {
    srv = await startTestServer({
      handler: {
        rcptTo: (_s, rcpt) => {
          if (rcpt.address.startsWith('bad')) {
            throw Object.assign(new Error('x'), {});
          }
        },
      },
    });
    const { c } = await ehlo(srv.port);
    c.send(
      'MAIL FROM:<a@example.org>\r\nRCPT TO:<bad@example.org>\r\nRCPT TO:<x y>\r\nRCPT TO:<ok@example.org>\r\nNOOP\r\n',
    );
    const replies = await c.replies(5);
    expect(replies.map((r) => r.code)).toEqual([250, 451, 501, 250, 250]);
    expect(replies[1]!.raw).toBe('451 4.3.0 Temporary failure, try again later\r\n');
    expect(srv.errors).toHaveLength(1);
    c.close();
  });

  it('writes the replies of one batch together (no reply before the batch is read)', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    const chunks: string[] = [];
    c.socket.on('data', (d: Buffer) => chunks.push(d.toString('latin1')));
    c.send('NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n');
    await c.replies(5);
    expect(chunks.join('')).toBe('250 2.0.0 OK\r\n'.repeat(5));
    // One TCP segment on loopback: the engine queued all five before writing.
    expect(chunks).toHaveLength(1);
    c.close();
  });

  it('does not execute data of a DATA that was refused, and rejects a DATA without recipients', async () => {
    srv = await startTestServer({
      handler: {
        rcptTo: () => {
          throw new (class extends Error {})('no');
        },
      },
    });
    const { c } = await ehlo(srv.port);
    c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n');
    expect((await c.replies(3)).map((r) => r.code)).toEqual([250, 451, 554]);
    c.close();
  });

  it('client talking before the greeting is refused with 554 5.5.0 and closed', async () => {
    srv = await startTestServer({ options: { earlyTalkerDelayMs: 300 } });
    const c = await RawClient.connect(srv.port);
    c.send('EHLO early.test\r\n');
    expect((await c.reply()).raw).toBe(
      '554 5.5.0 mx.test SMTP protocol synchronization error (talked before the greeting)\r\n',
    );
    await c.waitClosed();
    // A patient client is served normally.
    const d = await RawClient.connect(srv.port);
    expect((await d.reply()).code).toBe(220);
    expect((await d.command('EHLO patient.test')).code).toBe(250);
    d.close();
  });
});

describe('server: improper pipelining (no PIPELINING negotiated) is judged per transaction', () => {
  async function heloClient(port: number): Promise<RawClient> {
    const c = await RawClient.connect(port);
    expect((await c.reply()).code).toBe(220);
    expect((await c.command('HELO polite.example')).raw).toBe('250 mx.test\r\n');
    return c;
  }

  async function lockStepMessage(c: RawClient, body: string): Promise<string> {
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org>')).code).toBe(250);
    expect((await c.command('DATA')).raw).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    return (await c.command(`${body}\r\n.`)).raw;
  }

  it('a HELO client that sent RSET right after the dot is still served in lock-step afterwards', async () => {
    srv = await startTestServer();
    const c = await heloClient(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org>')).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    c.send('x\r\n.\r\nRSET\r\n');
    expect((await c.replies(2)).map((r) => r.raw)).toEqual(['250 2.0.0 queued as 1\r\n', '250 2.0.0 OK\r\n']);
    expect(await lockStepMessage(c, 'second')).toBe('250 2.0.0 queued as 2\r\n');
    expect(srv.messages).toHaveLength(2);
    c.close();
  });

  it('the flag is cleared by HELO/EHLO too, but a transaction sent blind after it is still refused', async () => {
    srv = await startTestServer();
    const c = await heloClient(srv.port);
    c.send('NOOP\r\nHELO again.example\r\n');
    expect((await c.replies(2)).map((r) => r.code)).toEqual([250, 250]);
    expect(await lockStepMessage(c, 'one')).toBe('250 2.0.0 queued as 1\r\n');
    // Blind: RSET, then a whole transaction without waiting for a reply.
    c.send('RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n');
    expect((await c.replies(4)).map((r) => r.raw)).toEqual([
      '250 2.0.0 OK\r\n',
      '250 2.1.0 Sender OK\r\n',
      '250 2.1.5 Recipient OK\r\n',
      '421 4.5.0 mx.test Improper use of SMTP command pipelining, closing connection\r\n',
    ]);
    await c.waitClosed();
    expect(srv.messages).toHaveLength(1);
  });

  it('a MAIL sent before the reply to the previous message is read counts for the next transaction', async () => {
    srv = await startTestServer();
    const c = await heloClient(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org>')).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    c.send('x\r\n.\r\nMAIL FROM:<a@example.org>\r\n');
    expect((await c.replies(2)).map((r) => r.code)).toEqual([250, 250]);
    expect((await c.command('RCPT TO:<b@example.org>')).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(421);
    await c.waitClosed();
  });
});
