import { afterEach, describe, expect, it } from 'vitest';
import { ehlo, latin1, RawClient, startTestServer, type TestServer } from './harness.ts';

let srv: TestServer;
afterEach(async () => {
  await srv?.close();
});

describe('server: basic conversation', () => {
  it('greets, answers EHLO with the extension list, takes a message and quits', async () => {
    srv = await startTestServer({ options: { maxMessageBytes: 1000 } });
    const c = await RawClient.connect(srv.port);
    expect((await c.reply()).raw).toBe('220 mx.test ESMTP ready\r\n');
    const e = await c.command('EHLO client.test');
    expect(e.raw).toBe(
      [
        '250-mx.test greets client.test',
        '250-PIPELINING',
        '250-SIZE 1000',
        '250-8BITMIME',
        '250-SMTPUTF8',
        '250-DSN',
        '250-CHUNKING',
        '250-BINARYMIME',
        '250 ENHANCEDSTATUSCODES',
        '',
      ].join('\r\n'),
    );
    expect((await c.command('MAIL FROM:<alice@example.org>')).raw).toBe('250 2.1.0 Sender OK\r\n');
    expect((await c.command('RCPT TO:<bob@example.net>')).raw).toBe('250 2.1.5 Recipient OK\r\n');
    expect((await c.command('DATA')).raw).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    c.send('Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n');
    expect((await c.reply()).raw).toBe('250 2.0.0 queued as 1\r\n');
    expect((await c.command('QUIT')).raw).toBe('221 2.0.0 mx.test Bye\r\n');
    await c.waitClosed();
    expect(srv.messages).toHaveLength(1);
    const m = srv.messages[0]!;
    expect(Buffer.from(m.bytes).toString('latin1')).toBe('Subject: hi\r\n\r\n.leading dot\r\nbody\r\n');
    expect(m.envelope).toEqual({
      mailFrom: { address: 'alice@example.org', params: { other: {} } },
      rcptTo: [{ address: 'bob@example.net', params: { other: {} } }],
    });
    expect(m.session.helo).toEqual({ verb: 'EHLO', name: 'client.test' });
  });

  it('HELO gets a plain 250 without enhanced code', async () => {
    srv = await startTestServer();
    const c = await RawClient.connect(srv.port);
    await c.reply();
    expect((await c.command('HELO client.test')).raw).toBe('250 mx.test\r\n');
    c.close();
  });

  it('answers NOOP, RSET, VRFY, HELP, and refuses EXPN and unknown commands', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    expect((await c.command('NOOP')).raw).toBe('250 2.0.0 OK\r\n');
    expect((await c.command('NOOP anything')).raw).toBe('250 2.0.0 OK\r\n');
    expect((await c.command('RSET')).raw).toBe('250 2.0.0 OK\r\n');
    expect((await c.command('RSET x')).code).toBe(501);
    expect((await c.command('VRFY bob')).raw).toBe(
      '252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n',
    );
    expect((await c.command('VRFY')).raw).toBe('501 5.5.4 Syntax: VRFY address\r\n');
    const help = await c.command('HELP');
    expect(help.code).toBe(214);
    expect(help.raw.startsWith('214 2.0.0 ')).toBe(true);
    expect((await c.command('EXPN list')).raw).toBe('502 5.5.1 Command not implemented\r\n');
    expect((await c.command('FOO bar')).raw).toBe('500 5.5.2 Syntax error, command unrecognized\r\n');
    expect((await c.command('')).raw).toBe('500 5.5.2 Syntax error, command unrecognized\r\n');
    c.close();
  });

  it('enforces the command order with 503 5.5.1', async () => {
    srv = await startTestServer();
    const c = await RawClient.connect(srv.port);
    await c.reply();
    expect((await c.command('MAIL FROM:<a@b.example>')).raw).toBe('503 5.5.1 Send HELO/EHLO first\r\n');
    await c.command('EHLO x.test');
    expect((await c.command('RCPT TO:<a@b.example>')).raw).toBe('503 5.5.1 Need MAIL command first\r\n');
    expect((await c.command('DATA')).raw).toBe('503 5.5.1 Need MAIL command first\r\n');
    expect((await c.command('MAIL FROM:<a@b.example>')).code).toBe(250);
    expect((await c.command('MAIL FROM:<a@b.example>')).raw).toBe('503 5.5.1 Nested MAIL command\r\n');
    expect((await c.command('DATA')).raw).toBe('554 5.5.1 No valid recipients\r\n');
    expect((await c.command('RSET')).code).toBe(250);
    expect((await c.command('RCPT TO:<a@b.example>')).code).toBe(503);
    c.close();
  });

  it('refuses HELO/EHLO without a name and bad MAIL/RCPT syntax with 501', async () => {
    srv = await startTestServer();
    const c = await RawClient.connect(srv.port);
    await c.reply();
    expect((await c.command('EHLO')).raw).toBe('501 5.5.4 Syntax: EHLO hostname\r\n');
    expect((await c.command('HELO')).raw).toBe('501 5.5.4 Syntax: HELO hostname\r\n');
    await c.command('EHLO x.test');
    expect((await c.command('MAIL FROM:a@b.example')).raw).toBe('501 5.5.4 Syntax: MAIL FROM:<address>\r\n');
    expect((await c.command('MAIL TO:<a@b.example>')).raw).toBe('501 5.5.4 Syntax: MAIL FROM:<address>\r\n');
    expect((await c.command('MAIL FROM:<a@@b>')).raw).toMatch(/^501 5\.1\.7 /);
    await c.command('MAIL FROM:<>');
    expect((await c.command('RCPT TO:<no-at-sign>')).raw).toMatch(/^501 5\.1\.3 /);
    expect((await c.command('RCPT TO:<Postmaster>')).code).toBe(250);
    c.close();
  });

  it('accepts the null reverse-path and lower-case verbs', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    expect((await c.command('mail from:<>')).code).toBe(250);
    expect((await c.command('rcpt to:<x@y.example>')).code).toBe(250);
    expect((await c.command('data')).code).toBe(354);
    c.send('.\r\n');
    expect((await c.reply()).code).toBe(250);
    expect(srv.messages[0]!.envelope.mailFrom.address).toBe('');
    expect(srv.messages[0]!.bytes.length).toBe(0);
    c.close();
  });

  it('refuses unknown MAIL/RCPT parameters with 555 and a bad value with 501', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    expect((await c.command('MAIL FROM:<a@b.example> FOO=BAR')).raw).toBe(
      '555 5.5.4 Unsupported parameter FOO\r\n',
    );
    expect((await c.command('MAIL FROM:<a@b.example> BODY=9BIT')).raw).toBe(
      '501 5.5.4 Invalid BODY value\r\n',
    );
    expect((await c.command('MAIL FROM:<a@b.example> SIZE=12 SIZE=13')).raw).toBe(
      '501 5.5.4 Duplicate SIZE parameter\r\n',
    );
    expect((await c.command('MAIL FROM:<a@b.example> BODY=8BITMIME SIZE=100')).code).toBe(250);
    expect((await c.command('RCPT TO:<x@y.example> XYZ')).raw).toBe(
      '555 5.5.4 Unsupported parameter XYZ\r\n',
    );
    c.close();
  });

  it('QUIT closes the connection after 221', async () => {
    srv = await startTestServer();
    const c = await RawClient.connect(srv.port);
    await c.reply();
    expect((await c.command('QUIT')).raw).toBe('221 2.0.0 mx.test Bye\r\n');
    await c.waitClosed();
    expect(c.closed).toBe(true);
  });

  it('QUIT with arguments gets 501 5.5.4 and the session goes on (RFC 5321 sections 4.1.1.10, 4.3.2)', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    expect((await c.command('QUIT now')).raw).toBe('501 5.5.4 Syntax: QUIT (no parameters allowed)\r\n');
    expect((await c.command('NOOP')).raw).toBe('250 2.0.0 OK\r\n');
    expect((await c.command('QUIT')).raw).toBe('221 2.0.0 mx.test Bye\r\n');
    await c.waitClosed();
  });

  it('never reads a command from bytes with a bare LF inside a line', async () => {
    srv = await startTestServer();
    const { c } = await ehlo(srv.port);
    c.send('NOOP\nQUIT\r\n');
    expect((await c.reply()).raw).toBe('500 5.5.2 Syntax error, command unrecognized\r\n');
    expect((await c.command('NOOP')).code).toBe(250);
    c.send(latin1('NOOP \xff\r\n'));
    expect((await c.reply()).code).toBe(500);
    c.close();
  });
});
