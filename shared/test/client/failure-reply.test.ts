/**
 * The reply that explains a failure wins over the end of stream that follows it. A server that
 * answers 421 (RFC 5321 section 3.8) closes the connection right after; with PIPELINING
 * (RFC 2920) the client is then still waiting for the replies to RCPT and DATA, and the caller
 * must get the 421 (temporary, naming the command it answered), not "connection closed".
 * Scripted servers on 127.0.0.1, plus one in-memory transport whose write fails after the
 * server's reply arrived (a broken pipe must not hide the reply either).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectSmtp } from '../../src/adapter/node/client.ts';
import { SmtpRecipientsRejectedError } from '../../src/core/client/errors.ts';
import { SmtpClientSession } from '../../src/core/client/session.ts';
import { SmtpConnectionError, SmtpReplyError } from '../../src/core/errors.ts';
import type { Transport } from '../../src/core/transport.ts';
import { rejection } from './support/client.ts';
import { type RawConn, type RawServer, startRawServer } from './support/fake-server.ts';

let server: RawServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const base = { host: '127.0.0.1', security: 'none' as const, helo: 'client.test' };
const envelope = { from: 'a@x.test', to: ['b@y.test', 'c@y.test'] };

/** Greeting and EHLO, then `after` with the connection. */
async function scripted(extensions: string[], after: (c: RawConn) => Promise<void>): Promise<number> {
  server = await startRawServer(async (c) => {
    await c.send('220 scripted.test ESMTP\r\n');
    await c.readLine(); // EHLO
    const lines = ['scripted.test', ...extensions];
    await c.send(lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join(''));
    await after(c);
  });
  return server.port;
}

/** Read lines until `count` commands arrived (a pipelined group may come in one packet or several). */
async function commands(c: RawConn, count: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < count) {
    const line = await c.readLine();
    if (line === null) break;
    out.push(line);
  }
  return out;
}

describe('a 421 or refusal followed by the server closing the connection', () => {
  it('pipelined MAIL answered 421, then close: SmtpReplyError 421 for MAIL, session closed', async () => {
    let group: string[] = [];
    const port = await scripted(['PIPELINING', 'ENHANCEDSTATUSCODES'], async (c) => {
      group = await commands(c, 4);
      await c.send('421 4.3.2 System shutting down\r\n');
      c.end();
    });
    const session = await connectSmtp({ ...base, port });
    const err = await rejection(session.send(envelope, 'x'));
    expect(group).toEqual(['MAIL FROM:<a@x.test>', 'RCPT TO:<b@y.test>', 'RCPT TO:<c@y.test>', 'DATA']);
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect(err).not.toBeInstanceOf(SmtpConnectionError);
    expect(err.code).toBe(421);
    expect(err.enhancedCode).toBe('4.3.2');
    expect(err.command).toBe('MAIL');
    expect(err.temporary).toBe(true);
    expect(err.message).toBe('MAIL: 421 4.3.2 System shutting down');
    expect(session.state).toBe('closed');
  });

  it('pipelined: 250 to MAIL, 421 to the second RCPT, then close: the 421 names RCPT', async () => {
    const port = await scripted(['PIPELINING', 'ENHANCEDSTATUSCODES'], async (c) => {
      await commands(c, 4);
      await c.send('250 2.1.0 ok\r\n250 2.1.5 ok\r\n421 4.7.0 Too many errors\r\n');
      c.end();
    });
    const session = await connectSmtp({ ...base, port });
    const err = await rejection(session.send(envelope, 'x'));
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect([err.code, err.enhancedCode, err.command, err.temporary]).toEqual([421, '4.7.0', 'RCPT', true]);
    expect(session.state).toBe('closed');
  });

  it('pipelined MAIL refused with 550, then close without more replies: the 550 is reported', async () => {
    const port = await scripted(['PIPELINING', 'ENHANCEDSTATUSCODES'], async (c) => {
      await commands(c, 4);
      await c.send('550 5.7.1 Sender blocked\r\n');
      c.end();
    });
    const session = await connectSmtp({ ...base, port });
    const err = await rejection(session.send(envelope, 'x'));
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect([err.code, err.enhancedCode, err.command, err.temporary]).toEqual([550, '5.7.1', 'MAIL', false]);
    // The connection is gone, so the session cannot be reused.
    expect(session.state).toBe('closed');
  });

  it('pipelined: every RCPT refused, then close before the DATA reply: SmtpRecipientsRejectedError', async () => {
    const port = await scripted(['PIPELINING', 'ENHANCEDSTATUSCODES'], async (c) => {
      await commands(c, 4);
      await c.send('250 2.1.0 ok\r\n550 5.1.1 No such user\r\n550 5.1.1 No such user\r\n');
      c.end();
    });
    const session = await connectSmtp({ ...base, port });
    const err = await rejection(session.send(envelope, 'x'));
    expect(err).toBeInstanceOf(SmtpRecipientsRejectedError);
    expect(err.command).toBe('RCPT');
    expect((err as unknown as SmtpRecipientsRejectedError).rejected.map((r) => r.recipient)).toEqual([
      'b@y.test',
      'c@y.test',
    ]);
    expect(session.state).toBe('closed');
  });

  it('pipelined MAIL refused and all replies sent: the session stays usable (RSET next time)', async () => {
    let second: string[] = [];
    const port = await scripted(['PIPELINING', 'ENHANCEDSTATUSCODES'], async (c) => {
      await commands(c, 4);
      await c.send('550 5.7.1 no\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n');
      second = await commands(c, 5);
      await c.send('250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n');
      await c.readData();
      await c.send('250 2.0.0 queued\r\n');
      await c.readLine();
      c.end();
    });
    const session = await connectSmtp({ ...base, port });
    const err = await rejection(session.send(envelope, 'x'));
    expect([err.code, err.command]).toEqual([550, 'MAIL']);
    expect(session.state).toBe('ready');
    const ok = await session.send(envelope, 'x');
    expect(second[0]).toBe('RSET');
    expect(ok.response.code).toBe(250);
    await session.quit();
  });

  it('without pipelining: a 421 to RCPT is reported, not the failure of the next write', async () => {
    const port = await scripted(['ENHANCEDSTATUSCODES'], async (c) => {
      await c.readLine();
      await c.send('250 2.1.0 ok\r\n');
      await c.readLine();
      await c.send('421 4.7.0 Closing\r\n');
      c.destroy();
    });
    const session = await connectSmtp({ ...base, port });
    const err = await rejection(session.send(envelope, 'x'));
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect([err.code, err.command, err.temporary]).toEqual([421, 'RCPT', true]);
    expect(session.state).toBe('closed');
  });
});

