/**
 * msmtp (sendmail mode, message on stdin) as the client of our server: STARTTLS and implicit TLS
 * verified against the test CA, AUTH with each mechanism, DSN parameters, octets compared.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requirePeers, runMsmtp } from '../support/peers.ts';
import { INTEROP_USERS, type InteropServer, startInteropServer } from '../support/smtp-edge-server.ts';
import { testPki } from '../support/tls.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

// Complete headers (msmtp adds Date/Message-ID/From only when missing), no Bcc (msmtp strips it).
const MESSAGE = [
  'From: bob@example.org',
  'To: carol@example.net',
  'Date: Sat, 28 Nov 2026 12:00:00 +0000',
  'Message-ID: <msmtp-interop@example.org>',
  'Subject: msmtp interop',
  '',
  '.leading dot',
  '.',
  'Grüße',
  '',
].join('\r\n');

let srv: InteropServer;
beforeAll(async () => {
  requirePeers('msmtp');
  srv = await startInteropServer({ rejectRecipients: ['nobody@example.net'] });
});
afterAll(async () => srv?.close());
beforeEach(() => {
  srv.messages.length = 0;
  srv.authAttempts.length = 0;
});

function msmtp(port: number, extra: string[], to = ['carol@example.net']) {
  return runMsmtp(
    [
      '--host=127.0.0.1',
      `--port=${port}`,
      '--domain=msmtp.test',
      `--tls-trust-file=${testPki().caCertPath}`,
      '--from=bob@example.org',
      ...extra,
      '--',
      ...to,
    ],
    { input: MESSAGE },
  );
}

describe('msmtp -> smtp-edge server', () => {
  for (const mech of ['plain', 'login', 'cram-md5']) {
    it(`STARTTLS + AUTH ${mech.toUpperCase()} on the submission port, octets exact`, async () => {
      const r = await msmtp(srv.submissionPort, [
        '--tls=on',
        '--tls-starttls=on',
        `--auth=${mech}`,
        '--user=bob@example.org',
        `--passwordeval=printf '%s' '${INTEROP_USERS['bob@example.org']}'`,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(srv.authAttempts).toEqual([
        { mechanism: mech.toUpperCase(), username: 'bob@example.org', ok: true },
      ]);
      const m = srv.messages[0]!;
      expect(m.session).toMatchObject({
        user: 'bob@example.org',
        secure: true,
        helo: { verb: 'EHLO', name: 'msmtp.test' },
      });
      expect(m.envelope.mailFrom.address).toBe('bob@example.org');
      expect(text(m.bytes)).toBe(MESSAGE);
    });
  }

  it('implicit TLS (--tls-starttls=off) with AUTH chosen by msmtp', async () => {
    const r = await msmtp(srv.implicitTlsPort, [
      '--tls=on',
      '--tls-starttls=off',
      '--auth=on',
      '--user=alice',
      `--passwordeval=printf '%s' '${INTEROP_USERS['alice']}'`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(srv.authAttempts).toHaveLength(1);
    expect(srv.authAttempts[0]).toMatchObject({ username: 'alice', ok: true });
    expect(text(srv.messages[0]!.bytes)).toBe(MESSAGE);
  });

  it('DSN (RFC 3461): --dsn-notify and --dsn-return arrive as NOTIFY and RET', async () => {
    const r = await msmtp(
      srv.port,
      ['--dsn-notify=success,delay', '--dsn-return=full'],
      ['carol@example.net', 'dave@example.net'],
    );
    expect(r.code, r.stderr).toBe(0);
    const env = srv.messages[0]!.envelope;
    // msmtp declares no SIZE (it reads the message only after the envelope).
    expect(env.mailFrom.params).toEqual({ ret: 'FULL', other: {} });
    expect(env.rcptTo).toEqual([
      { address: 'carol@example.net', params: { notify: ['SUCCESS', 'DELAY'], other: {} } },
      { address: 'dave@example.net', params: { notify: ['SUCCESS', 'DELAY'], other: {} } },
    ]);
  });

  it('a refused recipient makes msmtp fail and name our reply', async () => {
    const r = await msmtp(srv.port, [], ['nobody@example.net']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('550 5.1.1 No such user here');
    expect(srv.messages).toHaveLength(0);
  });

  it('a wrong password fails with our 535 5.7.8', async () => {
    const r = await msmtp(srv.submissionPort, [
      '--tls=on',
      '--tls-starttls=on',
      '--auth=plain',
      '--user=alice',
      "--passwordeval=printf '%s' wrong",
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('535 5.7.8 Authentication credentials invalid');
    expect(srv.messages).toHaveLength(0);
  });
});
