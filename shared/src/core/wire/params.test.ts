import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmtpError, SmtpMessageError } from '../errors.ts';
import {
  assertKnownParams,
  EsmtpParamError,
  formatAuthParam,
  formatDsnMailParams,
  formatDsnRcptParams,
  formatEsmtpParams,
  parseAuthParam,
  parseBodyParam,
  parseDsnMailParams,
  parseDsnRcptParams,
  parseEsmtpParams,
  parseNotifyParam,
  parseOrcptParam,
  parseRequireTlsParam,
  parseSizeParam,
  parseSmtpUtf8Param,
  utf8AddrDecode,
  utf8AddrXtextEncode,
  xtextDecode,
  xtextEncode,
} from './params.ts';

const params = (text: string) => parseEsmtpParams(text).params;

function errorOf(fn: () => unknown): EsmtpParamError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EsmtpParamError) return e;
    throw e;
  }
  throw new Error('expected EsmtpParamError');
}

describe('parseEsmtpParams (RFC 5321 section 4.1.2)', () => {
  it('upper-cases keywords; a parameter without value is true', () => {
    expect(params('size=1000 BODY=8BITMIME SmtpUtf8')).toEqual(
      new Map<string, string | true>([
        ['SIZE', '1000'],
        ['BODY', '8BITMIME'],
        ['SMTPUTF8', true],
      ]),
    );
    expect(params('')).toEqual(new Map());
    expect(params('  A=1   B  ')).toEqual(
      new Map<string, string | true>([
        ['A', '1'],
        ['B', true],
      ]),
    );
  });

  it('refuses bad syntax with 501 5.5.4', () => {
    for (const bad of ['=1', '-X=1', 'X=', 'X=a=b', 'X_Y=1', 'X=\x7f', 'X=a\tb', 'é=1']) {
      const e = errorOf(() => params(bad));
      expect(e.reason, bad).toBe('syntax');
      expect(e.reply).toEqual({ code: 501, enhancedCode: '5.5.4', lines: [e.message] });
    }
  });

  it('refuses duplicate keywords, whatever their case', () => {
    const e = errorOf(() => params('SIZE=1 size=2'));
    expect(e.reason).toBe('duplicate');
    expect(e.keyword).toBe('SIZE');
    expect(e.code).toBe(501);
  });

  it('accepts UTF-8 in values (RFC 6531 section 3.3)', () => {
    expect(params('X-NAME=zoë').get('X-NAME')).toBe('zoë');
  });

  it('assertKnownParams gives 555 5.5.4 for unrecognized keywords (section 4.1.1.11)', () => {
    const p = params('SIZE=1 X-FOO=bar');
    const e = errorOf(() => assertKnownParams(p, ['size', 'BODY']));
    expect(e.reason).toBe('unrecognized');
    expect(e.keyword).toBe('X-FOO');
    expect(e.reply).toMatchObject({ code: 555, enhancedCode: '5.5.4' });
    expect(() => assertKnownParams(p, ['SIZE', 'X-FOO'])).not.toThrow();
  });

  it('never throws anything but SmtpError on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          parseEsmtpParams(s);
        } catch (e) {
          expect(e).toBeInstanceOf(SmtpError);
        }
      }),
    );
  });

  it('formatEsmtpParams writes only grammatical parameters', () => {
    expect(
      formatEsmtpParams([
        ['SIZE', '100'],
        ['SMTPUTF8', true],
        ['REQUIRETLS', false],
        ['BODY', undefined],
      ]),
    ).toBe(' SIZE=100 SMTPUTF8');
    expect(() => formatEsmtpParams([['SIZE', '1\r\nRCPT TO:<x@y>']])).toThrow(SmtpMessageError);
    expect(() => formatEsmtpParams([['BAD KEY', true]])).toThrow(SmtpMessageError);
    expect(() => formatEsmtpParams([['X', 'a=b']])).toThrow(SmtpMessageError);
  });
});

