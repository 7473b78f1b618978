/**
 * The Worker (`POST /send` under `wrangler dev`, i.e. workerd) attacked through its JSON input
 * (issue 8), relaying with STARTTLS + AUTH to our recording test relay, which keeps every
 * message's envelope and exact octets.
 *
 * For every JSON field and every line-break form (CRLF, LF, CR, NUL, NEL, LS/PS) plus an SMTP
 * command sequence: the request is refused with 400 naming the field, or the message arrives
 * with exactly the intended envelope and no injected header field or command. Also: oversized
 * and deeply nested JSON, lone surrogates, IDN domains and UTF-8 local parts with and without
 * SMTPUTF8 at the relay, wrong keys in bulk.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitForHttp } from '../../scripts/lib/net.ts';
import { startTestServer, type TestServer } from '../../shared/test/server/harness.ts';
import { testPki } from '../support/tls.ts';

const REPO = resolve(import.meta.dirname, '../..');
const WRANGLER = join(REPO, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const API_KEY = 'security-worker-key-8a1d';
const USER = 'relay-user';
const PASSWORD = 'relay-pass';

const pki = testPki();
let relay: TestServer;
const workers: Array<{ child: ChildProcess; exited: Promise<unknown>; url: string; output: () => string }> =
  [];
const temp: string[] = [];

async function startWorker(relayPort: number): Promise<(typeof workers)[number]> {
  const state = mkdtempSync(join(tmpdir(), 'smtp-edge-security-worker-'));
  temp.push(state);
  const vars = join(state, 'worker.vars');
  writeFileSync(
    vars,
    [
      `API_KEYS=${API_KEY}`,
      'SMTP_HOST=localhost',
      `SMTP_PORT=${relayPort}`,
      'SMTP_SECURITY=starttls',
      `SMTP_USERNAME=${USER}`,
      `SMTP_PASSWORD=${PASSWORD}`,
      'SMTP_HELO=worker.security.test',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      WRANGLER,
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(await freePort()),
      '--env-file',
      vars,
      '--persist-to',
      join(state, 'wrangler-state'),
      '--show-interactive-dev-session=false',
    ],
    {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: pki.caCertPath,
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        WRANGLER_SEND_METRICS: 'false',
        WRANGLER_LOG_PATH: join(state, 'wrangler-logs'),
        CI: '1',
      },
    },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise((r) => child.once('exit', r));
  const url = `http://127.0.0.1:${port}`;
  const w = { child, exited, url, output: () => output };
  workers.push(w);
  await waitForHttp(`${url}/openapi.json`, {
    timeoutMs: 90_000,
    ready: (status) => status === 200,
    abandon: () => (child.exitCode !== null ? `wrangler dev exited:\n${output}` : null),
  });
  return w;
}

let utf8Worker: string;
let asciiWorker: string;

beforeAll(async () => {
  relay = await startTestServer({
    options: { hostname: 'relay.security.test' },
    handler: {
      auth: (_s, c) => (c.username === USER && c.password === PASSWORD ? { user: USER } : null),
    },
    listen: [
      { startTls: true, submission: true },
      { startTls: true, submission: true, extensions: { smtputf8: false } },
    ],
  });
  const [a, b] = await Promise.all([startWorker(relay.ports[0]!), startWorker(relay.ports[1]!)]);
  utf8Worker = a.url;
  asciiWorker = b.url;
}, 150_000);

afterAll(async () => {
  for (const w of workers) {
    if (w.child.pid !== undefined && w.child.exitCode === null) {
      process.kill(-w.child.pid, 'SIGTERM');
      const stopped = await Promise.race([
        w.exited,
        new Promise((r) => setTimeout(() => r('timeout'), 10_000)),
      ]);
      if (stopped === 'timeout') process.kill(-w.child.pid, 'SIGKILL');
    }
  }
  await relay?.close();
  for (const d of temp) rmSync(d, { recursive: true, force: true });
}, 60_000);

interface SendOutcome {
  status: number;
  body: { ok: boolean; error?: { code: string; message: string; fields?: Array<{ path: string }> } };
}

async function send(
  body: unknown,
  options: { url?: string; key?: string; raw?: string } = {},
): Promise<SendOutcome> {
  const res = await fetch(`${options.url ?? utf8Worker}/send`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${options.key ?? API_KEY}`, 'Content-Type': 'application/json' },
    body: options.raw ?? JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as SendOutcome['body'] };
}

function headerNames(raw: Uint8Array): string[] {
  const text = Buffer.from(raw).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  return head
    .split('\r\n')
    .filter((l) => l !== '' && l[0] !== ' ' && l[0] !== '\t')
    .map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
}

const INJECTIONS: ReadonlyArray<readonly [string, string]> = [
  ['CRLF', '\r\nX-Injected: yes'],
  ['LF', '\nX-Injected: yes'],
  ['CR', '\rX-Injected: yes'],
  ['NUL', '\u0000X-Injected: yes'],
  ['NEL', '\u0085X-Injected: yes'],
  ['LS', '\u2028X-Injected: yes'],
  ['PS', '\u2029X-Injected: yes'],
  ['SMTP', '\r\n.\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@attacker.example>\r\nDATA\r\n'],
];

const TO = 'rcpt@example.org';

/** Where the payload goes: a request with `p` placed in one field. */
const FIELDS: ReadonlyArray<readonly [string, (p: string) => Record<string, unknown>]> = [
  ['subject', (p) => ({ subject: `Hi${p}` })],
  ['from (string)', (p) => ({ from: `app@example.org${p}` })],
  ['from.name', (p) => ({ from: { name: `App${p}`, address: 'app@example.org' } })],
  ['from.address', (p) => ({ from: { address: `app@example.org${p}` } })],
  ['to (string)', (p) => ({ to: `${TO}${p}` })],
  ['to (display name)', (p) => ({ to: `"Zoe${p}" <${TO}>` })],
  ['cc', (p) => ({ cc: `cc@example.org${p}` })],
  ['bcc', (p) => ({ bcc: [`bcc@example.org${p}`] })],
  ['replyTo', (p) => ({ replyTo: { name: `R${p}`, address: 'r@example.org' } })],
  ['headers (value)', (p) => ({ headers: { 'X-Custom': `v${p}` } })],
  ['headers (name)', (p) => ({ headers: { [`X-Custom${p}`]: 'v' } })],
  ['attachments.filename', (p) => ({ attachments: [{ filename: `a${p}.txt`, content: 'aGk=' }] })],
  [
    'attachments.contentType',
    (p) => ({ attachments: [{ filename: 'a.txt', content: 'aGk=', contentType: `text/plain${p}` }] }),
  ],
  ['dsn.envid', (p) => ({ dsn: { envid: `id${p}` } })],
  ['text', (p) => ({ text: `body${p}end` })],
  ['html', (p) => ({ html: `<p>body${p}end</p>` })],
];

