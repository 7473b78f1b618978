import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmtpError, SmtpMessageError } from '../errors.ts';
import { AddressError } from './errors.ts';
import { formatPath, parseForwardPath, parseMailbox, parseReversePath } from './path.ts';
import {
  addressLiteralKind,
  assertNoControlChars,
  checkDomain,
  isIpv6Address,
  needsSmtpUtf8,
} from './syntax.ts';

const ascii = { smtputf8: false };
const utf8 = { smtputf8: true };

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof AddressError) return e.reason;
    throw e;
  }
  return 'ok';
}

describe('parseReversePath / parseForwardPath (RFC 5321 section 4.1.2)', () => {
  it('parses the RFC 5321 appendix D paths', () => {
    expect(parseReversePath('<Smith@bar.com>', ascii)).toEqual({
      kind: 'mailbox',
      mailbox: { localPart: 'Smith', domain: 'bar.com', address: 'Smith@bar.com', domainKind: 'name' },
    });
    expect(parseForwardPath('<Jones@foo.com>', ascii)).toEqual({
      kind: 'mailbox',
      mailbox: { localPart: 'Jones', domain: 'foo.com', address: 'Jones@foo.com', domainKind: 'name' },
    });
  });

  it('the null reverse-path, and <Postmaster> in any case for RCPT only (section 4.1.1.3)', () => {
    expect(parseReversePath('<>', ascii)).toEqual({ kind: 'null' });
    expect(reasonOf(() => parseForwardPath('<>', ascii))).toBe('syntax');
    expect(parseForwardPath('<Postmaster>', ascii)).toEqual({ kind: 'postmaster' });
    expect(parseForwardPath('<postMASTER>', ascii)).toEqual({ kind: 'postmaster' });
    expect(reasonOf(() => parseReversePath('<Postmaster>', ascii))).toBe('syntax');
    const pm = parseForwardPath('<postmaster@example.org>', ascii);
    expect(pm.kind).toBe('mailbox');
  });

  it('accepts and ignores source routes (section 4.1.2 and appendix C)', () => {
    const r = parseForwardPath('<@hosta.int,@jkl.org:userc@d.bar.org>', ascii);
    expect(r).toEqual({
      kind: 'mailbox',
      mailbox: { localPart: 'userc', domain: 'd.bar.org', address: 'userc@d.bar.org', domainKind: 'name' },
    });
    expect(parseReversePath('<@a,@b:user@d>', ascii).kind).toBe('mailbox');
    for (const bad of ['<@a:>', '<@:u@d>', '<@a,b:u@d>', '<@a u@d>', '<@a,,@b:u@d>']) {
      expect(
        reasonOf(() => parseForwardPath(bad, ascii)),
        bad,
      ).toBe('syntax');
    }
  });

  it('quoted local parts: value unquoted, address in its shortest form', () => {
    const m = (t: string) => {
      const r = parseForwardPath(t, ascii);
      if (r.kind !== 'mailbox') throw new Error('expected a mailbox');
      return r.mailbox;
    };
    expect(m('<"john smith"@example.org>')).toMatchObject({
      localPart: 'john smith',
      address: '"john smith"@example.org',
    });
    expect(m('<"john"@example.org>')).toMatchObject({ localPart: 'john', address: 'john@example.org' });
    expect(m('<"a\\"b\\\\c"@example.org>')).toMatchObject({
      localPart: 'a"b\\c',
      address: '"a\\"b\\\\c"@example.org',
    });
    expect(m('<"\\j\\o"@example.org>')).toMatchObject({ localPart: 'jo', address: 'jo@example.org' });
    expect(m('<"a>b@c"@example.org>')).toMatchObject({ localPart: 'a>b@c', address: '"a>b@c"@example.org' });
    expect(m('<""@example.org>')).toMatchObject({ localPart: '', address: '""@example.org' });
    expect(m('<"a..b"@example.org>')).toMatchObject({ address: '"a..b"@example.org' });
  });

  it('dot-strings: atext only, no empty atoms', () => {
    expect(parseForwardPath("<!#$%&'*+-/=?^_`{|}~.x@example.org>", ascii).kind).toBe('mailbox');
    for (const bad of [
      '<.a@x>',
      '<a.@x>',
      '<a..b@x>',
      '<a b@x>',
      '<a(b)@x>',
      '<a,b@x>',
      '<@x>',
      '<a@>',
      '<a>',
    ]) {
      expect(
        reasonOf(() => parseForwardPath(bad, ascii)),
        bad,
      ).toBe('syntax');
    }
  });

  it('domains: LDH labels, address literals', () => {
    expect(parseForwardPath('<a@x-1.example>', ascii).kind).toBe('mailbox');
    for (const bad of ['<a@-x.org>', '<a@x-.org>', '<a@x..org>', '<a@x.org.>', '<a@x_y.org>', '<a@.org>']) {
      expect(
        reasonOf(() => parseForwardPath(bad, ascii)),
        bad,
      ).toBe('syntax');
    }
    const lit = (t: string) => {
      const r = parseForwardPath(t, ascii);
      return r.kind === 'mailbox' ? r.mailbox.domainKind : r.kind;
    };
    expect(lit('<a@[192.0.2.1]>')).toBe('ipv4');
    expect(lit('<a@[IPv6:2001:db8::1]>')).toBe('ipv6');
    expect(lit('<a@[ipv6:::ffff:192.0.2.1]>')).toBe('ipv6');
    expect(lit('<a@[x-tag:anything]>')).toBe('general');
    for (const bad of [
      '<a@[256.0.0.1]>',
      '<a@[1.2.3]>',
      '<a@[IPv6:1:2]>',
      '<a@[]>',
      '<a@[1.2.3.4>',
      '<a@[a b]>',
    ]) {
      expect(
        reasonOf(() => parseForwardPath(bad, ascii)),
        bad,
      ).toBe('syntax');
    }
  });

  it('IPv6 literal forms of section 4.1.3', () => {
    const ok = [
      '1:2:3:4:5:6:7:8',
      '::',
      '::1',
      '1::',
      '1:2:3::6:7:8',
      '1:2:3:4:5:6:1.2.3.4',
      '::1.2.3.4',
      '1:2:3:4::1.2.3.4',
    ];
    const bad = [
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      '1:2:3:4:5:6:7::',
      '12345::',
      '1:2:3:4:5::1.2.3.4',
      ':1:2:3:4:5:6:7',
      'g::',
    ];
    for (const s of ok) expect(isIpv6Address(s), s).toBe(true);
    for (const s of bad) expect(isIpv6Address(s), s).toBe(false);
    expect(addressLiteralKind('[IPv6:1:2:3:4:5:6:7:8]')).toBe('ipv6');
  });

  it('enforces the section 4.5.3.1 limits in octets', () => {
    const local64 = 'l'.repeat(64);
    expect(parseForwardPath(`<${local64}@example.org>`, ascii).kind).toBe('mailbox');
    expect(reasonOf(() => parseForwardPath(`<${local64}l@example.org>`, ascii))).toBe('local-part-too-long');
    expect(reasonOf(() => parseForwardPath(`<${'é'.repeat(33)}@example.org>`, utf8))).toBe(
      'local-part-too-long',
    );
    expect(reasonOf(() => parseForwardPath(`<a@${'d'.repeat(64)}.org>`, ascii))).toBe('domain-too-long');
    const domain = `${'d'.repeat(63)}.${'d'.repeat(63)}.${'d'.repeat(63)}.${'d'.repeat(59)}`; // 251
    expect(parseForwardPath(`<a@${domain}>`, ascii).kind).toBe('mailbox');
    expect(checkDomain(`${domain}.ddd`, false)).toBe(null);
    expect(checkDomain(`${domain}.dddd`, false)).toBe('domain-too-long');
    const path256 = `<${'l'.repeat(64)}@${'d'.repeat(63)}.${'d'.repeat(63)}.${'d'.repeat(61)}>`;
    expect(path256.length).toBe(256);
    expect(parseForwardPath(path256, ascii).kind).toBe('mailbox');
    expect(reasonOf(() => parseForwardPath(path256.replace('@', '@d'), ascii))).toBe('path-too-long');
  });

  it('UTF-8 needs SMTPUTF8 (RFC 6531 sections 3.3 and 3.5)', () => {
    expect(parseForwardPath('<zoë@exämple.org>', utf8)).toEqual({
      kind: 'mailbox',
      mailbox: { localPart: 'zoë', domain: 'exämple.org', address: 'zoë@exämple.org', domainKind: 'name' },
    });
    expect(parseForwardPath('<"zo ë"@example.org>', utf8).kind).toBe('mailbox');
    try {
      parseForwardPath('<zoë@example.org>', ascii);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AddressError);
      expect((e as AddressError).reason).toBe('non-ascii');
      expect((e as AddressError).reply).toMatchObject({ code: 553, enhancedCode: '5.6.7' });
      expect((e as AddressError).kind).toBe('message');
    }
    try {
      parseReversePath('<a@exämple.org>', ascii);
      expect.unreachable();
    } catch (e) {
      expect((e as AddressError).reply).toMatchObject({ code: 550, enhancedCode: '5.6.7' });
    }
    // Unicode spaces are not U-label characters.
    expect(reasonOf(() => parseForwardPath('<a@ex\u00a0ample.org>', utf8))).toBe('syntax');
  });

  it('syntax errors carry the reply a server sends', () => {
    try {
      parseReversePath('<a b@example.org>', ascii);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SmtpMessageError);
      expect((e as AddressError).reply).toMatchObject({ code: 501, enhancedCode: '5.1.7' });
      expect((e as AddressError).command).toBe('MAIL');
    }
    try {
      parseForwardPath('a@example.org', ascii);
      expect.unreachable();
    } catch (e) {
      expect((e as AddressError).reply).toMatchObject({ code: 501, enhancedCode: '5.1.3' });
    }
  });

  it('control characters are refused everywhere', () => {
    for (const bad of ['<a\r\n@x.org>', '<"a\rb"@x.org>', '<a@x.org\0>', '<"\t"@x.org>', '<a\x7f@x.org>']) {
      expect(
        reasonOf(() => parseForwardPath(bad, utf8)),
        JSON.stringify(bad),
      ).toBe('control-character');
    }
  });

  it('never throws anything but SmtpError on arbitrary input', () => {
    const alphabet = fc.constantFrom(...'<>@."\\:,[]aZ0-_ é\r\nIPv6:'.split(''));
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 40 })),
        fc.boolean(),
        (s, u) => {
          for (const fn of [parseReversePath, parseForwardPath]) {
            try {
              fn(s, { smtputf8: u });
            } catch (e) {
              expect(e).toBeInstanceOf(SmtpError);
            }
            try {
              fn(`<${s}>`, { smtputf8: u });
            } catch (e) {
              expect(e).toBeInstanceOf(AddressError);
            }
          }
          try {
            parseMailbox(s, { smtputf8: u });
          } catch (e) {
            expect(e).toBeInstanceOf(AddressError);
          }
        },
      ),
    );
  });
});

