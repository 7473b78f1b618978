import { describe, expect, it } from 'vitest';
import { Alarm } from './alarm.ts';
import type { Timers } from './types.ts';

/** Manual timers: `advance(ms)` moves the clock and fires what is due, in order. */
function manualTimers(withClock: boolean) {
  let now = 0;
  let nextId = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  let started = 0;
  const timers: Timers = {
    setTimeout(fn, ms) {
      started++;
      const id = nextId++;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(handle) {
      pending.delete(handle as number);
    },
    ...(withClock ? { now: () => now } : {}),
  };
  const advance = (ms: number): void => {
    const end = now + ms;
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | null = null;
      for (const e of pending) if (e[1].at <= end && (first === null || e[1].at < first[1].at)) first = e;
      if (first === null) break;
      pending.delete(first[0]);
      now = first[1].at;
      first[1].fn();
    }
    now = end;
  };
  return { timers, advance, pending: () => pending.size, started: () => started };
}

describe('Alarm', () => {
  for (const withClock of [true, false]) {
    describe(withClock ? 'with a clock' : 'without a clock', () => {
      it('rings once, when the last setting is due, not before', () => {
        const t = manualTimers(withClock);
        const alarm = new Alarm(t.timers, 1000);
        let rang = 0;
        alarm.set(1000, () => rang++);
        t.advance(600);
        alarm.set(1000, () => rang++); // moved: now due at 1600
        t.advance(999);
        expect(rang).toBe(0);
        t.advance(1);
        expect(rang).toBe(1);
        t.advance(5000);
        expect(rang).toBe(1);
      });

      it('rings earlier when set to a shorter time', () => {
        const t = manualTimers(withClock);
        const alarm = new Alarm(t.timers, 60_000);
        let rang = 0;
        alarm.set(60_000, () => rang++);
        alarm.set(10, () => rang++);
        t.advance(10);
        expect(rang).toBe(1);
      });

      it('does not ring once cleared; a stale token does not clear a newer setting', () => {
        const t = manualTimers(withClock);
        const alarm = new Alarm(t.timers, 100);
        let rang = 0;
        const first = alarm.set(100, () => rang++);
        alarm.clear(first);
        t.advance(200);
        expect(rang).toBe(0);
        const stale = alarm.set(100, () => rang++);
        alarm.set(100, () => rang++);
        alarm.clear(stale);
        t.advance(100);
        expect(rang).toBe(1);
      });

      it('stop() leaves no timer behind', () => {
        const t = manualTimers(withClock);
        const alarm = new Alarm(t.timers, 100);
        alarm.set(100, () => {});
        alarm.clear();
        alarm.stop();
        expect(t.pending()).toBe(0);
      });
    });
  }

  it('with a clock, moving the deadline later starts no new timer', () => {
    const t = manualTimers(true);
    const alarm = new Alarm(t.timers, 1000);
    for (let i = 0; i < 100; i++) {
      alarm.set(1000, () => {});
      t.advance(5);
      alarm.clear();
    }
    expect(t.started()).toBe(1);
  });
});
