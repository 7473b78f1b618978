import { describe, expect, it } from 'vitest';
import { SmtpAbortError, SmtpTimeoutError } from '../errors.ts';
import { BoundGroup } from './deadline.ts';

const never = () => new Promise<never>(() => {});

describe('BoundGroup', () => {
  it('a wait that outlives its ms rejects with SmtpTimeoutError; one that settles first resolves', async () => {
    const g = new BoundGroup();
    const slow = g.bound(never(), { stage: 'DATA', ms: 20, command: 'DATA' });
    const fast = g.bound(Promise.resolve('ok'), { stage: 'MAIL', ms: 10_000 });
    expect(await fast).toBe('ok');
    const err = await slow.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    expect((err as SmtpTimeoutError).command).toBe('DATA');
    g.release();
  });

  it('an abort rejects only the waits on that signal, with SmtpAbortError', async () => {
    const g = new BoundGroup();
    const a = new AbortController();
    const b = new AbortController();
    const onA = g.bound(never(), { stage: 'RCPT', ms: 10_000, signal: a.signal });
    const onB = g.bound(Promise.resolve(2), { stage: 'RCPT', ms: 10_000, signal: b.signal });
    a.abort(new Error('stop'));
    expect(await onA.catch((e: unknown) => e)).toBeInstanceOf(SmtpAbortError);
    expect(await onB).toBe(2);
    g.release();
  });

  it('a long-lived group whose waits each bring their own signal keeps one idle listener, not one per wait', async () => {
    const g = new BoundGroup();
    for (let i = 0; i < 500; i++) {
      await g.bound(Promise.resolve(i), { stage: 'MAIL', ms: 10_000, signal: new AbortController().signal });
    }
    expect(g.listenedSignals).toBe(1);
    const shared = new AbortController();
    for (let i = 0; i < 10; i++)
      await g.bound(Promise.resolve(i), { stage: 'MAIL', ms: 10_000, signal: shared.signal });
    expect(g.listenedSignals).toBe(1);
    g.release();
    expect(g.listenedSignals).toBe(0);
  });

  it('after release, nothing is left armed and waits still get their bounds', async () => {
    const g = new BoundGroup();
    await g.bound(Promise.resolve(1), { stage: 'MAIL', ms: 10_000, signal: new AbortController().signal });
    g.release();
    expect(g.listenedSignals).toBe(0);
    const late = g.bound(never(), { stage: 'QUIT', ms: 10 });
    expect(await late.catch((e: unknown) => e)).toBeInstanceOf(SmtpTimeoutError);
  });
});
