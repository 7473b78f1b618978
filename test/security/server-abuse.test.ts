/**
 * Attacks on the server engine other than smuggling (issue 8): STARTTLS command injection,
 * pipelining abuse, floods (connections, slow drips, AUTH guessing, RCPT floods, huge BDAT,
 * 100 KB lines, binary junk, HTTP on the SMTP port). Each one gets its exact reply and ends
 * (or is bounded), and the server keeps serving an honest client meanwhile.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ehlo,
  RawClient,
  readAll,
  startTestServer,
  type TestServer,
  type TestServerSetup,
} from '../../shared/test/server/harness.ts';
import { testPki } from '../support/tls.ts';
import { sleep, until } from './support.ts';

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');
const AUTH_GOOD = `AUTH PLAIN ${b64('\0user\0pass')}`;
const auth = (_s: unknown, c: { username: string; password?: string }) =>
  c.username === 'user' && c.password === 'pass' ? { user: 'user' } : null;

/** Why each session ended, as the close hook sees it (what a receiver logs). */
let reasons: string[] = [];

async function start(setup: TestServerSetup = {}): Promise<TestServer> {
  reasons = [];
  srv = await startTestServer({
    ...setup,
    handler: {
      ...setup.handler,
      close: (session) => {
        reasons.push(session.closeReason ?? 'unset');
      },
    },
  });
  return srv;
}

/** An honest client delivers one message: the service still serves others. */
async function honestDelivery(s: TestServer, port = s.port): Promise<void> {
  const before = s.messages.length;
  const c = await RawClient.connect(port);
  expect((await c.reply()).code).toBe(220);
  expect((await c.command('EHLO honest.example')).code).toBe(250);
  expect((await c.command('MAIL FROM:<honest@example.org>')).code).toBe(250);
  expect((await c.command('RCPT TO:<rcpt@example.org>')).code).toBe(250);
  expect((await c.command('DATA')).code).toBe(354);
  expect((await c.command('Subject: honest\r\n\r\nhi\r\n.')).code).toBe(250);
  expect((await c.command('QUIT')).code).toBe(221);
  expect(s.messages.length).toBe(before + 1);
  c.close();
}

describe('STARTTLS command injection (RFC 3207 section 4.2)', () => {
  it('commands pipelined behind STARTTLS in the same packet never run, on MX and submission', async () => {
    const s = await start({
      handler: { auth },
      listen: [{ startTls: true }, { startTls: true, submission: true }],
    });
    for (const port of s.ports) {
      const c = await RawClient.connect(port);
      await c.reply();
      await c.command('EHLO attacker.example');
      c.send(
        `STARTTLS\r\nEHLO injected.example\r\n${AUTH_GOOD}\r\nMAIL FROM:<evil@attacker.example>\r\n` +
          'RCPT TO:<victim@example.org>\r\nDATA\r\nSubject: injected\r\n\r\nx\r\n.\r\n',
      );
      expect((await c.reply()).raw).toBe('220 2.0.0 Ready to start TLS\r\n');
      expect(c.pending).toBe('');
      await c.startTls();
      // Nothing learnt before TLS survived: no HELO, no AUTH, no transaction.
      expect((await c.command('MAIL FROM:<a@example.org>')).raw).toBe('503 5.5.1 Send HELO/EHLO first\r\n');
      expect((await c.command('EHLO client.example')).code).toBe(250);
      expect((await c.command('RCPT TO:<x@example.org>')).raw).toBe('503 5.5.1 Need MAIL command first\r\n');
      if (port === s.ports[1]) {
        expect((await c.command('MAIL FROM:<a@example.org>')).raw).toBe(
          '530 5.7.0 Authentication required\r\n',
        );
      }
      c.close();
    }
    expect(s.messages).toEqual([]);
  });

  it('commands written right after STARTTLS (a second packet, before the 220 is read) never run', async () => {
    const s = await start({ listen: [{ startTls: true }] });
    for (let i = 0; i < 20; i++) {
      const socket = net.connect({ port: s.port, host: '127.0.0.1' });
      await new Promise((r) => socket.once('connect', r));
      socket.on('error', () => {});
      let text = '';
      const onData = (d: Buffer) => {
        text += d.toString('latin1');
      };
      socket.on('data', onData);
      await until(() => text.includes('220 '), 'greeting');
      socket.write('EHLO a.example\r\nSTARTTLS\r\n');
      socket.write('MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.org>\r\n');
      await until(() => text.includes('Ready to start TLS\r\n'), '220 to STARTTLS');
      socket.off('data', onData);
      // Either the handshake works and the session is fresh, or the server saw plaintext where
      // TLS records were due and closed: both are safe. The injected MAIL never runs.
      const tls = await import('node:tls');
      const secure = tls.connect({ socket, ca: testPki().caCert, servername: 'localhost' });
      secure.on('error', () => {});
      const ok = await new Promise<boolean>((resolve) => {
        secure.once('secureConnect', () => resolve(true));
        secure.once('close', () => resolve(false));
      });
      if (ok) {
        let reply = '';
        secure.on('data', (d: Buffer) => {
          reply += d.toString('latin1');
        });
        secure.write('RCPT TO:<victim@example.org>\r\n');
        await until(() => reply.includes('\r\n'), 'reply over TLS');
        expect(reply).toBe('503 5.5.1 Need MAIL command first\r\n');
      }
      secure.destroy();
    }
    expect(s.messages).toEqual([]);
  });
});

