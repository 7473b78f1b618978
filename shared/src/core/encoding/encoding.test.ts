// biome-ignore lint/style/noRestrictedImports: tests compare against Node's own implementation
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmtpError, SmtpMessageError, SmtpProtocolError } from '../errors.ts';
import { base64Decode, base64DecodedLength, base64Encode, base64Rewrap } from './base64.ts';
import {
  bytesToLatin1,
  concatBytes,
  hex,
  isAscii,
  isValidUtf8,
  latin1ToBytes,
  timingSafeEqual,
  utf8Decode,
  utf8Encode,
} from './bytes.ts';
import { hmacMd5, md5 } from './md5.ts';

const ascii = (s: string) => latin1ToBytes(s);
const unhex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => Number.parseInt(x, 16));

describe('base64', () => {
  it('encodes the RFC 4648 section 10 test vectors', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'Zg=='],
      ['fo', 'Zm8='],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg=='],
      ['fooba', 'Zm9vYmE='],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, encoded] of vectors) {
      expect(base64Encode(ascii(plain))).toBe(encoded);
      expect(bytesToLatin1(base64Decode(encoded))).toBe(plain);
    }
  });

  it('rejects malformed input with SmtpProtocolError', () => {
    for (const bad of [
      'Zg',
      'Zg=',
      'Zm9v=',
      'Z===',
      '====',
      'Zg==Zg==',
      'Zm9v\r\n',
      ' Zm9v',
      'Zm*v',
      'Zm9vé===',
      'Zh==',
    ]) {
      expect(() => base64Decode(bad), bad).toThrow(SmtpProtocolError);
    }
  });

  it('accepts whitespace only when asked', () => {
    expect(() => base64Decode('Zm9v\r\nYmFy')).toThrow(SmtpProtocolError);
    expect(bytesToLatin1(base64Decode('Zm9v\r\n Ym\tFy', { allowWhitespace: true }))).toBe('foobar');
  });

  it('round-trips arbitrary bytes and agrees with node:crypto Buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const enc = base64Encode(bytes);
        expect(enc).toBe(globalThis.Buffer.from(bytes).toString('base64'));
        expect(base64Decode(enc)).toEqual(bytes);
      }),
    );
  });

  it('encodes large inputs', () => {
    const big = new Uint8Array(100_003).map((_, i) => (i * 7) & 0xff);
    expect(base64Encode(big)).toBe(globalThis.Buffer.from(big).toString('base64'));
    expect(base64Decode(base64Encode(big))).toEqual(big);
  });

  it('decoding arbitrary strings only ever throws SmtpError', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          base64Decode(s);
        } catch (e) {
          expect(e).toBeInstanceOf(SmtpError);
        }
      }),
    );
  });
});

