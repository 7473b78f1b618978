import { describe, expect, it } from 'vitest';
import { acceptsRecipient } from '../src/policy.ts';
import { receivedHeader, rfc5322Date, withProtocol } from '../src/received.ts';

const date = new Date(Date.UTC(2026, 10, 8, 9, 5, 7));

describe('Received header (RFC 5321 section 4.4)', () => {
  it('writes the full form with TLS, AUTH and a single recipient', () => {
    const h = receivedHeader({
      helo: { verb: 'EHLO', name: 'client.example.org' },
      remoteAddress: '::ffff:192.0.2.1',
      hostname: 'mx.example.com',
      tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
      authenticated: true,
      smtputf8: false,
      id: '01ABC',
      rcptTo: ['bob@example.com'],
      date,
    });
    expect(h).toBe(
      'Received: from client.example.org ([192.0.2.1])\r\n' +
        '\tby mx.example.com with ESMTPSA (TLSv1.3 cipher TLS_AES_256_GCM_SHA384)\r\n' +
        '\tid 01ABC\r\n' +
        '\tfor <bob@example.com>;\r\n' +
        '\tSun, 8 Nov 2026 09:05:07 +0000\r\n',
    );
  });

  it('never copies an invalid HELO name or a risky recipient, and omits for with several recipients', () => {
    const h = receivedHeader({
      helo: { verb: 'HELO', name: 'evil)\r\nX-Injected: 1' },
      remoteAddress: '2001:db8::1',
      hostname: 'mx.example.com',
      tls: null,
      authenticated: false,
      smtputf8: false,
      id: 'X',
      rcptTo: ['a@example.com', 'b@example.com'],
      date,
    });
    expect(h).toBe(
      'Received: from [IPv6:2001:db8::1] ([IPv6:2001:db8::1])\r\n\tby mx.example.com with SMTP\r\n\tid X;\r\n\tSun, 8 Nov 2026 09:05:07 +0000\r\n',
    );
    const h2 = receivedHeader({
      helo: null,
      remoteAddress: '192.0.2.9',
      hostname: 'h.example',
      tls: null,
      authenticated: false,
      smtputf8: false,
      id: 'Y',
      rcptTo: ['x>@example.com'],
      date,
    });
    expect(h2).toContain('from [192.0.2.9] ([192.0.2.9])');
    expect(h2).not.toContain('for');
    expect(h2.split('\r\n').every((l) => !l.includes('\r') && !l.includes('\n'))).toBe(true);
  });

  it('picks the RFC 3848 / RFC 6531 with keyword', () => {
    const t = { protocol: 'TLSv1.3', cipher: 'x' };
    const ehlo = { verb: 'EHLO', name: 'x' };
    expect(withProtocol({ helo: ehlo, tls: null, authenticated: false, smtputf8: false })).toBe('ESMTP');
    expect(withProtocol({ helo: ehlo, tls: t, authenticated: false, smtputf8: false })).toBe('ESMTPS');
    expect(withProtocol({ helo: ehlo, tls: t, authenticated: true, smtputf8: false })).toBe('ESMTPSA');
    expect(withProtocol({ helo: ehlo, tls: null, authenticated: true, smtputf8: false })).toBe('ESMTPA');
    expect(withProtocol({ helo: ehlo, tls: t, authenticated: true, smtputf8: true })).toBe('UTF8SMTPSA');
    expect(
      withProtocol({ helo: { verb: 'HELO', name: 'x' }, tls: null, authenticated: false, smtputf8: false }),
    ).toBe('SMTP');
    expect(rfc5322Date(new Date(Date.UTC(2026, 0, 31, 23, 59, 59)))).toBe('Sat, 31 Jan 2026 23:59:59 +0000');
  });
});

describe('MX recipient policy', () => {
  const domains = ['example.com', 'xn--bcher-kva.example'];
  it.each([
    ['bob@example.com', true],
    ['Bob@EXAMPLE.COM', true],
    ['"a@b"@example.com', true],
    ['bob@example.com.', true],
    ['bob@bücher.example', true],
    ['Postmaster', true],
    ['bob@sub.example.com', false],
    ['bob@example.com.evil.org', false],
    ['bob@example.org', false],
    ['bob@[192.0.2.1]', false],
    ['bob', false],
    ['bob@example.com@evil.org', false],
  ])('%s -> %s', (addr, ok) => {
    expect(acceptsRecipient(addr, domains)).toBe(ok);
  });
});
