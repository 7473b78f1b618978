/**
 * RFC 5321 section 4.1.1.1: a client that said HELO was offered no service extensions, so it
 * may use none: MAIL/RCPT parameters get 555 5.5.4 (section 4.1.1.11) and BDAT gets 502 5.5.1
 * (its declared octets are still read and discarded, RFC 3030 section 2).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, startTestServer, type TestServer } from './harness.ts';

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

async function helo(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  expect((await c.reply()).code).toBe(220);
  expect((await c.command('HELO client.test')).raw).toBe('250 mx.test\r\n');
  return c;
}

describe('server: no extensions after HELO', () => {
  it('MAIL parameters get 555 5.5.4; the plain MAIL is accepted', async () => {
    srv = await startTestServer({ handler: { auth: () => ({ user: 'u' }) } });
    const c = await helo(srv.port);
    for (const [params, keyword] of [
      ['SMTPUTF8', 'SMTPUTF8'],
      ['BODY=8BITMIME', 'BODY'],
      ['BODY=BINARYMIME', 'BODY'],
      ['SIZE=100', 'SIZE'],
      ['RET=HDRS', 'RET'],
      ['ENVID=x', 'ENVID'],
      ['AUTH=<>', 'AUTH'],
    ] as const) {
      expect((await c.command(`MAIL FROM:<a@example.org> ${params}`)).raw).toBe(
        `555 5.5.4 Unsupported parameter ${keyword}\r\n`,
      );
    }
    c.sendUtf8('MAIL FROM:<ü@example.org> SMTPUTF8\r\n');
    expect((await c.reply()).raw).toBe('555 5.5.4 Unsupported parameter SMTPUTF8\r\n');
    expect((await c.command('MAIL FROM:<a@example.org>')).raw).toBe('250 2.1.0 Sender OK\r\n');
    c.close();
  });

  it('RCPT parameters get 555 5.5.4', async () => {
    srv = await startTestServer();
    const c = await helo(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org> NOTIFY=NEVER')).raw).toBe(
      '555 5.5.4 Unsupported parameter NOTIFY\r\n',
    );
    expect((await c.command('RCPT TO:<b@example.org> ORCPT=rfc822;b@example.org')).raw).toBe(
      '555 5.5.4 Unsupported parameter ORCPT\r\n',
    );
    expect((await c.command('RCPT TO:<b@example.org>')).raw).toBe('250 2.1.5 Recipient OK\r\n');
    c.close();
  });

  it('BDAT gets 502 5.5.1 after its octets are discarded; nothing is stored', async () => {
    srv = await startTestServer();
    const c = await helo(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org>')).code).toBe(250);
    // Lock-step (a HELO client must not pipeline): the 9 octets end with text like a command.
    c.send('BDAT 9 LAST\r\nhi\0\r\nNOOP');
    expect((await c.reply()).raw).toBe('502 5.5.1 Command not implemented\r\n');
    expect((await c.command('NOOP')).raw).toBe('250 2.0.0 OK\r\n');
    // The transaction is still open for DATA.
    expect((await c.command('DATA')).code).toBe(354);
    expect((await c.command('hello\r\n.')).code).toBe(250);
    expect(srv.messages.map((m) => Buffer.from(m.bytes).toString())).toEqual(['hello\r\n']);
    c.close();
  });

  it('the same session after EHLO gets its extensions', async () => {
    srv = await startTestServer();
    const c = await helo(srv.port);
    expect((await c.command('EHLO client.test')).code).toBe(250);
    expect((await c.command('MAIL FROM:<a@example.org> BODY=8BITMIME')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org> NOTIFY=NEVER')).code).toBe(250);
    c.send('BDAT 2 LAST\r\nhi');
    expect((await c.reply()).code).toBe(250);
    c.close();
  });
});