describe('base64 without decoding: base64DecodedLength and base64Rewrap', () => {
  /** What base64Decode says about `text` (with whitespace allowed): the octets or the error message. */
  function decodeOutcome(text: string): { bytes: Uint8Array } | { error: string } {
    try {
      return { bytes: base64Decode(text, { allowWhitespace: true }) };
    } catch (e) {
      expect(e).toBeInstanceOf(SmtpProtocolError);
      return { error: (e as Error).message };
    }
  }

  /** The message of the SmtpProtocolError `fn` throws (null when it does not throw). */
  function errorOf(fn: () => unknown): string | null {
    try {
      fn();
      return null;
    } catch (e) {
      expect(e).toBeInstanceOf(SmtpProtocolError);
      return (e as Error).message;
    }
  }

  /** The canonical encoding of `bytes` in CRLF-ended lines of `width` characters. */
  function wrapped(bytes: Uint8Array, width: number): string {
    const b64 = base64Encode(bytes);
    let out = '';
    for (let i = 0; i < b64.length; i += width) out += `${b64.slice(i, i + width)}\r\n`;
    return out;
  }

  it('re-wraps MIME-folded base64 into 76-character lines', () => {
    const bytes = new Uint8Array(200).map((_, i) => (i * 31) & 0xff);
    const folded = base64Encode(bytes).replace(/.{1,60}/g, '$&\r\n ');
    expect(bytesToLatin1(base64Rewrap(folded))).toBe(wrapped(bytes, 76));
    expect(bytesToLatin1(base64Rewrap(folded, 8))).toBe(wrapped(bytes, 8));
    expect(base64DecodedLength(folded, { allowWhitespace: true })).toBe(200);
    expect(base64Rewrap('')).toEqual(new Uint8Array(0));
    expect(() => base64Rewrap('Zg==', 10)).toThrow(RangeError);
  });

  it('refuses exactly what base64Decode refuses, with the same message', () => {
    for (const bad of [
      'Zg',
      'Zg=',
      'Zm9v=',
      'Z===',
      '====',
      'Zg==Zg==',
      'Zm*v',
      'Zm9vé===',
      'Zh==',
      'Zm9=v',
    ]) {
      const outcome = decodeOutcome(bad);
      expect('error' in outcome, bad).toBe(true);
      const message = (outcome as { error: string }).error;
      expect(
        errorOf(() => base64Rewrap(bad)),
        bad,
      ).toBe(message);
      expect(
        errorOf(() => base64DecodedLength(bad, { allowWhitespace: true })),
        bad,
      ).toBe(message);
    }
    // whitespace is skipped only when asked
    expect(() => base64DecodedLength('Zm9v\r\nYmFy')).toThrow(SmtpProtocolError);
  });

  it('property: agrees with base64Decode on any text (octets, length, or the error message)', () => {
    const char = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'),
      },
      { weight: 2, arbitrary: fc.constantFrom('=', ' ', '\t', '\r', '\n') },
      { weight: 1, arbitrary: fc.constantFrom('*', '-', '_', '\f', 'é', '\0') },
    );
    const canonical = fc.uint8Array({ maxLength: 200 }).map((b) => base64Encode(b));
    const text = fc.oneof(
      fc.array(char, { maxLength: 40 }).map((cs) => cs.join('')),
      // near-misses of valid base64: a character replaced, inserted or removed
      fc
        .tuple(canonical, fc.nat(), char, fc.constantFrom('replace', 'insert', 'remove', 'keep'))
        .map(([t, at, c, how]) => {
          const i = t.length === 0 ? 0 : at % t.length;
          if (how === 'replace') return t.slice(0, i) + c + t.slice(i + 1);
          if (how === 'insert') return t.slice(0, i) + c + t.slice(i);
          if (how === 'remove') return t.slice(0, i) + t.slice(i + 1);
          return t;
        }),
    );
    fc.assert(
      fc.property(text, fc.constantFrom(4, 76, 8), (t, width) => {
        const outcome = decodeOutcome(t);
        if ('error' in outcome) {
          expect(errorOf(() => base64Rewrap(t, width))).toBe(outcome.error);
          expect(errorOf(() => base64DecodedLength(t, { allowWhitespace: true }))).toBe(outcome.error);
        } else {
          expect(bytesToLatin1(base64Rewrap(t, width))).toBe(wrapped(outcome.bytes, width));
          expect(base64DecodedLength(t, { allowWhitespace: true })).toBe(outcome.bytes.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('utf8 and latin1', () => {
  it('round-trips UTF-8', () => {
    expect(utf8Encode('Zoë ✉')).toEqual(unhex('5a6fc3ab20e29c89'));
    expect(utf8Decode(unhex('5a6fc3ab20e29c89'))).toBe('Zoë ✉');
  });

  it('fatal decoding throws SmtpProtocolError; lenient substitutes U+FFFD', () => {
    expect(() => utf8Decode(unhex('c328'), { fatal: true })).toThrow(SmtpProtocolError);
    expect(utf8Decode(unhex('c328'))).toBe('\ufffd(');
    expect(isValidUtf8(unhex('c328'))).toBe(false);
    expect(isValidUtf8(unhex('c3ab'))).toBe(true);
  });

  it('keeps a leading BOM', () => {
    expect(utf8Decode(unhex('efbbbf41'))).toBe('\ufeffA');
  });

  it('latin1 is one char per octet, including 0x80..0x9f', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const s = bytesToLatin1(all);
    expect(s.length).toBe(256);
    expect(s.charCodeAt(0x80)).toBe(0x80);
    expect(latin1ToBytes(s)).toEqual(all);
    expect(() => latin1ToBytes('€')).toThrow(SmtpMessageError);
    const big = new Uint8Array(50_000).fill(0x41);
    expect(bytesToLatin1(big)).toBe('A'.repeat(50_000));
  });

  it('isAscii', () => {
    expect(isAscii('plain ~\x7f')).toBe(true);
    expect(isAscii('é')).toBe(false);
  });
});

describe('concatBytes, hex, timingSafeEqual', () => {
  it('concatenates', () => {
    expect(concatBytes([ascii('ab'), new Uint8Array(0), ascii('cde')])).toEqual(ascii('abcde'));
    expect(concatBytes([])).toEqual(new Uint8Array(0));
    const one = ascii('x');
    expect(concatBytes([one])).toBe(one);
  });

  it('hex is lower case, two digits per octet', () => {
    expect(hex(unhex('00ff0aa0'))).toBe('00ff0aa0');
  });

  it('timingSafeEqual', () => {
    expect(timingSafeEqual(ascii('abc'), ascii('abc'))).toBe(true);
    expect(timingSafeEqual(ascii('abc'), ascii('abd'))).toBe(false);
    expect(timingSafeEqual(ascii('abc'), ascii('ab'))).toBe(false);
    expect(timingSafeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });
});

describe('md5 (RFC 1321)', () => {
  it('matches the RFC 1321 appendix A.5 test suite', () => {
    const suite: [string, string][] = [
      ['', 'd41d8cd98f00b204e9800998ecf8427e'],
      ['a', '0cc175b9c0f1b6a831c399e269772661'],
      ['abc', '900150983cd24fb0d6963f7d28e17f72'],
      ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
      ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
      ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
      [
        '12345678901234567890123456789012345678901234567890123456789012345678901234567890',
        '57edf4a22be3c955ac49da2e2107b67a',
      ],
    ];
    for (const [input, digest] of suite) expect(hex(md5(ascii(input))), input).toBe(digest);
  });

  it('agrees with node:crypto at every padding boundary and on a subarray view', () => {
    for (let n = 0; n <= 200; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      expect(hex(md5(bytes)), `length ${n}`).toBe(createHash('md5').update(bytes).digest('hex'));
    }
    const backing = Uint8Array.from({ length: 100 }, (_, i) => i);
    const view = backing.subarray(3, 90);
    expect(hex(md5(view))).toBe(createHash('md5').update(view).digest('hex'));
  });

  it('agrees with node:crypto on arbitrary input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1000 }), (bytes) => {
        expect(hex(md5(bytes))).toBe(createHash('md5').update(bytes).digest('hex'));
      }),
    );
  });
});

describe('hmacMd5 (RFC 2104)', () => {
  it('matches the RFC 2202 section 2 test cases', () => {
    const cases: [Uint8Array, Uint8Array, string][] = [
      [new Uint8Array(16).fill(0x0b), ascii('Hi There'), '9294727a3638bb1c13f48ef8158bfc9d'],
      [ascii('Jefe'), ascii('what do ya want for nothing?'), '750c783e6ab0b503eaa86e310a5db738'],
      [new Uint8Array(16).fill(0xaa), new Uint8Array(50).fill(0xdd), '56be34521d144c88dbb8c733f0e8b3f6'],
      [
        unhex('0102030405060708090a0b0c0d0e0f10111213141516171819'),
        new Uint8Array(50).fill(0xcd),
        '697eaf0aca3a3aea3a75164746ffaa79',
      ],
      [new Uint8Array(16).fill(0x0c), ascii('Test With Truncation'), '56461ef2342edc00f9bab995690efd4c'],
      [
        new Uint8Array(80).fill(0xaa),
        ascii('Test Using Larger Than Block-Size Key - Hash Key First'),
        '6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd',
      ],
      [
        new Uint8Array(80).fill(0xaa),
        ascii('Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data'),
        '6f630fad67cda0ee1fb1f562db3aa53e',
      ],
    ];
    for (const [key, data, digest] of cases) expect(hex(hmacMd5(key, data))).toBe(digest);
  });

  it('agrees with node:crypto on arbitrary keys and data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 150 }), fc.uint8Array({ maxLength: 300 }), (key, data) => {
        expect(hex(hmacMd5(key, data))).toBe(createHmac('md5', key).update(data).digest('hex'));
      }),
    );
  });
});
