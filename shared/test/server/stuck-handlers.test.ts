/**
 * Handler hooks that never settle (a hung database, a store that never answers) must not hang
 * the connection or the shutdown: each wait on the application is bounded, the client gets a
 * temporary failure, message data is still read to its real end, and `close({ deadlineMs })`
 * ends stuck sessions at its deadline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ehlo, RawClient, startTestServer, type TestServer } from './harness.ts';

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close(100);
  srv = undefined;
});

/** A promise that never settles (a hung dependency). */
const never = (): Promise<never> => new Promise<never>(() => {});

const SHORT = { commandMs: 150, dataTerminationMs: 150 };
/** Long enough that only the shutdown deadline can end the wait in a test. */
const LONG = { commandMs: 60_000, dataInitMs: 60_000, dataBlockMs: 60_000, dataTerminationMs: 60_000 };

async function envelope(port: number): Promise<RawClient> {
  const { c } = await ehlo(port);
  c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n');
  const [m, r] = await c.replies(2);
  expect(m!.raw).toBe('250 2.1.0 Sender OK\r\n');
  expect(r!.raw).toBe('250 2.1.5 Recipient OK\r\n');
  return c;
}

describe('hooks that never settle are bounded by the timeouts', () => {
  it('DATA: a data handler that never reads gets 451 4.3.0 after the whole message, and the session goes on', async () => {
    srv = await startTestServer({ handler: { data: never }, options: { timeouts: SHORT } });
    const c = await envelope(srv.port);
    expect((await c.command('DATA')).raw).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    // The message holds command-looking lines: they are data, discarded up to the real end.
    c.send('Subject: x\r\n\r\nRSET\r\nQUIT\r\n..\r\nmore\r\n.\r\nNOOP\r\n');
    expect((await c.reply()).raw).toBe('451 4.3.0 Timeout while storing the message, try again later\r\n');
    expect((await c.reply()).raw).toBe('250 2.0.0 OK\r\n');
    expect((await c.command('QUIT')).code).toBe(221);
    expect(srv.errors.some((e) => e instanceof Error && /data handler/.test(e.message))).toBe(true);
    c.close();
  });

  it('DATA: a stuck handler does not stop the data being read: a large message is discarded to its end', async () => {
    srv = await startTestServer({ handler: { data: never }, options: { timeouts: SHORT } });
    const c = await envelope(srv.port);
    expect((await c.command('DATA')).code).toBe(354);
    const line = `${'x'.repeat(998)}\r\n`;
    c.send(line.repeat(2000)); // 2 MB: far more than any socket buffer
    c.send('.\r\nNOOP\r\n');
    expect((await c.reply()).raw).toBe('451 4.3.0 Timeout while storing the message, try again later\r\n');
    expect((await c.reply()).raw).toBe('250 2.0.0 OK\r\n');
    c.close();
  });

  it('BDAT: a data handler that never reads fails the chunk with 451 4.3.0; later chunks get 503', async () => {
    srv = await startTestServer({ handler: { data: never }, options: { timeouts: SHORT } });
    const c = await envelope(srv.port);
    c.send('BDAT 5\r\nhelloBDAT 3 LAST\r\nabcNOOP\r\n');
    expect((await c.reply()).raw).toBe('451 4.3.0 Timeout while storing the message, try again later\r\n');
    expect((await c.reply()).raw).toBe('503 5.5.1 Previous BDAT failed, send RSET\r\n');
    expect((await c.reply()).raw).toBe('250 2.0.0 OK\r\n');
    c.close();
  });

  it('BDAT LAST: a data handler that never reads gets 451 4.3.0', async () => {
    srv = await startTestServer({ handler: { data: never }, options: { timeouts: SHORT } });
    const c = await envelope(srv.port);
    c.send('BDAT 5 LAST\r\nhelloNOOP\r\n');
    expect((await c.reply()).raw).toBe('451 4.3.0 Timeout while storing the message, try again later\r\n');
    expect((await c.reply()).raw).toBe('250 2.0.0 OK\r\n');
    c.close();
  });

  it('MAIL: a mailFrom hook that never settles gets 451 4.3.0 and no transaction starts', async () => {
    srv = await startTestServer({ handler: { mailFrom: never }, options: { timeouts: SHORT } });
    const { c } = await ehlo(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org>')).raw).toBe(
      '451 4.3.0 Temporary failure, try again later\r\n',
    );
    expect((await c.command('RCPT TO:<b@example.org>')).raw).toBe('503 5.5.1 Need MAIL command first\r\n');
    expect(srv.errors.some((e) => e instanceof Error && /mailFrom/.test(e.message))).toBe(true);
    c.close();
  });

  it('RCPT: an rcptTo hook that never settles gets 451 4.3.0 and the recipient is not added', async () => {
    srv = await startTestServer({ handler: { rcptTo: never }, options: { timeouts: SHORT } });
    const { c } = await ehlo(srv.port);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org>')).raw).toBe(
      '451 4.3.0 Temporary failure, try again later\r\n',
    );
    expect((await c.command('DATA')).raw).toBe('554 5.5.1 No valid recipients\r\n');
    c.close();
  });

  it('connect: a connect hook that never settles gets 421 4.3.0 in place of the greeting', async () => {
    srv = await startTestServer({ handler: { connect: never }, options: { timeouts: SHORT } });
    const c = await RawClient.connect(srv.port);
    expect((await c.reply()).raw).toBe('421 4.3.0 mx.test Service not available, closing connection\r\n');
    await c.waitClosed();
  });

  it('AUTH: an auth hook that never settles gets 454 4.7.0', async () => {
    srv = await startTestServer({
      handler: { auth: never },
      options: { timeouts: SHORT, allowInsecureAuth: true },
    });
    const { c } = await ehlo(srv.port);
    expect((await c.command('AUTH PLAIN AHVzZXIAcGFzcw==')).raw).toBe(
      '454 4.7.0 Temporary authentication failure\r\n',
    );
    expect((await c.command('NOOP')).code).toBe(250);
    c.close();
  });
});

