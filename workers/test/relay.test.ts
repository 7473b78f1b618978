/**
 * POST /send through real SMTP relays (Node-side smtp-server instances from global-setup.ts):
 * STARTTLS + AUTH and implicit TLS, per-recipient outcomes, and every relay fault.
 */
import PostalMime from 'postal-mime';
import { describe, expect, inject, it } from 'vitest';
import { failureOf, message, post, receivedFor, sessionsFor, successOf, unique } from './helpers.ts';

const PDF = new Uint8Array([0x25, 0x50, 0x44, 0x46, 0x2d, 0x31, 0x2e, 0x34, 0x0a, 0x00, 0xff, 0x80]);

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

describe('delivery through the relay', () => {
  it('STARTTLS + AUTH: composes, relays, and Bcc is only in the envelope', async () => {
    const to = unique('zoe');
    const cc = unique('jan');
    const bcc = unique('archive');
    const res = await post({
      from: { name: 'Billing Dept', address: 'billing@example.org' },
      to: [`"Zoë Martin" <${to}>`],
      cc,
      bcc,
      replyTo: 'support@example.org',
      subject: 'Votre facture n° 42 — merci',
      text: 'Bonjour Zoë,\n\nvotre facture est jointe.\n.\nFin.',
      html: '<p>Bonjour Zoë,</p><p>votre facture est jointe.</p>',
      attachments: [{ filename: 'facture.pdf', content: base64(PDF), contentType: 'application/pdf' }],
      headers: { 'X-Campaign': 'spring' },
    });
    const body = await successOf(res);
    expect(body.accepted).toEqual([to, cc, bcc]);
    expect(body.rejected).toEqual([]);
    expect(body.messageId).toMatch(/^<[^<>@\s]+@example\.org>$/);

    const [got, ...others] = await receivedFor(bcc);
    expect(others).toEqual([]);
    expect(got?.relay).toBe('starttls');
    expect(got?.secure).toBe(true);
    expect(got?.authUser).toBe('mailer');
    expect(got?.mailFrom).toBe('billing@example.org');
    expect(got?.rcptTo).toEqual([to, cc, bcc]);

    const raw = new TextDecoder().decode(got?.raw);
    expect(raw).not.toMatch(/^bcc:/im);
    expect(raw).not.toContain(bcc);
    expect(raw).toMatch(/^X-Campaign: spring\r$/m);
    const parsed = await PostalMime.parse(got!.raw);
    expect(parsed.messageId).toBe(body.messageId);
    expect(parsed.subject).toBe('Votre facture n° 42 — merci');
    expect(parsed.from).toEqual({ name: 'Billing Dept', address: 'billing@example.org' });
    expect(parsed.to).toEqual([{ name: 'Zoë Martin', address: to }]);
    expect(parsed.cc).toEqual([{ name: '', address: cc }]);
    expect(parsed.replyTo).toEqual([{ name: '', address: 'support@example.org' }]);
    // postal-mime keeps the line break that belongs to the boundary (RFC 2046 section 5.1.1); the
    // raw bytes show the part ends exactly with the text.
    expect(parsed.text).toBe('Bonjour Zoë,\n\nvotre facture est jointe.\n.\nFin.\n');
    expect(raw).toContain('\r\nFin.\r\n--=_');
    expect(parsed.html?.trimEnd()).toBe('<p>Bonjour Zoë,</p><p>votre facture est jointe.</p>');
    expect(parsed.attachments).toHaveLength(1);
    expect(parsed.attachments[0]?.filename).toBe('facture.pdf');
    expect(parsed.attachments[0]?.mimeType).toBe('application/pdf');
    expect(new Uint8Array(parsed.attachments[0]?.content as ArrayBuffer)).toEqual(PDF);
  });
});

