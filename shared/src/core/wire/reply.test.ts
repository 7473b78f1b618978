import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmtpConfigError, SmtpError, SmtpProtocolError } from '../errors.ts';
import { type EnhancedCode, reply, type SmtpReply } from '../status.ts';
import { formatReply, parseEhloKeywords, ReplyParser } from './reply.ts';

function parseAll(wire: string, parser = new ReplyParser()): SmtpReply[] {
  const out: SmtpReply[] = [];
  const lines = wire.split('\r\n');
  expect(lines.pop()).toBe('');
  for (const line of lines) {
    const r = parser.pushLine(line);
    if (r !== null) out.push(r);
  }
  return out;
}

describe('formatReply', () => {
  it('formats single and multi-line replies with the enhanced code on every line', () => {
    expect(formatReply(reply(250, '2.1.0', 'Sender OK'))).toBe('250 2.1.0 Sender OK\r\n');
    expect(formatReply(reply(550, '5.1.1', ['No such user', 'try again']))).toBe(
      '550-5.1.1 No such user\r\n550 5.1.1 try again\r\n',
    );
    expect(formatReply(reply(250, null, ['mx.example.org', 'PIPELINING', '8BITMIME']))).toBe(
      '250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n',
    );
  });

  it('writes a text-less reply as the bare code (RFC 5321 section 4.2)', () => {
    expect(formatReply(reply(250, null, ''))).toBe('250\r\n');
    expect(formatReply(reply(250, null, ['', '']))).toBe('250-\r\n250\r\n');
    expect(formatReply(reply(250, '2.0.0', ''))).toBe('250 2.0.0\r\n');
    expect(formatReply({ code: 354, enhancedCode: null, lines: [] })).toBe('354\r\n');
    // RFC 4954 section 4: an empty challenge is "334 " with the space.
    expect(formatReply(reply(334, null, ''))).toBe('334 \r\n');
  });

  it('refuses CR, LF and other controls in the text (reply injection)', () => {
    for (const bad of ['a\r\n250 fake', 'a\rb', 'a\nb', 'nul\0', 'esc\x1b', 'del\x7f']) {
      expect(() => formatReply({ code: 250, enhancedCode: null, lines: [bad] }), bad).toThrow(
        SmtpConfigError,
      );
    }
    expect(formatReply(reply(250, null, 'tab\there é'))).toBe('250 tab\there é\r\n');
  });

  it('refuses codes outside 2yz..5yz and mismatched enhanced codes', () => {
    for (const code of [199, 600, 260, 0, 250.5, Number.NaN]) {
      expect(() => formatReply(reply(code, null, 'x')), String(code)).toThrow(SmtpConfigError);
    }
    expect(() => formatReply(reply(550, '2.0.0', 'x'))).toThrow(SmtpConfigError);
    expect(() => formatReply(reply(250, '2.0' as EnhancedCode, 'x'))).toThrow(SmtpConfigError);
  });

  it('refuses lines over 512 octets, counting UTF-8 octets and CRLF', () => {
    expect(formatReply(reply(250, null, 'x'.repeat(506)))).toHaveLength(512);
    expect(() => formatReply(reply(250, null, 'x'.repeat(507)))).toThrow(SmtpConfigError);
    expect(() => formatReply(reply(250, null, 'é'.repeat(254)))).toThrow(SmtpConfigError);
    expect(formatReply(reply(250, null, 'x'.repeat(600)), { maxLineLength: 1000 })).toHaveLength(606);
  });
});

