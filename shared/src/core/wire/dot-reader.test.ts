import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DotReader } from './dot-reader.ts';

const enc = new TextEncoder();
const bytes = (s: string): Uint8Array => enc.encode(s);
const text = (b: Uint8Array): string => new TextDecoder('latin1').decode(b);

/** Sender side of RFC 5321 section 4.5.2 for a message whose lines end in CRLF. */
function stuff(message: Uint8Array): Uint8Array {
  const out: number[] = [];
  let lineStart = true;
  for (let i = 0; i < message.length; i++) {
    const b = message[i]!;
    if (lineStart && b === 0x2e) out.push(0x2e);
    out.push(b);
    lineStart = b === 0x0a && i > 0 && message[i - 1] === 0x0d;
  }
  out.push(0x2e, 0x0d, 0x0a);
  return Uint8Array.from(out);
}

/** Feed `wire` split at `cuts`; return output, total consumed and done. */
function feed(reader: DotReader, wire: Uint8Array, cuts: number[]) {
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let consumed = 0;
  let done = false;
  let prev = 0;
  for (const p of [...points, wire.length]) {
    if (p < prev) continue;
    const r = reader.push(wire.subarray(prev, p));
    parts.push(r.data);
    consumed += r.consumed;
    if (r.done) {
      done = true;
      break;
    }
    prev = p;
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { out, consumed, done };
}

/**
 * Reference model: the reader as a plain octet-at-a-time state machine (how the reader worked
 * before its line-at-a-time fast path). The real reader must agree with it on every input and
 * every split.
 */
function reference(wire: Uint8Array, normalize: boolean) {
  const out: number[] = [];
  let state: 'start' | 'dot' | 'dot-cr' | 'text' | 'cr' = 'start';
  let line = 0;
  let longestLine = 0;
  let bareCr = false;
  let bareLf = false;
  const endLine = (length: number): void => {
    longestLine = Math.max(longestLine, length);
    line = 0;
  };
  let i = 0;
  while (i < wire.length) {
    const b = wire[i]!;
    if (state === 'start') {
      state = b === 0x2e ? 'dot' : 'text';
      if (b === 0x2e) i++;
    } else if (state === 'dot') {
      state = b === 0x0d ? 'dot-cr' : 'text';
      if (b === 0x0d) i++;
    } else if (state === 'dot-cr') {
      if (b === 0x0a) {
        const data = Uint8Array.from(out);
        return { data, consumed: i + 1, done: true, bytes: data.length, bareCr, bareLf, longestLine };
      }
      out.push(0x0d);
      state = 'cr';
    } else if (state === 'text') {
      i++;
      if (b === 0x0d) {
        out.push(0x0d);
        state = 'cr';
      } else if (b === 0x0a) {
        bareLf = true;
        if (normalize) out.push(0x0d);
        out.push(0x0a);
        endLine(line + (normalize ? 2 : 1));
      } else {
        out.push(b);
        line++;
      }
    } else if (b === 0x0a) {
      i++;
      out.push(0x0a);
      endLine(line + 2);
      state = 'start';
    } else {
      bareCr = true;
      if (normalize) {
        out.push(0x0a);
        endLine(line + 2);
      } else {
        line++;
      }
      state = 'text';
    }
  }
  longestLine = Math.max(longestLine, line);
  const data = Uint8Array.from(out);
  return { data, consumed: wire.length, done: false, bytes: data.length, bareCr, bareLf, longestLine };
}

function run(wire: string, options?: ConstructorParameters<typeof DotReader>[0]) {
  const r = new DotReader(options);
  const res = r.push(bytes(wire));
  return { reader: r, data: text(res.data), consumed: res.consumed, done: res.done };
}

describe('DotReader', () => {
  it('ends on <CRLF>.<CRLF> and removes stuffing dots', () => {
    const r = run('Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n');
    expect(r.data).toBe('Subject: x\r\n\r\n.dot\r\n');
    expect(r.done).toBe(true);
    expect(r.consumed).toBe('Subject: x\r\n\r\n..dot\r\n.\r\n'.length);
  });

  it('accepts an empty message (".<CRLF>" right after the 354)', () => {
    const r = run('.\r\nNOOP\r\n');
    expect(r.data).toBe('');
    expect(r.done).toBe(true);
    expect(r.consumed).toBe(3);
  });

  it('keeps a lone leading dot line when it is stuffed', () => {
    expect(run('..\r\n.\r\n').data).toBe('.\r\n');
  });

  it.each([
    ['a\n.\nMAIL FROM:<x>\n', 'LF.LF'],
    ['a\r\n.\nRCPT TO:<x>\r\n', 'CRLF.LF'],
    ['a\n.\r\nRSET\r\n', 'LF.CRLF'],
    ['a\r.\rQUIT\r', 'CR.CR'],
    ['a\r.\r\nQUIT\r\n', 'CR.CRLF'],
    ['a\r\n.\rQUIT\r\n', 'CRLF.CR'],
    ['a\r\n .\r\nQUIT\r\n', 'CRLF SP.CRLF'],
  ])('never treats %j (%s) as the end and flags bare line endings', (wire) => {
    const r = run(wire);
    expect(r.done).toBe(false);
    expect(r.consumed).toBe(wire.length);
    expect(r.reader.bareCr || r.reader.bareLf || wire.includes(' .')).toBe(true);
  });

  it('passes bare CR and LF through in keep mode and reports them', () => {
    const r = run('a\nb\rc\r\n.\r\n');
    expect(r.data).toBe('a\nb\rc\r\n');
    expect(r.reader.bareLf).toBe(true);
    expect(r.reader.bareCr).toBe(true);
  });

  it('normalizes bare CR and LF to CRLF in normalize mode, ending only at a real CRLF.CRLF', () => {
    const r = run('a\nb\rc\r\r\n\n.\n.\r\n', { bareLineEndings: 'normalize' });
    expect(r.done).toBe(false);
    expect(r.data).toBe('a\r\nb\r\nc\r\n\r\n\r\n.\r\n.\r\n');
    const end = r.reader.push(bytes('\r\n.\r\n'));
    expect(end.done).toBe(true);
  });

  it('reports the longest line including its CRLF, not counting the stuffing dot', () => {
    const r = run(`${'x'.repeat(998)}\r\n..${'y'.repeat(997)}\r\n.\r\n`);
    expect(r.reader.longestLine).toBe(1000);
    const r2 = run(`${'x'.repeat(999)}\r\n.\r\n`);
    expect(r2.reader.longestLine).toBe(1001);
  });

  it('reads nothing after the end', () => {
    const r = new DotReader();
    expect(r.push(bytes('.\r\n')).done).toBe(true);
    const again = r.push(bytes('MAIL FROM:<a@b>\r\n'));
    expect(again).toMatchObject({ consumed: 0, done: true });
    expect(again.data.length).toBe(0);
  });

  it('handles the end sequence split one octet at a time', () => {
    const r = new DotReader();
    const wire = bytes('hi\r\n.\r\nX');
    let out = '';
    let consumed = 0;
    for (let i = 0; i < wire.length; i++) {
      const res = r.push(wire.subarray(i, i + 1));
      out += text(res.data);
      consumed += res.consumed;
      if (res.done) break;
    }
    expect(out).toBe('hi\r\n');
    expect(consumed).toBe(7);
    expect(r.bytes).toBe(4);
  });

  it('property: any CRLF message, stuffed and split anywhere, comes out identical', () => {
    const lineChars = fc.constantFrom(0x2e, 0x0d, 0x0a, 0x41, 0x00, 0xff, 0x20);
    const message = fc
      .array(
        fc.oneof(
          fc.uint8Array({ maxLength: 20 }),
          fc.array(lineChars, { maxLength: 12 }).map((a) => Uint8Array.from(a)),
        ),
        {
          maxLength: 12,
        },
      )
      .map((parts) => {
        const lines = parts.map((p) => [...p, 0x0d, 0x0a]);
        return Uint8Array.from(lines.flat());
      });
    fc.assert(
      fc.property(
        message,
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.uint8Array({ maxLength: 8 }),
        (m, cuts, trailer) => {
          const stuffed = stuff(m);
          const wire = new Uint8Array(stuffed.length + trailer.length);
          wire.set(stuffed);
          wire.set(trailer, stuffed.length);
          const reader = new DotReader();
          const { out, consumed, done } = feed(reader, wire, cuts);
          expect(done).toBe(true);
          expect(consumed).toBe(stuffed.length);
          expect(out).toEqual(m);
          expect(reader.bytes).toBe(m.length);
          const s = text(m);
          expect(reader.bareLf).toBe(/(^|[^\r])\n/.test(s));
          expect(reader.bareCr).toBe(/\r(?!\n)/.test(s));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('property: input without <CRLF>.<CRLF> (and not starting ".<CRLF>") never ends, whatever the split', () => {
    const chars = fc.constantFrom(0x2e, 0x0d, 0x0a, 0x41);
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 6 }), (arr, cuts) => {
        const wire = Uint8Array.from(arr);
        const s = text(wire);
        fc.pre(!s.includes('\r\n.\r\n') && !s.startsWith('.\r\n'));
        for (const mode of ['keep', 'normalize'] as const) {
          const { done, consumed } = feed(new DotReader({ bareLineEndings: mode }), wire, cuts);
          expect(done).toBe(false);
          expect(consumed).toBe(wire.length);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('property: agrees with the octet-at-a-time reference model for any input and any split', () => {
    const octet = fc.oneof(fc.constantFrom(0x2e, 0x0d, 0x0a, 0x41), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(fc.array(octet, { maxLength: 80 }), fc.array(fc.nat(), { maxLength: 8 }), (arr, cuts) => {
        const wire = Uint8Array.from(arr);
        for (const mode of ['keep', 'normalize'] as const) {
          const want = reference(wire, mode === 'normalize');
          const reader = new DotReader({ bareLineEndings: mode });
          const got = feed(reader, wire, cuts);
          expect(got.out).toEqual(want.data);
          expect(got.consumed).toBe(want.consumed);
          expect(got.done).toBe(want.done);
          expect(reader.bytes).toBe(want.bytes);
          expect(reader.bareCr).toBe(want.bareCr);
          expect(reader.bareLf).toBe(want.bareLf);
          expect(reader.longestLine).toBe(want.longestLine);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('property: agrees with the reference on long lines, at every alignment of the input in memory', () => {
    // Mostly text with a few CR, LF and dots, long enough for the word-at-a-time scan.
    const octet = fc.oneof(
      { weight: 30, arbitrary: fc.constant(0x41) },
      { weight: 1, arbitrary: fc.constantFrom(0x2e, 0x0d, 0x0a, 0x00, 0xff, 0x8d, 0x8a) },
    );
    fc.assert(
      fc.property(
        fc.array(octet, { minLength: 60, maxLength: 700 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        fc.integer({ min: 0, max: 7 }),
        (arr, cuts, offset) => {
          const backing = new Uint8Array(arr.length + offset);
          backing.set(arr, offset);
          const wire = backing.subarray(offset);
          for (const mode of ['keep', 'normalize'] as const) {
            const want = reference(wire, mode === 'normalize');
            const reader = new DotReader({ bareLineEndings: mode });
            const got = feed(reader, wire, cuts);
            expect(got.out).toEqual(want.data);
            expect(got.consumed).toBe(want.consumed);
            expect(got.done).toBe(want.done);
            expect([reader.bareCr, reader.bareLf, reader.longestLine]).toEqual([
              want.bareCr,
              want.bareLf,
              want.longestLine,
            ]);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('hands on a view of the input, without copying, when nothing is removed or inserted', () => {
    const wire = bytes('Subject: x\r\n\r\nbody line\r\n');
    const r = new DotReader().push(wire);
    expect(r.data.buffer).toBe(wire.buffer);
    expect(text(r.data)).toBe('Subject: x\r\n\r\nbody line\r\n');
    // A stuffing dot is removed: the piece is copied, the input is left as it was.
    const stuffed = bytes('a\r\n..b\r\n');
    const s = new DotReader().push(stuffed);
    expect(s.data.buffer).not.toBe(stuffed.buffer);
    expect(text(s.data)).toBe('a\r\n.b\r\n');
    expect(text(stuffed)).toBe('a\r\n..b\r\n');
  });

  it('counts a bare CR normalized to CRLF as two octets of its line', () => {
    const r = run(`${'x'.repeat(10)}\r${'y'.repeat(3)}\r\n.\r\n`, { bareLineEndings: 'normalize' });
    expect(r.data).toBe(`${'x'.repeat(10)}\r\n${'y'.repeat(3)}\r\n`);
    expect(r.reader.longestLine).toBe(12);
  });

  it('property: normalize mode output has no bare CR or LF, and splits do not change it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), fc.array(fc.nat(), { maxLength: 6 }), (body, cuts) => {
        const wire = new Uint8Array(body.length + 5);
        wire.set(body);
        wire.set(bytes('\r\n.\r\n'), body.length);
        const whole = new DotReader({ bareLineEndings: 'normalize' }).push(wire);
        const split = feed(new DotReader({ bareLineEndings: 'normalize' }), wire, cuts);
        expect(split.out).toEqual(whole.data);
        expect(split.consumed).toBe(whole.consumed);
        const s = text(whole.data);
        expect(/\r(?!\n)/.test(s) || /(^|[^\r])\n/.test(s)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});
