import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BdatChunk, parseBdatArgs } from './bdat.ts';

describe('parseBdatArgs', () => {
  it('parses size and LAST', () => {
    expect(parseBdatArgs('1024')).toEqual({ kind: 'bdat', size: 1024n, last: false });
    expect(parseBdatArgs('0 LAST')).toEqual({ kind: 'bdat', size: 0n, last: true });
    expect(parseBdatArgs('12 last')).toEqual({ kind: 'bdat', size: 12n, last: true });
  });

  it('parses sizes beyond 2^63 without losing precision', () => {
    expect(parseBdatArgs('9223372036854775808')).toEqual({ kind: 'bdat', size: 2n ** 63n, last: false });
    expect(parseBdatArgs('9'.repeat(400))).toMatchObject({ kind: 'bdat', size: 10n ** 400n - 1n });
  });

  it('refuses anything else', () => {
    for (const bad of ['', 'LAST', '-1', '1.5', '0x10', '10 LAST extra', '10 FIRST', '+5', '1e3']) {
      expect(parseBdatArgs(bad)).toEqual({ kind: 'error' });
    }
  });

  it('never throws', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(['bdat', 'error']).toContain(parseBdatArgs(s).kind);
      }),
    );
  });
});

describe('BdatChunk', () => {
  it('takes exactly the declared octets across pushes', () => {
    const c = new BdatChunk(5n, true);
    const a = c.take(Uint8Array.of(1, 2, 3));
    expect([...a.data]).toEqual([1, 2, 3]);
    expect(a.done).toBe(false);
    const b = c.take(Uint8Array.of(4, 5, 6, 7));
    expect([...b.data]).toEqual([4, 5]);
    expect(b.consumed).toBe(2);
    expect(b.done).toBe(true);
    expect(c.take(Uint8Array.of(8)).consumed).toBe(0);
  });

  it('counts down a 2^63 chunk without allocating it', () => {
    const c = new BdatChunk(2n ** 63n, false);
    expect(c.want(65536)).toBe(65536);
    c.take(new Uint8Array(65536));
    expect(c.remaining).toBe(2n ** 63n - 65536n);
  });

  it('a zero-size chunk is complete at once', () => {
    const c = new BdatChunk(0n, true);
    expect(c.done).toBe(true);
    expect(c.want(10)).toBe(0);
  });
});
