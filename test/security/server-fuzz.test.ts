/**
 * Protocol fuzzer for the server engine (issue 8): fast-check drives thousands of random
 * sessions into a real listener on 127.0.0.1, mixing well-formed commands from the SMTP grammar
 * with hostile ones (bare CR/LF, NUL, 8-bit junk, long lines, fake end-of-data sequences, BDAT
 * sizes that lie, AUTH garbage, STARTTLS followed by plaintext), written in random pieces.
 *
 * Properties, for every session:
 * - no crash: the engine never reports an internal error (onError) and the process survives;
 * - no hang: after the client half-closes, the server ends the session (bounded wait);
 * - every octet the server sent is a well-formed reply (RFC 5321 section 4.2: `NNN[ -]text CRLF`,
 *   one code per multi-line reply, lines of at most 512 octets, no control characters, an
 *   enhanced code of the same class on every 4xx/5xx reply (RFC 2034, RFC 3463));
 * - at most one message stored per DATA/BDAT LAST sent, and nothing stored that the server did
 *   not acknowledge with 250.
 *
 * Reproduce a failure: the seed is printed by fast-check; run with FUZZ_SEED=<seed> (and
 * FUZZ_RUNS to change the count).
 */
import * as net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../shared/test/server/harness.ts';
import { checkReplies, FAKE_ENDS } from './support.ts';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x5eed_2026);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 2500);

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer({
    options: {
      maxMessageBytes: 4096,
      maxRecipients: 3,
      maxBadCommands: 20,
      maxAuthFailures: 2,
      allowInsecureAuth: true,
      startTls: true,
      timeouts: { commandMs: 3000, dataInitMs: 3000, dataBlockMs: 3000 },
    },
    handler: {
      auth: (_s, c) => (c.username === 'user' && c.password === 'pass' ? { user: 'user' } : null),
    },
  });
});
afterAll(async () => {
  await srv.close();
});

// ---- generators ---------------------------------------------------------------------------

const ends = fc.constantFrom('\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r', '\r\r\n', '');
const junkByte = fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b));
const junk = fc.array(junkByte, { maxLength: 40 }).map((a) => a.join(''));
const word = fc.stringMatching(/^[A-Za-z0-9.-]{0,20}$/);
const address = fc.oneof(
  fc.constantFrom(
    'a@example.org',
    'Postmaster',
    '',
    'jösé@exämple.org',
    '"q uo\\"te"@example.org',
    '@r:a@b.c',
  ),
  fc.tuple(word, word).map(([l, d]) => `${l}@${d}`),
  junk,
);
const mailParam = fc.constantFrom(
  '',
  ' SIZE=100',
  ' SIZE=99999999999999999999',
  ' BODY=8BITMIME',
  ' BODY=BINARYMIME',
  ' SMTPUTF8',
  ' RET=HDRS ENVID=x+2By',
  ' AUTH=<>',
  ' REQUIRETLS',
  ' FOO=bar',
  ' SIZE=',
);
const rcptParam = fc.constantFrom(
  '',
  ' NOTIFY=NEVER',
  ' NOTIFY=SUCCESS,FAILURE',
  ' ORCPT=rfc822;a+2B@b',
  ' X=Y',
);
const fakeEnd = fc.constantFrom(...FAKE_ENDS.map(([, s]) => s));
const body = fc
  .array(fc.oneof(junk, fakeEnd, fc.constant('.'), fc.constant('..x'), fc.constant('\r\n'), word), {
    maxLength: 12,
  })
  .map((a) => a.join(''));

