import { describe, expect, it } from 'vitest';
import { SmtpMessageError } from '../errors.ts';
import { formatAddressHeader, parseAddress, resolveAddress, splitAddressList } from './address.ts';

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SmtpMessageError);
    return (e as SmtpMessageError).field;
  }
  throw new Error('did not throw');
}

describe('parseAddress (RFC 5322 section 3.4)', () => {
  it('parses a bare addr-spec and an angle-addr', () => {
    expect(parseAddress('zoe@example.org', 'to')).toEqual({ name: null, address: 'zoe@example.org' });
    expect(parseAddress('  <zoe@example.org> ', 'to')).toEqual({ name: null, address: 'zoe@example.org' });
  });

  it('parses quoted display names with quoted-pairs', () => {
    expect(parseAddress('"Zoë" <zoe@example.org>', 'to')).toEqual({
      name: 'Zoë',
      address: 'zoe@example.org',
    });
    expect(parseAddress('"Smith, \\"J\\" <x>" <j@example.org>', 'to')).toEqual({
      name: 'Smith, "J" <x>',
      address: 'j@example.org',
    });
  });

  it('parses bare display names, including non-ASCII', () => {
    expect(parseAddress('Zoë Saldaña <zoe@example.org>', 'to')).toEqual({
      name: 'Zoë Saldaña',
      address: 'zoe@example.org',
    });
  });

  it('takes objects, trimming and turning an empty name into null', () => {
    expect(parseAddress({ name: ' Zoë ', address: ' zoe@example.org' }, 'cc[0]')).toEqual({
      name: 'Zoë',
      address: 'zoe@example.org',
    });
    expect(parseAddress({ name: '', address: 'zoe@example.org' }, 'cc[0]').name).toBeNull();
  });

  it('accepts quoted local parts, address literals, UTF-8 local parts and IDN domains', () => {
    expect(parseAddress('"john doe"@example.org', 'to').address).toBe('"john doe"@example.org');
    expect(parseAddress('postmaster@[192.0.2.1]', 'to').address).toBe('postmaster@[192.0.2.1]');
    expect(parseAddress('用户@例子.广告', 'to').address).toBe('用户@例子.广告');
    expect(parseAddress('bob@bücher.example', 'to').address).toBe('bob@bücher.example');
  });

  it('refuses broken input, naming the field', () => {
    expect(fieldOf(() => parseAddress('not an address', 'to[1]'))).toBe('to[1]');
    expect(fieldOf(() => parseAddress('a@b, c@d', 'to[1]'))).toBe('to[1]');
    expect(fieldOf(() => parseAddress('"unclosed <a@example.org>', 'from'))).toBe('from');
    expect(fieldOf(() => parseAddress('x" <a@example.org>', 'from'))).toBe('from');
    expect(fieldOf(() => parseAddress('a@-bad-.example', 'cc'))).toBe('cc');
    expect(fieldOf(() => parseAddress(`${'a'.repeat(65)}@example.org`, 'cc'))).toBe('cc');
    expect(fieldOf(() => parseAddress({ address: 'a@b.example', name: 'x\ny' }, 'bcc[0]'))).toBe(
      'bcc[0].name',
    );
    expect(fieldOf(() => parseAddress(42 as unknown as string, 'to'))).toBe('to');
  });

  it('refuses CR, LF and NUL anywhere (header and envelope injection)', () => {
    for (const bad of [
      'a@example.org\r\nBcc: x@evil.example',
      'Zoe\r\n <a@example.org>',
      'a@example.org\n',
      'a\u0000@example.org',
      '"Zo\re" <a@example.org>',
    ]) {
      expect(
        fieldOf(() => parseAddress(bad, 'to[0]')),
        JSON.stringify(bad),
      ).toBe('to[0]');
    }
    expect(fieldOf(() => parseAddress({ address: 'a@example.org\r\nX: y' }, 'to[0]'))).toBe('to[0].address');
  });
});

describe('resolveAddress (RFC 6531, RFC 5890)', () => {
  it('converts an IDN domain to A-labels when the local part is ASCII', () => {
    expect(resolveAddress({ name: null, address: 'bob@bücher.example' }, 'to')).toEqual({
      name: null,
      address: 'bob@xn--bcher-kva.example',
      smtputf8: false,
    });
  });

  it('keeps UTF-8 (and U-labels) and flags SMTPUTF8 when the local part is not ASCII', () => {
    expect(resolveAddress({ name: null, address: 'jörg@bücher.example' }, 'to')).toEqual({
      name: null,
      address: 'jörg@bücher.example',
      smtputf8: true,
    });
  });
});

