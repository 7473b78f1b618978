/**
 * Nothing lost, nothing partial (issue 8): the receiver (child process, `npm run receiver`
 * entry point) stores to S3 (s3rver) through a seeded chaos proxy that resets requests and
 * responses, stalls, slows bodies down and answers 500/503, while clients deliver continuously
 * and retry every 4xx and connection failure, as an MTA queue does.
 *
 * After the network heals:
 * - every message that got 250 is in the store, committed (`.json` beside its `.eml`), with the
 *   exact bytes sent after our `Received:` header;
 * - every message that first got 4xx was retried and ends stored;
 * - no `.json` points at a missing `.eml`, no `.eml` is visible without its `.json`, also when S3
 *   completes a request after the receiver gave up on it (the `late` fault): the clean-up of a
 *   failed put deletes again once such a request can have landed, and shutdown waits for it;
 * - each message is stored exactly once.
 *
 * The fault sequence is seeded (CHAOS_SEED); the assertions hold for every interleaving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  baseEnv,
  type ReceiverProcess,
  startReceiver,
} from '../../receiver/test/support/receiver-process.ts';
import { startTestS3, type TestS3 } from '../../receiver/test/support/s3.ts';
import {
  audit,
  bodyAfterReceived,
  type ChaosProxy,
  copiesByMarker,
  type Delivery,
  deliver,
  startChaosProxy,
} from './support.ts';

const SEED = Number(process.env['CHAOS_SEED'] ?? 20261128);
const CLIENTS = 4;
const PER_CLIENT = 12;
const PREFIX = 'chaos';

let s3: TestS3;
let proxy: ChaosProxy;
let rx: ReceiverProcess;
let deliveries: Delivery[] = [];
let exitCode: number | null = null;

beforeAll(async () => {
  s3 = await startTestS3();
  proxy = await startChaosProxy(s3.port, SEED, { pass: 1 }, { stallMs: 4000, lateMs: 300 });
  rx = await startReceiver({
    ...baseEnv(),
    ...s3.env(PREFIX, proxy.endpoint),
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_SUBMISSION_PORT: 'off',
    RECEIVER_SUBMISSIONS_PORT: 'off',
    RECEIVER_STORE_TIMEOUT: '2s',
    RECEIVER_MESSAGES_PER_IP_PER_MINUTE: '0',
  });
  // Chaos from now on: a third of the connections to S3 misbehave.
  proxy.setMix({
    pass: 45,
    'reset-request': 8,
    'reset-response': 8,
    stall: 4,
    slow: 12,
    'http-error': 8,
    late: 6,
  });
  const loops = Array.from({ length: CLIENTS }, async (_, c) => {
    const mine: Delivery[] = [];
    for (let i = 0; i < PER_CLIENT; i++) {
      mine.push(await deliver(rx.ports.mx!, `CHAOS-${SEED}-${c}-${i}-END`));
    }
    return mine;
  });
  deliveries = (await Promise.all(loops)).flat();
  proxy.setMix({ pass: 1 });
  // A graceful stop waits for the background clean-ups of failed puts: after it, the store is final.
  exitCode = await rx.stop();
}, 240_000);

afterAll(async () => {
  await rx?.stop();
  await proxy?.close();
  await s3?.close();
});

/** The receiver has stopped (clean-ups finished): audit what it left in the bucket. */
async function settledAudit() {
  return audit(await s3.keys(), (k) => s3.get(k));
}

const MARKER = /CHAOS-\d+-\d+-\d+-END/;

describe('receiver + S3 behind a chaos proxy, clients delivering continuously', () => {
  it('the chaos was real: faults were injected and some deliveries needed retries', () => {
    const faults = Object.entries(proxy.stats.faults).filter(([f, n]) => f !== 'pass' && n > 0);
    expect(faults.length).toBeGreaterThanOrEqual(3);
    // Some requests reached S3 after the receiver had given up on them.
    expect(proxy.stats.faults.late).toBeGreaterThan(0);
    // The receiver stopped gracefully, after its clean-ups.
    expect(exitCode).toBe(0);
    expect(deliveries.some((d) => d.outcomes.length > 1)).toBe(true);
    // Every delivery eventually got its 250 (the retries worked) and never a 5xx.
    expect(deliveries.filter((d) => !d.acked).map((d) => [d.marker, d.outcomes])).toEqual([]);
    expect(deliveries.flatMap((d) => d.outcomes).filter((o) => typeof o === 'number' && o >= 500)).toEqual(
      [],
    );
  });

  it('every acknowledged message is stored, committed, with the exact bytes; nothing partial is visible', async () => {
    const a = await settledAudit();
    expect(a.orphanJson).toEqual([]);
    expect(a.other).toEqual([]);
    const byMarker = copiesByMarker(a.committed, MARKER);
    expect(byMarker.has('(none)')).toBe(false);
    for (const d of deliveries.filter((x) => x.acked)) {
      const copies = byMarker.get(d.marker) ?? [];
      expect(copies.length, `${d.marker} stored`).toBeGreaterThanOrEqual(1);
      for (const c of copies) {
        expect(bodyAfterReceived(c.eml)).toBe(d.bytes);
        expect(c.json['messageSize']).toBe(d.bytes.length);
        expect(c.json['mailFrom']).toBe('load@client.example');
      }
    }
  });

  it('each message is stored exactly once, also those that were answered 4xx and retried', async () => {
    const a = await settledAudit();
    const byMarker = copiesByMarker(a.committed, MARKER);
    const duplicates = [...byMarker.entries()]
      .filter(([, copies]) => copies.length > 1)
      .map(([marker, copies]) => ({
        marker,
        copies: copies.length,
        outcomes: deliveries.find((d) => d.marker === marker)?.outcomes,
      }));
    expect(duplicates).toEqual([]);
    expect(byMarker.size).toBe(deliveries.length);
  });

  // Regression (receiver/src/store/s3-store.ts, S3Store cleanUp): a PutObject S3 received but
  // completed after the put had failed (store time-out, lost response, `late` fault) used to
  // survive the clean-up DELETE, leaving an `.eml` without its `.json` (or the reverse).
  it('no uncommitted .eml (nor .json without .eml) is left behind once the clean-ups have finished', async () => {
    const a = await settledAudit();
    expect(a.orphanEml).toEqual([]);
    expect(a.orphanJson).toEqual([]);
  });
});