/**
 * In memory: replies are handed out in order; the pipelined group's write fails (as EPIPE does
 * when the server closed first), after the server's 421 had already arrived.
 */
class BrokenPipeTransport implements Transport {
  readonly tls = null;
  readonly local = null;
  readonly remote = null;
  readonly #replies: string[];
  #writes = 0;
  constructor(replies: string[]) {
    this.#replies = replies;
  }
  async read(): Promise<Uint8Array | null> {
    const next = this.#replies.shift();
    return next === undefined ? null : new TextEncoder().encode(next);
  }
  async write(): Promise<void> {
    this.#writes++;
    // 1: EHLO. 2: the MAIL/RCPT/DATA group.
    if (this.#writes === 2) throw new SmtpConnectionError('connection error: EPIPE');
  }
  async startTls(): Promise<void> {}
  async close(): Promise<void> {}
}

describe('a failed pipelined write after the server answered', () => {
  it('the 421 already received is reported, not EPIPE', async () => {
    const transport = new BrokenPipeTransport([
      '220 mem.test ESMTP\r\n',
      '250-mem.test\r\n250 PIPELINING\r\n',
      '421 4.3.2 Shutting down\r\n',
    ]);
    const session = new SmtpClientSession(transport, { ...base, port: 2525 });
    await session.greet();
    const err = await rejection(session.send(envelope, 'x'));
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect([err.code, err.enhancedCode, err.command]).toEqual([421, '4.3.2', 'MAIL']);
    expect(session.state).toBe('closed');
  });

  it('with nothing received the write error itself is reported', async () => {
    const transport = new BrokenPipeTransport([
      '220 mem.test ESMTP\r\n',
      '250-mem.test\r\n250 PIPELINING\r\n',
    ]);
    const session = new SmtpClientSession(transport, { ...base, port: 2525 });
    await session.greet();
    const err = await rejection(session.send(envelope, 'x'));
    expect(err).toBeInstanceOf(SmtpConnectionError);
    expect(session.state).toBe('closed');
  });
});
