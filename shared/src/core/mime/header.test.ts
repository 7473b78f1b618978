import fc from 'fast-check';
import { decodeWords } from 'postal-mime';
import { describe, expect, it } from 'vitest';
import { SmtpMessageError } from '../errors.ts';
import { FieldWriter, isFieldName, writePhrase, writeUnstructured } from './header.ts';
import { crlfLines, decodeUnstructured, fieldValue } from './testing.ts';

function unstructured(name: string, text: string): string {
  const w = new FieldWriter(name);
  writeUnstructured(w, text);
  return w.toString();
}

function phrase(name: string): string {
  const w = new FieldWriter('To');
  writePhrase(w, name);
  w.word('<a@example.org>');
  return w.toString();
}

describe('field names (RFC 5322 section 3.6.8)', () => {
  it('accepts ftext names and refuses colon, space, controls, non-ASCII, empty, over-long', () => {
    expect(isFieldName('X-Mailer')).toBe(true);
    expect(isFieldName('List-Unsubscribe-Post')).toBe(true);
    for (const bad of ['', 'X Foo', 'X:Foo', 'X-Fö', 'X\r\nBcc', 'X\u0000', 'a'.repeat(77)]) {
      expect(isFieldName(bad), JSON.stringify(bad)).toBe(false);
    }
    expect(() => new FieldWriter('Bad Name')).toThrow(SmtpMessageError);
  });
});

describe('folding (RFC 5322 section 2.2.3)', () => {
  it('keeps short ASCII values on one line, exactly', () => {
    expect(unstructured('Subject', 'Hello world')).toBe('Subject: Hello world\r\n');
  });

  it('folds long ASCII text at spaces within 78 characters, and unfolding restores it', () => {
    const text = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const field = unstructured('Subject', text);
    const lines = crlfLines(field).slice(0, -1);
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(78);
    for (const l of lines.slice(1)) expect(l.startsWith(' ')).toBe(true);
    expect(fieldValue(field, 'Subject')).toBe(text);
  });

  it('leaves a long ASCII word (URL) raw on its own line rather than encoding it', () => {
    const url = `https://example.org/${'a'.repeat(120)}`;
    const field = unstructured('X-Link', `see ${url} now`);
    expect(field).toBe(`X-Link: see\r\n ${url}\r\n now\r\n`);
  });

  it('encodes a word longer than 900 characters, so no line can pass 998 octets', () => {
    const word = 'x'.repeat(2000);
    const field = unstructured('Subject', word);
    for (const l of crlfLines(field)) expect(l.length).toBeLessThanOrEqual(78);
    expect(decodeUnstructured(fieldValue(field, 'Subject'))).toBe(word);
  });
});

describe('encoded-words (RFC 2047)', () => {
  it('encodes only the non-ASCII words of a subject', () => {
    expect(unstructured('Subject', 'Café au lait')).toBe('Subject: =?utf-8?Q?Caf=C3=A9?= au lait\r\n');
  });

  it('merges adjacent words needing encoding into one run, keeping the space inside', () => {
    const field = unstructured('Subject', 'a Zoë Ünïcode b');
    expect(field).toBe('Subject: a =?utf-8?Q?Zo=C3=AB_=C3=9Cn=C3=AFcode?= b\r\n');
    expect(decodeUnstructured(fieldValue(field, 'Subject'))).toBe('a Zoë Ünïcode b');
  });

  it('chooses B for CJK and emoji, Q for mostly Latin text', () => {
    expect(unstructured('Subject', '日本語')).toBe('Subject: =?utf-8?B?5pel5pys6Kqe?=\r\n');
    expect(unstructured('Subject', '🎉')).toBe('Subject: =?utf-8?B?8J+OiQ==?=\r\n');
    expect(unstructured('Subject', 'Grüße')).toBe('Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\r\n');
  });

  it('encodes text that only looks like an encoded-word, so it stays literal', () => {
    const text = 'literal =?utf-8?B?SGk=?= text';
    const field = unstructured('Subject', text);
    expect(field).not.toContain(' =?utf-8?B?SGk=?= ');
    expect(decodeUnstructured(fieldValue(field, 'Subject'))).toBe(text);
    expect(decodeWords(fieldValue(field, 'Subject'))).toBe(text);
  });

  it('encodes whole values whose whitespace would not survive (leading, repeated, tabs)', () => {
    for (const text of ['  two leading', 'a  b', 'tab\there', 'trailing ']) {
      const field = unstructured('X-Note', text);
      expect(decodeUnstructured(fieldValue(field, 'X-Note'))).toBe(text);
    }
  });

  it('keeps every encoded-word within 75 characters and every line within 78, never splitting a code point', () => {
    const text = '👩‍👩‍👧‍👦 مرحبا بالعالم 漢字かな交じり文 ' + 'é'.repeat(200) + ' 🎉'.repeat(40);
    const field = unstructured('Subject', text);
    for (const l of crlfLines(field).slice(0, -1)) expect(l.length).toBeLessThanOrEqual(78);
    // decodeUnstructured checks 75 chars and complete UTF-8 per word (fatal decoder).
    expect(decodeUnstructured(fieldValue(field, 'Subject'))).toBe(text);
    expect(decodeWords(fieldValue(field, 'Subject'))).toBe(text);
  });

  it('round-trips arbitrary text (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (text) => {
        const clean = text.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '');
        const field = unstructured('Subject', clean);
        for (const l of crlfLines(field).slice(0, -1)) expect(l.length).toBeLessThanOrEqual(998);
        expect(decodeUnstructured(fieldValue(field, 'Subject'))).toBe(clean);
      }),
      { numRuns: 300 },
    );
  });
});