/** One "command" of the session: text (latin1) written as is. */
const command: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.constantFrom('EHLO', 'HELO', 'ehlo', 'EHLO '), word, ends).map(([v, n, e]) => `${v} ${n}${e}`),
  fc.tuple(address, mailParam, ends).map(([a, p, e]) => `MAIL FROM:<${a}>${p}${e}`),
  fc.tuple(address, rcptParam, ends).map(([a, p, e]) => `RCPT TO:<${a}>${p}${e}`),
  fc.tuple(body, fc.boolean()).map(([b, end]) => `DATA\r\n${b}${end ? '\r\n.\r\n' : ''}`),
  fc
    .tuple(fc.integer({ min: 0, max: 60 }), fc.boolean(), body, fc.integer({ min: -5, max: 5 }))
    .map(
      ([n, last, b, lie]) =>
        `BDAT ${Math.max(0, n + lie)}${last ? ' LAST' : ''}\r\n${b.padEnd(n, 'x').slice(0, n)}`,
    ),
  fc.constantFrom(
    'RSET\r\n',
    'NOOP\r\n',
    'NOOP x\r\n',
    'VRFY a\r\n',
    'HELP\r\n',
    'EXPN x\r\n',
    'RSET x\r\n',
    'STARTTLS\r\n',
    'STARTTLS\r\nEHLO injected\r\n',
    'AUTH PLAIN\r\n',
    'AUTH LOGIN\r\n',
    'AUTH CRAM-MD5\r\n',
    'AUTH XOAUTH2\r\n',
    'AUTH FOO\r\n',
    '*\r\n',
    `AUTH PLAIN ${Buffer.from('\0user\0pass').toString('base64')}\r\n`,
    `AUTH PLAIN ${Buffer.from('\0user\0nope').toString('base64')}\r\n`,
    'GET / HTTP/1.1\r\n',
    '.\r\n',
    '\r\n',
    'BDAT 18446744073709551616\r\n',
    'BDAT x\r\n',
  ),
  fc.tuple(fc.integer({ min: 400, max: 3000 }), ends).map(([n, e]) => `NOOP ${'y'.repeat(n)}${e}`),
  fc.tuple(junk, ends).map(([j, e]) => `${j}${e}`),
  fc.base64String({ maxLength: 60 }).map((s) => `${s}\r\n`),
);

const session = fc.record({
  commands: fc.array(command, { minLength: 1, maxLength: 25 }),
  // Where to cut the written octets into separate writes.
  cuts: fc.array(fc.nat(), { maxLength: 6 }),
});

// ---- the session runner and the reply checker --------------------------------------------

async function run(wire: Buffer, cuts: number[]): Promise<string> {
  const socket = net.connect({ port: srv.port, host: '127.0.0.1' });
  socket.setNoDelay(true);
  socket.on('error', () => {});
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise((r) => socket.once('connect', r));
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
  let at = 0;
  for (const p of [...points, wire.length]) {
    if (p > at) socket.write(wire.subarray(at, p));
    at = p;
  }
  socket.end();
  let timer: NodeJS.Timeout | undefined;
  const hung = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), 15_000);
    }),
  ]);
  clearTimeout(timer);
  socket.destroy();
  if (hung) throw new Error('the server did not end the session after the client half-closed');
  return Buffer.concat(received).toString('latin1');
}

describe('server protocol fuzzer (fast-check)', () => {
  it(`${RUNS} random sessions (seed ${SEED}): no crash, no hang, only well-formed replies`, async () => {
    let sessions = 0;
    await fc.assert(
      fc.asyncProperty(session, async ({ commands, cuts }) => {
        const before = srv.messages.length;
        const errorsBefore = srv.errors.length;
        const wire = Buffer.from(commands.join(''), 'latin1');
        const out = await run(wire, cuts);
        sessions++;
        const codes = checkReplies(out);
        // The greeting comes first, and the session's first reply is it.
        expect(codes[0]).toBe(220);
        // Nothing stored without its 250, never more than one per message command.
        await until(() => srv.closed.length >= sessions);
        const stored = srv.messages.length - before;
        const messageCommands = commands.filter(
          (c) => c.startsWith('DATA') || /^BDAT \d+ LAST/.test(c),
        ).length;
        expect(stored).toBeLessThanOrEqual(messageCommands);
        expect(stored).toBeLessThanOrEqual(codes.filter((c) => c === 250).length);
        // Internal errors are reported through onError: there must be none. (A failed TLS
        // handshake after STARTTLS is reported too, as kind 'tls': expected with this input.)
        const unexpected = srv.errors
          .slice(errorsBefore)
          .filter((e) => (e as { kind?: string }).kind !== 'tls');
        expect(unexpected).toEqual([]);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, verbose: 0 },
    );
  }, 180_000);

  it('the reply checker itself rejects malformed output', () => {
    expect(() => checkReplies('250 ok')).toThrow();
    expect(() => checkReplies('250-a\r\n251 b\r\n')).toThrow();
    expect(() => checkReplies('550 no code\r\n')).toThrow();
    expect(() => checkReplies('550 4.1.1 wrong class\r\n')).toThrow();
    expect(() => checkReplies(`250 ${'x'.repeat(600)}\r\n`)).toThrow();
    expect(() => checkReplies('250 a\x00b\r\n')).toThrow();
    expect(checkReplies('220 mx ESMTP\r\n250-mx\r\n250 SIZE 1\r\n550 5.1.1 no\r\n')).toEqual([220, 250, 550]);
  });
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!cond()) throw new Error('the close hook did not run');
}
