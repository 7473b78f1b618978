/**
 * `smtp-edge-send`, spawned as a real process (process.execPath is Node 22 under vitest, which
 * runs the .ts file with type stripping), against scripted servers on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { testPki } from '../../../test/support/tls.ts';
import { digestReply, type FakeSmtp, type FakeSmtpOptions, startFakeSmtp } from './support/fake-server.ts';

const BIN = fileURLToPath(new URL('../../bin/smtp-edge-send.ts', import.meta.url));
const pki = testPki();
const dir = mkdtempSync(join(tmpdir(), 'smtp-edge-send-'));

let server: FakeSmtp | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});
async function fake(options: FakeSmtpOptions): Promise<FakeSmtp> {
  server = await startFakeSmtp(options);
  return server;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown>;
}

function run(args: string[], input?: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(stdout);
      } catch {
        // --help is not JSON
      }
      resolve({ code, stdout, stderr, json });
    });
    child.stdin.end(input ?? '');
  });
}

const eml = 'From: a@x.test\r\nTo: b@y.test\r\nSubject: cli\r\n\r\n.hello\r\n';
const emlFile = join(dir, 'm.eml');
writeFileSync(emlFile, eml);
const stuffed = Buffer.from('From: a@x.test\r\nTo: b@y.test\r\nSubject: cli\r\n\r\n..hello\r\n.\r\n');

describe('smtp-edge-send', () => {
  it('--help prints usage and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: smtp-edge-send');
    expect(r.stdout).toContain('Exit codes:');
  });

  it('sends an .eml file and prints one JSON line; exit 0 when every recipient is accepted', async () => {
    const s = await fake({ extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'] });
    const r = await run([
      '--host',
      '127.0.0.1',
      '--port',
      String(s.port),
      '--security',
      'none',
      '--helo',
      'cli.test',
      '--from',
      'a@x.test',
      '--to',
      'b@y.test',
      '--to',
      'c@y.test',
      emlFile,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.json).toEqual({
      accepted: ['b@y.test', 'c@y.test'],
      rejected: [],
      response: digestReply(stuffed),
    });
    expect(s.sessions[0]!.commands[0]).toBe('EHLO cli.test');
  });

  it('reads the message from stdin and exits 1 when some recipients are refused', async () => {
    const s = await fake({
      extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'],
      rcpt: (a) => (a === 'no@y.test' ? '550 5.1.1 no such user' : '250 2.1.5 OK'),
    });
    const r = await run(
      [
        '--host',
        '127.0.0.1',
        '--port',
        String(s.port),
        '--security',
        'none',
        '--from',
        'a@x.test',
        '--to',
        'b@y.test',
        '--to',
        'no@y.test',
        '-',
      ],
      eml,
    );
    expect(r.code).toBe(1);
    expect(r.json.accepted).toEqual(['b@y.test']);
    expect(r.json.rejected).toEqual([
      { recipient: 'no@y.test', code: 550, enhancedCode: '5.1.1', message: 'no such user' },
    ]);
    expect(s.sessions[0]!.messages[0]!.raw).toEqual(stuffed);
  });

  it('exits 3 with a JSON error when every recipient is refused', async () => {
    const s = await fake({ extensions: ['ENHANCEDSTATUSCODES'], rcpt: () => '550 5.1.1 no such user' });
    const r = await run([
      '--host',
      '127.0.0.1',
      '--port',
      String(s.port),
      '--security',
      'none',
      '--from',
      'a@x.test',
      '--to',
      'x@y.test',
      emlFile,
    ]);
    expect(r.code).toBe(3);
    expect(r.json).toEqual({
      error: {
        kind: 'reply',
        message: 'RCPT: every recipient was refused (x@y.test: 550 5.1.1 no such user)',
        temporary: false,
        command: 'RCPT',
        code: 550,
        enhancedCode: '5.1.1',
        rejected: [{ recipient: 'x@y.test', code: 550, enhancedCode: '5.1.1', message: 'no such user' }],
      },
    });
  });

  it('composes a message from --subject/--text and sends it over STARTTLS with AUTH and DSN', async () => {
    const s = await fake({
      tls: { key: pki.key, cert: pki.cert },
      extensions: ['STARTTLS'],
      extensionsAfterTls: ['PIPELINING', 'DSN', 'AUTH PLAIN', 'ENHANCEDSTATUSCODES', '8BITMIME'],
      users: { ann: 'pw' },
    });
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, pki.caCert);
    const r = await run(
      [
        '--host',
        'localhost',
        '--port',
        String(s.port),
        '--security',
        'starttls',
        '--ca',
        caFile,
        '--user',
        'ann',
        '--from',
        'a@x.test',
        '--to',
        'b@y.test',
        '--dsn-notify',
        'FAILURE,DELAY',
        '--dsn-ret',
        'HDRS',
        '--envid',
        'run 1',
        '--dsn-orcpt',
        '--subject',
        'Hello',
        '--text',
        'Body text',
      ],
      undefined,
      { SMTP_EDGE_PASSWORD: 'pw' },
    );
    expect(r.code).toBe(0);
    expect(r.json.accepted).toEqual(['b@y.test']);
    expect(r.json.messageId).toMatch(/^<.+@.+>$/);
    const session = s.sessions[0]!;
    expect(session.authUser).toBe('ann');
    expect(session.commands).toContain('MAIL FROM:<a@x.test> RET=HDRS ENVID=run+201');
    expect(session.commands).toContain('RCPT TO:<b@y.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@y.test');
    const text = session.messages[0]!.raw.toString('utf8');
    expect(text).toContain('Subject: Hello\r\n');
    expect(text).toContain('Body text');
  });

  it('exits 2 on bad usage, with kind config', async () => {
    const r = await run(['--from', 'a@x.test', '--to', 'b@y.test']);
    expect(r.code).toBe(2);
    expect(r.json).toEqual({ error: { kind: 'config', message: '--host is required', temporary: false } });
    const unknown = await run(['--host', 'h', '--bogus']);
    expect(unknown.code).toBe(2);
    expect((unknown.json.error as { kind: string }).kind).toBe('config');
  });

  it('exits 5 for an untrusted certificate', async () => {
    const s = await fake({ tls: { key: pki.untrustedKey, cert: pki.untrustedCert }, implicitTls: true });
    const r = await run([
      '--host',
      'localhost',
      '--port',
      String(s.port),
      '--security',
      'tls',
      '--from',
      'a@x.test',
      '--to',
      'b@y.test',
      emlFile,
    ]);
    expect(r.code).toBe(5);
    expect((r.json.error as { kind: string }).kind).toBe('tls');
  });

  it('exits 4 when authentication fails', async () => {
    const s = await fake({ extensions: ['AUTH PLAIN'], users: { ann: 'pw' } });
    const r = await run([
      '--host',
      '127.0.0.1',
      '--port',
      String(s.port),
      '--security',
      'none',
      '--insecure-auth',
      '--user',
      'ann',
      '--password',
      'wrong',
      '--from',
      'a@x.test',
      '--to',
      'b@y.test',
      emlFile,
    ]);
    expect(r.code).toBe(4);
    expect(r.json.error).toMatchObject({ kind: 'auth', command: 'AUTH' });
  });

  it('exits 7 for a message that cannot be sent as given, before MAIL is sent', async () => {
    const s = await fake({});
    const bad = join(dir, 'long.eml');
    writeFileSync(bad, `Subject: x\r\n\r\n${'y'.repeat(1200)}\r\n`);
    const r = await run([
      '--host',
      '127.0.0.1',
      '--port',
      String(s.port),
      '--security',
      'none',
      '--from',
      'a@x.test',
      '--to',
      'b@y.test',
      bad,
    ]);
    expect(r.code).toBe(7);
    expect(r.json.error).toMatchObject({ kind: 'message', field: 'body' });
    expect(s.sessions[0]?.messages ?? []).toHaveLength(0);
  });

  it('exits 6 when nothing listens', async () => {
    const s = await fake({});
    const port = s.port;
    await s.close();
    server = undefined;
    const r = await run([
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--security',
      'none',
      '--from',
      'a@x.test',
      '--to',
      'b@y.test',
      emlFile,
    ]);
    expect(r.code).toBe(6);
    expect(r.json.error).toMatchObject({ kind: 'connection', temporary: true });
  });
});
