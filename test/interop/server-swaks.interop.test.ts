/**
 * swaks as the client of our server: PIPELINING, STARTTLS and implicit TLS verified against the
 * test CA, AUTH PLAIN/LOGIN/CRAM-MD5, and swaks' documented exit codes for our refusals
 * (23 = MAIL refused, 24 = every RCPT refused, 28 = AUTH failed).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { peerDir, removePeerDir, requirePeers, runSwaks } from '../support/peers.ts';
import { INTEROP_USERS, type InteropServer, startInteropServer } from '../support/smtp-edge-server.ts';
import { testPki } from '../support/tls.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

// No final line break: swaks always sends CRLF "." CRLF after the data, so what we must receive
// is exactly this plus CRLF (RFC 5321 section 4.1.1.4).
const DATA = [
  'From: zoe@example.org',
  'To: bob@example.net',
  'Subject: swaks interop',
  '',
  '.leading dot (swaks stuffs it, we unstuff it)',
  '..two',
  '',
  'Grüße',
  'end',
].join('\r\n');

let srv: InteropServer;
let work: string;
let dataFile: string;
const tlsArgs = () => ['--tls-verify', '--tls-ca-path', testPki().caCertPath, '--tls-sni', 'localhost'];

beforeAll(async () => {
  requirePeers('swaks');
  work = peerDir('swaks');
  dataFile = join(work, 'data.eml');
  writeFileSync(dataFile, DATA);
  srv = await startInteropServer({
    rejectSenders: ['blocked@example.org'],
    rejectRecipients: ['nobody@example.net', 'ghost@example.net'],
  });
});
afterAll(async () => {
  await srv?.close();
  removePeerDir(work);
});
beforeEach(() => {
  srv.messages.length = 0;
  srv.authAttempts.length = 0;
});

describe('swaks -> smtp-edge server', () => {
  it('PIPELINING: MAIL, both RCPTs and DATA go out in one batch; octets arrive exactly', async () => {
    const r = await runSwaks([
      '--server',
      `127.0.0.1:${srv.port}`,
      '--ehlo',
      'swaks.test',
      '--from',
      'zoe@example.org',
      '--to',
      'bob@example.net,carol@example.net',
      '--pipeline',
      '--data',
      `@${dataFile}`,
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // swaks prints a pipelined batch as consecutive "->" lines followed by the replies.
    expect(r.stdout).toMatch(
      / -> MAIL FROM:<zoe@example\.org>\n -> RCPT TO:<bob@example\.net>\n -> RCPT TO:<carol@example\.net>\n -> DATA\n<- {2}250 2\.1\.0 Sender OK\n<- {2}250 2\.1\.5 Recipient OK\n<- {2}250 2\.1\.5 Recipient OK\n<- {2}354 /,
    );
    expect(srv.messages).toHaveLength(1);
    const m = srv.messages[0]!;
    expect(m.envelope.rcptTo.map((x) => x.address)).toEqual(['bob@example.net', 'carol@example.net']);
    expect(m.session.helo).toEqual({ verb: 'EHLO', name: 'swaks.test' });
    expect(text(m.bytes)).toBe(`${DATA}\r\n`);
  });

  for (const mech of ['PLAIN', 'LOGIN', 'CRAM-MD5']) {
    it(`STARTTLS + AUTH ${mech} on the submission port`, async () => {
      const r = await runSwaks([
        '--server',
        `127.0.0.1:${srv.submissionPort}`,
        '--tls',
        ...tlsArgs(),
        '--auth',
        mech,
        '--auth-user',
        'bob@example.org',
        '--auth-password',
        INTEROP_USERS['bob@example.org']!,
        '--from',
        'bob@example.org',
        '--to',
        'carol@example.net',
        '--data',
        `@${dataFile}`,
      ]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('<~  235 2.7.0 Authentication successful');
      expect(srv.authAttempts).toEqual([{ mechanism: mech, username: 'bob@example.org', ok: true }]);
      const m = srv.messages[0]!;
      expect(m.session).toMatchObject({ user: 'bob@example.org', secure: true });
      expect(text(m.bytes)).toBe(`${DATA}\r\n`);
    });
  }

  it('implicit TLS (--tlsc) with AUTH PLAIN', async () => {
    const r = await runSwaks([
      '--server',
      `127.0.0.1:${srv.implicitTlsPort}`,
      '--tlsc',
      ...tlsArgs(),
      '--auth',
      'PLAIN',
      '--auth-user',
      'alice',
      '--auth-password',
      INTEROP_USERS['alice']!,
      '--from',
      'alice@example.org',
      '--to',
      'bob@example.net',
      '--data',
      `@${dataFile}`,
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('<~  220 mx.smtp-edge.test ESMTP ready');
    expect(srv.messages[0]!.session).toMatchObject({ user: 'alice', secure: true });
    expect(text(srv.messages[0]!.bytes)).toBe(`${DATA}\r\n`);
  });

  it('the submission port refuses MAIL before AUTH (530 5.7.0): swaks exits 23', async () => {
    const r = await runSwaks([
      '--server',
      `127.0.0.1:${srv.submissionPort}`,
      '--tls',
      ...tlsArgs(),
      '--from',
      'zoe@example.org',
      '--to',
      'bob@example.net',
    ]);
    expect(r.code).toBe(23);
    expect(r.stdout).toMatch(/<~\* 530 5\.7\.0 /);
  });

  it('exit 23: the sender is refused (550 5.7.1)', async () => {
    const r = await runSwaks([
      '--server',
      `127.0.0.1:${srv.port}`,
      '--from',
      'blocked@example.org',
      '--to',
      'bob@example.net',
    ]);
    expect(r.code).toBe(23);
    expect(r.stdout).toContain('<** 550 5.7.1 Sender refused by policy');
  });

  it('exit 24: every recipient is refused (550 5.1.1), pipelined or not', async () => {
    for (const pipeline of [[], ['--pipeline']]) {
      const r = await runSwaks([
        '--server',
        `127.0.0.1:${srv.port}`,
        '--from',
        'zoe@example.org',
        '--to',
        'nobody@example.net,ghost@example.net',
        ...pipeline,
      ]);
      expect(r.code, pipeline.join()).toBe(24);
      expect(r.stdout).toContain('<** 550 5.1.1 No such user here');
    }
    expect(srv.messages).toHaveLength(0);
  });

  it('exit 28: a wrong password (535 5.7.8), for each mechanism', async () => {
    for (const mech of ['PLAIN', 'LOGIN', 'CRAM-MD5']) {
      const r = await runSwaks([
        '--server',
        `127.0.0.1:${srv.submissionPort}`,
        '--tls',
        ...tlsArgs(),
        '--auth',
        mech,
        '--auth-user',
        'alice',
        '--auth-password',
        'wrong',
        '--from',
        'alice@example.org',
        '--to',
        'bob@example.net',
      ]);
      expect(r.code, mech).toBe(28);
      expect(r.stdout).toContain('<~* 535 5.7.8 Authentication credentials invalid');
    }
    expect(srv.authAttempts.map((a) => [a.mechanism, a.ok])).toEqual([
      ['PLAIN', false],
      ['LOGIN', false],
      ['CRAM-MD5', false],
    ]);
  });

  it('AUTH without TLS is not offered on the clear-text port: swaks --auth exits 28', async () => {
    const r = await runSwaks([
      '--server',
      `127.0.0.1:${srv.port}`,
      '--auth',
      'PLAIN',
      '--auth-user',
      'alice',
      '--auth-password',
      INTEROP_USERS['alice']!,
      '--from',
      'alice@example.org',
      '--to',
      'bob@example.net',
    ]);
    expect(r.code).toBe(28);
    expect(r.stdout).not.toMatch(/250-AUTH/);
    expect(srv.authAttempts).toHaveLength(0);
  });
});
