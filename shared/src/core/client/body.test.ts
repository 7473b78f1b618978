import { describe, expect, it } from 'vitest';
import { inspectBody } from './body.ts';

describe('inspectBody', () => {
  it('marks a body clean only when DATA and BDAT can carry its bytes unchanged', () => {
    for (const body of ['', 'a\r\n', 'Subject: x\r\n\r\nline\r\n\r\n', 'a..b\r\n x.\r\n']) {
      expect(inspectBody(body).clean, JSON.stringify(body)).toBe(true);
    }
    for (const body of [
      'a', // last line not complete
      'a\r', // a bare CR at the end
      'a\nb\r\n', // bare LF
      'a\rb\r\n', // bare CR
      '.a\r\n', // dot-stuffing needed on the first line
      'a\r\n.\r\n', // and on a later one
      `${'x'.repeat(999)}\r\n`, // not text at all (over-long line)
      'a\0b\r\n', // NUL
    ]) {
      expect(inspectBody(body).clean, JSON.stringify(body)).toBe(false);
    }
    expect(inspectBody(new ReadableStream<Uint8Array>()).clean).toBe(false);
  });

  it('reports the RFC 1870 size: CRLF-normalized, without dot-stuffing', () => {
    expect(inspectBody('.a\nb').size).toBe('.a\r\nb\r\n'.length);
    expect(inspectBody('a\r\n').size).toBe(3);
    const bytes = new TextEncoder().encode('Subject: hé\r\n\r\nx\r\n');
    const facts = inspectBody(bytes);
    expect(facts).toMatchObject({
      bytes,
      clean: true,
      eightBit: true,
      headerEightBit: true,
      size: bytes.length,
    });
  });
});