describe('xtext (RFC 3461 section 4)', () => {
  it('encodes +, =, space, controls and non-ASCII as upper-case +XX', () => {
    expect(xtextEncode('e=mc2@example.com')).toBe('e+3Dmc2@example.com');
    expect(xtextEncode('a+b c\r\n~!')).toBe('a+2Bb+20c+0D+0A~!');
    expect(xtextEncode('zoë')).toBe('zo+C3+AB');
    expect(xtextDecode('e+3Dmc2@example.com')).toBe('e=mc2@example.com');
    expect(xtextDecode('QQ314159')).toBe('QQ314159');
    expect(xtextDecode('+41')).toBe('A');
    expect(xtextDecode('')).toBe('');
  });

  it('decode rejects malformed xtext', () => {
    for (const bad of ['a+', 'a+4', '+4g', '+3d', 'a=b', 'a b', '+C3', 'é', '\x7f']) {
      expect(errorOf(() => xtextDecode(bad)).reason, bad).toBe('invalid-value');
    }
  });

  it('round-trips arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const enc = xtextEncode(s);
        expect(enc).toMatch(/^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/);
        // Lone surrogates become U+FFFD in UTF-8 (TextEncoder), as anywhere on the wire.
        expect(xtextDecode(enc)).toBe(new TextDecoder().decode(new TextEncoder().encode(s)));
      }),
    );
  });

  it('decoding arbitrary strings only throws SmtpError', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          xtextDecode(s);
        } catch (e) {
          expect(e).toBeInstanceOf(SmtpError);
        }
      }),
    );
  });
});

describe('single parameters', () => {
  it('SIZE (RFC 1870): 1*20DIGIT, capped at the largest safe integer', () => {
    expect(parseSizeParam('0')).toBe(0);
    expect(parseSizeParam('35882577')).toBe(35882577);
    expect(parseSizeParam('99999999999999999999')).toBe(Number.MAX_SAFE_INTEGER);
    for (const bad of [true, '', '-1', '1e3', '1.0', ' 1', '123456789012345678901', '0x10'] as const) {
      expect(errorOf(() => parseSizeParam(bad)).reason, String(bad)).toBe('invalid-value');
    }
  });

  it('BODY (RFC 6152, RFC 3030)', () => {
    expect(parseBodyParam('8bitmime')).toBe('8BITMIME');
    expect(parseBodyParam('7BIT')).toBe('7BIT');
    expect(parseBodyParam('BINARYMIME')).toBe('BINARYMIME');
    expect(errorOf(() => parseBodyParam('8BIT')).reply).toMatchObject({ code: 501, enhancedCode: '5.5.4' });
    expect(errorOf(() => parseBodyParam(true)).keyword).toBe('BODY');
  });

  it('SMTPUTF8 and REQUIRETLS take no value', () => {
    expect(parseSmtpUtf8Param(true)).toBe(true);
    expect(parseRequireTlsParam(true)).toBe(true);
    expect(errorOf(() => parseSmtpUtf8Param('yes')).keyword).toBe('SMTPUTF8');
    expect(errorOf(() => parseRequireTlsParam('1')).keyword).toBe('REQUIRETLS');
  });

  it('AUTH (RFC 4954 section 5): xtext mailbox or <>', () => {
    expect(parseAuthParam('e+3Dmc2@example.com')).toBe('e=mc2@example.com');
    expect(parseAuthParam('<>')).toBe('<>');
    expect(formatAuthParam('e=mc2@example.com')).toBe('e+3Dmc2@example.com');
    expect(formatAuthParam(null)).toBe('<>');
    for (const bad of [true, 'nobody', '+3C+3E', 'a+0D+0A@x.org'] as const) {
      expect(errorOf(() => parseAuthParam(bad)).reason, String(bad)).toBe('invalid-value');
    }
  });
});