describe('delivery: implicit TLS, DSN, composer checks', () => {
  it('implicit TLS (SMTP_SECURITY=tls) relays the same way', async () => {
    const to = unique('tls');
    const res = await post(message({ to }), {
      env: { SMTP_SECURITY: 'tls', SMTP_PORT: String(inject('relayTlsPort')) },
    });
    const body = await successOf(res);
    expect(body.accepted).toEqual([to]);
    const [got] = await receivedFor(to);
    expect(got?.relay).toBe('tls');
    expect(got?.secure).toBe(true);
    expect(got?.authUser).toBe('mailer');
  });

  it('passes DSN parameters to the relay (RFC 3461)', async () => {
    const to = unique('dsn');
    const body = await successOf(
      await post(message({ to, dsn: { notify: ['failure', 'delay'], ret: 'hdrs', envid: 'inv-42' } })),
    );
    expect(body.accepted).toEqual([to]);
    const [got] = await receivedFor(to);
    expect(got?.dsn).toEqual({ ret: 'HDRS', envid: 'inv-42' });
    expect(got?.rcptDsn).toEqual([{ notify: ['FAILURE', 'DELAY'] }]);
  });

  it('an internationalized address is sent with SMTPUTF8 (RFC 6531)', async () => {
    const local = `zoë-${crypto.randomUUID().slice(0, 8)}`;
    const to = `${local}@example.org`;
    const body = await successOf(await post(message({ to: { name: 'Zoë', address: to } })));
    expect(body.accepted).toEqual([to]);
    const [got] = await receivedFor(to);
    expect(got?.rcptTo).toEqual([to]);
    // RFC 6532 section 3.2: with SMTPUTF8 the header carries the address as raw UTF-8.
    expect(new TextDecoder().decode(got?.raw)).toContain(`<${to}>`);
  });

  it('a relay without DSN: 422 message_rejected, not a silent send without it', async () => {
    const to = unique('nodsn');
    const body = await failureOf(
      await post(message({ to, dsn: { notify: 'FAILURE' } }), {
        env: { SMTP_PORT: String(inject('noDsnPort')) },
      }),
      422,
    );
    expect(body.error.code).toBe('message_rejected');
    expect(body.error.message).toMatch(/does not offer DSN/);
    expect(await receivedFor(to)).toEqual([]);
  });

  it('uses one SMTP connection per send, whatever the number of recipients', async () => {
    const helo = `one-${crypto.randomUUID().slice(0, 8)}.worker.test`;
    const to = Array.from({ length: 20 }, (_, i) => unique(i % 5 === 0 ? 'reject' : `r${i}`));
    const body = await successOf(await post(message({ to }), { env: { SMTP_HELO: helo } }));
    expect(body.accepted).toHaveLength(16);
    expect(body.rejected).toHaveLength(4);
    expect(await sessionsFor(helo)).toBe(1);
  });

  it('a Message-ID given in headers is kept (lets retries be recognised)', async () => {
    const to = unique('msgid');
    const id = `<retry-${crypto.randomUUID()}@example.org>`;
    const body = await successOf(await post(message({ to, headers: { 'Message-ID': id } })));
    expect(body.messageId).toBe(id);
    const [got] = await receivedFor(to);
    expect(new TextDecoder().decode(got?.raw)).toContain(`\r\nMessage-ID: ${id}\r\n`);
  });

  it('a field the composer refuses is a 400 naming it', async () => {
    const body = await failureOf(await post(message({ to: ['ok@example.org', 'zoe..x@example.org'] })), 400);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.fields).toEqual([
      {
        path: 'to[1]',
        message: '"zoe..x@example.org" is not a valid address (Bad mailbox address syntax: bad local part)',
      },
    ]);
    const messageId = await failureOf(await post(message({ headers: { 'Message-ID': 'not an id' } })), 400);
    expect(messageId.error.fields).toEqual([
      { path: 'headers.Message-ID', message: '"not an id" is not a valid msg-id (RFC 5322 section 3.6.4)' },
    ]);
  });
});

