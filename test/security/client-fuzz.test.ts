/**
 * Fuzzing the client with hostile servers (issue 8): fast-check scripts a server that answers
 * each line the client sends with a random mix of valid replies (any code, multi-line,
 * with or without enhanced codes), malformed lines, bare LF endings, 8-bit junk, silence, or a
 * close. For every script, `sendMail` settles in bounded time with a result or a typed
 * `SmtpError` (never a TypeError or an unhandled rejection), and never sends the message body or
 * a later command unless the server accepted the steps before it.
 *
 * Reproduce with CLIENT_FUZZ_SEED=<seed> (printed by fast-check on failure).
 */
import * as net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendMail } from '../../shared/src/adapter/node/client.ts';
import { SmtpError } from '../../shared/src/core/errors.ts';

const SEED = Number(process.env['CLIENT_FUZZ_SEED'] ?? 0xc11e47);
const RUNS = Number(process.env['CLIENT_FUZZ_RUNS'] ?? 300);

type Answer =
  | { kind: 'reply'; code: number; lines: number; enhanced: boolean; end: string }
  | { kind: 'junk'; text: string }
  | { kind: 'silence' }
  | { kind: 'close' };

const answer: fc.Arbitrary<Answer> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('reply' as const),
      code: fc.oneof(
        fc.constantFrom(220, 250, 354, 235, 334, 221, 421, 451, 452, 501, 503, 530, 535, 550, 554),
        fc.integer({ min: 0, max: 999 }),
      ),
      lines: fc.integer({ min: 1, max: 4 }),
      enhanced: fc.boolean(),
      end: fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r', ''),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('junk' as const),
      text: fc.string({ unit: 'binary', maxLength: 60 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'silence' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
);

function render(a: Answer): string {
  if (a.kind === 'junk') return a.text;
  if (a.kind !== 'reply') return '';
  const code = String(a.code).padStart(3, '0');
  const klass = code[0];
  const enh = a.enhanced && '245'.includes(klass!) ? `${klass}.0.0 ` : '';
  let out = '';
  for (let i = 0; i < a.lines; i++) out += `${code}${i === a.lines - 1 ? ' ' : '-'}${enh}line ${i}${a.end}`;
  return out;
}

/** The script for the next connection: a greeting and one answer per line the client sends. */
let script: Answer[] = [];
let received = '';
let server: net.Server;
let port: number;

beforeAll(async () => {
  server = net.createServer((socket) => {
    socket.on('error', () => {});
    const answers = [...script];
    let buf = '';
    let inData = false;
    const next = () => {
      const a = answers.shift() ?? ({ kind: 'close' } as const);
      if (a.kind === 'close') {
        socket.destroy();
        return;
      }
      if (a.kind === 'silence') return;
      socket.write(Buffer.from(render(a), 'latin1'));
    };
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      buf += d.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          buf = buf.slice(end + 5);
          inData = false;
          next();
          continue;
        }
        const i = buf.indexOf('\r\n');
        if (i < 0) return;
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        next();
        if (/^DATA$/i.test(line)) inData = true;
      }
    });
    next(); // greeting
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('client fuzzer: random hostile servers (fast-check)', () => {
  it(`${RUNS} scripted servers (seed ${SEED}): a result or a typed SmtpError, in bounded time`, async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(answer, { minLength: 1, maxLength: 14 }),
          fc.boolean(),
          async (answers, pipelining) => {
            script = answers;
            received = '';
            let outcome: unknown;
            try {
              outcome = await sendMail(
                {
                  host: '127.0.0.1',
                  port,
                  security: 'none',
                  helo: 'fuzz.client.test',
                  pipelining,
                  timeouts: { connectMs: 1000, greetingMs: 60, commandMs: 60, dataMs: 60, quitMs: 40 },
                },
                { from: 'a@example.org', to: ['b@example.org', 'c@example.org'] },
                'Subject: fuzz\r\n\r\nsecret body\r\n',
              );
            } catch (e) {
              outcome = e;
            }
            if (outcome instanceof Error) {
              // Typed: an SmtpError with a kind, never a TypeError/RangeError from a parser.
              expect(outcome, String(outcome)).toBeInstanceOf(SmtpError);
              expect(typeof (outcome as SmtpError).kind).toBe('string');
            } else {
              // Success is only possible if the server said 250 to the end of data.
              expect((outcome as { response: { code: number } }).response.code).toBe(250);
            }
            // The body never goes out before a 354 (DATA) or with a chunk the client chose to send.
            const bodyAt = received.indexOf('secret body');
            if (bodyAt >= 0) expect(/DATA\r\n|BDAT \d+/.test(received.slice(0, bodyAt))).toBe(true);
          },
        ),
        { seed: SEED, numRuns: RUNS, endOnFailure: true },
      );
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  }, 240_000);
});
