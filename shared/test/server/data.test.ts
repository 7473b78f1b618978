import { afterEach, describe, expect, it } from 'vitest';
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

describe('server: DATA (RFC 5321 section 4.1.1.4, 4.5.2)', () => {
  it('hands the handler the exact unstuffed bytes, 8-bit included', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    await ready(c, 'MAIL FROM:<a@example.org> BODY=8BITMIME');
    await c.command('DATA');
    const body = 'Subject: caf\xe9\r\n\r\n...two dots\r\n.\r\n..\r\n\x00\x01\xff\r\nend';
    const wire = body.replace(/(^|\r\n)\./g, '$1..');
    c.send(latin1(`${wire}\r\n.\r\n`));
    expect((await c.reply()).code).toBe(250);
    expect(text(srv.messages[0]!.bytes)).toBe(`${body}\r\n`);
    expect(srv.messages[0]!.envelope.mailFrom.params).toEqual({ body: '8BITMIME', other: {} });
    c.close();
  });

  it.each([
    ['LF.LF', 'x\n.\nRSET\nMAIL FROM:<evil@example.org>\n'],
    ['CR.CR', 'x\r.\rMAIL FROM:<evil@example.org>\r'],
    ['LF.CRLF', 'x\n.\r\nMAIL FROM:<evil@example.org>\r\n'],
    ['CRLF.LF', 'x\r\n.\nMAIL FROM:<evil@example.org>\r\n'],
  ])(
    'SMTP smuggling (%s): no fake end, nothing after it is a command, 550 5.6.0 after the real end',
    async (_n, smuggle) => {
      srv = await startTestServer();
      const { c } = await ehlo(srv.port);
      await ready(c);
      await c.command('DATA');
      c.send(`${smuggle}RCPT TO:<victim@example.org>\r\nDATA\r\n`);
      c.send('\r\n.\r\nNOOP\r\n');
      const replies = await c.replies(2);
      expect(replies.map((r) => r.raw)).toEqual([
        '550 5.6.0 Message contains bare CR or LF characters (see RFC 5321 section 2.3.8)\r\n',
        '250 2.0.0 OK\r\n',
      ]);
      expect(srv.messages).toHaveLength(0);
      expect(c.pending).toBe('');
      // The transaction is over; the smuggled MAIL never ran.
      expect((await c.command('RCPT TO:<x@example.org>')).code).toBe(503);
      c.close();
    },
  );

  it("normalizes bare line endings with bareLineEndings: 'normalize' (still ending only at CRLF.CRLF)", async () => {
    srv = await startTestServer({ options: { bareLineEndings: 'normalize' } });
    const { c } = await ehlo(srv.port);
    await ready(c);
    await c.command('DATA');
    c.send('a\nb\rc\r\n.x\nQUIT\n..\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    // A stuffing dot at a real line start is removed (RFC 5321 section 4.5.2); a dot after a bare
    // LF is not at a line start and stays.
    expect(text(srv.messages[0]!.bytes)).toBe('a\r\nb\r\nc\r\nx\r\nQUIT\r\n..\r\n');
    c.close();
  });

  it("normalize refuses with 550 5.6.0 a lone '.' line at a bare line ending (never stores a CRLF.CRLF it made)", async () => {
    srv = await startTestServer({ options: { bareLineEndings: 'normalize' } });
    const { c } = await ehlo(srv.port);
    const smuggle = 'MAIL FROM:<evil@example.org>\r\nRCPT TO:<v@example.org>\r\nDATA\r\nsmuggled\r\n';
    for (const end of [
      '\n.\n',
      '\r.\r',
      '\n.\r\n',
      '\r\n.\n',
      '\r.\r\n',
      '\r\n.\r',
      '\r\n..\n',
      '\n.\r\r\n',
    ]) {
      await ready(c);
      expect((await c.command('DATA')).code).toBe(354);
      c.send(`hello${end}${smuggle}.\r\n`);
      expect((await c.reply()).raw).toBe(
        '550 5.6.0 Message has a lone "." line at a bare CR or LF (see RFC 5321 section 2.3.8)\r\n',
      );
    }
    expect(srv.messages).toEqual([]);
    // Not lone dots: kept, normalized.
    await ready(c);
    expect((await c.command('DATA')).code).toBe(354);
    c.send('a\n..\nb\r.x\r\n..\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    expect(text(srv.messages[0]!.bytes)).toBe('a\r\n..\r\nb\r\n.x\r\n.\r\n');
    c.close();
  });

  it("rejects lines over 1000 octets only with longLines: 'reject'", async () => {
    srv = await startTestServer({ options: { longLines: 'reject' } });
    const { c } = await ehlo(srv.port);
    await ready(c);
    await c.command('DATA');
    c.send(`${'a'.repeat(998)}\r\n.\r\n`);
    expect((await c.reply()).code).toBe(250);
    await ready(c);
    await c.command('DATA');
    c.send(`${'a'.repeat(999)}\r\n.\r\n`);
    expect((await c.reply()).raw).toBe('550 5.6.0 Message has a line longer than 1000 octets\r\n');
    await srv.close();

    srv = await startTestServer();
    const d = (await ehlo(srv.port)).c;
    await ready(d);
    await d.command('DATA');
    d.send(`${'a'.repeat(5000)}\r\n.\r\n`);
    expect((await d.reply()).code).toBe(250);
    expect(srv.messages[0]!.bytes.length).toBe(5002);
    d.close();
  });

  it('streams with backpressure: the handler sees data before the end arrives', async () => {
    let resolveFirst!: (s: string) => void;
    const firstChunk = new Promise<string>((r) => {
      resolveFirst = r;
    });
    srv = await startTestServer({
      handler: {
        data: async (_s, _e, stream) => {
          const reader = stream.getReader();
          const first = await reader.read();
          resolveFirst(text(first.value!));
          for (;;) {
            const { done } = await reader.read();
            if (done) break;
          }
        },
      },
    });
    const { c } = await ehlo(srv.port);
    await ready(c);
    await c.command('DATA');
    c.send('first part\r\n');
    expect(await firstChunk).toBe('first part\r\n');
    c.send('.\r\n');
    expect((await c.reply()).code).toBe(250);
    c.close();
  });

  it('a handler that returns without reading the message gets 451 (nothing acknowledged unread)', async () => {
    srv = await startTestServer({ handler: { data: async () => ({ message: 'ignored' }) } });
    const { c } = await ehlo(srv.port);
    await ready(c);
    await c.command('DATA');
    c.send(`${'x'.repeat(100_000)}\r\n.\r\nNOOP\r\n`);
    expect((await c.replies(2)).map((r) => r.raw)).toEqual([
      '451 4.3.0 Message not stored, try again later\r\n',
      '250 2.0.0 OK\r\n',
    ]);
    c.close();
  });

  it('a lost connection inside DATA errors the stream; close hook runs', async () => {
    let err: unknown = null;
    let done!: () => void;
    const settled = new Promise<void>((r) => {
      done = r;
    });
    srv = await startTestServer({
      handler: {
        data: async (_s, _e, stream) => {
          try {
            await readAll(stream);
          } catch (e) {
            err = e;
          } finally {
            done();
          }
        },
      },
    });
    const { c } = await ehlo(srv.port);
    await ready(c);
    await c.command('DATA');
    c.send('half a message');
    await new Promise((r) => setTimeout(r, 20));
    c.close();
    await settled;
    expect(err).toMatchObject({ kind: 'connection' });
    while (srv.closed.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(srv.messages).toHaveLength(0);
  });

  it('DATA with arguments is a syntax error', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    await ready(c);
    expect((await c.command('DATA now')).raw).toBe('501 5.5.4 Syntax: DATA (no parameters allowed)\r\n');
    c.close();
  });

  it('delivers a 1 MiB message intact through many reads', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    await ready(c);
    await c.command('DATA');
    const line = `${'0123456789'.repeat(7)}\r\n`;
    const body = line.repeat(Math.ceil((1024 * 1024) / line.length));
    c.send(`${body}.\r\n`);
    expect((await c.reply()).code).toBe(250);
    expect(text(srv.messages[0]!.bytes)).toBe(body);
    c.close();
  });
});

