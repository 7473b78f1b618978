import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crlfLines, qpDecode } from './testing.ts';
import { base64Lines, isSevenBitSafe, quotedPrintableEncode } from './transfer-encoding.ts';

const enc = new TextEncoder();

describe('7bit eligibility (RFC 2045 section 2.7)', () => {
  it('accepts short printable ASCII lines only', () => {
    expect(isSevenBitSafe('Hello\r\nWorld\r\n')).toBe(true);
    expect(isSevenBitSafe('x'.repeat(76))).toBe(true);
    expect(isSevenBitSafe('x'.repeat(77))).toBe(false);
    expect(isSevenBitSafe('café')).toBe(false);
    expect(isSevenBitSafe('nul\u0000')).toBe(false);
    expect(isSevenBitSafe('trailing \r\nx')).toBe(false);
    expect(isSevenBitSafe('From me')).toBe(false);
  });
});

describe('quoted-printable (RFC 2045 section 6.7)', () => {
  it('encodes =, non-ASCII and controls as =XX with upper-case hex (rule 1)', () => {
    expect(quotedPrintableEncode('a=b é\u0001')).toBe('a=3Db =C3=A9=01');
  });

  it('encodes whitespace before a line break and at the end (rule 3)', () => {
    expect(quotedPrintableEncode('a \r\nb\t')).toBe('a=20\r\nb=09');
  });

  it('keeps hard line breaks as CRLF (rule 4)', () => {
    expect(quotedPrintableEncode('one\r\ntwo\r\n')).toBe('one\r\ntwo\r\n');
  });

  it('soft-breaks long lines at 76 characters, never inside =XX (rule 5)', () => {
    const out = quotedPrintableEncode('é'.repeat(60));
    const lines = crlfLines(out);
    for (const l of lines) {
      expect(l.length).toBeLessThanOrEqual(76);
      expect(l).toMatch(/^(=[0-9A-F]{2})*=?$/);
    }
    expect(new TextDecoder().decode(qpDecode(out))).toBe('é'.repeat(60));
  });

  it('protects a leading "." and "From " at the start of any line', () => {
    expect(quotedPrintableEncode('.\r\nFrom here\r\nFromage')).toBe('=2E\r\n=46rom here\r\nFromage');
  });

  it('with softEnd, ends in CRLF yet decodes to text without a final line break', () => {
    expect(quotedPrintableEncode('abc', true)).toBe('abc=\r\n');
    expect(quotedPrintableEncode('abc\r\n', true)).toBe('abc\r\n');
    expect(quotedPrintableEncode('', true)).toBe('');
    expect(new TextDecoder().decode(qpDecode('abc=\r\n'))).toBe('abc');
  });

  it('round-trips arbitrary text with lines of at most 76 characters (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 500 }), fc.boolean(), (raw, softEnd) => {
        const text = raw.replace(/\r\n|\r|\n/g, '\r\n');
        const out = quotedPrintableEncode(text, softEnd);
        for (const l of crlfLines(out)) expect(l.length).toBeLessThanOrEqual(76);
        expect(qpDecode(out)).toEqual(enc.encode(text));
        if (softEnd && out.length > 0) expect(out.endsWith('\r\n')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('base64 lines (RFC 2045 section 6.8)', () => {
  it('wraps at 76 characters with CRLF after every line', () => {
    const bytes = Uint8Array.from({ length: 200 }, (_, i) => i);
    const out = new TextDecoder().decode(base64Lines(bytes));
    const lines = crlfLines(out);
    expect(lines.at(-1)).toBe('');
    expect(lines.slice(0, -2).every((l) => l.length === 76)).toBe(true);
    expect(Uint8Array.from(atob(lines.join('')), (c) => c.charCodeAt(0))).toEqual(bytes);
  });

  it('is empty for empty content', () => {
    expect(base64Lines(new Uint8Array(0))).toEqual(new Uint8Array(0));
  });

  it('matches the standard encoder for every tail length', () => {
    for (let n = 0; n < 120; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
      const lines = crlfLines(new TextDecoder().decode(base64Lines(bytes)));
      expect(lines.join('')).toBe(btoa(String.fromCharCode(...bytes)));
    }
  });
});