describe('close({ deadlineMs }) ends sessions stuck in a hook', () => {
  it('a data handler stuck before reading', async () => {
    srv = await startTestServer({ handler: { data: never }, options: { timeouts: LONG } });
    const c = await envelope(srv.port);
    expect((await c.command('DATA')).code).toBe(354);
    c.send('hello\r\n.\r\n');
    await srv.close(100); // resolves (or the test times out)
    await c.waitClosed();
    expect(srv.server.connections).toBe(0);
    srv = undefined;
  });

  it('a data handler stuck after reading the whole message', async () => {
    let read = (): void => {};
    const readAll = new Promise<void>((resolve) => {
      read = resolve;
    });
    srv = await startTestServer({
      handler: {
        data: async (_s, _e, stream) => {
          for await (const _ of stream) {
            // drain
          }
          read();
          await never();
        },
      },
      options: { timeouts: LONG },
    });
    const c = await envelope(srv.port);
    expect((await c.command('DATA')).code).toBe(354);
    c.send('hello\r\n.\r\n');
    await readAll;
    await srv.close(100);
    await c.waitClosed();
    srv = undefined;
  });

  it('a mailFrom hook, an rcptTo hook and a connect hook', async () => {
    let hooked = 0;
    let connects = 0;
    let entered = (): void => {};
    const allIn = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const stuck = async (): Promise<never> => {
      if (++hooked === 3) entered();
      return never();
    };
    srv = await startTestServer({
      handler: {
        mailFrom: stuck,
        rcptTo: async () => {},
        auth: stuck,
        connect: () => {
          if (++connects === 3) return stuck();
        },
      },
      options: { timeouts: LONG, allowInsecureAuth: true },
    });
    const a = await ehlo(srv.port);
    a.c.send('MAIL FROM:<a@example.org>\r\n');
    const b = await ehlo(srv.port);
    b.c.send('AUTH PLAIN AHVzZXIAcGFzcw==\r\n');
    const d = await RawClient.connect(srv.port);
    await allIn;
    await srv.close(100);
    await Promise.all([a.c.waitClosed(), b.c.waitClosed(), d.waitClosed()]);
    expect(srv.server.connections).toBe(0);
    srv = undefined;
  });
});
