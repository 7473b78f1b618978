/**
 * `sendOnce` with `background`: the result (or the send error) comes back as soon as the final
 * reply does, and the QUIT runs after it, handed to the caller (a Worker's `ctx.waitUntil`).
 * The server holds its 221 until the test has the result: if `sendOnce` awaited the QUIT it
 * would hang (quitMs is a minute) and the test would time out. No clocks are read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectSmtp } from '../../src/adapter/node/client.ts';
import { SmtpRecipientsRejectedError } from '../../src/core/client/errors.ts';
import { sendOnce } from '../../src/core/client/send-mail.ts';
import { rejection } from './support/client.ts';
import { type RawConn, type RawServer, startRawServer } from './support/fake-server.ts';

let server: RawServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const base = {
  host: '127.0.0.1',
  security: 'none' as const,
  helo: 'client.test',
  timeouts: { quitMs: 60_000 },
};

/** A server that answers one transaction (RCPT as given) and holds the 221 until `release()`. */
async function holdingQuit(rcptReply = '250 2.1.5 ok') {
  const events: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = () => {
      events.push('released');
      resolve();
    };
  });
  let conn: RawConn | undefined;
  server = await startRawServer(async (c) => {
    conn = c;
    await c.send('220 holding.test ESMTP\r\n');
    for (;;) {
      const line = await c.readLine();
      if (line === null) return;
      const verb = line.split(' ')[0]?.toUpperCase();
      if (verb === 'EHLO') await c.send('250 holding.test\r\n');
      else if (verb === 'MAIL') await c.send('250 2.1.0 ok\r\n');
      else if (verb === 'RCPT') await c.send(`${rcptReply}\r\n`);
      else if (verb === 'DATA') {
        await c.send('354 go on\r\n');
        await c.readData();
        await c.send('250 2.0.0 queued as 7\r\n');
      } else if (verb === 'QUIT') {
        events.push('QUIT');
        await released;
        events.push('221');
        await c.send('221 2.0.0 bye\r\n');
        c.end();
        return;
      } else await c.send('502 5.5.1 no\r\n');
    }
  });
  return { port: server.port, events, release, closed: () => conn!.closed };
}

describe('sendOnce with background', () => {
  it('resolves with the final reply before the 221, and hands over a QUIT that completes', async () => {
    const s = await holdingQuit();
    let quit: Promise<void> | undefined;
    const result = await sendOnce(
      connectSmtp,
      { ...base, port: s.port },
      { from: 'a@x.test', to: ['b@y.test'] },
      'Subject: hi\r\n\r\nbody\r\n',
      { background: (p) => (quit = p) },
    );
    s.events.push('result');
    expect(result.response.code).toBe(250);
    expect(result.accepted).toEqual(['b@y.test']);
    expect(s.events).not.toContain('221');
    expect(quit).toBeInstanceOf(Promise);
    s.release();
    await quit;
    await s.closed();
    expect(s.events.filter((e) => e !== 'QUIT')).toEqual(['result', 'released', '221']);
    expect(s.events).toContain('QUIT');
  });

  it('a send error is thrown at once too; the QUIT still goes to the background', async () => {
    const s = await holdingQuit('550 5.1.1 no such user');
    let quit: Promise<void> | undefined;
    const err = await rejection(
      sendOnce(connectSmtp, { ...base, port: s.port }, { from: 'a@x.test', to: ['b@y.test'] }, 'x\r\n', {
        background: (p) => (quit = p),
      }),
    );
    s.events.push('error');
    expect(err).toBeInstanceOf(SmtpRecipientsRejectedError);
    expect(s.events).not.toContain('221');
    s.release();
    await quit;
    await s.closed();
    expect(s.events.filter((e) => e !== 'QUIT')).toEqual(['error', 'released', '221']);
  });

  it('without background, or when background throws, the QUIT is awaited before settling', async () => {
    const s = await holdingQuit();
    s.release();
    const result = await sendOnce(
      connectSmtp,
      { ...base, port: s.port },
      { from: 'a@x.test', to: ['b@y.test'] },
      'x\r\n',
      {
        background: () => {
          throw new Error('no request context');
        },
      },
    );
    s.events.push('result');
    expect(result.response.code).toBe(250);
    expect(s.events).toEqual(['released', 'QUIT', '221', 'result']);
  });
});
