import { afterEach, describe, expect, it } from 'vitest';
import { OpsServer, type StoreCheckFailure } from '../src/http.ts';
import { Metrics } from '../src/metrics.ts';

describe('OpsServer', () => {
  let ops: OpsServer | undefined;
  afterEach(async () => {
    await ops?.close();
  });

  async function start(check: () => Promise<void>, draining = () => false) {
    const metrics = new Metrics();
    const reports: [StoreCheckFailure | null, StoreCheckFailure | null][] = [];
    ops = new OpsServer({
      store: { check },
      metrics,
      isDraining: draining,
      checkCacheMs: 0,
      onStoreStatus: (failure, previous) => reports.push([failure, previous]),
    });
    const { port } = await ops.listen(0, '127.0.0.1');
    return { base: `http://127.0.0.1:${port}`, metrics, reports };
  }

  it('serves healthz, readyz and metrics', async () => {
    let storeOk = true;
    let draining = false;
    const { base, metrics, reports } = await start(
      async () => {
        if (!storeOk) throw new Error('bucket secret-bucket at http://10.1.2.3:9000 is not reachable');
      },
      () => draining,
    );
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ok = await fetch(`${base}/readyz`);
    expect([ok.status, await ok.text()]).toEqual([200, 'ready\n']);
    expect(reports).toEqual([]);
    storeOk = false;
    // The body is a short reason code: the store's error text (bucket, endpoint) is not served.
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${base}/readyz`);
      expect([r.status, await r.text()]).toEqual([503, 'store_unavailable\n']);
    }
    // ... it is reported (for the log) once, not once per probe.
    expect(reports).toEqual([
      [
        {
          reason: 'store_unavailable',
          detail: 'bucket secret-bucket at http://10.1.2.3:9000 is not reachable',
        },
        null,
      ],
    ]);
    storeOk = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(reports).toHaveLength(2);
    expect(reports[1]).toEqual([null, reports[0]![0]]);
    draining = true;
    const d = await fetch(`${base}/readyz`);
    expect([d.status, await d.text()]).toEqual([503, 'draining\n']);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    metrics.messagesAccepted.inc({ listener: 'mx' });
    metrics.messagesRejected.inc({ listener: 'mx', reason: 'relay_denied' });
    const m = await fetch(`${base}/metrics`);
    expect(m.headers.get('content-type')).toContain('text/plain');
    const text = await m.text();
    expect(text).toContain('receiver_messages_accepted_total{listener="mx"} 1');
    expect(text).toContain('receiver_messages_rejected_total{listener="mx",reason="relay_denied"} 1');
    expect(text).toContain('# TYPE receiver_store_duration_seconds histogram');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
  });

  it('is not ready until start-up has finished', async () => {
    let started = false;
    ops = new OpsServer({
      store: { check: async () => {} },
      metrics: new Metrics(),
      isDraining: () => false,
      isStarted: () => started,
    });
    const { port } = await ops.listen(0, '127.0.0.1');
    const first = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect([first.status, await first.text()]).toEqual([503, 'starting\n']);
    started = true;
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
  });

  it('reports a hanging store check as not ready', async () => {
    const metrics = new Metrics();
    ops = new OpsServer({
      store: {
        check: (signal) =>
          new Promise((_, rej) => signal?.addEventListener('abort', () => rej(new Error('check timed out')))),
      },
      metrics,
      isDraining: () => false,
      checkTimeoutMs: 50,
    });
    const { port } = await ops.listen(0, '127.0.0.1');
    const r = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect([r.status, await r.text()]).toEqual([503, 'store_timeout\n']);
  });

  it('bounds a store check that ignores its abort signal, and checks again afterwards', async () => {
    let calls = 0;
    ops = new OpsServer({
      store: {
        // First call: never settles, signal or not (a hung disk). Later calls: fine.
        check: () => (++calls === 1 ? new Promise<void>(() => {}) : Promise.resolve()),
      },
      metrics: new Metrics(),
      isDraining: () => false,
      checkTimeoutMs: 50,
      checkCacheMs: 0,
    });
    const { port } = await ops.listen(0, '127.0.0.1');
    const r = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect([r.status, await r.text()]).toEqual([503, 'store_timeout\n']);
    const again = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect([again.status, await again.text()]).toEqual([200, 'ready\n']);
    expect(calls).toBe(2);
  });
});
