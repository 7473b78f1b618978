/**
 * Postfix 3.7's own SMTP client (smtp(8)) relaying into our server, the way internet mail reaches
 * an MX: a message is submitted to a private Postfix, which relays it to us over STARTTLS verified
 * against the test CA. The DSN parameters (RFC 3461) and SMTPUTF8 must survive the hop, the
 * octets must be the submitted ones plus Postfix's Received: line, and our refusals must come
 * back to the sender as a Postfix bounce quoting our reply.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  dropFirstField,
  type PrivatePostfix,
  pollUntil,
  requirePeers,
  runPythonSmtplib,
  startPrivatePostfix,
} from '../support/peers.ts';
import { type InteropServer, startInteropServer } from '../support/smtp-edge-server.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

const SUBMIT = `
import json, os, smtplib
spec = json.loads(os.environ['SPEC'])
s = smtplib.SMTP('127.0.0.1', spec['port'], local_hostname='submitter.test')
refused = s.sendmail(spec['from'], spec['to'], spec['msg'].encode('utf-8'),
                     mail_options=spec.get('mail', []), rcpt_options=spec.get('rcpt', []))
s.quit()
print(json.dumps(refused))
`;

let srv: InteropServer;
let pf: PrivatePostfix;
beforeAll(async () => {
  requirePeers('postfix', 'python3');
  srv = await startInteropServer({ rejectRecipients: ['nobody@example.net'] });
  pf = await startPrivatePostfix({ relayHost: { host: '127.0.0.1', port: srv.port, tls: 'verify' } });
});
afterAll(async () => {
  await pf?.stop();
  await srv?.close();
});
beforeEach(() => {
  srv.messages.length = 0;
});

async function submit(spec: Record<string, unknown>): Promise<void> {
  const r = await runPythonSmtplib(SUBMIT, { env: { SPEC: JSON.stringify({ port: pf.port, ...spec }) } });
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({});
}

function relayed(count: number) {
  return pollUntil(
    () => (srv.messages.length >= count ? srv.messages : undefined),
    30_000,
    () => `${count} message(s) relayed by postfix; maillog:\n${pf.maillog()}`,
  );
}

describe('postfix smtp(8) relaying -> smtp-edge server', () => {
  it('verified STARTTLS; RET, ENVID, NOTIFY, ORCPT carried over; octets = Received + original', async () => {
    const msg = [
      'From: zoe@postfix.test',
      'To: bob@example.net',
      'Subject: relayed',
      '',
      '.dot',
      'Grüße',
      '',
    ].join('\r\n');
    await submit({
      from: 'zoe@postfix.test',
      to: ['bob@example.net', 'carol@example.net'],
      msg,
      mail: ['BODY=8BITMIME', 'RET=HDRS', 'ENVID=relay+2B1'],
      rcpt: ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;bob@example.net'],
    });
    const [m] = await relayed(1);
    expect(m!.session.secure).toBe(true);
    expect(m!.session.helo).toEqual({ verb: 'EHLO', name: 'postfix.test' });
    expect(m!.envelope.mailFrom.address).toBe('zoe@postfix.test');
    expect(m!.envelope.mailFrom.params).toMatchObject({ body: '8BITMIME', ret: 'HDRS', envid: 'relay+1' });
    expect(m!.envelope.rcptTo.map((r) => r.address).sort()).toEqual(['bob@example.net', 'carol@example.net']);
    for (const r of m!.envelope.rcptTo) {
      expect(r.params.notify).toEqual(['SUCCESS', 'FAILURE']);
      expect(r.params.orcpt).toEqual({ type: 'rfc822', address: 'bob@example.net' });
    }
    const { field, rest } = dropFirstField(m!.bytes, 'Received');
    expect(field).toMatch(
      /^Received: from submitter\.test \(localhost \[127\.0\.0\.1\]\)\r\n\tby postfix\.test \(Postfix\) with ESMTP id /,
    );
    expect(text(rest)).toBe(msg);
    expect(pf.maillog()).toMatch(/Verified TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+/);
    // Postfix logs the delivery after our 250 reached it.
    await expect
      .poll(() => pf.maillog())
      .toMatch(/to=<carol@example\.net>, relay=127\.0\.0\.1.* status=sent \(250 2\.0\.0 queued as \d+\)/);
  });

  it('SMTPUTF8 survives the hop (RFC 6531): UTF-8 sender and header', async () => {
    const msg = ['From: Zoë <zoë@postfix.test>', 'To: bob@example.net', 'Subject: ✓', '', 'hi', ''].join(
      '\r\n',
    );
    await submit({
      from: 'zoë@postfix.test',
      to: ['bob@example.net'],
      msg,
      mail: ['SMTPUTF8', 'BODY=8BITMIME'],
    });
    const [m] = await relayed(1);
    expect(m!.envelope.mailFrom).toMatchObject({ address: 'zoë@postfix.test', params: { smtputf8: true } });
    expect(m!.envelope.rcptTo).toEqual([
      {
        address: 'bob@example.net',
        params: { orcpt: { type: 'rfc822', address: 'bob@example.net' }, other: {} },
      },
    ]);
    expect(text(dropFirstField(m!.bytes, 'Received').rest)).toBe(msg);
  });

  // For a UTF-8 recipient Postfix 3.7 sends ORCPT=rfc822;b+C3+B8b@example.net (UTF-8 octets as
  // xtext hexchars, not RFC 6533's utf-8 type). RFC 3461 section 4.2 does not constrain the
  // address to the addr-type's syntax, so the server decodes the octets as UTF-8 and accepts.
  it('a UTF-8 recipient relayed by Postfix is accepted (ORCPT with hex-encoded UTF-8)', async () => {
    const msg = ['From: zoe@postfix.test', 'To: bøb@example.net', 'Subject: utf8 rcpt', '', 'hi', ''].join(
      '\r\n',
    );
    await submit({ from: 'zoë@postfix.test', to: ['bøb@example.net'], msg, mail: ['SMTPUTF8'] });
    await expect
      .poll(() => pf.maillog(), { timeout: 20_000 })
      .toMatch(/to=<bøb@example\.net>.* status=(sent|bounced)/);
    expect(pf.maillog()).toMatch(/to=<bøb@example\.net>.* status=sent/);
    expect(srv.messages[0]!.envelope.rcptTo).toEqual([
      {
        address: 'bøb@example.net',
        params: { orcpt: { type: 'rfc822', address: 'bøb@example.net' }, other: {} },
      },
    ]);
  });

  it('our 550 5.1.1 comes back to the sender in a Postfix bounce (RFC 3464 report)', async () => {
    await submit({
      from: 'zoe@postfix.test',
      to: ['nobody@example.net'],
      msg: 'From: zoe@postfix.test\r\nSubject: bounce me\r\n\r\nx\r\n',
    });
    const bounce = await pollUntil(
      () => pf.messages().find((d) => d.sender === '' && d.recipients.includes('zoe@postfix.test')),
      30_000,
      () => `a bounce; maillog:\n${pf.maillog()}`,
    );
    const t = text(bounce.content);
    expect(t).toContain('Final-Recipient: rfc822; nobody@example.net');
    expect(t).toContain('Status: 5.1.1');
    expect(t).toContain('Diagnostic-Code: smtp; 550 5.1.1 No such user here');
    expect(srv.messages).toHaveLength(0);
  });
});
