import { describe, expect, it } from 'vitest';
import {
  formatIpv6,
  ipv6Canonical,
  looksLikeProxyHeader,
  PROXY_HEADER_MAX_BYTES,
  parseIpv6,
  parseProxyHeader,
} from './proxy.ts';

const enc = new TextEncoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function v2(cmd: number, fam: number, payload: number[]): Uint8Array {
  return Uint8Array.from([...SIG, 0x20 | cmd, fam, payload.length >> 8, payload.length & 0xff, ...payload]);
}

describe('parseProxyHeader, v1', () => {
  it('parses TCP4, TCP6 and UNKNOWN', () => {
    expect(parseProxyHeader(enc.encode('PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO x\r\n'))).toEqual({
      kind: 'ok',
      version: 1,
      length: 44,
      source: { address: '192.0.2.1', port: 56324 },
      destination: { address: '198.51.100.2', port: 25 },
    });
    const six = parseProxyHeader(enc.encode('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'));
    expect(six.kind === 'ok' && six.source).toEqual({ address: '2001:db8::1', port: 1 });
    expect(parseProxyHeader(enc.encode('PROXY UNKNOWN ffff::1 x y z\r\n'))).toEqual({
      kind: 'ok',
      version: 1,
      length: 29,
      source: null,
      destination: null,
    });
    expect(parseProxyHeader(enc.encode('PROXY UNKNOWN\r\n'))).toMatchObject({ kind: 'ok', length: 15 });
  });

  it('gives IPv6 addresses in RFC 5952 form', () => {
    const r = parseProxyHeader(enc.encode('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::FFFF:192.0.2.9 1 2\r\n'));
    expect(r).toMatchObject({
      kind: 'ok',
      source: { address: '2001:db8::1', port: 1 },
      destination: { address: '::ffff:192.0.2.9', port: 2 },
    });
  });

  it('waits for more bytes at every split point of a valid header', () => {
    const full = enc.encode('PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n');
    for (let n = 0; n < full.length; n++) {
      expect(parseProxyHeader(full.subarray(0, n)).kind, `${n} bytes`).toBe('incomplete');
    }
    expect(parseProxyHeader(full).kind).toBe('ok');
  });

  it('refuses malformed headers', () => {
    for (const bad of [
      'PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n',
      'PROXY TCP4 256.0.2.1 198.51.100.2 1 2\r\n',
      'PROXY TCP4 192.0.2.01 198.51.100.2 1 2\r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.2 1 65536\r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n',
      'PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n',
      'PROXY TCP6 2001:db8::1::2 2001:db8::2 1 2\r\n',
      'PROXY TCP6 2001:db8:1:2:3:4:5:6:7 2001:db8::2 1 2\r\n',
      'PROXY TCP6 ::: 2001:db8::2 1 2\r\n',
      'PROXY TCP4 ::1 ::1 1 2\r\n',
      'PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n',
      'PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX',
      'PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n',
      'PROXY TCP4 192.0.2.1\x00 198.51.100.2 1 2\r\n',
      'proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n',
      'EHLO client\r\n',
      `PROXY TCP4 ${'1'.repeat(120)}`,
    ]) {
      expect(parseProxyHeader(enc.encode(bad)).kind, JSON.stringify(bad)).toBe('invalid');
    }
  });

  it('answers within 107 octets: a line of exactly 107 parses, a longer one is invalid', () => {
    const pad = (n: number) => `PROXY UNKNOWN ${'x'.repeat(n)}\r\n`;
    const ok = enc.encode(pad(107 - 16));
    expect(ok.length).toBe(107);
    expect(parseProxyHeader(ok)).toMatchObject({ kind: 'ok', length: 107 });
    const long = enc.encode(pad(107 - 15));
    expect(parseProxyHeader(long)).toEqual({ kind: 'invalid', reason: 'v1 header longer than 107 bytes' });
    expect(parseProxyHeader(long.subarray(0, 107)).kind).toBe('invalid');
  });
});