describe('ReplyParser', () => {
  it('parses single-line replies with and without enhanced codes', () => {
    const p = new ReplyParser();
    expect(p.pushLine('220 mx.example.org ESMTP ready')).toEqual({
      code: 220,
      enhancedCode: null,
      lines: ['mx.example.org ESMTP ready'],
    });
    expect(p.pushLine('250 2.1.5 Recipient OK')).toEqual({
      code: 250,
      enhancedCode: '2.1.5',
      lines: ['Recipient OK'],
    });
    expect(p.pushLine('550 5.7.1')).toEqual({ code: 550, enhancedCode: '5.7.1', lines: [''] });
  });

  it('a bare code is a reply with empty text', () => {
    expect(new ReplyParser().pushLine('250')).toEqual({ code: 250, enhancedCode: null, lines: [''] });
    expect(new ReplyParser().pushLine('250 ')).toEqual({ code: 250, enhancedCode: null, lines: [''] });
  });

  it('assembles multi-line replies and strips the repeated enhanced code', () => {
    const p = new ReplyParser();
    expect(p.pushLine('550-5.1.1 The email account that you tried to reach')).toBeNull();
    expect(p.pending).toBe(true);
    expect(p.pushLine('550-5.1.1 does not exist.')).toBeNull();
    expect(p.pushLine('550 5.1.1 Please try again')).toEqual({
      code: 550,
      enhancedCode: '5.1.1',
      lines: ['The email account that you tried to reach', 'does not exist.', 'Please try again'],
    });
    expect(p.pending).toBe(false);
  });

  it('only takes an enhanced code whose class matches the reply code', () => {
    expect(new ReplyParser().pushLine('250 5.0.0 odd')).toEqual({
      code: 250,
      enhancedCode: null,
      lines: ['5.0.0 odd'],
    });
    expect(new ReplyParser().pushLine('354 3.0.0 go')).toEqual({
      code: 354,
      enhancedCode: null,
      lines: ['3.0.0 go'],
    });
    expect(new ReplyParser().pushLine('250 2.0.0x')).toEqual({
      code: 250,
      enhancedCode: null,
      lines: ['2.0.0x'],
    });
    expect(new ReplyParser({ enhanced: false }).pushLine('250 2.0.0 ok')).toEqual({
      code: 250,
      enhancedCode: null,
      lines: ['2.0.0 ok'],
    });
  });

  it('throws SmtpProtocolError on garbled lines and recovers afterwards', () => {
    for (const bad of [
      '',
      '25',
      '2500 x',
      '250x',
      '199 x',
      '600 x',
      '260 x',
      'abc def',
      ' 250 x',
      '250\tx',
    ]) {
      const p = new ReplyParser();
      expect(() => p.pushLine(bad), bad).toThrow(SmtpProtocolError);
      expect(p.pushLine('250 ok')).toEqual({ code: 250, enhancedCode: null, lines: ['ok'] });
    }
  });

  it('throws when a continuation changes the code', () => {
    const p = new ReplyParser();
    p.pushLine('250-first');
    expect(() => p.pushLine('251 second')).toThrow(SmtpProtocolError);
    expect(p.pending).toBe(false);
  });

  it('bounds lines and line length', () => {
    const p = new ReplyParser({ maxLines: 3, maxLineLength: 20 });
    p.pushLine('250-a');
    p.pushLine('250-b');
    p.pushLine('250-c');
    expect(() => p.pushLine('250 d')).toThrow(SmtpProtocolError);
    expect(() => p.pushLine(`250 ${'x'.repeat(17)}`)).toThrow(SmtpProtocolError);
    expect(p.pushLine(`250 ${'x'.repeat(16)}`)?.code).toBe(250);
  });

  it('parses whatever formatReply makes', () => {
    const code = fc
      .tuple(fc.integer({ min: 2, max: 5 }), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 9 }))
      .map(([a, b, c]) => a * 100 + b * 10 + c);
    const text = fc
      .string({ maxLength: 60, unit: 'grapheme' })
      .filter((s) => !/[\x00-\x08\x0a-\x1f\x7f]/.test(s));
    fc.assert(
      fc.property(
        code,
        fc.boolean(),
        fc.integer({ min: 0, max: 999 }),
        fc.array(text, { minLength: 1, maxLength: 5 }),
        (c, withEnhanced, detail, lines) => {
          const cls = Math.floor(c / 100);
          const enhanced = withEnhanced && cls !== 3 ? (`${cls}.1.${detail}` as EnhancedCode) : null;
          // Text that itself starts with an enhanced code would be read as one when none is sent.
          const safe = enhanced === null ? lines.map((l) => l.replace(/^[245]\./, 'x')) : lines;
          const r: SmtpReply = { code: c, enhancedCode: enhanced, lines: safe };
          const [parsed] = parseAll(formatReply(r, { maxLineLength: 10_000 }));
          expect(parsed).toEqual(r);
        },
      ),
    );
  });

  it('never throws anything but SmtpError on arbitrary lines', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 30 }), { maxLength: 10 }), (lines) => {
        const p = new ReplyParser({ maxLines: 4, maxLineLength: 25 });
        for (const line of lines) {
          try {
            const r = p.pushLine(line);
            if (r !== null) expect(r.lines.length).toBeGreaterThan(0);
          } catch (e) {
            expect(e).toBeInstanceOf(SmtpError);
          }
        }
      }),
    );
  });
});

describe('parseEhloKeywords', () => {
  it('maps upper-cased keywords to parameters and skips the greeting line', () => {
    const [ehlo] = parseAll(
      '250-mx.example.org Hello [127.0.0.1]\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-auth PLAIN LOGIN\r\n' +
        '250-AUTH=LOGIN PLAIN\r\n250-AUTH CRAM-MD5\r\n250-8BITMIME\r\n250-  \r\n250 SMTPUTF8\r\n',
      new ReplyParser({ enhanced: false }),
    );
    const kw = parseEhloKeywords(ehlo!);
    expect([...kw.keys()]).toEqual(['PIPELINING', 'SIZE', 'AUTH', '8BITMIME', 'SMTPUTF8']);
    expect(kw.get('SIZE')).toEqual(['35882577']);
    expect(kw.get('AUTH')).toEqual(['PLAIN', 'LOGIN', 'CRAM-MD5']);
    expect(kw.get('PIPELINING')).toEqual([]);
    expect(kw.has('MX.EXAMPLE.ORG')).toBe(false);
  });

  it('a one-line EHLO reply has no extensions', () => {
    expect(parseEhloKeywords(reply(250, null, 'mx.example.org')).size).toBe(0);
  });
});
