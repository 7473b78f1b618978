import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToLatin1, concatBytes, latin1ToBytes } from '../encoding/bytes.ts';
import { InputBuffer, type LineResult } from './input.ts';

const b = (s: string) => latin1ToBytes(s);
const text = (r: LineResult | null) =>
  r === null ? null : r.kind === 'line' ? bytesToLatin1(r.line) : 'TOO-LONG';

function pushAll(buf: InputBuffer, ...parts: string[]) {
  for (const p of parts) buf.push(b(p));
}

describe('InputBuffer.readLine', () => {
  it('returns lines without CRLF, one at a time', () => {
    const buf = new InputBuffer();
    pushAll(buf, 'EHLO a\r\nMAIL FROM:<>\r\nRCPT');
    expect(text(buf.readLine(512))).toBe('EHLO a');
    expect(text(buf.readLine(512))).toBe('MAIL FROM:<>');
    expect(buf.readLine(512)).toBeNull();
    expect(buf.length).toBe(4);
    pushAll(buf, ' TO:<a@b>\r');
    expect(buf.readLine(512)).toBeNull();
    pushAll(buf, '\n');
    expect(text(buf.readLine(512))).toBe('RCPT TO:<a@b>');
    expect(buf.length).toBe(0);
  });

  it('keeps bare LF and bare CR inside a line; only CRLF ends it', () => {
    const buf = new InputBuffer();
    pushAll(buf, 'a\nb\rc\r\n');
    expect(text(buf.readLine(512))).toBe('a\nb\rc');
    pushAll(buf, '\n\r\n');
    expect(text(buf.readLine(512))).toBe('\n');
  });

  it('an empty line is a line', () => {
    const buf = new InputBuffer();
    pushAll(buf, '\r\n\r\n');
    expect(text(buf.readLine(512))).toBe('');
    expect(text(buf.readLine(512))).toBe('');
    expect(buf.readLine(512)).toBeNull();
  });

  it('maxLength counts the CRLF (RFC 5321 section 4.5.3.1.4)', () => {
    const buf = new InputBuffer();
    pushAll(buf, `${'x'.repeat(510)}\r\n`);
    expect(text(buf.readLine(512))).toBe('x'.repeat(510));
    pushAll(buf, `${'y'.repeat(511)}\r\nNOOP\r\n`);
    expect(buf.readLine(512)).toEqual({ kind: 'too-long' });
    expect(buf.discarding).toBe(false);
    expect(text(buf.readLine(512))).toBe('NOOP');
  });

  it('reports too-long as soon as maxLength octets hold no CRLF, then drops through the next CRLF', () => {
    const buf = new InputBuffer();
    pushAll(buf, 'z'.repeat(511));
    expect(buf.readLine(512)).toBeNull();
    pushAll(buf, 'z');
    expect(buf.readLine(512)).toEqual({ kind: 'too-long' });
    expect(buf.discarding).toBe(true);
    expect(buf.length).toBe(0);
    for (let i = 0; i < 100; i++) {
      pushAll(buf, 'garbage'.repeat(100));
      expect(buf.readLine(512)).toBeNull();
      expect(buf.length).toBe(0);
    }
    pushAll(buf, 'end of it\r');
    expect(buf.readLine(512)).toBeNull();
    pushAll(buf, '\nQUIT\r\n');
    expect(text(buf.readLine(512))).toBe('QUIT');
    expect(buf.discarding).toBe(false);
  });

  it('a bare LF does not end a discarded line in strict mode', () => {
    const buf = new InputBuffer();
    pushAll(buf, 'a'.repeat(20));
    expect(buf.readLine(10)).toEqual({ kind: 'too-long' });
    pushAll(buf, 'b\nc\r\nNEXT\r\n');
    expect(text(buf.readLine(10))).toBe('NEXT');
  });

  it('a CR at the end of the too-long part pairs with an LF in the next push', () => {
    const buf = new InputBuffer();
    pushAll(buf, `${'a'.repeat(19)}\r`);
    expect(buf.readLine(10)).toEqual({ kind: 'too-long' });
    pushAll(buf, '\nOK\r\n');
    expect(text(buf.readLine(10))).toBe('OK');
  });

  it('allowBareLf ends lines at LF and strips a CR before it', () => {
    const buf = new InputBuffer();
    pushAll(buf, '250-a\n250-b\r\n250 c\n');
    expect(text(buf.readLine(512, { allowBareLf: true }))).toBe('250-a');
    expect(text(buf.readLine(512, { allowBareLf: true }))).toBe('250-b');
    expect(text(buf.readLine(512, { allowBareLf: true }))).toBe('250 c');
  });

  it('switching allowBareLf re-scans what was already searched', () => {
    const buf = new InputBuffer();
    pushAll(buf, 'a\nb');
    expect(buf.readLine(512)).toBeNull();
    expect(text(buf.readLine(512, { allowBareLf: true }))).toBe('a');
  });

  it('returns a view, not a copy, when the line lies in one large chunk', () => {
    const buf = new InputBuffer();
    const big = b(`${'q'.repeat(2000)}\r\n`);
    buf.push(big);
    const r = buf.readLine(4096);
    expect(r?.kind).toBe('line');
    if (r?.kind === 'line') expect(r.line.buffer).toBe(big.buffer);
  });

  it('memory stays bounded while a peer sends an endless line', () => {
    const buf = new InputBuffer();
    const junk = new Uint8Array(65536).fill(0x41);
    let tooLong = 0;
    for (let i = 0; i < 200; i++) {
      buf.push(junk);
      if (buf.readLine(512)?.kind === 'too-long') tooLong++;
      expect(buf.length).toBeLessThanOrEqual(512);
    }
    expect(tooLong).toBe(1);
  });

  it('returns exactly the bytes pushed, whatever the split', () => {
    const line = fc.uint8Array({ maxLength: 40 }).map((a) => a.filter((x) => x !== 0x0a && x !== 0x0d));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (lines, cuts) => {
        const wire = concatBytes(lines.flatMap((l) => [l, b('\r\n')]));
        const buf = new InputBuffer();
        const got: Uint8Array[] = [];
        let at = 0;
        for (const cut of [...cuts, wire.length]) {
          const next = Math.min(wire.length, at + (cut % 17));
          buf.push(wire.slice(at, next));
          at = next;
          for (let r = buf.readLine(64); r !== null; r = buf.readLine(64)) {
            if (r.kind === 'line') got.push(r.line.slice());
          }
        }
        buf.push(wire.slice(at));
        for (let r = buf.readLine(64); r !== null; r = buf.readLine(64))
          if (r.kind === 'line') got.push(r.line.slice());
        expect(got).toEqual(lines);
        expect(buf.length).toBe(0);
      }),
    );
  });

  it('treats over-long lines the same whatever the split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'b\r', '\n', '\r\n', 'xxxxx'), { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 10 }),
        (tokens, cuts) => {
          const wire = b(tokens.join(''));
          const run = (sizes: number[]) => {
            const buf = new InputBuffer();
            const out: (string | null)[] = [];
            let at = 0;
            let i = 0;
            while (at < wire.length) {
              const next = Math.min(wire.length, at + sizes[i++ % sizes.length]!);
              buf.push(wire.slice(at, next));
              at = next;
              for (let r = buf.readLine(8); r !== null; r = buf.readLine(8)) out.push(text(r));
            }
            return out;
          };
          expect(run(cuts)).toEqual(run([wire.length || 1]));
        },
      ),
    );
  });
});

