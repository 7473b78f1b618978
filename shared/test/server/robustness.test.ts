import { afterEach, describe, expect, it } from 'vitest';
import { reject } from '../../src/core/server/replies.ts';
import { ehlo, RawClient, startTestServer, type TestServer } from './harness.ts';

let srv: TestServer;
afterEach(async () => {
  await srv?.close();
});

describe('server: robustness', () => {
  it('a new EHLO drops the transaction (RFC 5321 section 4.1.4) and tells the handler', async () => {
    let resets = 0;
    srv = await startTestServer({ handler: { reset: () => void resets++ } });
    const { c } = await ehlo(srv.port);
    await c.command('MAIL FROM:<a@example.org>');
    await c.command('RCPT TO:<b@example.org>');
    expect((await c.command('EHLO again.test')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org>')).raw).toBe('503 5.5.1 Need MAIL command first\r\n');
    expect(resets).toBe(1);
    c.close();
  });

  it('handler text cannot inject reply lines or exceed 512 octets', async () => {
    srv = await startTestServer({
      handler: {
        rcptTo: (_s, r) => {
          if (r.address.startsWith('inject')) throw reject(550, '5.1.1', 'no\r\n250 2.0.0 fake');
          throw reject(550, '5.1.1', 'x'.repeat(2000));
        },
      },
    });
    const { c } = await ehlo(srv.port);
    await c.command('MAIL FROM:<a@example.org>');
    // "\n" makes a continuation line of the same reply; the CR becomes a space: no fake 250.
    expect((await c.command('RCPT TO:<inject@example.org>')).raw).toBe(
      '550-5.1.1 no \r\n550 5.1.1 250 2.0.0 fake\r\n',
    );
    const long = await c.command('RCPT TO:<long@example.org>');
    expect(long.raw.length).toBeLessThanOrEqual(512);
    expect(long.raw.startsWith('550 5.1.1 xxx')).toBe(true);
    expect((await c.command('NOOP')).code).toBe(250);
    c.close();
  });

  it('a reply error from another copy of the package (same shape, not instanceof) keeps its reply', async () => {
    srv = await startTestServer({
      handler: {
        mailFrom: () => {
          throw Object.assign(new Error('x'), {
            kind: 'reply',
            reply: { code: 550, enhancedCode: '5.7.1', lines: ['Sender blocked'] },
          });
        },
      },
    });
    const { c } = await ehlo(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org>')).raw).toBe('550 5.7.1 Sender blocked\r\n');
    expect(srv.errors).toEqual([]);
    c.close();
  });

  it('an AUTH exchange line over maxAuthLineBytes gets 500 5.5.6', async () => {
    srv = await startTestServer({
      options: { allowInsecureAuth: true, maxAuthLineBytes: 600 },
      handler: { auth: () => null },
    });
    const { c } = await ehlo(srv.port);
    expect((await c.command('AUTH LOGIN')).code).toBe(334);
    expect((await c.command('A'.repeat(700))).raw).toBe(
      '500 5.5.6 Authentication exchange line is too long\r\n',
    );
    expect((await c.command('NOOP')).code).toBe(250);
    c.close();
  });

  it('a failed TLS handshake after STARTTLS closes the connection (RFC 3207 section 4.1)', async () => {
    srv = await startTestServer({ options: { startTls: true } });
    const { c } = await ehlo(srv.port);
    expect((await c.command('STARTTLS')).code).toBe(220);
    c.send('this is not a TLS ClientHello\r\n');
    await c.waitClosed();
    while (srv.closed.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(srv.errors.some((e) => (e as { kind?: string }).kind === 'tls')).toBe(true);
  });

  it('a client that pipelines an endless stream of garbage is cut off after maxBadCommands', async () => {
    srv = await startTestServer({ options: { maxBadCommands: 5 } });
    const { c } = await ehlo(srv.port);
    c.send('\x00\x01\x02 garbage\r\n'.repeat(1000));
    const replies = await c.replies(6);
    expect(replies.map((r) => r.code)).toEqual([500, 500, 500, 500, 500, 421]);
    await c.waitClosed();
  });

  it('a QUIT in the same packet as a message is answered after the message', async () => {
    srv = await startTestServer();
    const c = await RawClient.connect(srv.port);
    await c.reply();
    c.send('EHLO x.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n');
    const r = await c.replies(4);
    expect(r.map((x) => x.code)).toEqual([250, 250, 250, 354]);
    c.send('hi\r\n.\r\nQUIT\r\n');
    expect((await c.replies(2)).map((x) => x.code)).toEqual([250, 221]);
    await c.waitClosed();
  });
});