describe('address lists in one string (as nodemailer takes them)', () => {
  it('to, cc and bcc as comma-separated strings: every address relayed, headers written as lists', async () => {
    const [a, b, c, d, hidden] = ['la', 'lb', 'lc', 'ld', 'lh'].map(unique) as [
      string,
      string,
      string,
      string,
      string,
    ];
    const body = await successOf(
      await post(
        message({
          to: `${a}, "Martin, Jan" <${b}>`,
          cc: [`${c},${d}`],
          bcc: `${hidden},`,
          replyTo: 'r1@example.org, r2@example.org',
        }),
      ),
    );
    expect(body.accepted).toEqual([a, b, c, d, hidden]);
    const [got] = await receivedFor(hidden);
    expect(got?.rcptTo).toEqual([a, b, c, d, hidden]);
    const parsed = await PostalMime.parse(got!.raw);
    expect(parsed.to).toEqual([
      { name: '', address: a },
      { name: 'Martin, Jan', address: b },
    ]);
    expect(parsed.cc).toEqual([
      { name: '', address: c },
      { name: '', address: d },
    ]);
    expect(parsed.replyTo).toEqual([
      { name: '', address: 'r1@example.org' },
      { name: '', address: 'r2@example.org' },
    ]);
    expect(new TextDecoder().decode(got?.raw)).not.toContain(hidden);
  });

  it('a wrong address in a string list is a 400 at its own path; nothing is sent', async () => {
    const ok = unique('list-ok');
    const body = await failureOf(await post(message({ to: `${ok}, zoe..x@example.org` })), 400);
    expect(body.error.fields).toEqual([
      {
        path: 'to[1]',
        message: '"zoe..x@example.org" is not a valid address (Bad mailbox address syntax: bad local part)',
      },
    ]);
    const nested = await failureOf(await post(message({ cc: [ok, `${ok}, not-an-address`] })), 400);
    expect(nested.error.fields).toEqual([
      {
        path: 'cc[1][1]',
        message:
          '"not-an-address" is not an address; a display name that holds a comma must be quoted ("Doe, John" <john@example.org>)',
      },
    ]);
    expect(await receivedFor(ok)).toEqual([]);
  });

  it('groups and several authors are refused with a clear message', async () => {
    const group = await failureOf(await post(message({ to: 'Team: a@example.org, b@example.org;' })), 400);
    expect(group.error.fields).toEqual([
      {
        path: 'to',
        message:
          '"Team: a@example.org, b@example.org;" is an address group (RFC 5322 section 3.4, "name: a@x, b@y;") or a list separated by ";", which are not supported; separate the addresses with commas',
      },
    ]);
    const authors = await failureOf(await post(message({ from: 'a@example.org, b@example.org' })), 400);
    expect(authors.error.fields).toEqual([
      {
        path: 'from',
        message:
          'from takes one address, and "a@example.org, b@example.org" holds 2 (several authors would need a Sender field, RFC 5322 section 3.6.2, which is not supported; put the others in replyTo or cc)',
      },
    ]);
  });
});

describe('per-recipient outcomes', () => {
  it('some recipients refused: 200 with each refusal', async () => {
    const ok = unique('ok');
    const gone = unique('reject');
    const busy = unique('later');
    const body = await successOf(await post(message({ to: [ok, gone], cc: busy })));
    expect(body.accepted).toEqual([ok]);
    expect(body.rejected).toEqual([
      { recipient: gone, code: 550, enhancedCode: '5.1.1', message: 'No such user here' },
      { recipient: busy, code: 450, enhancedCode: '4.2.1', message: 'Mailbox busy, try later' },
    ]);
    const [got] = await receivedFor(ok);
    expect(got?.rcptTo).toEqual([ok]);
  });

  it('every recipient refused, one for good: 422 recipients_rejected with each refusal', async () => {
    const gone = unique('reject');
    const busy = unique('later');
    const res = await post(message({ to: [gone, busy] }));
    const body = await failureOf(res, 422);
    expect(res.headers.get('Retry-After')).toBeNull();
    expect(body.error.code).toBe('recipients_rejected');
    expect(body.error.rejected).toEqual([
      { recipient: gone, code: 550, enhancedCode: '5.1.1', message: 'No such user here' },
      { recipient: busy, code: 450, enhancedCode: '4.2.1', message: 'Mailbox busy, try later' },
    ]);
    expect(body.error.message).toMatch(/accepted none of the recipients/);
  });

  it('every recipient refused for now: 503 with Retry-After', async () => {
    const res = await post(message({ to: [unique('later'), unique('later')] }), {
      env: { RETRY_AFTER_SECONDS: '120' },
    });
    const body = await failureOf(res, 503);
    expect(res.headers.get('Retry-After')).toBe('120');
    expect(body.error.code).toBe('relay_temporary_failure');
    expect(body.error.retryAfterSeconds).toBe(120);
    expect(body.error.rejected?.map((r) => r.code)).toEqual([450, 450]);
  });
});

