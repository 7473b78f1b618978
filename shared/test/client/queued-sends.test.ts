/**
 * Sends queued on one session with PIPELINING: the next message's MAIL, RCPT and DATA go out in
 * the same write as the previous message's end of data, before its reply (RFC 2920 section 3.1:
 * message content may open a group), so each message costs one round trip. The raw server below holds
 * the reply to each end of data until it has read the next envelope: a client that waited for
 * the reply first would stall there, and the recorded lines would show it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SmtpAbortError, SmtpConnectionError, SmtpReplyError } from '../../src/core/errors.ts';
import { recordedSession, rejection } from './support/client.ts';
import { type RawConn, type RawServer, startRawServer } from './support/fake-server.ts';

let server: RawServer | undefined;
/** Waits of the server for a line that did not come (the client was waiting for a reply). */
let stalls = 0;
beforeEach(() => {
  stalls = 0;
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  expect(stalls).toBe(0);
});

/** The next line, or 'TIMEOUT' when the client sends nothing for 2 s (it waits for us). */
async function line(c: RawConn): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('TIMEOUT'), 2_000);
  });
  const got = await Promise.race([c.readLine().then((l) => l ?? 'EOF'), late]);
  clearTimeout(timer);
  if (got === 'TIMEOUT') stalls++;
  return got;
}

async function greet(c: RawConn, extensions: string[]): Promise<void> {
  await c.send('220 raw.test ESMTP\r\n');
  await c.readLine();
  const lines = ['raw.test', ...extensions];
  await c.send(lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join(''));
}

/**
 * The first message accepted up to its 354, its data read, then the second envelope (MAIL, RCPT,
 * DATA) read before anything answers the first end of data: the caller replies from there.
 */
async function untilSecondEnvelope(c: RawConn): Promise<void> {
  await greet(c, ['PIPELINING', 'ENHANCEDSTATUSCODES']);
  for (let i = 0; i < 3; i++) await line(c);
  await c.send('250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n');
  await c.readData();
  for (let i = 0; i < 3; i++) await line(c);
}

const env = (n: number) => ({ from: `a${n}@x.test`, to: [`b${n}@y.test`] });

