import { afterEach, describe, expect, it } from 'vitest';
import { reject } from '../../src/core/server/replies.ts';
import { ehlo, latin1, type RawClient, readAll, startTestServer, type TestServer } from './harness.ts';

let srv: TestServer;
afterEach(async () => {
  await srv?.close();
});

async function ready(c: RawClient, mail = 'MAIL FROM:<a@example.org>'): Promise<void> {
  expect((await c.command(mail)).code).toBe(250);
  expect((await c.command('RCPT TO:<b@example.org>')).code).toBe(250);
}
const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');

describe('server: CHUNKING / BINARYMIME (RFC 3030)', () => {
  it('takes a message in several chunks, one data call, exact bytes', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    await ready(c, 'MAIL FROM:<a@example.org> BODY=BINARYMIME');
    const parts = ['Subject: b\r\n\r\n', '\x00\x01\r\n.\r\n\xff', 'last bytes\n.\n'];
    c.send(latin1(`BDAT ${parts[0]!.length}\r\n${parts[0]}`));
    expect((await c.reply()).raw).toBe(`250 2.0.0 ${parts[0]!.length} octets received\r\n`);
    // Pipelined: two chunks in one write, the second with LAST, then QUIT.
    c.send(
      latin1(`BDAT ${parts[1]!.length}\r\n${parts[1]}BDAT ${parts[2]!.length} LAST\r\n${parts[2]}QUIT\r\n`),
    );
    const replies = await c.replies(3);
    expect(replies.map((r) => r.raw)).toEqual([
      `250 2.0.0 ${parts[1]!.length} octets received\r\n`,
      '250 2.0.0 queued as 1\r\n',
      '221 2.0.0 mx.test Bye\r\n',
    ]);
    expect(srv.messages).toHaveLength(1);
    expect(text(srv.messages[0]!.bytes)).toBe(parts.join(''));
    expect(srv.messages[0]!.envelope.mailFrom.params.body).toBe('BINARYMIME');
  });

  it('accepts BDAT 0 LAST as the end, and a chunk split across many writes', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    await ready(c);
    c.send('BDAT 10\r\n01234');
    await new Promise((r) => setTimeout(r, 10));
    c.send('56789');
    expect((await c.reply()).code).toBe(250);
    expect((await c.command('BDAT 0 LAST')).raw).toBe('250 2.0.0 queued as 1\r\n');
    expect(text(srv.messages[0]!.bytes)).toBe('0123456789');
    c.close();
  });

  it('refuses BDAT without a transaction but reads and discards its bytes (next command parsed)', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    c.send('BDAT 13\r\nRSET\r\nQUIT\r\nXNOOP\r\n');
    expect((await c.replies(2)).map((r) => r.raw)).toEqual([
      '503 5.5.1 Need MAIL command first\r\n',
      '250 2.0.0 OK\r\n',
    ]);
    c.close();
  });

  it('refuses a chunk that would exceed the size limit with 552 5.3.4, discards it, then 503 until RSET', async () => {
    let streamError: unknown = null;
    srv = await startTestServer({
      options: { maxMessageBytes: 20 },
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
    await ready(c);
    c.send('BDAT 10\r\n0123456789');
    expect((await c.reply()).code).toBe(250);
    c.send(`BDAT 11\r\n${'x'.repeat(11)}BDAT 3 LAST\r\nabcNOOP\r\n`);
    expect((await c.replies(3)).map((r) => r.raw)).toEqual([
      '552 5.3.4 Message size exceeds fixed maximum message size\r\n',
      '503 5.5.1 Previous BDAT failed, send RSET\r\n',
      '250 2.0.0 OK\r\n',
    ]);
    expect(streamError).toMatchObject({ code: 552 });
    expect((await c.command('RSET')).code).toBe(250);
    await ready(c);
    expect((await c.command('BDAT 0 LAST')).code).toBe(250);
    c.close();
  });

  it('discards a 2^63-octet declared chunk without allocating it (closing the connection ends it)', async () => {
    srv = await startTestServer({ options: { maxMessageBytes: 1000 } });
    const { c } = await ehlo(srv.port);
    await ready(c);
    c.send('BDAT 9223372036854775808 LAST\r\n');
    c.send('x'.repeat(100_000));
    // Still reading and discarding: no reply yet, connection open.
    const noop = c.pending;
    expect(noop).toBe('');
    c.close();
    while (srv.closed.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(srv.messages).toHaveLength(0);
  });

  it('refuses DATA after BDAT, and DATA with BODY=BINARYMIME', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    await ready(c);
    c.send('BDAT 2\r\nab');
    expect((await c.reply()).code).toBe(250);
    expect((await c.command('DATA')).raw).toBe('503 5.5.1 DATA not allowed after BDAT\r\n');
    expect((await c.command('RSET')).code).toBe(250);
    await ready(c, 'MAIL FROM:<a@example.org> BODY=BINARYMIME');
    expect((await c.command('DATA')).raw).toBe('503 5.5.1 BODY=BINARYMIME requires BDAT\r\n');
    c.close();
  });

  it('RSET in the middle of a BDAT transfer aborts the handler stream; nothing is stored', async () => {
    let streamError: unknown = null;
    srv = await startTestServer({
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
    await ready(c);
    c.send('BDAT 3\r\nabc');
    expect((await c.reply()).code).toBe(250);
    expect((await c.command('RSET')).code).toBe(250);
    await new Promise((r) => setTimeout(r, 10));
    expect(streamError).toMatchObject({ kind: 'aborted' });
    expect((await c.command('BDAT 0 LAST')).code).toBe(503);
    c.close();
  });

  it('a handler that rejects during the transfer gets its reply at the latest on LAST', async () => {
    srv = await startTestServer({
      handler: {
        data: async (_s, _e, stream) => {
          const reader = stream.getReader();
          await reader.read();
          await reader.read();
          throw reject(554, '5.6.0', 'Content refused');
        },
      },
    });
    const { c } = await ehlo(srv.port);
    await ready(c);
    c.send('BDAT 3\r\nabc');
    expect((await c.reply()).raw).toBe('250 2.0.0 3 octets received\r\n');
    c.send('BDAT 3 LAST\r\ndef');
    expect((await c.reply()).raw).toBe('554 5.6.0 Content refused\r\n');
    expect(srv.messages).toHaveLength(0);
    expect((await c.command('BDAT 0 LAST')).code).toBe(503);
    c.close();
  });

  it('chunks after a handler failure are discarded with 503', async () => {
    srv = await startTestServer({
      handler: {
        data: async () => {
          throw reject(550, '5.7.1', 'Not from you');
        },
      },
    });
    const { c } = await ehlo(srv.port);
    await ready(c);
    await new Promise((r) => setTimeout(r, 10));
    c.send('BDAT 3\r\nabcBDAT 3\r\ndefNOOP\r\n');
    const replies = await c.replies(3);
    expect(replies.map((r) => r.raw)).toEqual([
      '550 5.7.1 Not from you\r\n',
      '503 5.5.1 Previous BDAT failed, send RSET\r\n',
      '250 2.0.0 OK\r\n',
    ]);
    c.close();
  });

  it('BDAT with a bad size is a syntax error (the following bytes are then read as commands)', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    await ready(c);
    expect((await c.command('BDAT -1')).raw).toBe('501 5.5.4 Syntax: BDAT chunk-size [LAST]\r\n');
    expect((await c.command('BDAT 1 FIRST')).code).toBe(501);
    c.close();
  });
});
