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

/**
 * The specification, one octet at a time (how the writer worked before its word-wide fast path):
 * the whole output (or the first error's message) and the flags, for the equivalence property.
 */
function reference(parts: Uint8Array[], options: { dotStuff: boolean; maxLineLength: number }) {
  const out: number[] = [];
  let pendingCr = false;
  let lineLength = 0;
  let line = 1;
  let inHeader = true;
  let eightBit = false;
  let headerEightBit = false;
  let dotLines = 0;
  const endLine = () => {
    if (lineLength === 0) inHeader = false;
    lineLength = 0;
    line++;
  };
  try {
    for (const part of parts) {
      for (const b of part) {
        if (pendingCr) {
          pendingCr = false;
          out.push(13, 10);
          endLine();
          if (b === 10) continue;
        }
        if (b === 13) pendingCr = true;
        else if (b === 10) {
          out.push(13, 10);
          endLine();
        } else {
          if (b === 0) throw new Error(`NUL on line ${line}`);
          if (b === 0x2e && lineLength === 0) {
            dotLines++;
            if (options.dotStuff) out.push(0x2e);
          }
          if (b > 127) {
            eightBit = true;
            if (inHeader) headerEightBit = true;
          }
          if (++lineLength > options.maxLineLength) throw new Error(`line ${line} too long`);
          out.push(b);
        }
      }
    }
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (pendingCr || lineLength > 0) out.push(13, 10);
  if (options.dotStuff) out.push(0x2e, 13, 10);
  return { bytes: Uint8Array.from(out), eightBit, headerEightBit, dotLines };
}

/** The same facts from DotWriter, with its error messages reduced to the reference's. */
function actual(parts: Uint8Array[], options: { dotStuff: boolean; maxLineLength: number }) {
  const w = new DotWriter(options);
  const outs: Uint8Array[] = [];
  try {
    // copy each output at once: it may share memory with the input
    for (const part of parts) outs.push(w.write(part).slice());
    outs.push(w.end());
  } catch (err) {
    expect(err).toBeInstanceOf(SmtpMessageError);
    const m = /NUL octet on line (\d+)|line (\d+) of the message is longer/.exec((err as Error).message);
    return { error: m?.[1] ? `NUL on line ${m[1]}` : `line ${m?.[2]} too long` };
  }
  const bytes = new Uint8Array(outs.reduce((n, o) => n + o.length, 0));
  let at = 0;
  for (const o of outs) {
    bytes.set(o, at);
    at += o.length;
  }
  expect(w.bytesOut).toBe(bytes.length);
  return { bytes, eightBit: w.eightBit, headerEightBit: w.headerEightBit, dotLines: w.dotLines };
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

  it('property: the same output, flags and first error as the octet-by-octet specification, for any chunking and alignment', () => {
    // Octets around every boundary the word-wide scan tests: NUL, TAB, LF, CR, 13/14, DEL, 128, 255.
    const octet = fc.oneof(
      { weight: 6, arbitrary: fc.constant(0x61) },
      { weight: 3, arbitrary: fc.constantFrom(0x0d, 0x0a, 0x2e) },
      { weight: 2, arbitrary: fc.constantFrom(0x00, 0x09, 0x0c, 0x0e, 0x20, 0x7f, 0x80, 0xc3, 0xff) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
    );
    fc.assert(
      fc.property(
        fc.array(octet, { maxLength: 600 }),
        fc.array(fc.nat(600), { maxLength: 6 }),
        fc.nat(3),
        fc.boolean(),
        fc.constantFrom(998, 40, 7, 1),
        (octets, cuts, offset, stuff, maxLineLength) => {
          // The input sits at an arbitrary offset of its buffer, so words are unaligned.
          const backing = new Uint8Array(offset + octets.length);
          backing.set(octets, offset);
          const input = backing.subarray(offset);
          const points = [...new Set(cuts.map((c) => Math.min(c, input.length)))].sort((a, b) => a - b);
          const parts: Uint8Array[] = [];
          let from = 0;
          for (const p of [...points, input.length]) {
            parts.push(input.subarray(from, p));
            from = p;
          }
          const options = { dotStuff: stuff, maxLineLength };
          expect(actual(parts, options)).toEqual(reference(parts, options));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('returns an unchanged chunk without copying it, and never changes its input', () => {
    const text = enc.encode('Subject: x\r\n\r\nline one\r\nline two\r\n');
    const w = new DotWriter();
    expect(w.write(text)).toBe(text);
    const stuffed = enc.encode('a\n.b\r');
    const copy = stuffed.slice();
    expect(dec.decode(w.write(stuffed))).toBe('a\r\n..b\r');
    expect(stuffed).toEqual(copy);
    expect(dec.decode(w.end())).toBe('\n.\r\n');
  });
});