describe('Worker: injection through every JSON field', () => {
  const cases = FIELDS.flatMap(([field, build]) =>
    INJECTIONS.map(([name, p]) => [field, name, build(p)] as const),
  );
  it.each(cases)('%s with %s: 400 naming the field, or delivered clean', async (field, _name, fields) => {
    const before = relay.messages.length;
    const r = await send({ from: 'app@example.org', to: TO, subject: 'Hi', text: 'hello', ...fields });
    if (r.status === 400) {
      expect(r.body.ok).toBe(false);
      expect(r.body.error?.code).toBe('invalid_request');
      expect(relay.messages.length).toBe(before);
      return;
    }
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(relay.messages.length).toBe(before + 1);
    const m = relay.messages[before]!;
    // The envelope is exactly what the request meant, nothing from the payload.
    expect(m.envelope.mailFrom.address).toBe('app@example.org');
    const rcpts = m.envelope.rcptTo.map((x) => x.address).sort();
    const expected = [
      TO,
      ...(field === 'cc' ? ['cc@example.org'] : []),
      ...(field === 'bcc' ? ['bcc@example.org'] : []),
    ];
    expect(rcpts).toEqual(expected.sort());
    const names = headerNames(m.bytes);
    expect(names).not.toContain('x-injected');
    expect(names).not.toContain('bcc');
    // Header values never hold a raw line break that is not folding.
    const text = Buffer.from(m.bytes).toString('latin1');
    expect(text).not.toMatch(/(?<!\r)\n|\r(?!\n)/);
    expect(field === 'text' || field === 'html' || !text.includes('MAIL FROM:<evil')).toBe(true);
  });
});

