/**
 * SMTP smuggling matrix against the server engine on real sockets (issue 8).
 *
 * Every published fake end-of-data sequence, followed by a complete second transaction, over an
 * MX listener and a submission listener (AUTH), step by step and fully pipelined (everything in
 * one write, the body before the 354), with DATA (bare line endings rejected and normalized) and
 * with BDAT (one chunk, and the sequence split across two chunks). In every case:
 * - the server never starts a second transaction: exactly one reply to the message, the next
 *   command gets its own reply, and a RCPT afterwards is 503 (no MAIL in effect);
 * - the first message is refused (550 5.6.0, nothing stored) or stored once with the smuggled
 *   octets as content, byte for byte (RFC 5321 sections 2.3.8, 4.1.1.4, 4.5.2; RFC 3030 section 2);
 *   with normalize, a fake end that is a lone "." line at a bare CR or LF is refused too, since
 *   normalizing it would store a real-looking <CRLF>.<CRLF>.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reject } from '../../shared/src/core/server/replies.ts';
import { RawClient, startTestServer, type TestServer } from '../../shared/test/server/harness.ts';
import {
  assertFake,
  EVIL_FROM,
  expectedStored,
  FAKE_ENDS,
  hasBareLineEnding,
  latin1Text,
  smuggledTransaction,
} from './support.ts';

type Mode = 'reject' | 'normalize';
type Port = 'mx' | 'submission';

const servers = new Map<Mode, TestServer>();

beforeAll(async () => {
  for (const mode of ['reject', 'normalize'] as const) {
    servers.set(
      mode,
      await startTestServer({
        tls: false,
        options: { bareLineEndings: mode, maxBadCommands: 50 },
        handler: {
          auth: (_s, c) => (c.username === 'user' && c.password === 'pass' ? { user: 'user' } : null),
          mailFrom: (_s, from) => {
            // A second MAIL from the smuggled transaction must never reach the handler.
            if (from.address === EVIL_FROM) throw reject(550, '5.7.1', 'smuggled MAIL reached the handler');
          },
        },
        listen: [{}, { submission: true, allowInsecureAuth: true }],
      }),
    );
  }
});

afterAll(async () => {
  for (const s of servers.values()) await s.close();
});

const AUTH_PLAIN = `AUTH PLAIN ${Buffer.from('\0user\0pass').toString('base64')}`;

async function open(srv: TestServer, port: Port): Promise<RawClient> {
  const c = await RawClient.connect(port === 'mx' ? srv.ports[0]! : srv.ports[1]!);
  expect((await c.reply()).code).toBe(220);
  expect((await c.command('EHLO attacker.example')).code).toBe(250);
  if (port === 'submission') expect((await c.command(AUTH_PLAIN)).code).toBe(235);
  return c;
}

const envelope = 'MAIL FROM:<sender@example.org>\r\nRCPT TO:<rcpt@example.org>\r\n';

/** After the message: the transaction is over and no smuggled command ran. */
async function assertNoSecondTransaction(c: RawClient): Promise<void> {
  expect((await c.command('RCPT TO:<x@example.org>')).raw).toBe('503 5.5.1 Need MAIL command first\r\n');
  expect((await c.command('QUIT')).code).toBe(221);
  await c.waitClosed();
  expect(c.pending).toBe('');
}

