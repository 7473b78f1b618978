/**
 * The receiver storing to S3 (s3rver) killed with SIGKILL in the middle of transactions, then
 * restarted, while clients deliver continuously and retry (issue 8): every message that got 250
 * is committed (`.json` and an `.eml` of its recorded size with the exact bytes), no `.json`
 * points at a missing `.eml`.
 *
 * A kill can leave an uncommitted `.eml` (the `.json` is the commit marker; nobody is left to
 * clean up). Against s3rver it may be truncated, because s3rver keeps the octets of an aborted
 * PUT (real S3 answers IncompleteBody and stores nothing); an interrupted multipart upload stays
 * invisible until an S3 lifecycle rule aborts it. Readers key on the `.json`.
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
  copiesByMarker,
  type Delivery,
  deliver,
  messageFor,
  prng,
} from './support.ts';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3?.close();
});

const env = (): Record<string, string> => ({
  ...baseEnv(),
  ...s3.env('killed'),
  RECEIVER_DOMAINS: 'example.com',
  RECEIVER_SUBMISSION_PORT: 'off',
  RECEIVER_SUBMISSIONS_PORT: 'off',
  RECEIVER_MESSAGES_PER_IP_PER_MINUTE: '0',
  RECEIVER_STORE_TIMEOUT: '5s',
});

describe('receiver on S3 killed with SIGKILL mid-transaction, then restarted', () => {
  it('every acknowledged message is committed with its exact bytes', async () => {
    const random = prng(Number(process.env['CHAOS_SEED'] ?? 11));
    let rx: ReceiverProcess = await startReceiver(env());
    let port = rx.ports.mx!;
    let stop = false;
    const loops = Array.from({ length: 3 }, async (_, c) => {
      const mine: Delivery[] = [];
      for (let i = 0; !(stop && i >= 3); i++) {
        const marker = `S3KILL-${c}-${i}-END`;
        // 6 MiB: over one 5 MiB part, so some kills land inside a multipart upload.
        const size = i % 3 === 2 ? 6 * 1024 * 1024 : 200_000;
        mine.push(
          await deliver(0, marker, {
            port: () => port,
            bytes: messageFor(marker, size),
            attempts: 100,
            pauseMs: 100,
          }),
        );
      }
      return mine;
    });
    for (let k = 0; k < 3; k++) {
      await new Promise((r) => setTimeout(r, 200 + Math.floor(random() * 400)));
      rx.child.kill('SIGKILL');
      await rx.exited;
      rx = await startReceiver(env());
      port = rx.ports.mx!;
    }
    stop = true;
    const deliveries = (await Promise.all(loops)).flat();
    expect(await rx.stop()).toBe(0);

    const keys = await s3.keys();
    const a = await audit(keys, (k) => s3.get(k));
    expect(a.orphanJson).toEqual([]);
    expect(a.other).toEqual([]);
    const byMarker = copiesByMarker(a.committed, /S3KILL-\d+-\d+-END/);
    expect(deliveries.filter((d) => !d.acked).map((d) => [d.marker, d.outcomes.length, d.lastError])).toEqual(
      [],
    );
    expect(deliveries.some((d) => d.outcomes.includes('conn'))).toBe(true);
    for (const d of deliveries) {
      const copies = byMarker.get(d.marker) ?? [];
      expect(copies.length, `${d.marker} committed`).toBeGreaterThanOrEqual(1);
      for (const c of copies) expect(bodyAfterReceived(c.eml)).toBe(d.bytes);
    }
  }, 180_000);
});
