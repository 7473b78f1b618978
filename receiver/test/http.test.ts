import { afterEach, describe, expect, it } from 'vitest';
import { OpsServer } from '../src/http.ts';
import { Metrics } from '../src/metrics.ts';

describe('OpsServer', () => {
  let ops: OpsServer | undefined;
  afterEach(async () => {
    await ops?.close();
  });

  async function start(check: () => Promise<void>, draining = () => false) {
    const metrics = new Metrics();
    ops = new OpsServer({ store: { check }, metrics, isDraining: draining, checkCacheMs: 0 });
    const { port } = await ops.listen(0, '127.0.0.1');
    return { base: `http://127.0.0.1:${port}`, metrics };
  }

  it('serves healthz, readyz and metrics', async () => {
    let storeOk = true;
    let draining = false;
    const { base, metrics } = await start(
      async () => {
        if (!storeOk) throw new Error('bucket gone');
      },
      () => draining,
    );
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    storeOk = false;
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.text()).toBe('store not ready: bucket gone\n');
    storeOk = true;
    draining = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
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
    expect(r.status).toBe(503);
  });
});