describe('DSN parameters (RFC 3461)', () => {
  it('parses the section 9 example', () => {
    expect(parseDsnMailParams(params('RET=HDRS ENVID=QQ314159'))).toEqual({ ret: 'HDRS', envid: 'QQ314159' });
    expect(parseDsnRcptParams(params('NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Example.COM'))).toEqual({
      notify: ['SUCCESS', 'FAILURE'],
      orcpt: { type: 'rfc822', address: 'Bob@Example.COM' },
    });
    expect(parseDsnRcptParams(params('NOTIFY=never'))).toEqual({ notify: 'NEVER' });
    expect(parseDsnMailParams(params('SIZE=1'))).toEqual({});
  });

  it('NOTIFY: NEVER alone, known keywords, no repeats (section 4.1)', () => {
    expect(parseNotifyParam('delay,Failure')).toEqual(['DELAY', 'FAILURE']);
    for (const bad of [
      'NEVER,SUCCESS',
      'SUCCESS,,FAILURE',
      'SUCCESS,SUCCESS',
      'SOMETIMES',
      '',
      true,
    ] as const) {
      expect(errorOf(() => parseNotifyParam(bad)).keyword, String(bad)).toBe('NOTIFY');
    }
  });

  it('ORCPT: addr-type;xtext, at most 500 characters (sections 4.2, 5.4)', () => {
    expect(parseOrcptParam('rfc822;e+3Dmc2@example.com')).toEqual({
      type: 'rfc822',
      address: 'e=mc2@example.com',
    });
    for (const bad of [
      'rfc822',
      ';a@b',
      'rfc 822;a@b',
      'rfc822;',
      `rfc822;${'a'.repeat(500)}`,
      'rfc822;a+00b',
      'rfc822;a+0D+0Ab@x.org',
      'rfc822;a+c3b@x.org',
      'rfc822;a+zzb@x.org',
      'rfc822;a+C3b@x.org',
      'rfc822;a+F8b@x.org',
      'rfc822;a+C2+85b@x.org',
    ]) {
      const e = errorOf(() => parseOrcptParam(bad));
      expect([e.keyword, e.code, e.enhancedCode, e.reply.lines], bad).toEqual([
        'ORCPT',
        501,
        '5.5.4',
        ['Invalid ORCPT value'],
      ]);
    }
  });

  it('ORCPT: xtext of UTF-8 octets is decoded, as Postfix 3.7 relays a UTF-8 recipient (section 4.2)', () => {
    // "the address associated with the ORCPT keyword is NOT constrained to conform to the syntax
    // rules for that addr-type": the octets are valid UTF-8, so the value is valid.
    expect(parseOrcptParam('rfc822;b+C3+B8b@example.net')).toEqual({
      type: 'rfc822',
      address: 'bøb@example.net',
    });
    expect(parseOrcptParam('rfc822;z+C3+AB')).toEqual({ type: 'rfc822', address: 'zë' });
    expect(parseOrcptParam('rfc822;+E7+94+A8+E6+88+B7@+E4+BE+8B+E5+AD+90.+E5+B9+BF+E5+91+8A')).toEqual({
      type: 'rfc822',
      address: '用户@例子.广告',
    });
    expect(parseOrcptParam('rfc822;+F0+9F+98+80@x.org')).toEqual({ type: 'rfc822', address: '😀@x.org' });
    expect(parseDsnRcptParams(params('NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+C3+B8b@example.net'))).toEqual({
      notify: ['SUCCESS', 'FAILURE'],
      orcpt: { type: 'rfc822', address: 'bøb@example.net' },
    });
  });

  it('ORCPT: RFC 6533 utf-8 address type, utf-8-addr-xtext, utf-8-addr-unitext and utf-8-address', () => {
    // utf-8-addr-xtext (7-bit): \x{HEX} for each non-ASCII code point.
    expect(parseOrcptParam('utf-8;b\\x{F8}b@example.net')).toEqual({
      type: 'utf-8',
      address: 'bøb@example.net',
    });
    // utf-8-addr-unitext: raw UTF-8 beside escapes of + = \ (RFC 6531 section 3.3 allows UTF-8 here).
    expect(parseOrcptParam('UTF-8;bø\\x{2B}tag\\x{3D}1\\x{5C}@例子.广告')).toEqual({
      type: 'UTF-8',
      address: 'bø+tag=1\\@例子.广告',
    });
    // Every form of HEXPOINT: 2 to 6 digits, either case; a literal + (utf-8-address form).
    expect(parseOrcptParam('utf-8;\\x{e9}\\x{7528}\\x{1F600}\\x{10FFFD}+x@y')).toEqual({
      type: 'utf-8',
      address: 'é用😀\u{10FFFD}+x@y',
    });
    expect(parseDsnRcptParams(params('NOTIFY=DELAY ORCPT=utf-8;\\x{7528}\\x{6237}@\\x{4F8B}.test'))).toEqual({
      notify: ['DELAY'],
      orcpt: { type: 'utf-8', address: '用户@例.test' },
    });
    for (const bad of [
      'utf-8;',
      'utf-8;a\\b@x',
      'utf-8;a\\x{}@x',
      'utf-8;a\\x{F}@x',
      'utf-8;a\\x{1234567}@x',
      'utf-8;a\\x{110000}@x',
      'utf-8;a\\x{D800}@x',
      'utf-8;a\\x{DFFF}@x',
      'utf-8;a\\x{F8@x',
      'utf-8;a\\x{0D}\\x{0A}b@x',
      'utf-8;a\\x{85}b@x',
      'utf-8;a\\x{00}b@x',
      'utf-8;a\x01b@x',
    ]) {
      expect(errorOf(() => parseOrcptParam(bad)).reply, bad).toEqual({
        code: 501,
        enhancedCode: '5.5.4',
        lines: ['Invalid ORCPT value'],
      });
    }
  });

  it('utf-8-addr-xtext encoding (RFC 6533 section 3): QCHAR as is, the rest as \\x{HEX}', () => {
    expect(utf8AddrXtextEncode('bøb@example.net')).toBe('b\\x{F8}b@example.net');
    expect(utf8AddrXtextEncode('a+b=c\\d e@x')).toBe('a\\x{2B}b\\x{3D}c\\x{5C}d\\x{20}e@x');
    expect(utf8AddrXtextEncode('用😀\u{10FFFD}')).toBe('\\x{7528}\\x{1F600}\\x{10FFFD}');
    expect(utf8AddrXtextEncode('plain.ascii!#$%&*/?^_`{|}~@x.org')).toBe('plain.ascii!#$%&*/?^_`{|}~@x.org');
    const unicode = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' });
    fc.assert(
      fc.property(unicode, (s) => {
        const encoded = utf8AddrXtextEncode(s);
        expect(encoded).toMatch(/^[\x21-\x7e]+$/);
        expect(utf8AddrDecode(encoded)).toBe(s);
      }),
    );
  });

  it('RET and ENVID limits (sections 4.3, 4.4, 5.4)', () => {
    expect(errorOf(() => parseDsnMailParams(params('RET=BODY'))).keyword).toBe('RET');
    expect(parseDsnMailParams(params(`ENVID=${'x'.repeat(100)}`)).envid).toHaveLength(100);
    expect(errorOf(() => parseDsnMailParams(params(`ENVID=${'x'.repeat(101)}`))).keyword).toBe('ENVID');
    expect(errorOf(() => parseDsnMailParams(params('ENVID=a+0Ab'))).keyword).toBe('ENVID');
  });

  it('client formatting round-trips through the server parsers', () => {
    expect(formatDsnMailParams({ ret: 'HDRS', envid: 'QQ314159' })).toBe(' RET=HDRS ENVID=QQ314159');
    expect(formatDsnMailParams({})).toBe('');
    expect(formatDsnRcptParams({ notify: ['SUCCESS', 'FAILURE'], orcpt: 'Bob@Example.COM' })).toBe(
      ' NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Example.COM',
    );
    expect(formatDsnRcptParams({ notify: 'NEVER' })).toBe(' NOTIFY=NEVER');
    expect(formatDsnRcptParams({ orcpt: { type: 'rfc822', address: 'a+b=c@x.org' } })).toBe(
      ' ORCPT=rfc822;a+2Bb+3Dc@x.org',
    );
    const printable = fc.string({
      minLength: 1,
      maxLength: 30,
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    });
    fc.assert(
      fc.property(
        printable,
        printable,
        fc.constantFrom<'FULL' | 'HDRS'>('FULL', 'HDRS'),
        (envid, address, ret) => {
          expect(parseDsnMailParams(params(formatDsnMailParams({ ret, envid })))).toEqual({ ret, envid });
          expect(
            parseDsnRcptParams(params(formatDsnRcptParams({ notify: ['DELAY'], orcpt: address }))),
          ).toEqual({
            notify: ['DELAY'],
            orcpt: { type: 'rfc822', address },
          });
        },
      ),
    );
  });

  it('client ORCPT for a non-ASCII recipient: utf-8;utf-8-addr-xtext (RFC 6533 section 3)', () => {
    expect(formatDsnRcptParams({ notify: ['FAILURE'], orcpt: 'bøb@example.net' })).toBe(
      ' NOTIFY=FAILURE ORCPT=utf-8;b\\x{F8}b@example.net',
    );
    expect(formatDsnRcptParams({ orcpt: '用户+1@例子.广告' })).toBe(
      ' ORCPT=utf-8;\\x{7528}\\x{6237}\\x{2B}1@\\x{4F8B}\\x{5B50}.\\x{5E7F}\\x{544A}',
    );
    // An explicit utf-8 type is honoured for an ASCII address too.
    expect(formatDsnRcptParams({ orcpt: { type: 'utf-8', address: 'a+b@x.org' } })).toBe(
      ' ORCPT=utf-8;a\\x{2B}b@x.org',
    );
    const address = fc
      .string({ minLength: 1, maxLength: 30, unit: 'grapheme' })
      .filter((s) => !/[\x00-\x1f\x7f-\x9f]/.test(s));
    fc.assert(
      fc.property(address, (a) => {
        const type = /^[\x20-\x7e]*$/.test(a) ? 'rfc822' : 'utf-8';
        const line = formatDsnRcptParams({ orcpt: a });
        expect(line).toMatch(/^ ORCPT=[\x21-\x7e]+$/);
        expect(parseDsnRcptParams(params(line))).toEqual({ orcpt: { type, address: a } });
      }),
    );
  });

  it('client formatting refuses what the parameters cannot carry', () => {
    expect(() => formatDsnMailParams({ envid: 'a\r\nb' })).toThrow(SmtpMessageError);
    expect(() => formatDsnMailParams({ envid: 'é' })).toThrow(SmtpMessageError);
    expect(() => formatDsnMailParams({ envid: ' '.repeat(40) })).toThrow(SmtpMessageError);
    expect(() => formatDsnRcptParams({ notify: [] })).toThrow(SmtpMessageError);
    expect(() => formatDsnRcptParams({ notify: ['NEVER' as 'SUCCESS', 'SUCCESS'] })).toThrow(
      SmtpMessageError,
    );
    expect(() => formatDsnRcptParams({ orcpt: { type: 'rfc822', address: 'zoë@example.org' } })).toThrow(
      SmtpMessageError,
    );
    expect(() => formatDsnRcptParams({ orcpt: 'a\r\nRSET@x.org' })).toThrow(SmtpMessageError);
    expect(() => formatDsnRcptParams({ orcpt: { type: 'utf-8', address: 'ø\n@x' } })).toThrow(
      SmtpMessageError,
    );
    expect(() => formatDsnRcptParams({ orcpt: '' })).toThrow(SmtpMessageError);
    expect(() => formatDsnRcptParams({ orcpt: `${'ø'.repeat(100)}@x.org` })).toThrow(SmtpMessageError);
  });
});