describe('relay refusals and faults', () => {
  it('a temporary refusal at MAIL: 503 with Retry-After and the SMTP reply', async () => {
    const res = await post(message({ from: 'tempfail@example.org' }));
    const body = await failureOf(res, 503);
    expect(res.headers.get('Retry-After')).toBe('60');
    expect(body.error.code).toBe('relay_temporary_failure');
    expect(body.error.smtp).toEqual({
      code: 451,
      enhancedCode: '4.3.0',
      message: 'Try again later',
      command: 'MAIL',
    });
    expect(body.error.retryAfterSeconds).toBe(60);
  });

  it('a permanent refusal at MAIL: 422 message_rejected with the SMTP reply', async () => {
    const body = await failureOf(await post(message({ from: 'blocked@example.org' })), 422);
    expect(body.error.code).toBe('message_rejected');
    expect(body.error.smtp).toEqual({
      code: 550,
      enhancedCode: '5.1.1',
      message: 'Sender blocked by policy',
      command: 'MAIL',
    });
    expect(body.error.message).toBe(
      `the SMTP relay 127.0.0.1:${inject('relayPort')} refused the message at MAIL (550 5.1.1 Sender blocked by policy)`,
    );
  });

  it('relay down: 502 relay_unreachable', async () => {
    const body = await failureOf(
      await post(message(), { env: { SMTP_PORT: String(inject('closedPort')) } }),
      502,
    );
    expect(body.error.code).toBe('relay_unreachable');
    expect(body.error.message).toMatch(
      new RegExp(
        `^could not talk to the SMTP relay 127\\.0\\.0\\.1:${inject('closedPort')}: .+ Check SMTP_HOST and SMTP_PORT, or retry later$`,
      ),
    );
  });

  it('wrong password: 502 relay_auth_failed with the 535 reply', async () => {
    const body = await failureOf(await post(message(), { env: { SMTP_PASSWORD: 'wrong' } }), 502);
    expect(body.error.code).toBe('relay_auth_failed');
    expect(body.error.smtp).toEqual({
      code: 535,
      enhancedCode: '5.7.8',
      message: 'Authentication credentials invalid',
      command: 'AUTH',
    });
    expect(body.error.message).toBe(
      `the SMTP relay 127.0.0.1:${inject('relayPort')} refused the Worker's credentials (535 5.7.8 Authentication credentials invalid): check SMTP_USERNAME and the SMTP_PASSWORD secret`,
    );
  });

  it('untrusted certificate: 502 relay_tls_failed, and nothing is sent in clear text', async () => {
    const to = unique('untrusted');
    const body = await failureOf(
      await post(message({ to }), { env: { SMTP_PORT: String(inject('untrustedPort')) } }),
      502,
    );
    expect(body.error.code).toBe('relay_tls_failed');
    expect(body.error.message).toMatch(/The message was not sent in clear text$/);
    expect(await receivedFor(to)).toEqual([]);
  });

  it('certificate for another name: 502 relay_tls_failed', async () => {
    const to = unique('wrongname');
    const body = await failureOf(
      await post(message({ to }), { env: { SMTP_PORT: String(inject('wrongNamePort')) } }),
      502,
    );
    expect(body.error.code).toBe('relay_tls_failed');
    expect(await receivedFor(to)).toEqual([]);
  });

  it('STARTTLS required but not offered: 502 relay_tls_failed, no clear-text send', async () => {
    const to = unique('plain');
    const body = await failureOf(
      await post(message({ to }), { env: { SMTP_PORT: String(inject('noStarttlsPort')) } }),
      502,
    );
    expect(body.error.code).toBe('relay_tls_failed');
    expect(await receivedFor(to)).toEqual([]);
  });

  it('a relay that never greets: 504 relay_timeout within the greeting timeout', async () => {
    const body = await failureOf(
      await post(message(), {
        env: { SMTP_PORT: String(inject('silentPort')), SMTP_GREETING_TIMEOUT_MS: '300' },
      }),
      504,
    );
    expect(body.error.code).toBe('relay_timeout');
    expect(body.error.message).toBe(
      `the SMTP relay 127.0.0.1:${inject('silentPort')} stopped answering: no answer from the peer during greeting within 300 ms`,
    );
  });

  it('a relay that stops answering after the data: 504 relay_timeout', async () => {
    const body = await failureOf(
      await post(message({ from: 'stall@example.org' }), { env: { SMTP_DATA_TIMEOUT_MS: '500' } }),
      504,
    );
    expect(body.error.code).toBe('relay_timeout');
    expect(body.error.message).toBe(
      `the SMTP relay 127.0.0.1:${inject('relayPort')} stopped answering: no answer from the peer during DATA within 500 ms; the relay may have accepted the message anyway, so a retry may deliver it twice`,
    );
  });

  it('SEND_TIMEOUT_MS bounds the whole send', async () => {
    const body = await failureOf(
      await post(message(), {
        env: {
          SMTP_PORT: String(inject('silentPort')),
          SMTP_GREETING_TIMEOUT_MS: '60000',
          SEND_TIMEOUT_MS: '400',
        },
      }),
      504,
    );
    expect(body.error.code).toBe('relay_timeout');
    expect(body.error.message).toBe(
      `the send through the SMTP relay 127.0.0.1:${inject('silentPort')} did not finish within 400 ms (SEND_TIMEOUT_MS)`,
    );
  });
});