describe('Worker: hostile JSON', () => {
  it('a body over MAX_REQUEST_BYTES is 413 and nothing is relayed', async () => {
    const before = relay.messages.length;
    const r = await send(null, {
      raw: JSON.stringify({ from: 'a@example.org', to: TO, text: 'x'.repeat(30_000_000) }),
    });
    expect(r.status).toBe(413);
    expect(relay.messages.length).toBe(before);
  });

  it.each([
    ['arrays', (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`],
    ['objects', (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`],
  ])('deeply nested JSON (%s, 200 000 levels) is a 400, not a crash', async (_k, build) => {
    const r = await send(null, {
      raw: `{"from":"a@example.org","to":"${TO}","text":"x","headers":${build(200_000)}}`,
    });
    expect(r.status).toBe(400);
    // The Worker still serves.
    const ok = await send({ from: 'app@example.org', to: TO, subject: 'after nesting', text: 'still here' });
    expect(ok.status).toBe(200);
  });

  it('lone surrogates in the subject and a display name: 400 or encoded, never a crash', async () => {
    for (const bad of ['\ud800', '\udfff', 'a\ud83d']) {
      const r = await send({
        from: { name: `N${bad}`, address: 'app@example.org' },
        to: TO,
        subject: `S${bad}`,
        text: 'x',
      });
      expect([200, 400]).toContain(r.status);
    }
  });
});

describe('Worker: Unicode addresses', () => {
  it('an IDN domain is relayed (as A-labels without SMTPUTF8, or as UTF-8 with it)', async () => {
    const before = relay.messages.length;
    const r = await send(
      { from: 'app@example.org', to: 'zoe@bücher.example', subject: 'IDN', text: 'x' },
      { url: asciiWorker },
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const m = relay.messages[before]!;
    expect(m.envelope.rcptTo.map((x) => x.address)).toEqual(['zoe@xn--bcher-kva.example']);
    expect(m.envelope.mailFrom.params.smtputf8).toBeUndefined();
  });

  it('a UTF-8 local part goes with SMTPUTF8 where the relay offers it', async () => {
    const before = relay.messages.length;
    const r = await send({ from: 'app@example.org', to: 'jösé@example.org', subject: 'UTF-8', text: 'x' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const m = relay.messages[before]!;
    expect(m.envelope.rcptTo.map((x) => x.address)).toEqual(['jösé@example.org']);
    expect(m.envelope.mailFrom.params.smtputf8).toBe(true);
  });

  it('a UTF-8 local part to a relay without SMTPUTF8: a clear 4xx/5xx error, nothing relayed', async () => {
    const before = relay.messages.length;
    const r = await send(
      { from: 'app@example.org', to: 'jösé@example.org', subject: 'UTF-8', text: 'x' },
      { url: asciiWorker },
    );
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body.ok).toBe(false);
    expect(relay.messages.length).toBe(before);
  });
});

describe('Worker: wrong keys in bulk', () => {
  it('300 requests with wrong keys: every one 401, nothing relayed; the right key still works', async () => {
    const before = relay.messages.length;
    const connections = relay.closed.length;
    const keys = Array.from({ length: 300 }, (_, i) =>
      i % 3 === 0 ? `${API_KEY.slice(0, -1)}${i % 10}` : `guess-${i}`,
    );
    const statuses = await Promise.all(
      keys.map((key) => send({ from: 'app@example.org', to: TO, text: 'x' }, { key }).then((r) => r.status)),
    );
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(relay.messages.length).toBe(before);
    expect(relay.closed.length).toBe(connections);
    expect((await send({ from: 'app@example.org', to: TO, subject: 'ok', text: 'x' })).status).toBe(200);
  });
});