describe('parseProxyHeader, v2', () => {
  it('parses PROXY TCP4/TCP6 (TLVs skipped), LOCAL, UNSPEC and UNIX', () => {
    const r = parseProxyHeader(
      v2(1, 0x11, [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0, 25, 0x04, 0, 1, 0x41]),
    );
    expect(r).toEqual({
      kind: 'ok',
      version: 2,
      length: 32,
      source: { address: '192.0.2.1', port: 56324 },
      destination: { address: '198.51.100.2', port: 25 },
    });
    const src6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1];
    const dst6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 2];
    const r6 = parseProxyHeader(v2(1, 0x21, [...src6, ...dst6, 0, 1, 0, 2]));
    expect(r6.kind === 'ok' && r6.source).toEqual({ address: '2001:db8::1', port: 1 });
    expect(parseProxyHeader(v2(0, 0x00, []))).toEqual({
      kind: 'ok',
      version: 2,
      length: 16,
      source: null,
      destination: null,
    });
    // LOCAL with an address block: the addresses are ignored.
    expect(parseProxyHeader(v2(0, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]))).toMatchObject({
      kind: 'ok',
      length: 28,
      source: null,
    });
    expect(parseProxyHeader(v2(1, 0x00, []))).toMatchObject({ kind: 'ok', source: null });
    expect(parseProxyHeader(v2(1, 0x31, new Array(216).fill(0)))).toMatchObject({ kind: 'ok', source: null });
  });

  it('refuses bad versions, commands, families and short address blocks', () => {
    expect(parseProxyHeader(v2(1, 0x11, [1, 2, 3])).kind).toBe('invalid');
    expect(parseProxyHeader(v2(1, 0x21, new Array(35).fill(0))).kind).toBe('invalid');
    expect(parseProxyHeader(v2(1, 0x12, [])).kind).toBe('invalid'); // UDP over IPv4
    expect(parseProxyHeader(v2(1, 0x22, [])).kind).toBe('invalid'); // UDP over IPv6
    expect(parseProxyHeader(v2(1, 0x32, [])).kind).toBe('invalid'); // UNIX datagram
    expect(parseProxyHeader(v2(1, 0x41, [])).kind).toBe('invalid'); // unknown family
    expect(parseProxyHeader(v2(2, 0x11, [])).kind).toBe('invalid'); // unknown command
    expect(parseProxyHeader(Uint8Array.from([...SIG, 0x11, 0x11, 0, 0])).kind).toBe('invalid'); // version 1
    expect(parseProxyHeader(Uint8Array.from([...SIG, 0x21, 0x11, 0x10, 0x01])).kind).toBe('invalid'); // 4097
    expect(parseProxyHeader(Uint8Array.from([...SIG.slice(0, 5), 0x00])).kind).toBe('invalid');
  });

  it('waits for the signature, the fixed part and the declared length', () => {
    const full = v2(1, 0x11, [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0, 25]);
    for (let n = 0; n < full.length; n++) {
      expect(parseProxyHeader(full.subarray(0, n)).kind, `${n} bytes`).toBe('incomplete');
    }
    expect(parseProxyHeader(full).kind).toBe('ok');
    // The largest allowed payload is all parseProxyHeader ever needs.
    const big = new Uint8Array(PROXY_HEADER_MAX_BYTES);
    big.set([...SIG, 0x20, 0x00, 0x10, 0x00]);
    expect(parseProxyHeader(big)).toMatchObject({ kind: 'ok', length: PROXY_HEADER_MAX_BYTES });
  });
});

describe('looksLikeProxyHeader', () => {
  it('matches the v1 and v2 signatures and their prefixes only', () => {
    expect(looksLikeProxyHeader(enc.encode('PROXY TCP4 '))).toBe(true);
    expect(looksLikeProxyHeader(enc.encode('PRO'))).toBe(true);
    expect(looksLikeProxyHeader(Uint8Array.from(SIG))).toBe(true);
    expect(looksLikeProxyHeader(Uint8Array.from([0x0d, 0x0a]))).toBe(true);
    expect(looksLikeProxyHeader(enc.encode('PROXYX'))).toBe(false);
    expect(looksLikeProxyHeader(enc.encode('EHLO x\r\n'))).toBe(false);
    expect(looksLikeProxyHeader(new Uint8Array(0))).toBe(false);
  });
});

describe('IPv6 text', () => {
  it('parses RFC 4291 forms and prints RFC 5952 canonical text', () => {
    expect(ipv6Canonical('2001:0DB8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(ipv6Canonical('::')).toBe('::');
    expect(ipv6Canonical('::1')).toBe('::1');
    expect(ipv6Canonical('1::')).toBe('1::');
    expect(ipv6Canonical('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1'); // one zero group stays
    expect(ipv6Canonical('2001:0:0:1:0:0:0:1')).toBe('2001:0:0:1::1'); // the longest run
    expect(ipv6Canonical('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // the first of equal runs
    expect(ipv6Canonical('::ffff:192.0.2.1')).toBe('::ffff:192.0.2.1');
    expect(ipv6Canonical('0:0:0:0:0:ffff:c000:0201')).toBe('::ffff:192.0.2.1');
    expect(ipv6Canonical('64:ff9b::192.0.2.1')).toBe('64:ff9b::c000:201');
    expect(ipv6Canonical('1:2:3:4:5:6:1.2.3.4')).toBe('1:2:3:4:5:6:102:304');
    for (const bad of [
      '',
      ':',
      '1:2',
      '1::2::3',
      '12345::',
      'g::',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7::8',
      '::1.2.3',
      '1.2.3.4',
      '::1.2.3.4:5',
    ]) {
      expect(parseIpv6(bad), bad).toBeNull();
    }
    expect(formatIpv6(new Uint8Array(16).fill(0xff))).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  });
});
