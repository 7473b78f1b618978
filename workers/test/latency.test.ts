/**
 * The answer does not wait for QUIT: `POST /send` and `Mailer.send()` return as soon as the
 * relay's final reply is in, and the QUIT finishes under `waitUntil`.
 *
 * The slow-QUIT relay (relays.ts) holds its 221 until this test releases it, which the test does
 * only once it holds the response, or until 5 s have passed. So "the relay answered QUIT after
 * the release" proves the response came first; a Worker that waited for QUIT would only answer
 * after the relay gave up waiting (`answeredAfter: 'timeout'`). No clock is read.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, inject, it } from 'vitest';
import { Mailer } from '../src/index.ts';
import { baseEnv, message, post, successOf, unique } from './helpers.ts';
import type { SlowQuitSession } from './relays.ts';

const slowRelay = { SMTP_SECURITY: 'tls', SMTP_PORT: String(inject('slowQuitPort')) };
const inspect = (path: string) => `http://127.0.0.1:${inject('inspectPort')}${path}`;

async function sessionsFor(to: string): Promise<SlowQuitSession[]> {
  const res = await fetch(inspect(`/slow-quit?to=${encodeURIComponent(to)}`));
  return (await res.json()) as SlowQuitSession[];
}

async function release(to: string): Promise<void> {
  const res = await fetch(inspect(`/slow-quit/release?to=${encodeURIComponent(to)}`));
  await res.arrayBuffer();
}

/** The relay's sessions for `to` once each is closed (the relay sees the close a moment after us). */
async function closedSessionsFor(to: string): Promise<SlowQuitSession[]> {
  for (let attempt = 0; attempt < 400; attempt++) {
    const sessions = await sessionsFor(to);
    if (sessions.length > 0 && sessions.every((s) => s.closed)) return sessions;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return sessionsFor(to);
}

describe('the response does not wait for QUIT', () => {
  it('POST /send: 200 while the relay still holds its 221; QUIT then completes under waitUntil, one connection', async () => {
    const to = unique('slow-quit');
    const ctx = createExecutionContext();
    const body = await successOf(await post(message({ to }), { env: slowRelay, ctx }));
    expect(body.accepted).toEqual([to]);
    // We hold the response: the message was delivered and the relay has not answered QUIT.
    const now = await sessionsFor(to);
    expect(now).toHaveLength(1);
    expect(now[0]).toMatchObject({ rcptTo: [to], delivered: true, answeredAfter: null, closed: false });

    await release(to);
    await waitOnExecutionContext(ctx);
    expect(await closedSessionsFor(to)).toEqual([
      { rcptTo: [to], delivered: true, quit: true, answeredAfter: 'release', closed: true },
    ]);
  });

  it('Mailer.send: resolves while the relay still holds its 221; QUIT completes under this.ctx.waitUntil', async () => {
    const to = unique('slow-quit-rpc');
    const ctx = createExecutionContext();
    const mailer = new Mailer(ctx, { ...baseEnv, ...slowRelay });
    const result = await mailer.send(message({ to }));
    expect(result.ok && result.accepted).toEqual([to]);
    const now = await sessionsFor(to);
    expect(now).toHaveLength(1);
    expect(now[0]).toMatchObject({ rcptTo: [to], delivered: true, answeredAfter: null, closed: false });

    await release(to);
    await waitOnExecutionContext(ctx);
    expect(await closedSessionsFor(to)).toEqual([
      { rcptTo: [to], delivered: true, quit: true, answeredAfter: 'release', closed: true },
    ]);
  });

  it('a refusal (every recipient refused: 422) is answered at once too; the QUIT still completes', async () => {
    const to = unique('reject-slow-quit');
    const ctx = createExecutionContext();
    const res = await post(message({ to }), { env: slowRelay, ctx });
    expect(res.status).toBe(422);
    const now = await sessionsFor(to);
    expect(now).toEqual([
      { rcptTo: [to], delivered: false, quit: now[0]?.quit, answeredAfter: null, closed: false },
    ]);

    await release(to);
    await waitOnExecutionContext(ctx);
    expect(await closedSessionsFor(to)).toEqual([
      { rcptTo: [to], delivered: false, quit: true, answeredAfter: 'release', closed: true },
    ]);
  });
});