describe.each(['reject', 'normalize'] as const)('DATA smuggling, bareLineEndings %s', (mode) => {
  describe.each(['mx', 'submission'] as const)('%s port', (port) => {
    it.each(
      FAKE_ENDS.flatMap(([name, seq]) => [
        [name, seq, false],
        [name, seq, true],
      ]) as Array<[string, string, boolean]>,
    )('%s (pipelined: %s)', async (name, seq, pipelined) => {
      const srv = servers.get(mode)!;
      const marker = `${mode}-${port}-${name}-${pipelined}`;
      const prefix = `Subject: first ${marker}\r\n\r\nhello`;
      assertFake(prefix, seq);
      const raw = `${prefix}${seq}${smuggledTransaction(marker)}\r\n`;
      const before = srv.messages.length;
      const c = await open(srv, port);
      if (pipelined) {
        // Everything in one write, before any reply: envelope, DATA, body, terminator, next command.
        c.send(`${envelope}DATA\r\n${raw}.\r\nNOOP\r\n`);
        expect((await c.replies(3)).map((r) => r.code)).toEqual([250, 250, 354]);
      } else {
        expect((await c.command('MAIL FROM:<sender@example.org>')).code).toBe(250);
        expect((await c.command('RCPT TO:<rcpt@example.org>')).code).toBe(250);
        expect((await c.command('DATA')).code).toBe(354);
        c.send(`${raw}.\r\nNOOP\r\n`);
      }
      const [final, noop] = await c.replies(2);
      expect(noop!.raw).toBe('250 2.0.0 OK\r\n');
      const refused = mode === 'reject' && hasBareLineEnding(raw);
      // Normalize mode refuses a lone "." line at a bare CR or LF instead of storing the
      // <CRLF>.<CRLF> that normalizing would make (or dropping its dot).
      const loneDot = mode === 'normalize' && /[\r\n]\.[\r\n]/.test(seq);
      if (refused) {
        expect(final!.raw).toBe(
          '550 5.6.0 Message contains bare CR or LF characters (see RFC 5321 section 2.3.8)\r\n',
        );
        expect(srv.messages.length).toBe(before);
      } else if (loneDot) {
        expect(final!.raw).toBe(
          '550 5.6.0 Message has a lone "." line at a bare CR or LF (see RFC 5321 section 2.3.8)\r\n',
        );
        expect(srv.messages.length).toBe(before);
      } else {
        expect(final!.code).toBe(250);
        expect(srv.messages.length).toBe(before + 1);
        const stored = srv.messages[before]!;
        expect(stored.envelope.mailFrom.address).toBe('sender@example.org');
        expect(stored.envelope.rcptTo.map((r) => r.address)).toEqual(['rcpt@example.org']);
        expect(latin1Text(stored.bytes)).toBe(expectedStored(raw, mode === 'normalize'));
        // The smuggled transaction is content of the first message.
        expect(latin1Text(stored.bytes)).toContain(`MAIL FROM:<${EVIL_FROM}>`);
      }
      await assertNoSecondTransaction(c);
      expect(srv.messages.slice(before).filter((m) => m.envelope.mailFrom.address === EVIL_FROM)).toEqual([]);
    });
  });
});

describe.each(['mx', 'submission'] as const)('BDAT smuggling, %s port', (port) => {
  it.each(
    FAKE_ENDS.flatMap(([name, seq]) => [
      [name, seq, 'one chunk'],
      [name, seq, 'split chunks'],
    ]) as Array<[string, string, string]>,
  )('%s (%s)', async (name, seq, how) => {
    const srv = servers.get('reject')!;
    const marker = `bdat-${port}-${name}-${how}`;
    // BDAT content is counted, never scanned: even a real <CRLF>.<CRLF> inside is content.
    const payload = `Subject: first ${marker}\r\n\r\nhello${seq}${smuggledTransaction(marker)}\r\n.\r\n`;
    const before = srv.messages.length;
    const c = await open(srv, port);
    if (how === 'one chunk') {
      c.send(`${envelope}BDAT ${payload.length} LAST\r\n${payload}NOOP\r\n`);
      expect((await c.replies(4)).map((r) => r.raw)).toEqual([
        '250 2.1.0 Sender OK\r\n',
        '250 2.1.5 Recipient OK\r\n',
        '250 2.0.0 queued as ' + String(before + 1) + '\r\n',
        '250 2.0.0 OK\r\n',
      ]);
    } else {
      // Cut inside the fake end, so each chunk holds half of it.
      const cut = payload.indexOf(seq) + Math.ceil(seq.length / 2);
      const a = payload.slice(0, cut);
      const b = payload.slice(cut);
      c.send(`${envelope}BDAT ${a.length}\r\n${a}`);
      c.send(`BDAT ${b.length} LAST\r\n${b}NOOP\r\n`);
      expect((await c.replies(5)).map((r) => r.raw)).toEqual([
        '250 2.1.0 Sender OK\r\n',
        '250 2.1.5 Recipient OK\r\n',
        `250 2.0.0 ${a.length} octets received\r\n`,
        '250 2.0.0 queued as ' + String(before + 1) + '\r\n',
        '250 2.0.0 OK\r\n',
      ]);
    }
    expect(srv.messages.length).toBe(before + 1);
    expect(latin1Text(srv.messages[before]!.bytes)).toBe(payload);
    await assertNoSecondTransaction(c);
  });
});
