import type { Envelope, SmtpSession } from '@smtp-edge/protocol';
import { SmtpReplyError } from '@smtp-edge/protocol';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createHandler, type HandlerDeps } from '../src/handler.ts';
import { AuthLockout, MessageRate } from '../src/limits.ts';
import { Metrics } from '../src/metrics.ts';
import { type MessageStore, type PutInput, type StoredRef, StoreError } from '../src/store/types.ts';
import { UserDb } from '../src/users.ts';

const silent = pino({ level: 'silent' });

function session(over: Partial<SmtpSession> = {}): SmtpSession {
  return {
    id: 's1',
    local: { address: '127.0.0.1', port: 2525 },
    remote: { address: '192.0.2.1', port: 50000 },
    tls: null,
    helo: { verb: 'EHLO', name: 'client.example.org' },
    user: null,
    transaction: null,
    secure: false,
    data: {},
    ...over,
  };
}

const envelope: Envelope = {
  mailFrom: { address: 'a@example.org', params: { body: '8BITMIME', other: {} } },
  rcptTo: [{ address: 'b@example.com', params: { other: {} } }],
};

function body(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      c.close();
    },
  });
}

async function drain(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of s) parts.push(p);
  return Buffer.concat(parts);
}

function deps(store: MessageStore, over: Partial<HandlerDeps> = {}): HandlerDeps {
  return {
    listener: 'mx',
    config: { hostname: 'mx.example.com', domains: ['example.com'], storeTimeoutMs: 100 },
    store,
    users: UserDb.parse('bob:{PLAIN}secret'),
    lockout: new AuthLockout({ maxFailuresPerIp: 2, maxFailuresPerUser: 10, lockoutMs: 60_000 }),
    rate: new MessageRate(2),
    metrics: new Metrics(),
    log: silent,
    ...over,
  };
}

function fakeStore(put: (i: PutInput) => Promise<StoredRef>): MessageStore {
  return { kind: 'file', location: 'test', put, check: async () => {}, close: async () => {} };
}

async function replyOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SmtpReplyError);
  const r = (e as SmtpReplyError).reply;
  return `${r.code} ${r.enhancedCode} ${r.lines.join(' ')}`;
}

