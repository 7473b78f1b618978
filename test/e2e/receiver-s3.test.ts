/**
 * The receiver storing to S3 (s3rver in this process, behind a fault-injecting TCP proxy):
 * byte-for-byte objects, multipart for large messages, and the failure paths (S3 down, S3 slower
 * than RECEIVER_STORE_TIMEOUT) answering 451 4.3.0 with nothing left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PASSWORD,
  rawMessage,
  sendWithNodemailer,
  splitStored,
  tempDir,
  testPki,
  USER,
  usersFile,
} from '../../receiver/test/support/fixtures.ts';
import {
  baseEnv,
  type ReceiverProcess,
  startReceiver,
} from '../../receiver/test/support/receiver-process.ts';
import {
  eventually,
  type FaultProxy,
  startFaultProxy,
  startTestS3,
  type TestS3,
} from '../../receiver/test/support/s3.ts';

const pki = testPki();
let s3: TestS3;
let proxy: FaultProxy;
let rx: ReceiverProcess;
const PREFIX = 'inbound/mx';

beforeAll(async () => {
  s3 = await startTestS3();
  proxy = await startFaultProxy(s3.port, 'pass');
  const state = tempDir('s3');
  rx = await startReceiver({
    ...baseEnv(),
    ...s3.env(PREFIX, proxy.endpoint),
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_TLS_CERT: pki.certPath,
    RECEIVER_TLS_KEY: pki.keyPath,
    RECEIVER_USERS_FILE: await usersFile(state),
    RECEIVER_STORE_TIMEOUT: '2s',
    RECEIVER_S3_PART_SIZE: '5MiB',
  });
});

afterAll(async () => {
  const code = await rx?.stop();
  await proxy?.close();
  await s3?.close();
  expect(code).toBe(0);
});

function idFrom(response: string): string {
  const m = /^250 2\.0\.0 Ok: queued as ([0-9A-Z]{26})$/.exec(response);
  expect(m, response).not.toBeNull();
  return m![1]!;
}

async function objectsFor(id: string): Promise<string[]> {
  return (await s3.keys()).filter((k) => k.includes(id));
}

/** Keys of objects whose .eml contains this Message-ID tag. */
async function keysWithTag(tag: string): Promise<string[]> {
  const out: string[] = [];
  for (const k of await s3.keys()) {
    if (!k.endsWith('.eml')) continue;
    if (Buffer.from(await s3.get(k)).includes(`<${tag}@example.org>`)) out.push(k);
  }
  return out;
}

async function expectStored(id: string, raw: Uint8Array): Promise<Record<string, unknown>> {
  const keys = await objectsFor(id);
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  expect(keys.map((k) => k.replace(/\d{4}\/\d\d\/\d\d/, day))).toEqual([
    `${PREFIX}/${day}/${id}.eml`,
    `${PREFIX}/${day}/${id}.json`,
  ]);
  const eml = await s3.get(keys[0]!);
  expect(Buffer.compare(splitStored(eml).body, raw)).toBe(0);
  const json = JSON.parse(Buffer.from(await s3.get(keys[1]!)).toString('utf8')) as Record<string, unknown>;
  expect(json['size']).toBe(eml.byteLength);
  expect(json['messageSize']).toBe(raw.byteLength);
  return json;
}

describe('receiver, S3 store', () => {
  it('stores over MX (STARTTLS), submission and implicit TLS, byte for byte', async () => {
    const a = rawMessage('s3-mx');
    const ia = await sendWithNodemailer({
      port: rx.ports.mx!,
      ca: pki.caCert,
      to: ['bob@example.com'],
      raw: a,
    });
    expect(await expectStored(idFrom(ia.response), a)).toMatchObject({
      listener: 'mx',
      rcptTo: ['bob@example.com'],
    });

    const b = rawMessage('s3-submission');
    const ib = await sendWithNodemailer({
      port: rx.ports.submission!,
      ca: pki.caCert,
      auth: { user: USER, pass: PASSWORD },
      to: ['out@elsewhere.example'],
      raw: b,
    });
    expect(await expectStored(idFrom(ib.response), b)).toMatchObject({
      listener: 'submission',
      authUser: USER,
    });

    const c = rawMessage('s3-submissions');
    const ic = await sendWithNodemailer({
      port: rx.ports.submissions!,
      ca: pki.caCert,
      secure: true,
      auth: { user: 'bob', pass: 'bob-secret' },
      to: ['x@y.example'],
      raw: c,
    });
    expect(await expectStored(idFrom(ic.response), c)).toMatchObject({
      listener: 'submissions',
      authUser: 'bob',
    });
  });

  it('streams a message larger than one part (multipart upload) byte for byte', async () => {
    const raw = rawMessage('s3-large', 7 * 1024 * 1024);
    const info = await sendWithNodemailer({
      port: rx.ports.mx!,
      ca: pki.caCert,
      to: ['bob@example.com'],
      raw,
    });
    await expectStored(idFrom(info.response), raw);
  });

  it('S3 down: 451 4.3.0; the retry stores exactly one copy', async () => {
    const raw = rawMessage('s3-down');
    proxy.setMode('refuse');
    const err = await sendWithNodemailer({
      port: rx.ports.mx!,
      ca: pki.caCert,
      to: ['bob@example.com'],
      raw,
    }).catch((e: unknown) => e as { responseCode?: number; response?: string });
    expect(err).toMatchObject({
      responseCode: 451,
      response: '451 4.3.0 Temporary storage failure, please try again later',
    });
    proxy.setMode('pass');
    const info = await sendWithNodemailer({
      port: rx.ports.mx!,
      ca: pki.caCert,
      to: ['bob@example.com'],
      raw,
    });
    await expectStored(idFrom(info.response), raw);
    expect(await keysWithTag('s3-down')).toHaveLength(1);
  });

  for (const mode of ['hang', 'swallow'] as const) {
    it(`S3 slower than the store time-out (${mode}): 451 4.3.0 and no object`, async () => {
      const tag = `s3-slow-${mode}`;
      const seen = rx.lines.length;
      proxy.setMode(mode);
      const err = await sendWithNodemailer({
        port: rx.ports.mx!,
        ca: pki.caCert,
        to: ['bob@example.com'],
        raw: rawMessage(tag),
      }).catch((e: unknown) => e as { responseCode?: number; response?: string });
      expect(err).toMatchObject({
        responseCode: 451,
        response: '451 4.3.0 Temporary storage failure, please try again later',
      });
      const line = await rx.waitFor(
        (l) =>
          rx.lines.indexOf(l) >= seen &&
          l['event'] === 'message' &&
          l['result'] === 451 &&
          l['reason'] === 'timeout',
      );
      proxy.setMode('pass'); // the clean-up deletes get through once S3 answers again
      await eventually(async () => (await objectsFor(line['id'] as string)).length === 0, 'no object');
      expect(await keysWithTag(tag)).toEqual([]);
    });
  }

  it('counts the failures in /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${rx.ports.http}/metrics`)).text();
    expect(text).toMatch(/receiver_messages_rejected_total\{listener="mx",reason="store_failed"\} [1-9]/);
    expect(text).toMatch(/receiver_messages_rejected_total\{listener="mx",reason="store_timeout"\} [2-9]/);
    expect(text).toMatch(/receiver_store_duration_seconds_count\{store="s3",result="timeout"\} [2-9]/);
  });
});
