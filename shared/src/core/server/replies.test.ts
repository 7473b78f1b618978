import { describe, expect, it } from 'vitest';
import { encodeReply, fixedReply, r } from './replies.ts';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('encodeReply', () => {
  it('encodes a fixed reply exactly as the same reply built per use, with and without the enhanced code', () => {
    const fixed = fixedReply(250, '2.1.0', 'Sender OK');
    for (const enhanced of [true, false]) {
      expect(text(encodeReply(fixed, enhanced))).toBe(
        text(encodeReply(r(250, '2.1.0', 'Sender OK'), enhanced)),
      );
    }
    expect(text(encodeReply(fixed, true))).toBe('250 2.1.0 Sender OK\r\n');
    expect(text(encodeReply(fixed, false))).toBe('250 Sender OK\r\n');
    // Encoded once: the same octets each time.
    expect(encodeReply(fixed, true)).toBe(encodeReply(fixed, true));
    expect(Object.isFrozen(fixed)).toBe(true);
  });

  it('encodes UTF-8 text (RFC 6531) and ASCII text alike', () => {
    expect(text(encodeReply(r(250, '2.0.0', 'Zoë ok'), true))).toBe('250 2.0.0 Zoë ok\r\n');
    expect([...encodeReply(r(250, '2.0.0', 'é'), true)].slice(-4)).toEqual([0xc3, 0xa9, 0x0d, 0x0a]);
  });

  it('still turns control characters into spaces and cuts over-long lines, multi-line too', () => {
    expect(text(encodeReply(r(550, '5.7.1', 'a\rb\x00c'), true))).toBe('550 5.7.1 a b c\r\n');
    expect(text(encodeReply(r(250, null, 'one\ntwo'), false))).toBe('250-one\r\n250 two\r\n');
    const long = encodeReply(r(550, '5.7.1', 'é'.repeat(400)), true);
    expect(long.length).toBeLessThanOrEqual(512);
    expect(text(long).endsWith('é\r\n')).toBe(true);
  });
});