describe('raw UTF-8 for SMTPUTF8 messages (RFC 6532 sections 3.2, 3.6)', () => {
  const utf8Field = (text: string): string => {
    const w = new FieldWriter('Subject');
    writeUnstructured(w, text, true);
    return w.toString();
  };

  it('writes non-ASCII words raw and folds them by characters', () => {
    expect(utf8Field('Grüße aus 日本')).toBe('Subject: Grüße aus 日本\r\n');
  });

  it('still encodes C1 controls, line separators, odd whitespace and encoded-word lookalikes', () => {
    for (const text of ['a\u0085b', 'x\u2028y', ' lead', '=?utf-8?Q?x?=']) {
      const field = utf8Field(text);
      expect(field).toContain('=?utf-8?');
      expect(decodeUnstructured(fieldValue(field, 'Subject'))).toBe(text);
    }
  });

  it('never lets a raw UTF-8 word push a line past 998 octets', () => {
    const text = `${'日'.repeat(400)} ${'é'.repeat(600)}`;
    const field = utf8Field(text);
    for (const l of crlfLines(field)) expect(new TextEncoder().encode(l).length).toBeLessThanOrEqual(998);
    expect(decodeUnstructured(fieldValue(field, 'Subject'))).toBe(text);
  });

  it('writes UTF-8 display names as atoms or quoted-strings', () => {
    const w = new FieldWriter('To');
    writePhrase(w, 'Jörg, Jr.', true);
    writePhrase(w, 'Zoë', true);
    expect(w.toString()).toBe('To: "Jörg, Jr." Zoë\r\n');
  });

  it('round-trips arbitrary text (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (text) => {
        const clean = text.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '');
        const field = utf8Field(clean);
        for (const l of crlfLines(field)) expect(new TextEncoder().encode(l).length).toBeLessThanOrEqual(998);
        expect(decodeUnstructured(fieldValue(field, 'Subject'))).toBe(clean);
      }),
      { numRuns: 300 },
    );
  });
});

describe('display-name phrases (RFC 5322 sections 3.2.4-3.2.5)', () => {
  it('writes atoms as they are', () => {
    expect(phrase('Zoe Smith')).toBe('To: Zoe Smith <a@example.org>\r\n');
  });

  it('quotes names with specials and escapes quote and backslash', () => {
    expect(phrase('Smith, John')).toBe('To: "Smith, John" <a@example.org>\r\n');
    expect(phrase('John Q. Public')).toBe('To: "John Q. Public" <a@example.org>\r\n');
    expect(phrase('say "hi" \\o/')).toBe('To: "say \\"hi\\" \\\\o/" <a@example.org>\r\n');
  });

  it('encodes non-ASCII names whole (B or Q in the phrase-safe alphabet)', () => {
    expect(phrase('Zoë')).toBe('To: =?utf-8?Q?Zo=C3=AB?= <a@example.org>\r\n');
    expect(phrase('Zoë, "the" boss')).toBe('To: =?utf-8?Q?Zo=C3=AB=2C_=22the=22_boss?= <a@example.org>\r\n');
  });
});
