/**
 * Real third-party clients against the receiver (started as a user starts it): swaks and Python's
 * smtplib over the MX (STARTTLS), submission (STARTTLS + AUTH) and implicit-TLS listeners.
 * Byte-for-byte comparison of what each client sent with what was stored.
 * Run with `npm run test:interop` (needs the Debian packages swaks and python3).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  listFiles,
  PASSWORD,
  rawMessage,
  readJson,
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

function need(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.error || r.status !== 0)
    throw new Error(`${cmd} is not installed: run .ci/install-peers.sh (apt-get install swaks python3)`);
}

const pki = testPki();
let state: string;
let dir: string;
let rx: ReceiverProcess;

beforeAll(async () => {
  need('swaks', ['--version']);
  need('python3', ['-c', 'import smtplib, ssl']);
  state = tempDir('interop');
  dir = join(state, 'data');
  rx = await startReceiver({
    ...baseEnv(),
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_TLS_CERT: pki.certPath,
    RECEIVER_TLS_KEY: pki.keyPath,
    RECEIVER_USERS_FILE: await usersFile(state),
    RECEIVER_STORE: `file://${dir}`,
  });
});

afterAll(async () => {
  expect(await rx?.stop()).toBe(0);
});

/** The stored pair whose message contains `<tag@example.org>`. */
function storedByTag(tag: string): { body: Uint8Array; received: string; json: Record<string, unknown> } {
  const hits = listFiles(dir)
    .filter((f) => f.endsWith('.eml'))
    .filter((f) => readFileSync(join(dir, f)).includes(`<${tag}@example.org>`));
  expect(hits, tag).toHaveLength(1);
  const { body, received } = splitStored(new Uint8Array(readFileSync(join(dir, hits[0]!))));
  return { body, received, json: readJson(join(dir, hits[0]!.replace(/\.eml$/, '.json'))) };
}

function swaks(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('swaks', ['--server', '127.0.0.1', '--helo', 'swaks.test.example', ...args], {
    encoding: 'utf8',
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/**
 * swaks always ends the data with CRLF "." CRLF after what it read, so a file ending in CRLF gains an
 * empty line. Give it the message without its final CRLF to have `raw` arrive exactly.
 */
function swaksData(raw: Uint8Array): Uint8Array {
  return raw.subarray(0, raw.byteLength - 2);
}

const PY = `
import smtplib, ssl, sys
mode, port, user, password, sender, rcpt, path, cafile = sys.argv[1:9]
ctx = ssl.create_default_context(cafile=cafile)
raw = open(path, 'rb').read()
if mode == 'implicit':
    s = smtplib.SMTP_SSL('localhost', int(port), context=ctx, local_hostname='python.test.example')
else:
    s = smtplib.SMTP('localhost', int(port), local_hostname='python.test.example')
    s.starttls(context=ctx)
if user:
    s.login(user, password)
s.sendmail(sender, [rcpt], raw)
s.quit()
`;

function python(
  mode: 'starttls' | 'implicit',
  port: number,
  auth: [string, string] | null,
  rcpt: string,
  raw: Uint8Array,
) {
  const path = join(state, `py-${Date.now()}.eml`);
  writeFileSync(path, raw);
  const script = join(state, 'send.py');
  writeFileSync(script, PY);
  execFileSync('python3', [
    script,
    mode,
    String(port),
    auth?.[0] ?? '',
    auth?.[1] ?? '',
    'zoe@example.org',
    rcpt,
    path,
    pki.caCertPath,
  ]);
}

describe('swaks against the receiver', () => {
  it('MX with STARTTLS stores the exact data', () => {
    const raw = rawMessage('swaks-mx');
    const file = join(state, 'swaks-mx.eml');
    writeFileSync(file, swaksData(raw));
    const r = swaks([
      '--port',
      String(rx.ports.mx),
      '-tls',
      '--from',
      'zoe@example.org',
      '--to',
      'bob@example.com',
      '--data',
      `@${file}`,
    ]);
    expect(r.status, r.out).toBe(0);
    const s = storedByTag('swaks-mx');
    expect(Buffer.compare(s.body, raw)).toBe(0);
    expect(s.received).toMatch(
      /^Received: from swaks\.test\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test\.example with ESMTPS /,
    );
  });

  it('submission with STARTTLS + AUTH PLAIN and LOGIN, and implicit TLS', () => {
    for (const [tag, extra] of [
      ['swaks-sub-plain', ['--port', String(rx.ports.submission), '-tls', '--auth', 'PLAIN']],
      ['swaks-sub-login', ['--port', String(rx.ports.submission), '-tls', '--auth', 'LOGIN']],
      ['swaks-465', ['--port', String(rx.ports.submissions), '--tls-on-connect', '--auth', 'PLAIN']],
    ] as const) {
      const raw = rawMessage(tag);
      const file = join(state, `${tag}.eml`);
      writeFileSync(file, swaksData(raw));
      const r = swaks([
        ...extra,
        '--auth-user',
        USER,
        '--auth-password',
        PASSWORD,
        '--from',
        'alice@example.com',
        '--to',
        'x@elsewhere.example',
        '--data',
        `@${file}`,
      ]);
      expect(r.status, r.out).toBe(0);
      const s = storedByTag(tag);
      expect(Buffer.compare(s.body, raw)).toBe(0);
      expect(s.json).toMatchObject({ authUser: USER, rcptTo: ['x@elsewhere.example'] });
      expect(s.received).toContain(' with ESMTPSA (');
    }
  });

  it('relay attempt on MX is refused (swaks exit 24), wrong password fails (exit 28)', () => {
    const relay = swaks([
      '--port',
      String(rx.ports.mx),
      '-tls',
      '--from',
      'a@example.org',
      '--to',
      'victim@elsewhere.example',
    ]);
    expect(relay.status, relay.out).toBe(24);
    expect(relay.out).toContain('550 5.7.1 Relaying denied');
    const auth = swaks([
      '--port',
      String(rx.ports.submission),
      '-tls',
      '--auth',
      'PLAIN',
      '--auth-user',
      USER,
      '--auth-password',
      'wrong',
      '--to',
      'x@y.example',
    ]);
    expect(auth.status, auth.out).toBe(28);
    expect(auth.out).toContain('535 5.7.8');
  });
});

describe('python smtplib against the receiver', () => {
  it('MX (STARTTLS), submission (STARTTLS + AUTH) and implicit TLS store the exact bytes', () => {
    const mx = rawMessage('python-mx');
    python('starttls', rx.ports.mx!, null, 'bob@example.com', mx);
    expect(Buffer.compare(storedByTag('python-mx').body, mx)).toBe(0);

    const sub = rawMessage('python-sub');
    python('starttls', rx.ports.submission!, [USER, PASSWORD], 'x@elsewhere.example', sub);
    const s = storedByTag('python-sub');
    expect(Buffer.compare(s.body, sub)).toBe(0);
    expect(s.json).toMatchObject({
      authUser: USER,
      listener: 'submission',
      helo: { verb: 'EHLO', name: 'python.test.example' },
    });

    const imp = rawMessage('python-465');
    python('implicit', rx.ports.submissions!, ['bob', 'bob-secret'], 'x@elsewhere.example', imp);
    expect(storedByTag('python-465').json).toMatchObject({ authUser: 'bob', listener: 'submissions' });
    expect(Buffer.compare(storedByTag('python-465').body, imp)).toBe(0);
  });
});