describe('pipelining abuse (RFC 2920 section 3.1)', () => {
  const blast =
    'MAIL FROM:<spam@attacker.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n' +
    'Subject: blasted\r\n\r\nRSET\r\nMAIL FROM:<second@attacker.example>\r\n.\r\nQUIT\r\n';

  it('a whole transaction sent blind without PIPELINING advertised: 421 4.5.0 at DATA, closed, nothing stored', async () => {
    const s = await start({ options: { extensions: { pipelining: false } } });
    const c = await RawClient.connect(s.port);
    await c.reply();
    c.send(`EHLO spammer.example\r\n${blast}`);
    const replies = await c.replies(4);
    expect(replies[0]!.code).toBe(250);
    expect(replies[0]!.lines).not.toContain('PIPELINING');
    expect(replies.slice(1).map((r) => r.raw)).toEqual([
      '250 2.1.0 Sender OK\r\n',
      '250 2.1.5 Recipient OK\r\n',
      '421 4.5.0 mx.test Improper use of SMTP command pipelining, closing connection\r\n',
    ]);
    await c.waitClosed();
    expect(c.pending).toBe('');
    expect(s.messages).toEqual([]);
    await until(() => reasons.length === 1, 'close hook');
    expect(reasons).toEqual(['improper-pipelining']);
    await honestDelivery(s);
  });

  it('the same after HELO (PIPELINING is negotiated only by EHLO), and BDAT is refused the same way', async () => {
    const s = await start();
    const c = await RawClient.connect(s.port);
    await c.reply();
    c.send(`HELO spammer.example\r\n${blast}`);
    expect((await c.replies(4)).map((r) => r.code)).toEqual([250, 250, 250, 421]);
    await c.waitClosed();
    const d = await RawClient.connect(s.port);
    await d.reply();
    d.send(
      'HELO spammer.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 5 LAST\r\nhello',
    );
    expect((await d.replies(4)).map((r) => r.code)).toEqual([250, 250, 250, 421]);
    await d.waitClosed();
    expect(s.messages).toEqual([]);
  });

  it('a lock-step client after HELO is served; an EHLO client may pipeline', async () => {
    const s = await start();
    const c = await RawClient.connect(s.port);
    await c.reply();
    expect((await c.command('HELO polite.example')).code).toBe(250);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.org>')).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    expect((await c.command('hi\r\n.')).code).toBe(250);
    c.close();
    const { c: d } = await ehlo(s.port);
    d.send(`MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n`);
    expect((await d.replies(3)).map((r) => r.code)).toEqual([250, 250, 354]);
    d.send('hi\r\n.\r\nQUIT\r\n');
    expect((await d.replies(2)).map((r) => r.code)).toEqual([250, 221]);
    expect(s.messages).toHaveLength(2);
  });
});

