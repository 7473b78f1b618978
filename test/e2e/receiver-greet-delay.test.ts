/**
 * RECEIVER_MX_GREET_DELAY: the MX listener pauses before its greeting, and a client that talks
 * before it (RFC 5321 section 4.3.1: the client waits for the 220; RFC 2920 section 3.1) is refused
 * with 554 5.5.0 and closed. Submission listeners do not wait. The receiver runs as a user starts it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../receiver/test/support/fixtures.ts';
import {
  baseEnv,
  type ReceiverProcess,
  startReceiver,
} from '../../receiver/test/support/receiver-process.ts';
import { RawSmtp } from '../../receiver/test/support/smtp.ts';

let rx: ReceiverProcess;

beforeAll(async () => {
  const state = tempDir('greet-delay');
  rx = await startReceiver({
    ...baseEnv(),
    RECEIVER_SUBMISSION_PORT: 'off',
    RECEIVER_SUBMISSIONS_PORT: 'off',
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_STORE: `file://${state}/data`,
    RECEIVER_MX_GREET_DELAY: '400ms',
  });
});

afterAll(async () => {
  expect(await rx.stop()).toBe(0);
});

describe('MX greeting delay', () => {
  it('a client that talks before the greeting gets 554 5.5.0 and is closed', async () => {
    const c = await RawSmtp.connect(rx.ports.mx!);
    c.write('EHLO early.example\r\n');
    const r = await c.reply();
    expect(r?.code).toBe(554);
    expect(r?.text).toMatch(/^554 5\.5\.0 /);
    expect(await c.reply()).toBeNull();
    expect(c.closed).toBe(true);
  });

  it('a client that waits for the greeting is served', async () => {
    const c = await RawSmtp.connect(rx.ports.mx!);
    expect((await c.reply())?.code).toBe(220);
    expect((await c.cmd('EHLO patient.example'))?.code).toBe(250);
    expect((await c.cmd('QUIT'))?.code).toBe(221);
  });
});
