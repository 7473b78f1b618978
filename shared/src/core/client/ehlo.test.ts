import { describe, expect, it } from 'vitest';
import { SmtpConfigError } from '../errors.ts';
import { addressLiteral, defaultHeloName, usableHostname, validateHeloName } from './ehlo.ts';

describe('EHLO name (RFC 5321 sections 4.1.1.1 and 4.1.3)', () => {
  it('builds address literals from the local address, never a fixed one', () => {
    expect(addressLiteral('192.0.2.7')).toBe('[192.0.2.7]');
    expect(addressLiteral('::ffff:192.0.2.7')).toBe('[192.0.2.7]');
    expect(addressLiteral('2001:db8::1')).toBe('[IPv6:2001:db8::1]');
    expect(addressLiteral('fe80::1%eth0')).toBe('[IPv6:fe80::1]');
    expect(addressLiteral('not-an-ip')).toBeNull();
    expect(defaultHeloName('198.51.100.3')).toBe('[198.51.100.3]');
    expect(defaultHeloName(undefined)).toBe('localhost');
  });

  it('accepts domains and literals, refuses anything that could inject a command', () => {
    for (const ok of [
      'mail.example.org',
      'a',
      'xn--bcher-kva.example',
      '[192.0.2.1]',
      '[IPv6:2001:db8::1]',
    ]) {
      expect(() => validateHeloName(ok)).not.toThrow();
    }
    for (const bad of [
      'a b',
      'x\r\nMAIL FROM:<a@b>',
      'x\n',
      'a\0',
      '',
      'bücher.example',
      '-a.example',
      '[1.2.3]',
    ]) {
      expect(() => validateHeloName(bad)).toThrow(SmtpConfigError);
    }
  });

  it('uses a host name only when it is a dotted domain', () => {
    expect(usableHostname('mx1.example.org')).toBe('mx1.example.org');
    expect(usableHostname('buildbox')).toBeNull();
    expect(usableHostname('')).toBeNull();
  });
});