describe('server: SMTPUTF8 (RFC 6531) and DSN (RFC 3461)', () => {
  it('refuses UTF-8 addresses without SMTPUTF8 (550/553 5.6.7) and accepts them with it', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    c.sendUtf8('MAIL FROM:<jösé@exämple.org>\r\n');
    expect((await c.reply()).raw).toBe(
      '550 5.6.7 Non-ASCII addresses not permitted for that sender/recipient\r\n',
    );
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    c.sendUtf8('RCPT TO:<用户@例子.广告>\r\n');
    expect((await c.reply()).raw).toBe(
      '553 5.6.7 Non-ASCII addresses not permitted for that sender/recipient\r\n',
    );
    await c.command('RSET');
    c.sendUtf8('MAIL FROM:<jösé@exämple.org> SMTPUTF8\r\n');
    expect((await c.reply()).code).toBe(250);
    c.sendUtf8('RCPT TO:<用户@例子.广告>\r\n');
    expect((await c.reply()).code).toBe(250);
    await c.command('DATA');
    c.send('x\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    const env = srv.messages[0]!.envelope;
    expect(env.mailFrom).toEqual({ address: 'jösé@exämple.org', params: { smtputf8: true, other: {} } });
    expect(env.rcptTo[0]!.address).toBe('用户@例子.广告');
    c.close();
  });

  it('parses RET, ENVID, NOTIFY and ORCPT with xtext decoded', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+2B314159')).code).toBe(250);
    expect(
      (await c.command('RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@example.org')).code,
    ).toBe(250);
    expect((await c.command('RCPT TO:<c@example.org> NOTIFY=NEVER')).code).toBe(250);
    expect((await c.command('RCPT TO:<d@example.org> NOTIFY=NEVER,SUCCESS')).raw).toBe(
      '501 5.5.4 Invalid NOTIFY value\r\n',
    );
    await c.command('DATA');
    c.send('x\r\n.\r\n');
    await c.reply();
    const env = srv.messages[0]!.envelope;
    expect(env.mailFrom.params).toEqual({ ret: 'HDRS', envid: 'QQ+314159', other: {} });
    expect(env.rcptTo).toEqual([
      {
        address: 'b@example.org',
        params: {
          notify: ['SUCCESS', 'FAILURE'],
          orcpt: { type: 'rfc822', address: 'b+x@example.org' },
          other: {},
        },
      },
      { address: 'c@example.org', params: { notify: 'NEVER', other: {} } },
    ]);
    c.close();
  });

  it('does not advertise or accept disabled extensions', async () => {
    srv = await startTestServer({
      options: {
        extensions: { dsn: false, smtputf8: false, chunking: false, eightBitMime: false, pipelining: false },
      },
    });
    const { c, ehlo: e } = await ehlo(srv.port);
    expect(e.lines.slice(1)).toEqual(['SIZE 26214400', 'ENHANCEDSTATUSCODES']);
    expect((await c.command('MAIL FROM:<a@example.org> RET=FULL')).raw).toBe(
      '555 5.5.4 Unsupported parameter RET\r\n',
    );
    expect((await c.command('MAIL FROM:<a@example.org> SMTPUTF8')).code).toBe(555);
    expect((await c.command('MAIL FROM:<a@example.org> BODY=8BITMIME')).code).toBe(555);
    c.close();
  });

  it('sends no enhanced codes when ENHANCEDSTATUSCODES is off', async () => {
    srv = await startTestServer({ options: { extensions: { enhancedStatusCodes: false } } });
    const { c, ehlo: e } = await ehlo(srv.port);
    expect(e.lines).not.toContain('ENHANCEDSTATUSCODES');
    expect((await c.command('NOOP')).raw).toBe('250 OK\r\n');
    c.close();
  });
});