describe('parseMailbox and formatPath', () => {
  it('parseMailbox takes a bare local@domain', () => {
    expect(parseMailbox('user@example.org', ascii)).toMatchObject({
      localPart: 'user',
      domain: 'example.org',
    });
    expect(reasonOf(() => parseMailbox('<user@example.org>', ascii))).toBe('syntax');
    expect(reasonOf(() => parseMailbox('user@example.org\r\nRCPT TO:<x@y>', ascii))).toBe(
      'control-character',
    );
  });

  it('formatPath quotes when needed and refuses injection', () => {
    expect(formatPath(null)).toBe('<>');
    expect(formatPath({ localPart: 'user', domain: 'example.org' })).toBe('<user@example.org>');
    expect(formatPath({ localPart: 'john smith', domain: 'example.org' })).toBe('<"john smith"@example.org>');
    expect(formatPath({ localPart: 'a"b', domain: 'example.org' })).toBe('<"a\\"b"@example.org>');
    expect(() => formatPath({ localPart: 'a\r\nb', domain: 'example.org' })).toThrow(SmtpMessageError);
    expect(() => formatPath({ localPart: 'a', domain: 'example.org>\r\nDATA' })).toThrow(SmtpMessageError);
    expect(() => formatPath({ localPart: 'a', domain: 'bad domain' })).toThrow(AddressError);
  });

  it('formatPath output parses back to the same mailbox', () => {
    const local = fc.string({ unit: fc.constantFrom(...'ab.-"\\ @é+'.split('')), maxLength: 20 });
    fc.assert(
      fc.property(local, (localPart) => {
        const path = formatPath({ localPart, domain: 'example.org' });
        const back = parseForwardPath(path, utf8);
        expect(back.kind).toBe('mailbox');
        if (back.kind === 'mailbox') {
          expect(back.mailbox.localPart).toBe(localPart);
          expect(`<${back.mailbox.address}>`).toBe(path);
        }
      }),
    );
  });
});

describe('needsSmtpUtf8 and assertNoControlChars', () => {
  it('needsSmtpUtf8', () => {
    expect(needsSmtpUtf8('a@example.org')).toBe(false);
    expect(needsSmtpUtf8('zoë@example.org')).toBe(true);
  });

  it('assertNoControlChars names the field', () => {
    expect(() => assertNoControlChars('ok value', 'helo')).not.toThrow();
    for (const bad of ['a\rb', 'a\nb', 'a\0b', 'a\tb', 'a\x1bb', 'a\x7fb']) {
      try {
        assertNoControlChars(bad, 'to[2]');
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(SmtpMessageError);
        expect((e as SmtpMessageError).field).toBe('to[2]');
      }
    }
    expect(() => assertNoControlChars('a\tb', 'subject', { allowTab: true })).not.toThrow();
  });
});