describe('formatAddressHeader', () => {
  it('quotes, encodes and folds a list as under a To: field', () => {
    const value = formatAddressHeader([
      { name: 'Zoë', address: 'zoe@example.org' },
      { name: 'Smith, John', address: 'john@example.org' },
      { name: null, address: 'plain@example.org' },
      { name: 'A very long display name that goes on', address: 'long@example.org' },
    ]);
    expect(value).toBe(
      '=?utf-8?Q?Zo=C3=AB?= <zoe@example.org>, "Smith, John" <john@example.org>,\r\n' +
        ' plain@example.org, A very long display name that goes on <long@example.org>',
    );
  });

  it('refuses injection in names', () => {
    expect(fieldOf(() => formatAddressHeader([{ name: 'x\r\nBcc: y', address: 'a@example.org' }]))).toBe(
      '[0].name',
    );
  });
});

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SmtpMessageError);
    return (e as SmtpMessageError).message;
  }
  throw new Error('did not throw');
}

describe('splitAddressList (RFC 5322 section 3.4 address-list)', () => {
  const texts = (s: string, field = 'to') => splitAddressList(s, field).map((a) => [a.text.trim(), a.field]);

  it('splits at top-level commas and numbers the addresses of a list', () => {
    expect(texts('b@example.org, c@example.org')).toEqual([
      ['b@example.org', 'to[0]'],
      ['c@example.org', 'to[1]'],
    ]);
    expect(texts('a@x.example,b@y.example,  "Zoë" <z@z.example>', 'cc[2]')).toEqual([
      ['a@x.example', 'cc[2][0]'],
      ['b@y.example', 'cc[2][1]'],
      ['"Zoë" <z@z.example>', 'cc[2][2]'],
    ]);
  });

  it('keeps the field of a string that holds one address', () => {
    expect(texts('zoe@example.org')).toEqual([['zoe@example.org', 'to']]);
    expect(texts('"Doe, John" <john@example.org>')).toEqual([['"Doe, John" <john@example.org>', 'to']]);
    // obs-addr-list (RFC 5322 section 4.4): empty elements are skipped
    expect(texts(' zoe@example.org , ')).toEqual([['zoe@example.org', 'to']]);
    expect(texts('a@x.example,, ,b@y.example')).toEqual([
      ['a@x.example', 'to[0]'],
      ['b@y.example', 'to[1]'],
    ]);
  });

  it('does not split inside quoted strings, quoted-pairs, comments, angle brackets or domain literals', () => {
    expect(texts('"a,\\"b, c" <q@x.example>, "x,y"@y.example')).toEqual([
      ['"a,\\"b, c" <q@x.example>', 'to[0]'],
      ['"x,y"@y.example', 'to[1]'],
    ]);
    expect(texts('"Say \\"hi, there\\"" <s@x.example>')).toEqual([
      ['"Say \\"hi, there\\"" <s@x.example>', 'to'],
    ]);
    expect(texts('x@[IPv6:2001:db8::1], (a, (nested, comment)) y@y.example')).toEqual([
      ['x@[IPv6:2001:db8::1]', 'to[0]'],
      ['(a, (nested, comment)) y@y.example', 'to[1]'],
    ]);
    expect(texts('<@relay.example,@b.example:r@y.example>')).toEqual([
      ['<@relay.example,@b.example:r@y.example>', 'to'],
    ]);
  });

  it('refuses groups and ";"-separated lists with a clear error', () => {
    expect(fieldOf(() => splitAddressList('Team: a@x.example, b@y.example;', 'to'))).toBe('to');
    expect(messageOf(() => splitAddressList('Team: a@x.example, b@y.example;', 'to'))).toMatch(
      /^to: "Team: a@x\.example, b@y\.example;" is an address group \(RFC 5322 section 3\.4/,
    );
    expect(fieldOf(() => splitAddressList('undisclosed-recipients:;', 'bcc'))).toBe('bcc');
    expect(fieldOf(() => splitAddressList('a@x.example; b@y.example', 'cc[1]'))).toBe('cc[1]');
    // A single address keeps the lenient reading of an unquoted display name with a colon.
    expect(texts('Re: Zoe <zoe@example.org>')).toEqual([['Re: Zoe <zoe@example.org>', 'to']]);
  });

  it('names the address that holds a control character, before any other complaint', () => {
    expect(fieldOf(() => splitAddressList('a@x.example, b@y.example\r\nBcc: evil@z.example', 'to'))).toBe(
      'to[1]',
    );
    expect(fieldOf(() => splitAddressList('a@x.example,\r\n,b@y.example', 'to'))).toBe('to[1]');
    expect(fieldOf(() => splitAddressList('a@x.example\u0000', 'to'))).toBe('to');
  });

  it('says how to quote a display name that holds a comma', () => {
    expect(fieldOf(() => splitAddressList('Doe, John <john@example.org>', 'to'))).toBe('to[0]');
    expect(messageOf(() => splitAddressList('Doe, John <john@example.org>', 'to'))).toBe(
      'to[0]: "Doe" is not an address; a display name that holds a comma must be quoted ("Doe, John" <john@example.org>)',
    );
  });
});