describe('receiver handler', () => {
  it('stores Received + body and answers with the id', async () => {
    let got: { head: string; body: string; meta: PutInput['meta'] } | undefined;
    const h = createHandler(
      deps(
        fakeStore(async (i) => {
          got = {
            head: new TextDecoder().decode(i.head),
            body: new TextDecoder().decode(await drain(i.body)),
            meta: i.meta,
          };
          return { eml: 'x', json: 'y', record: { ...i.meta, size: 1, messageSize: 1 } };
        }),
      ),
    );
    const s = session();
    await h.connect?.(s);
    const result = await h.data(s, envelope, body('Subject: x\r\n\r\nhi\r\n'));
    expect(result).toEqual({ message: `Ok: queued as ${got!.meta.id}` });
    expect(got!.body).toBe('Subject: x\r\n\r\nhi\r\n');
    expect(got!.head).toMatch(
      /^Received: from client\.example\.org \(\[192\.0\.2\.1\]\)\r\n\tby mx\.example\.com with ESMTP\r\n/,
    );
    expect(got!.meta).toMatchObject({
      mailFrom: 'a@example.org',
      rcptTo: ['b@example.com'],
      params: { mail: { body: '8BITMIME', other: {} }, rcpt: [{ other: {} }] },
    });
  });

  it('answers 451 4.3.0 on a store failure and on a store that hangs past the time-out', async () => {
    const failing = createHandler(
      deps(fakeStore(async () => Promise.reject(new StoreError('unavailable', 'down')))),
    );
    expect(await replyOf(failing.data(session(), envelope, body('x')))).toBe(
      '451 4.3.0 Temporary storage failure, please try again later',
    );
    // A store that ignores its abort signal entirely (a hung disk): the reply still comes.
    const hung = createHandler(deps(fakeStore(() => new Promise<never>(() => {}))));
    expect(await replyOf(hung.data(session(), envelope, body('x')))).toBe(
      '451 4.3.0 Temporary storage failure, please try again later',
    );
  });

  it('logs and counts each close with the reason the engine set (unknown when it set none)', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const metrics = new Metrics();
    const h = createHandler(
      deps(
        fakeStore(async () => Promise.reject(new Error('unused'))),
        { log, metrics },
      ),
    );
    for (const closeReason of ['http-request', 'too-many-errors', 'http-request', undefined] as const) {
      const s = session(closeReason === undefined ? {} : { closeReason });
      await h.connect?.(s);
      h.close?.(s);
    }
    expect(lines.filter((l) => l['event'] === 'connection').map((l) => l['reason'])).toEqual([
      'http-request',
      'too-many-errors',
      'http-request',
      'unknown',
    ]);
    const text = (await metrics.render()).body;
    expect(text).toContain('receiver_smtp_connections_closed_total{listener="mx",reason="http-request"} 2\n');
    expect(text).toContain(
      'receiver_smtp_connections_closed_total{listener="mx",reason="too-many-errors"} 1\n',
    );
    expect(text).toContain('receiver_smtp_connections_closed_total{listener="mx",reason="unknown"} 1\n');
  });

  it('passes a failing message stream through (the engine owns that reply)', async () => {
    const boom = new Error('client went away');
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        c.error(boom);
      },
    });
    const h = createHandler(
      deps(
        fakeStore(async (i) => {
          await drain(i.body);
          throw new Error('unreachable');
        }),
      ),
    );
    await expect(h.data(session(), envelope, stream)).rejects.toBe(boom);
  });

  it('MX policy: relaying denied, rate limited; submission: any recipient', async () => {
    const store = fakeStore(async () => Promise.reject(new Error('unused')));
    const mx = createHandler(deps(store));
    expect(
      await replyOf(
        Promise.resolve().then(() =>
          mx.rcptTo?.(session(), { address: 'x@evil.example', params: { other: {} } }),
        ),
      ),
    ).toBe('550 5.7.1 Relaying denied');
    await mx.rcptTo?.(session(), { address: 'x@EXAMPLE.com', params: { other: {} } });
    await mx.mailFrom?.(session(), envelope.mailFrom);
    await mx.mailFrom?.(session(), envelope.mailFrom);
    expect(await replyOf(Promise.resolve().then(() => mx.mailFrom?.(session(), envelope.mailFrom)))).toBe(
      '451 4.7.1 Too many messages from your address, try again later',
    );
    const sub = createHandler(deps(store, { listener: 'submission' }));
    await sub.rcptTo?.(session(), { address: 'x@evil.example', params: { other: {} } });
  });

  it('AUTH: PLAIN and CRAM-MD5 secrets, authzid, lockout', async () => {
    const h = createHandler(
      deps(
        fakeStore(async () => Promise.reject(new Error('unused'))),
        { listener: 'submission' },
      ),
    );
    const s = session();
    expect(await h.auth?.(s, { mechanism: 'PLAIN', username: 'bob', password: 'secret' })).toEqual({
      user: 'bob',
    });
    expect(
      await h.auth?.(s, { mechanism: 'PLAIN', username: 'bob', password: 'secret', authzid: 'alice' }),
    ).toBeNull();
    expect(
      await h.auth?.(s, { mechanism: 'CRAM-MD5', username: 'bob', verify: (secret) => secret === 'secret' }),
    ).toEqual({ user: 'bob' });
    expect(await h.auth?.(s, { mechanism: 'PLAIN', username: 'bob', password: 'nope' })).toBeNull();
    expect(
      await replyOf(
        Promise.resolve(h.auth?.(s, { mechanism: 'PLAIN', username: 'bob', password: 'secret' })),
      ),
    ).toBe('454 4.7.0 Too many failed authentication attempts, try again later');
  });

  it('AUTH: failures for a user from many addresses do not lock that user out elsewhere', async () => {
    const lockout = new AuthLockout({ maxFailuresPerIp: 2, maxFailuresPerUser: 10, lockoutMs: 60_000 });
    const h = createHandler(
      deps(
        fakeStore(async () => Promise.reject(new Error('unused'))),
        { listener: 'submission', lockout },
      ),
    );
    const from = (address: string) => session({ remote: { address, port: 50000 } });
    // 30 addresses fail once each for bob: three times the per-user limit in total.
    for (let i = 1; i <= 30; i++)
      expect(
        await h.auth?.(from(`203.0.113.${i}`), { mechanism: 'PLAIN', username: 'bob', password: 'x' }),
      ).toBeNull();
    // bob from his own address, which failed nothing, gets in.
    expect(
      await h.auth?.(from('198.51.100.7'), { mechanism: 'PLAIN', username: 'bob', password: 'secret' }),
    ).toEqual({
      user: 'bob',
    });
    // So does bob from an address that failed once for him (below both limits).
    expect(
      await h.auth?.(from('203.0.113.1'), { mechanism: 'PLAIN', username: 'bob', password: 'secret' }),
    ).toEqual({
      user: 'bob',
    });
  });
});