describe('queued sends with PIPELINING (RFC 2920 section 3.1)', () => {
  it('write the next envelope after the end of data, before its reply: one round trip per message', async () => {
    const seen: string[] = [];
    server = await startRawServer(async (c) => {
      await greet(c, ['PIPELINING', 'ENHANCEDSTATUSCODES']);
      for (let i = 0; i < 3; i++) seen.push(await line(c));
      await c.send('250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n');
      for (let m = 1; m <= 3; m++) {
        seen.push((await c.readData()) ?? 'EOF');
        if (m < 3) {
          // The reply to this end of data is held until the next envelope is here.
          for (let i = 0; i < 3; i++) seen.push(await line(c));
          await c.send(`250 2.0.0 queued ${m}\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n`);
        } else await c.send('250 2.0.0 queued 3\r\n');
      }
      seen.push(await line(c));
      await c.send('221 2.0.0 bye\r\n');
      c.end();
    });
    const { session, writes } = await recordedSession(server.port);
    await session.greet();
    const results = await Promise.all([1, 2, 3].map((n) => session.send(env(n), `m${n}\r\n`)));
    expect(results.map((r) => [r.accepted, r.response.lines[0]])).toEqual([
      [['b1@y.test'], 'queued 1'],
      [['b2@y.test'], 'queued 2'],
      [['b3@y.test'], 'queued 3'],
    ]);
    await session.quit();
    expect(seen).toEqual([
      'MAIL FROM:<a1@x.test>',
      'RCPT TO:<b1@y.test>',
      'DATA',
      'm1\r\n.\r\n',
      'MAIL FROM:<a2@x.test>',
      'RCPT TO:<b2@y.test>',
      'DATA',
      'm2\r\n.\r\n',
      'MAIL FROM:<a3@x.test>',
      'RCPT TO:<b3@y.test>',
      'DATA',
      'm3\r\n.\r\n',
      'QUIT',
    ]);
    // The next envelope rides in the same write as the end of data, and needs no RSET: each end
    // of data completed its transaction (RFC 5321 section 4.1.1.4).
    expect(writes.slice(1)).toEqual([
      'MAIL FROM:<a1@x.test>\r\nRCPT TO:<b1@y.test>\r\nDATA\r\n',
      'm1\r\n.\r\nMAIL FROM:<a2@x.test>\r\nRCPT TO:<b2@y.test>\r\nDATA\r\n',
      'm2\r\n.\r\nMAIL FROM:<a3@x.test>\r\nRCPT TO:<b3@y.test>\r\nDATA\r\n',
      'm3\r\n.\r\n',
      'QUIT\r\n',
    ]);
  });

  it('a message refused at its end of data (554) does not stop the queued one, and needs no RSET', async () => {
    server = await startRawServer(async (c) => {
      await untilSecondEnvelope(c);
      await c.send('554 5.7.1 content refused\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n');
      await c.readData();
      await c.send('250 2.0.0 queued 2\r\n');
      await line(c);
      await c.send('221 2.0.0 bye\r\n');
      c.end();
    });
    const { session, writes } = await recordedSession(server.port);
    await session.greet();
    const first = session.send(env(1), 'm1\r\n');
    const second = session.send(env(2), 'm2\r\n');
    const err = await rejection(first);
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect([err.code, err.enhancedCode, err.command]).toEqual([554, '5.7.1', 'DATA']);
    expect((await second).response.lines).toEqual(['queued 2']);
    await session.quit();
    expect(writes.some((w) => w.includes('RSET'))).toBe(false);
  });

  it('a 421 at the end of data: the queued send fails with the connection and sends nothing more', async () => {
    let received = '';
    server = await startRawServer(async (c) => {
      await untilSecondEnvelope(c);
      await c.send('421 4.3.2 shutting down\r\n');
      c.end();
      await c.closed;
      received = c.received();
    });
    const { session } = await recordedSession(server.port);
    await session.greet();
    const first = session.send(env(1), 'm1\r\n');
    const second = session.send(env(2), 'm2\r\n');
    const err = await rejection(first);
    expect([err.code, err.command]).toEqual([421, 'DATA']);
    expect(await rejection(second)).toBeInstanceOf(SmtpConnectionError);
    expect(session.state).toBe('closed');
    await server.close();
    expect(received).not.toContain('m2');
  });

  it('the queued MAIL refused: that send fails with its reply, and the send after it starts with RSET', async () => {
    server = await startRawServer(async (c) => {
      await untilSecondEnvelope(c);
      await c.send(
        '250 2.0.0 queued 1\r\n550 5.7.1 sender refused\r\n503 5.5.1 no sender\r\n503 5.5.1 no recipients\r\n',
      );
      for (let i = 0; i < 4; i++) await line(c); // RSET, MAIL, RCPT, DATA
      await c.send('250 2.0.0 reset\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n');
      await c.readData();
      await c.send('250 2.0.0 queued 3\r\n');
      await line(c);
      await c.send('221 2.0.0 bye\r\n');
      c.end();
    });
    const { session, writes } = await recordedSession(server.port);
    await session.greet();
    const sends = [1, 2, 3].map((n) => session.send(env(n), `m${n}\r\n`));
    expect((await sends[0]!).response.lines).toEqual(['queued 1']);
    const err = await rejection(sends[1]!);
    expect([err.code, err.command]).toEqual([550, 'MAIL']);
    expect((await sends[2]!).response.lines).toEqual(['queued 3']);
    await session.quit();
    expect(writes).toContain('RSET\r\nMAIL FROM:<a3@x.test>\r\nRCPT TO:<b3@y.test>\r\nDATA\r\n');
  });

  it('no early envelope without PIPELINING, nor when another operation is queued in between', async () => {
    for (const [extensions, between] of [
      [['ENHANCEDSTATUSCODES'], false],
      [['PIPELINING', 'ENHANCEDSTATUSCODES'], true],
    ] as const) {
      const seen: string[] = [];
      const s = await startRawServer(async (c) => {
        await greet(c, [...extensions]);
        for (;;) {
          const l = await line(c);
          seen.push(l);
          if (l === 'EOF' || l === 'TIMEOUT') return;
          if (l === 'QUIT') {
            await c.send('221 2.0.0 bye\r\n');
            c.end();
            return;
          }
          if (l === 'DATA') {
            await c.send('354 go\r\n');
            seen.push((await c.readData()) ?? 'EOF');
            // Anything the client sends before this reply shows up in `seen` first.
            await new Promise((r) => setTimeout(r, 50));
            seen.push(`(reply)`);
            await c.send('250 2.0.0 queued\r\n');
          } else await c.send('250 2.0.0 ok\r\n');
        }
      });
      const { session } = await recordedSession(s.port);
      await session.greet();
      const sends = [session.send(env(1), 'm1\r\n')];
      if (between) sends.push(session.noop().then(() => null as never));
      sends.push(session.send(env(2), 'm2\r\n'));
      await Promise.all(sends);
      await session.quit();
      await s.close();
      const afterFirst = seen.slice(seen.indexOf('m1\r\n.\r\n') + 1, seen.indexOf('m1\r\n.\r\n') + 3);
      expect(afterFirst).toEqual(['(reply)', between ? 'NOOP' : 'MAIL FROM:<a2@x.test>']);
    }
  });

  it('a queued send aborted after its envelope went out early: it fails as aborted and the connection is closed', async () => {
    const ac = new AbortController();
    server = await startRawServer(async (c) => {
      await untilSecondEnvelope(c);
      ac.abort(); // the server is about to answer; the caller gives up on the second message
      await c.send('250 2.0.0 queued 1\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n');
      await c.closed;
    });
    const { session } = await recordedSession(server.port);
    await session.greet();
    const first = session.send(env(1), 'm1\r\n');
    const second = session.send(env(2), 'm2\r\n', ac.signal);
    expect((await first).response.lines).toEqual(['queued 1']);
    expect(await rejection(second)).toBeInstanceOf(SmtpAbortError);
    expect(session.state).toBe('closed');
  });
});