describe('InputBuffer raw reads', () => {
  it('readBytes returns up to max, zero-copy within a chunk', () => {
    const buf = new InputBuffer();
    const big = new Uint8Array(3000).map((_, i) => i & 0xff);
    buf.push(big);
    const a = buf.readBytes(1000)!;
    expect(a.length).toBe(1000);
    expect(a.buffer).toBe(big.buffer);
    expect(buf.readBytes(5000)!.length).toBe(2000);
    expect(buf.readBytes(10)).toBeNull();
  });

  it('readExactly waits until enough is buffered, then spans chunks', () => {
    const buf = new InputBuffer();
    pushAll(buf, 'abc');
    expect(buf.readExactly(5)).toBeNull();
    expect(buf.length).toBe(3);
    buf.push(new Uint8Array(2000).fill(0x7a));
    const got = buf.readExactly(5)!;
    expect(bytesToLatin1(got)).toBe('abczz');
    expect(buf.length).toBe(1998);
  });

  it('indexOf finds octets and sequences across chunk boundaries', () => {
    const buf = new InputBuffer();
    buf.push(new Uint8Array(1500).fill(0x61));
    pushAll(buf, '\r\n.');
    buf.push(new Uint8Array(1500).fill(0x62));
    buf.push(b('\r\n'));
    expect(buf.indexOf(0x0d)).toBe(1500);
    expect(buf.indexOf(0x0d, 1501)).toBe(3003);
    expect(buf.indexOf(b('\r\n.'))).toBe(1500);
    expect(buf.indexOf(b('.\r\n'))).toBe(-1);
    expect(buf.indexOf(b('a\r\n.b'))).toBe(1499);
    expect(buf.indexOf(0x63)).toBe(-1);
    buf.skip(1501);
    expect(buf.indexOf(b('\n.'))).toBe(0);
    expect(buf.peekByte(1)).toBe(0x2e);
    expect(buf.peekByte(10_000)).toBeUndefined();
    expect(buf.startsWith(b('\n.b'))).toBe(true);
    expect(bytesToLatin1(buf.peek(3))).toBe('\n.b');
  });

  it('takeAll and clear', () => {
    const buf = new InputBuffer();
    pushAll(buf, 'one', 'two');
    expect(bytesToLatin1(buf.takeAll())).toBe('onetwo');
    expect(buf.length).toBe(0);
    pushAll(buf, 'STARTTLS\r\nINJECTED\r\n');
    expect(text(buf.readLine(512))).toBe('STARTTLS');
    expect(buf.clear()).toBe(10);
    expect(buf.length).toBe(0);
    expect(buf.readLine(512)).toBeNull();
  });

  it('clear also ends a pending discard', () => {
    const buf = new InputBuffer();
    pushAll(buf, 'x'.repeat(30));
    expect(buf.readLine(10)).toEqual({ kind: 'too-long' });
    buf.clear();
    pushAll(buf, 'OK\r\n');
    expect(text(buf.readLine(10))).toBe('OK');
  });

  it('mixing raw and line reads keeps every byte in order', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.integer({ min: 1, max: 2500 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }),
        (data, pushes, reads) => {
          const buf = new InputBuffer();
          let at = 0;
          let i = 0;
          while (at < data.length) {
            const next = Math.min(data.length, at + pushes[i++ % pushes.length]!);
            buf.push(data.slice(at, next));
            at = next;
          }
          const out: Uint8Array[] = [];
          let j = 0;
          while (buf.length > 0) {
            const n = reads[j++ % reads.length]!;
            const exact = j % 2 === 0 ? buf.readExactly(Math.min(n, buf.length)) : buf.readBytes(n);
            out.push(exact!.slice());
          }
          expect(concatBytes(out)).toEqual(data);
        },
      ),
    );
  });
});