describe('floods', () => {
  it('many connections from one address: 421 4.7.0 past the per-IP limit; another address is still served', async () => {
    const s = await start({ options: { maxConnectionsPerIp: 3 } });
    const clients: RawClient[] = [];
    const codes: number[] = [];
    for (let i = 0; i < 12; i++) {
      const c = await RawClient.connect(s.port);
      clients.push(c);
      const r = await c.reply();
      codes.push(r.code);
      if (r.code === 421) {
        expect(r.raw).toBe('421 4.7.0 mx.test Too many connections, try again later\r\n');
        await c.waitClosed();
      }
    }
    expect(codes).toEqual([220, 220, 220, ...Array(9).fill(421)]);
    // Another client address (127.0.0.2 is loopback too) gets its own quota.
    const other = net.connect({ port: s.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    other.on('error', () => {});
    let text = '';
    other.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    await until(() => text.includes('\r\n'), 'greeting to 127.0.0.2');
    expect(text).toBe('220 mx.test ESMTP ready\r\n');
    other.destroy();
    for (const c of clients) c.close();
  });

  it('a client dripping a command one octet at a time is cut at the command deadline (421 4.4.2), not held open', async () => {
    const s = await start({ options: { timeouts: { commandMs: 300 } } });
    const { c } = await ehlo(s.port);
    // One octet every 20 ms: each gap is far below the 300 ms timeout, the whole line is not.
    const line = `NOOP ${'x'.repeat(200)}`;
    let sent = 0;
    while (!c.closed && sent < line.length) {
      c.send(line[sent]!);
      sent++;
      await sleep(20);
    }
    expect(c.pending).toBe('421 4.4.2 mx.test Timeout, closing connection\r\n');
    expect(sent).toBeLessThan(line.length);
    await until(() => reasons.length === 1, 'close hook');
    expect(reasons).toEqual(['timeout']);
    await honestDelivery(s);
  });

  it('the same for an AUTH exchange line', async () => {
    const s = await start({
      options: { allowInsecureAuth: true, timeouts: { commandMs: 300 } },
      handler: { auth },
    });
    const { c } = await ehlo(s.port);
    expect((await c.command('AUTH LOGIN')).code).toBe(334);
    let sent = 0;
    while (!c.closed && sent < 200) {
      c.send('A');
      sent++;
      await sleep(20);
    }
    expect(c.pending).toBe('421 4.4.2 mx.test Timeout, closing connection\r\n');
    expect(sent).toBeLessThan(200);
  });

  it('AUTH guessing pipelined in one packet: 535 twice, 421 4.7.0, closed; the handler saw at most 3 guesses', async () => {
    let guesses = 0;
    const s = await start({
      options: { allowInsecureAuth: true, maxAuthFailures: 2 },
      handler: {
        auth: (_s, cred) => {
          guesses++;
          return auth(_s, cred);
        },
      },
    });
    const { c } = await ehlo(s.port);
    const lines = Array.from({ length: 200 }, (_, i) => `AUTH PLAIN ${b64(`\0user\0guess${i}`)}\r\n`).join(
      '',
    );
    c.send(lines);
    expect((await c.replies(3)).map((r) => r.raw)).toEqual([
      '535 5.7.8 Authentication credentials invalid\r\n',
      '535 5.7.8 Authentication credentials invalid\r\n',
      '421 4.7.0 mx.test Too many authentication failures, closing connection\r\n',
    ]);
    await c.waitClosed();
    expect(guesses).toBe(3);
    await until(() => reasons.length === 1, 'close hook');
    expect(reasons).toEqual(['too-many-auth-failures']);
  });

  it('20,000 pipelined RCPTs: 100 accepted, 452 4.5.3, then counted as errors and 421 4.7.0', async () => {
    let seen = 0;
    const s = await start({
      options: { maxRecipients: 100, maxBadCommands: 10 },
      handler: {
        rcptTo: () => {
          seen++;
        },
      },
    });
    const { c } = await ehlo(s.port);
    c.socket.on('error', () => {});
    c.send('MAIL FROM:<a@example.org>\r\n');
    expect((await c.reply()).code).toBe(250);
    const rcpts = Array.from({ length: 20_000 }, (_, i) => `RCPT TO:<r${i}@example.org>\r\n`).join('');
    c.send(rcpts);
    // 100 accepted, 100 more 452 (the client may retry them later), then 10 bad 452s, then 421.
    const replies = await c.replies(211);
    expect(replies.slice(0, 100).every((r) => r.raw === '250 2.1.5 Recipient OK\r\n')).toBe(true);
    expect(replies.slice(100, 210).every((r) => r.raw === '452 4.5.3 Too many recipients\r\n')).toBe(true);
    expect(replies[210]!.raw).toBe('421 4.7.0 mx.test Too many errors, closing connection\r\n');
    await c.waitClosed();
    expect(seen).toBe(100);
    await until(() => reasons.length === 1, 'close hook');
    expect(reasons).toEqual(['too-many-errors']);
    await honestDelivery(s);
  });

  it('BDAT of 2^63 octets is never allocated: its octets are discarded, the server keeps serving', async () => {
    const s = await start({ options: { maxMessageBytes: 1024 * 1024 } });
    const { c } = await ehlo(s.port);
    c.socket.on('error', () => {});
    // A chunk follows its BDAT line at once (RFC 3030 section 2): no waiting for replies.
    c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 9223372036854775808 LAST\r\n');
    // 8 MiB of a chunk that can never end: discarded as it comes, nothing handed to the handler.
    const block = randomBytes(64 * 1024);
    for (let i = 0; i < 128; i++) {
      if (!c.socket.write(block)) await new Promise((r) => c.socket.once('drain', r));
    }
    // No reply to the chunk can exist yet (it has not ended); at most the envelope's.
    expect(['', '250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n']).toContain(c.pending);
    c.close();
    await until(() => s.closed.length === 1, 'session end');
    expect(s.messages).toEqual([]);
    await honestDelivery(s);
  });

  it('a 100 KB command line: 500 5.5.2 Line too long once, then the session goes on', async () => {
    const s = await start();
    const { c } = await ehlo(s.port);
    c.send(`MAIL FROM:<${'a'.repeat(100_000)}@example.org>\r\nNOOP\r\n`);
    expect((await c.replies(2)).map((r) => r.raw)).toEqual([
      '500 5.5.2 Line too long\r\n',
      '250 2.0.0 OK\r\n',
    ]);
    c.close();
  });

  it('a 100 KB line inside DATA is content (longLines accept), refused with 550 5.6.0 under reject', async () => {
    const s = await start();
    const { c } = await ehlo(s.port);
    const long = 'b'.repeat(100_000);
    c.send(`MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n`);
    await c.replies(3);
    c.send(`${long}\r\n.\r\n`);
    expect((await c.reply()).code).toBe(250);
    expect(Buffer.from(s.messages[0]!.bytes).toString('latin1')).toBe(`${long}\r\n`);
    c.close();
    await s.close();
    const t = await start({ options: { longLines: 'reject' } });
    const { c: d } = await ehlo(t.port);
    d.send(`MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n`);
    await d.replies(3);
    d.send(`${long}\r\n.\r\nNOOP\r\n`);
    expect((await d.replies(2)).map((r) => r.raw)).toEqual([
      '550 5.6.0 Message has a line longer than 1000 octets\r\n',
      '250 2.0.0 OK\r\n',
    ]);
    expect(t.messages).toEqual([]);
    d.close();
  });

  it('binary junk with line ends: cut after maxBadCommands; without any line end: cut at the command deadline', async () => {
    const s = await start({ options: { maxBadCommands: 5, timeouts: { commandMs: 400 } } });
    const { c } = await ehlo(s.port);
    c.socket.on('error', () => {});
    const junk = randomBytes(256 * 1024);
    for (let i = 0; i < junk.length; i += 97) {
      junk[i] = 0x0d;
      junk[i + 1] = 0x0a;
    }
    c.send(junk);
    const replies = await c.replies(6);
    expect(replies.slice(0, 5).every((r) => r.code === 500)).toBe(true);
    expect(replies[5]!.raw).toBe('421 4.7.0 mx.test Too many errors, closing connection\r\n');
    await c.waitClosed();

    const { c: d } = await ehlo(s.port);
    d.socket.on('error', () => {});
    const noLf = randomBytes(64 * 1024).map((b) => (b === 0x0a ? 0x20 : b));
    // Keep streaming junk without any LF until the server gives up on the line.
    for (let i = 0; i < 200 && !d.closed; i++) {
      d.send(noLf);
      await sleep(10);
    }
    expect(d.closed).toBe(true);
    expect(d.pending).toBe('500 5.5.2 Line too long\r\n421 4.4.2 mx.test Timeout, closing connection\r\n');
    await honestDelivery(s);
  });

  it('an HTTP request on the SMTP port: 421 4.7.0 at its first line, nothing after it runs', async () => {
    let mails = 0;
    const s = await start({
      handler: {
        mailFrom: () => {
          mails++;
        },
      },
    });
    const c = await RawClient.connect(s.port);
    await c.reply();
    // A cross-protocol attack: an HTML form POSTing SMTP commands as its body.
    const body =
      'EHLO x\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nspam\r\n.\r\n';
    c.send(`POST /submit HTTP/1.1\r\nHost: mx.test:25\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect((await c.reply()).raw).toBe(
      '421 4.7.0 mx.test This is an SMTP server, not HTTP; closing connection\r\n',
    );
    await c.waitClosed();
    expect(c.pending).toBe('');
    expect(mails).toBe(0);
    await until(() => reasons.length === 1, 'close hook');
    expect(reasons).toEqual(['http-request']);
    const d = await RawClient.connect(s.port);
    await d.reply();
    d.send('GET / HTTP/1.0\r\n\r\n');
    expect((await d.reply()).code).toBe(421);
    await d.waitClosed();
    await honestDelivery(s);
  });

  it('a handler reading slowly never makes the engine buffer the message (backpressure)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let got = 0;
    const s = await start({
      handler: {
        data: async (_s, _e, stream) => {
          await gate;
          got = (await readAll(stream)).length;
        },
      },
    });
    const { c } = await ehlo(s.port);
    c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n');
    await c.replies(3);
    const line = `${'z'.repeat(998)}\r\n`;
    const mib = Buffer.from(line.repeat(1024));
    let written = 0;
    // Write until the kernel buffers are full: the engine is not reading (the handler waits).
    for (let i = 0; i < 64; i++) {
      written += mib.length;
      if (!c.socket.write(mib)) break;
    }
    expect(written).toBeLessThan(64 * mib.length);
    release();
    c.socket.write('.\r\n');
    expect((await c.reply()).code).toBe(250);
    expect(got).toBe(written);
    c.close();
  });
});
