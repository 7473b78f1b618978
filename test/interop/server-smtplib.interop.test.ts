/**
 * Python's smtplib (Debian's /usr/bin/python3) as the client of our server: STARTTLS verified
 * against the test CA, AUTH PLAIN and LOGIN, SIZE, 8BITMIME, SMTPUTF8 addresses and the DSN
 * parameters, each checked in exactly the shape the handler receives, and the message octets
 * compared with what smtplib was given.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requirePeers, runPythonSmtplib } from '../support/peers.ts';
import { INTEROP_USERS, type InteropServer, startInteropServer } from '../support/smtp-edge-server.ts';
import { testPki } from '../support/tls.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

const MESSAGE = [
  'From: Zoë <zoë@example.org>',
  'To: bob@example.net',
  'Subject: smtplib interop',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 8bit',
  '',
  'Grüße, ünïcode body.',
  '.a line with a leading dot',
  '.',
  '..',
  'last line',
  '',
].join('\r\n');

// Runs a client session described by JSON in $SPEC and prints the outcome as JSON.
const CLIENT = `
import json, os, smtplib, ssl
spec = json.loads(os.environ['SPEC'])
out = {}
try:
    if spec.get('implicit'):
        ctx = ssl.create_default_context(cafile=os.environ['CA'])
        s = smtplib.SMTP_SSL('127.0.0.1', spec['port'], local_hostname='py.test', context=ctx)
    else:
        s = smtplib.SMTP('127.0.0.1', spec['port'], local_hostname='py.test')
    s.ehlo()
    if spec.get('starttls'):
        ctx = ssl.create_default_context(cafile=os.environ['CA'])
        out['starttls'] = list(s.starttls(context=ctx))
        out['starttls'][1] = out['starttls'][1].decode()
        s.ehlo()
    out['features'] = sorted(s.esmtp_features.keys())
    out['size'] = s.esmtp_features.get('size')
    if spec.get('auth'):
        mech, user, pw = spec['auth']
        s.user, s.password = user, pw
        fn = {'PLAIN': s.auth_plain, 'LOGIN': s.auth_login, 'CRAM-MD5': s.auth_cram_md5}[mech]
        try:
            code, resp = s.auth(mech, fn, initial_response_ok=spec.get('initial', True))
            out['auth'] = [code, resp.decode()]
        except smtplib.SMTPAuthenticationError as e:
            out['auth'] = [e.smtp_code, e.smtp_error.decode()]
    if 'msg' in spec:
        try:
            out['refused'] = {k: [v[0], v[1].decode()] for k, v in s.sendmail(
                spec['from'], spec['to'], spec['msg'].encode('utf-8'),
                mail_options=spec.get('mail_options', []), rcpt_options=spec.get('rcpt_options', [])).items()}
        except smtplib.SMTPSenderRefused as e:
            out['senderRefused'] = [e.smtp_code, e.smtp_error.decode()]
        except smtplib.SMTPRecipientsRefused as e:
            out['allRefused'] = {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}
        except smtplib.SMTPDataError as e:
            out['dataError'] = [e.smtp_code, e.smtp_error.decode()]
    out['quit'] = s.quit()[0]
except Exception as e:
    out['exception'] = type(e).__name__ + ': ' + str(e)
print(json.dumps(out))
`;

interface Outcome {
  starttls?: [number, string];
  features?: string[];
  size?: string;
  auth?: [number, string];
  refused?: Record<string, [number, string]>;
  senderRefused?: [number, string];
  allRefused?: Record<string, [number, string]>;
  dataError?: [number, string];
  quit?: number;
  exception?: string;
}

async function smtplib(spec: Record<string, unknown>): Promise<Outcome> {
  const r = await runPythonSmtplib(CLIENT, { env: { SPEC: JSON.stringify(spec), CA: testPki().caCertPath } });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Outcome;
}

let srv: InteropServer;
beforeAll(async () => {
  requirePeers('python3');
  srv = await startInteropServer({
    rejectSenders: ['blocked@example.org'],
    rejectRecipients: ['nobody@example.net'],
    options: { maxMessageBytes: 100_000 },
  });
});
afterAll(async () => srv?.close());
beforeEach(() => {
  srv.messages.length = 0;
  srv.authAttempts.length = 0;
});

describe('python smtplib -> smtp-edge server', () => {
  it('STARTTLS, AUTH PLAIN, SMTPUTF8 + 8BITMIME: envelope and octets exactly as sent', async () => {
    const out = await smtplib({
      port: srv.submissionPort,
      starttls: true,
      auth: ['PLAIN', 'alice', INTEROP_USERS['alice']],
      from: 'zoë@example.org',
      to: ['bob@example.net', 'müller@exämple.de'],
      msg: MESSAGE,
      mail_options: ['SMTPUTF8', 'BODY=8BITMIME'],
    });
    expect(out.exception).toBeUndefined();
    expect(out.starttls).toEqual([220, '2.0.0 Ready to start TLS']);
    expect(out.features).toEqual(
      expect.arrayContaining(['auth', 'chunking', 'dsn', '8bitmime', 'pipelining', 'size', 'smtputf8']),
    );
    expect(out.features).not.toContain('starttls');
    expect(out.size).toBe('100000');
    expect(out.auth).toEqual([235, '2.7.0 Authentication successful']);
    expect(out.refused).toEqual({});
    expect(out.quit).toBe(221);
    expect(srv.messages).toHaveLength(1);
    const m = srv.messages[0]!;
    const size = Buffer.byteLength(MESSAGE, 'utf8');
    expect(m.envelope).toEqual({
      mailFrom: { address: 'zoë@example.org', params: { size, smtputf8: true, body: '8BITMIME', other: {} } },
      rcptTo: [
        { address: 'bob@example.net', params: { other: {} } },
        { address: 'müller@exämple.de', params: { other: {} } },
      ],
    });
    expect(m.session.user).toBe('alice');
    expect(m.session.secure).toBe(true);
    expect(m.session.helo).toEqual({ verb: 'EHLO', name: 'py.test' });
    expect(text(m.bytes)).toBe(MESSAGE);
    expect(srv.authAttempts).toEqual([{ mechanism: 'PLAIN', username: 'alice', ok: true }]);
  });

  it('AUTH LOGIN (no initial response) and CRAM-MD5 with a user name that is an address', async () => {
    for (const mech of ['LOGIN', 'CRAM-MD5']) {
      const out = await smtplib({
        port: srv.submissionPort,
        starttls: true,
        auth: [mech, 'bob@example.org', INTEROP_USERS['bob@example.org']],
        initial: false,
        from: 'bob@example.org',
        to: ['carol@example.net'],
        msg: 'Subject: x\r\n\r\nhi\r\n',
      });
      expect(out.auth, mech).toEqual([235, '2.7.0 Authentication successful']);
      expect(out.refused).toEqual({});
    }
    expect(srv.authAttempts).toEqual([
      { mechanism: 'LOGIN', username: 'bob@example.org', ok: true },
      { mechanism: 'CRAM-MD5', username: 'bob@example.org', ok: true },
    ]);
    expect(srv.messages.map((m) => m.session.user)).toEqual(['bob@example.org', 'bob@example.org']);
  });

  it('a wrong password gets 535 5.7.8; AUTH before STARTTLS is not offered', async () => {
    const bad = await smtplib({ port: srv.submissionPort, starttls: true, auth: ['PLAIN', 'alice', 'nope'] });
    expect(bad.auth).toEqual([535, '5.7.8 Authentication credentials invalid']);
    const clear = await smtplib({ port: srv.submissionPort });
    expect(clear.features).toContain('starttls');
    expect(clear.features).not.toContain('auth');
  });

  it('DSN parameters (RFC 3461): RET, ENVID, NOTIFY and ORCPT decoded from xtext', async () => {
    const out = await smtplib({
      port: srv.port,
      from: 'zoe@example.org',
      to: ['bob@example.net', 'carol@example.net'],
      msg: 'Subject: dsn\r\n\r\nhi\r\n',
      mail_options: ['RET=HDRS', 'ENVID=QQ+2B314159+3Dx'],
      rcpt_options: ['NOTIFY=SUCCESS,DELAY', 'ORCPT=rfc822;bob+2Bdsn@example.net'],
    });
    expect(out.refused).toEqual({});
    const env = srv.messages[0]!.envelope;
    expect(env.mailFrom.params).toEqual({ size: 20, ret: 'HDRS', envid: 'QQ+314159=x', other: {} });
    const rcpt = {
      notify: ['SUCCESS', 'DELAY'],
      orcpt: { type: 'rfc822', address: 'bob+dsn@example.net' },
      other: {},
    };
    expect(env.rcptTo).toEqual([
      { address: 'bob@example.net', params: rcpt },
      { address: 'carol@example.net', params: rcpt },
    ]);
  });

  it('SIZE: a declared size over the limit is refused at MAIL with 552 5.3.4', async () => {
    const big = `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(101);
    const out = await smtplib({ port: srv.port, from: 'zoe@example.org', to: ['bob@example.net'], msg: big });
    expect(out.senderRefused?.[0]).toBe(552);
    expect(out.senderRefused?.[1]).toMatch(/^5\.3\.4 /);
    expect(srv.messages).toHaveLength(0);
  });

  it('policy refusals reach smtplib with their codes: sender 550 5.7.1, one recipient 550 5.1.1', async () => {
    const sender = await smtplib({
      port: srv.port,
      from: 'blocked@example.org',
      to: ['bob@example.net'],
      msg: 'Subject: x\r\n\r\nx\r\n',
    });
    expect(sender.senderRefused).toEqual([550, '5.7.1 Sender refused by policy']);
    const partial = await smtplib({
      port: srv.port,
      from: 'zoe@example.org',
      to: ['nobody@example.net', 'bob@example.net'],
      msg: 'Subject: x\r\n\r\nx\r\n',
    });
    expect(partial.refused).toEqual({ 'nobody@example.net': [550, '5.1.1 No such user here'] });
    expect(srv.messages.map((m) => m.envelope.rcptTo.map((r) => r.address))).toEqual([['bob@example.net']]);
  });

  it('implicit TLS (SMTP_SSL) to the submission port with AUTH', async () => {
    const out = await smtplib({
      port: srv.implicitTlsPort,
      implicit: true,
      auth: ['PLAIN', 'alice', INTEROP_USERS['alice']],
      from: 'alice@example.org',
      to: ['bob@example.net'],
      msg: MESSAGE,
      mail_options: ['SMTPUTF8'],
    });
    expect(out.exception).toBeUndefined();
    expect(out.refused).toEqual({});
    expect(srv.messages[0]!.session.secure).toBe(true);
    expect(text(srv.messages[0]!.bytes)).toBe(MESSAGE);
  });
});
