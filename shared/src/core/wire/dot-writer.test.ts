import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmtpMessageError } from '../errors.ts';
import { DotWriter, dotStuff } from './dot-writer.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const ascii = (s: string) => dec.decode(dotStuff(enc.encode(s)));

function feed(w: DotWriter, parts: Uint8Array[]): Uint8Array {
  const outs = parts.map((p) => w.write(p));
  outs.push(w.end());
  const total = outs.reduce((n, o) => n + o.length, 0);
  const all = new Uint8Array(total);
  let at = 0;
  for (const o of outs) {
    all.set(o, at);
    at += o.length;
  }
  return all;
}

/** Reverse of DATA encoding for the property test: strip the terminator and one leading dot per line. */
function unstuff(wire: string): string {
  expect(wire.endsWith('.\r\n')).toBe(true);
  const body = wire.slice(0, -3);
  return body
    .split('\r\n')
    .map((l) => (l.startsWith('.') ? l.slice(1) : l))
    .join('\r\n');
}

describe('DotWriter (RFC 5321 sections 4.5.2 and 2.3.8)', () => {
  it('stuffs a leading dot, including on the first line and a lone dot line', () => {
    expect(ascii('.a\r\nb\r\n.\r\n..x\r\n')).toBe('..a\r\nb\r\n..\r\n...x\r\n.\r\n');
  });

  it('does not stuff dots inside a line', () => {
    expect(ascii('a.b\r\n a .\r\n')).toBe('a.b\r\n a .\r\n.\r\n');
  });

  it('normalizes bare LF and bare CR to CRLF', () => {
    expect(ascii('a\nb\rc\r\n\n')).toBe('a\r\nb\r\nc\r\n\r\n.\r\n');
  });

  it('turns an embedded <CRLF>.<CRLF> into a stuffed line, never an early end', () => {
    expect(ascii('x\r\n.\r\ny')).toBe('x\r\n..\r\ny\r\n.\r\n');
    expect(ascii('x\n.\ny')).toBe('x\r\n..\r\ny\r\n.\r\n');
    expect(ascii('x\r.\ry')).toBe('x\r\n..\r\ny\r\n.\r\n');
  });

  it('completes a last line without CRLF and handles an empty body', () => {
    expect(ascii('abc')).toBe('abc\r\n.\r\n');
    expect(ascii('')).toBe('.\r\n');
    expect(ascii('abc\r')).toBe('abc\r\n.\r\n');
  });

  it('gives the same bytes whatever the chunking, including CR|LF and line-start dots split across chunks', () => {
    const text = enc.encode('H: v\r\n\r\n.dot\r\nline\r.\nend\n.');
    const whole = dotStuff(text);
    for (let i = 0; i <= text.length; i++) {
      const split = feed(new DotWriter(), [text.subarray(0, i), text.subarray(i)]);
      expect(dec.decode(split)).toBe(dec.decode(whole));
    }
    const byteByByte = feed(
      new DotWriter(),
      [...text].map((b) => Uint8Array.of(b)),
    );
    expect(byteByByte).toEqual(whole);
  });

  it('accepts a 998-octet line and refuses a 999-octet one with SmtpMessageError(body)', () => {
    expect(() => dotStuff(enc.encode(`${'a'.repeat(998)}\r\n`))).not.toThrow();
    // the duplicated dot does not count (RFC 5321 section 4.5.3.1.6)
    expect(() => dotStuff(enc.encode(`.${'a'.repeat(997)}\r\n`))).not.toThrow();
    let err: unknown;
    try {
      dotStuff(enc.encode(`ok\r\n${'b'.repeat(999)}\r\n`));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SmtpMessageError);
    expect((err as SmtpMessageError).field).toBe('body');
    expect((err as SmtpMessageError).kind).toBe('message');
    expect((err as Error).message).toContain('line 2');
  });

  it('counts line length across chunks', () => {
    const w = new DotWriter();
    w.write(enc.encode('a'.repeat(500)));
    expect(() => w.write(enc.encode('a'.repeat(499)))).toThrow(SmtpMessageError);
  });

  it('refuses NUL in text mode', () => {
    expect(() => dotStuff(Uint8Array.of(0x61, 0x00, 0x62))).toThrow(/NUL/);
  });

  it('reports 8-bit octets and whether they are in the header section', () => {
    const w = new DotWriter();
    feed(w, [enc.encode('Subject: hi\r\n\r\nhé\r\n')]);
    expect(w.eightBit).toBe(true);
    expect(w.headerEightBit).toBe(false);
    const h = new DotWriter();
    feed(h, [enc.encode('Subject: hé\r\n\r\nx\r\n')]);
    expect(h.headerEightBit).toBe(true);
    const a = new DotWriter();
    feed(a, [enc.encode('Subject: x\r\n\r\ny\r\n')]);
    expect(a.eightBit).toBe(false);
  });

  it('BDAT mode normalizes without stuffing or terminator', () => {
    const out = dotStuff(enc.encode('.a\nb'), { dotStuff: false });
    expect(dec.decode(out)).toBe('.a\r\nb\r\n');
  });

  it('binary mode passes bytes through unchanged', () => {
    const bytes = Uint8Array.of(0, 10, 13, 46, 255);
    const w = new DotWriter({ mode: 'binary' });
    expect(feed(w, [bytes])).toEqual(bytes);
  });

  it('property: the output never contains a bare CR/LF or an early terminator, and unstuffs to the normalized input', () => {
    const alphabet = fc.constantFrom('a', '.', '\r', '\n', ' ', 'é');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 200 }), fc.nat(200), (chars, cut) => {
        const input = enc.encode(chars.join(''));
        const at = Math.min(cut, input.length);
        const wire = dec.decode(feed(new DotWriter(), [input.subarray(0, at), input.subarray(at)]));
        // every CR is followed by LF and every LF preceded by CR
        expect(/\r(?!\n)|(?<!\r)\n/.test(wire)).toBe(false);
        // <CRLF>.<CRLF> appears only at the very end
        const first = `\r\n${wire}`.indexOf('\r\n.\r\n');
        expect(first).toBe(wire.length - 3);
        const normalized = chars.join('').replace(/\r\n|\r|\n/g, '\r\n');
        const expected = normalized === '' || normalized.endsWith('\r\n') ? normalized : `${normalized}\r\n`;
        expect(unstuff(wire)).toBe(expected);
      }),
    );
  });
});
