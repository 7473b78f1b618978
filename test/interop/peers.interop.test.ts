/**
 * The harness proves itself peer-to-peer, with none of our code in the path: if one of these
 * fails, the peers or test/support/peers.ts are broken, not smtp-edge. Every message is compared
 * byte for byte with what the client was given, and every envelope field is checked.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  peerDir,
  removePeerDir,
  requirePeers,
  runEximSend,
  runMsmtp,
  runPythonSmtplib,
  runSmtpSource,
  runSwaks,
  startAiosmtpd,
  startExim,
  startPrivatePostfix,
  startSmtpSink,
} from '../support/peers.ts';
import { testPki } from '../support/tls.ts';

const crlf = (s: string) => new Uint8Array(Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8'));
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

// A message with the awkward parts: 8-bit UTF-8, a leading dot (dot-stuffing both ways), a line
// that is only a dot, an empty line inside the body and trailing spaces.
const MESSAGE = [
  'From: Zoë <zoe@example.org>',
  'To: bob@example.net',
  'Subject: interop harness check',
  'Message-ID: <harness-1@example.org>',
  'Date: Sat, 28 Nov 2026 12:00:00 +0000',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 8bit',
  '',
  'Grüße aus dem Test.',
  '.leading dot',
  '..two dots',
  '.',
  '',
  'trailing spaces   ',
  'end',
  '',
].join('\r\n');

let work: string;
beforeAll(() => {
  requirePeers('swaks', 'msmtp', 'smtpSink', 'smtpSource', 'postfix', 'saslpasswd2', 'python3', 'exim');
  work = peerDir('harness');
  writeFileSync(join(work, 'message.eml'), MESSAGE);
});
afterAll(() => removePeerDir(work));

describe('postfix smtp-sink as the server', () => {
  it('swaks -> smtp-sink: envelope and bytes arrive unchanged, with PIPELINING', async () => {
    const sink = await startSmtpSink();
    try {
      const r = await runSwaks([
        '--server',
        `127.0.0.1:${sink.port}`,
        '--ehlo',
        'swaks.test',
        '--from',
        'zoe@example.org',
        '--to',
        'bob@example.net,carol@example.net',
        '--pipeline',
        '--data',
        `@${join(work, 'message.eml')}`,
      ]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('<-  250-PIPELINING');
      const [m] = await sink.waitForMessages(1);
      expect(m?.helo).toBe('swaks.test');
      expect(m?.mailFrom).toBe('zoe@example.org');
      expect(m?.rcptTo).toEqual(['bob@example.net', 'carol@example.net']);
      // swaks always ends DATA with CRLF "." CRLF after the file, so a file that already ends
      // in CRLF gains one empty line: RFC 5321 section 4.1.1.4 leaves that to the client.
      expect(text(m!.contentCrlf)).toBe(`${MESSAGE}\r\n`);
    } finally {
      await sink.stop();
    }
  });

  it('smtp-source -> smtp-sink: 100 messages over 10 sessions, none lost', async () => {
    const sink = await startSmtpSink();
    try {
      const r = await runSmtpSource({
        port: sink.port,
        messages: 100,
        sessions: 10,
        bodyBytes: 2048,
        from: 'load@example.org',
        to: 'sink@example.net',
        helo: 'source.test',
        subject: 'load',
      });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const all = await sink.waitForMessages(100);
      expect(all).toHaveLength(100);
      for (const m of all) {
        expect(m.mailFrom).toBe('load@example.org');
        expect(m.rcptTo).toEqual(['sink@example.net']);
        expect(text(m.content)).toMatch(/^(?:[^\n]+\n)*Subject: load\n/);
        expect(m.content.byteLength).toBeGreaterThan(2048);
      }
    } finally {
      await sink.stop();
    }
  });

  it('msmtp -> smtp-sink: DSN parameters as sent (RFC 3461 section 4)', async () => {
    const sink = await startSmtpSink();
    try {
      const r = await runMsmtp(
        [
          '--host=127.0.0.1',
          `--port=${sink.port}`,
          '--domain=msmtp.test',
          '--from=zoe@example.org',
          '--dsn-notify=success,failure',
          '--dsn-return=hdrs',
          '--set-date-header=off',
          '--set-msgid-header=off',
          '--',
          'bob@example.net',
        ],
        { input: MESSAGE },
      );
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const [m] = await sink.waitForMessages(1);
      expect(m?.mailArgs).toBe('<zoe@example.org> RET=HDRS');
      expect(m?.rcptArgs).toEqual(['<bob@example.net> NOTIFY=SUCCESS,FAILURE']);
      expect(text(m!.contentCrlf)).toBe(MESSAGE);
    } finally {
      await sink.stop();
    }
  });

  it('fault injection: a sink that rejects RCPT makes swaks exit 24', async () => {
    const sink = await startSmtpSink({ hardReject: ['RCPT'], hardBounceReply: '550 5.1.1 no such user' });
    try {
      const r = await runSwaks([
        '--server',
        `127.0.0.1:${sink.port}`,
        '--from',
        'zoe@example.org',
        '--to',
        'nobody@example.net',
      ]);
      expect(r.code).toBe(24);
      expect(r.stdout).toContain('<** 550 5.1.1 no such user');
      expect(sink.messages()).toHaveLength(0);
    } finally {
      await sink.stop();
    }
  });
});

describe('a private postfix as the server', () => {
  it('swaks -> postfix with STARTTLS (verified against the test CA) and AUTH PLAIN, CRAM-MD5', async () => {
    const pf = await startPrivatePostfix({ sasl: { users: { alice: 's3cret pass' } } });
    try {
      for (const mech of ['PLAIN', 'CRAM-MD5']) {
        const r = await runSwaks([
          '--server',
          `127.0.0.1:${pf.port}`,
          '--ehlo',
          'swaks.test',
          '--tls',
          '--tls-verify',
          '--tls-ca-path',
          pf.caCertPath,
          '--tls-sni',
          'localhost',
          '--auth',
          mech,
          '--auth-user',
          'alice',
          '--auth-password',
          's3cret pass',
          '--from',
          'zoe@example.org',
          '--to',
          'bob@postfix.test',
          '--data',
          `@${join(work, 'message.eml')}`,
        ]);
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(r.stdout).toMatch(/<~ {2}235 2\.7\.0 Authentication successful/);
      }
      const msgs = await pf.waitForMessages(2);
      for (const m of msgs) {
        expect(m.sender).toBe('zoe@example.org');
        expect(m.recipients).toEqual(['bob@postfix.test']);
        expect(text(m.content)).toBe(`${MESSAGE}\r\n`);
        expect(m.received).toContain('with ESMTPSA');
      }
      // smtpd logs a session's summary when it ends, possibly after the delivery: poll.
      await expect.poll(() => pf.sessionSummaries().filter((l) => l.includes('auth=')).length).toBe(2);
      const sessions = pf.sessionSummaries().filter((l) => l.includes('auth='));
      expect(sessions).toHaveLength(2);
      for (const s of sessions) expect(s).toMatch(/starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1/);
    } finally {
      await pf.stop();
    }
  });

  it('swaks -> postfix: a wrong password is refused (exit 28)', async () => {
    const pf = await startPrivatePostfix({ sasl: { users: { alice: 'right' }, tlsOnly: false } });
    try {
      const r = await runSwaks([
        '--server',
        `127.0.0.1:${pf.port}`,
        '--auth',
        'PLAIN',
        '--auth-user',
        'alice',
        '--auth-password',
        'wrong',
        '--from',
        'zoe@example.org',
        '--to',
        'bob@postfix.test',
      ]);
      expect(r.code).toBe(28);
      expect(r.stdout).toMatch(/<\*\* 535 5\.7\.8 Error: authentication failed/);
    } finally {
      await pf.stop();
    }
  });

  it('postfix implicit TLS port greets after the handshake (swaks --tlsc)', async () => {
    const pf = await startPrivatePostfix({ implicitTls: true });
    try {
      const r = await runSwaks([
        '--server',
        `127.0.0.1:${pf.implicitTlsPort}`,
        '--tlsc',
        '--tls-verify',
        '--tls-ca-path',
        pf.caCertPath,
        '--tls-sni',
        'localhost',
        '--from',
        'zoe@example.org',
        '--to',
        'bob@postfix.test',
        '--data',
        `@${join(work, 'message.eml')}`,
      ]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const [m] = await pf.waitForMessages(1);
      expect(text(m!.content)).toBe(`${MESSAGE}\r\n`);
    } finally {
      await pf.stop();
    }
  });

  it('exim (client, BDAT) -> postfix: the message arrives by CHUNKING, bytes equal', async () => {
    const pf = await startPrivatePostfix();
    try {
      const r = await runEximSend({
        port: pf.port,
        from: 'zoe@example.org',
        to: ['bob@postfix.test'],
        message: MESSAGE,
        security: 'starttls',
      });
      expect(r.delivered, `${r.stdout}\n${r.mainlog}`).toBe(true);
      expect(r.usedChunking).toBe(true);
      expect(r.commands).toContain('STARTTLS');
      const [m] = await pf.waitForMessages(1);
      expect(text(m!.content)).toBe(MESSAGE);
      await expect.poll(() => pf.sessionSummaries().some((l) => /starttls=1 .*bdat=1/.test(l))).toBe(true);
    } finally {
      await pf.stop();
    }
  });

  it('postfix SMTPUTF8 and DSN: a success notification comes back with ENVID and ORCPT', async () => {
    const pf = await startPrivatePostfix();
    try {
      const script = `
import json, os, smtplib
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), local_hostname='py.test')
s.ehlo()
feats = sorted(s.esmtp_features)
refused = s.sendmail('zoë@postfix.test', ['bob@postfix.test'], os.environ['MSG'].encode('utf-8'),
                     mail_options=['SMTPUTF8', 'BODY=8BITMIME', 'RET=HDRS', 'ENVID=harness-env-1'],
                     rcpt_options=['NOTIFY=SUCCESS', 'ORCPT=rfc822;bob@postfix.test'])
s.quit()
print(json.dumps({'features': feats, 'refused': refused}))
`;
      const r = await runPythonSmtplib(script, { env: { PORT: String(pf.port), MSG: MESSAGE } });
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { features: string[]; refused: object };
      expect(out.features).toEqual(expect.arrayContaining(['smtputf8', 'dsn', 'chunking', '8bitmime']));
      expect(out.refused).toEqual({});
      const msgs = await pf.waitForMessages(2);
      const original = msgs.find((m) => m.sender === 'zoë@postfix.test');
      const dsn = msgs.find((m) => m.sender === '');
      expect(text(original!.content)).toBe(MESSAGE);
      expect(dsn?.recipients).toEqual(['zoë@postfix.test']);
      const report = text(dsn!.content);
      expect(report).toContain('Original-Envelope-Id: harness-env-1');
      expect(report).toContain('Original-Recipient: rfc822;bob@postfix.test');
      expect(report).toMatch(/Action: delivered/);
    } finally {
      await pf.stop();
    }
  });
});

describe('aiosmtpd as the server', () => {
  it('python smtplib -> aiosmtpd: STARTTLS, AUTH PLAIN, SMTPUTF8, exact bytes and parameters', async () => {
    const aio = await startAiosmtpd({ auth: { users: { alice: 'pw' }, requireTls: true } });
    try {
      const script = `
import json, os, smtplib, ssl
ctx = ssl.create_default_context(cafile=os.environ['CA'])
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), local_hostname='py.test')
s.ehlo(); s.starttls(context=ctx); s.ehlo()
s.login('alice', 'pw')
s.sendmail('zoë@example.org', ['bob@example.net'], os.environ['MSG'].encode('utf-8'),
           mail_options=['SMTPUTF8', 'BODY=8BITMIME'])
s.quit()
print('ok')
`;
      const r = await runPythonSmtplib(script, {
        env: { PORT: String(aio.port), MSG: MESSAGE, CA: testPki().caCertPath },
      });
      expect(r.code, r.stderr).toBe(0);
      const [m] = await aio.waitForMessages(1);
      expect(m?.mailFrom).toBe('zoë@example.org');
      // smtplib adds SIZE (RFC 1870) itself when the server offers it.
      expect(m?.mailOptions).toEqual([`SIZE=${crlf(MESSAGE).byteLength}`, 'SMTPUTF8', 'BODY=8BITMIME']);
      expect(m?.rcptTo).toEqual(['bob@example.net']);
      expect(m?.smtputf8).toBe(true);
      expect(m?.tls).toBe(true);
      expect(m?.login).toBe('alice');
      expect(m?.helo).toBe('py.test');
      expect(text(m!.content)).toBe(MESSAGE);
    } finally {
      await aio.stop();
    }
  });
});

describe('exim as the server', () => {
  it('exim (client) -> exim (server): BDAT both ways, bytes equal', async () => {
    const ex = await startExim({ tls: false });
    try {
      const r = await runEximSend({
        port: ex.port,
        from: 'zoe@example.org',
        to: ['bob@exim.test', 'carol@exim.test'],
        message: MESSAGE,
      });
      expect(r.delivered, `${r.stdout}\n${r.mainlog}`).toBe(true);
      expect(r.usedChunking).toBe(true);
      expect(r.commands.find((c) => c.startsWith('BDAT '))).toBe(`BDAT ${crlf(MESSAGE).byteLength} LAST`);
      const msgs = await ex.waitForMessages(2);
      expect(msgs.map((m) => m.recipient).sort()).toEqual(['bob@exim.test', 'carol@exim.test']);
      for (const m of msgs) {
        expect(m.sender).toBe('zoe@example.org');
        expect(text(m.contentCrlf)).toBe(MESSAGE);
      }
    } finally {
      await ex.stop();
    }
  });

  it('swaks -> exim with STARTTLS and AUTH LOGIN', async () => {
    const ex = await startExim({ auth: { users: { alice: 'pw' } } });
    try {
      const r = await runSwaks([
        '--server',
        `127.0.0.1:${ex.port}`,
        '--tls',
        '--tls-verify',
        '--tls-ca-path',
        ex.caCertPath,
        '--tls-sni',
        'localhost',
        '--auth',
        'LOGIN',
        '--auth-user',
        'alice',
        '--auth-password',
        'pw',
        '--from',
        'zoe@example.org',
        '--to',
        'bob@exim.test',
        '--data',
        `@${join(work, 'message.eml')}`,
      ]);
      expect(r.code, `${r.stdout}${r.stderr}\n${ex.mainlog()}`).toBe(0);
      const [m] = await ex.waitForMessages(1);
      expect(text(m!.contentCrlf)).toBe(`${MESSAGE}\r\n`);
      expect(ex.mainlog()).toMatch(/<= zoe@example\.org .*X=TLS.* A=login:alice/);
    } finally {
      await ex.stop();
    }
  });
});
