import fc from 'fast-check';
import PostalMime from 'postal-mime';
import { describe, expect, it } from 'vitest';
import { composeMessage } from './compose.ts';
import { crlfLines } from './testing.ts';

// Strings as users type them: any Unicode (astral, combining, RTL, emoji), minus the C0
// controls and DEL, which header fields refuse (tested elsewhere).
const CONTROLS = /[\u0000-\u0008\u000a-\u001f\u007f]/g;
const headerText = fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => s.replace(CONTROLS, ''));
const bodyText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 400 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 400 }),
  fc
    .array(
      fc.constantFrom('a', ' ', '\t', '\n', '\r\n', '\r', '=', '.', 'From ', 'é', '🎉', 'x'.repeat(90)),
      { maxLength: 80 },
    )
    .map((a) => a.join('')),
);

function wireChecks(bytes: Uint8Array): void {
  const s = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  expect(s.endsWith('\r\n')).toBe(true);
  for (const line of crlfLines(s.slice(0, -2)))
    expect(new TextEncoder().encode(line).length).toBeLessThanOrEqual(998);
}

describe('composeMessage properties', () => {
  it('subject, display names and bodies round-trip through postal-mime; lines <= 998, CRLF only', async () => {
    await fc.assert(
      fc.asyncProperty(
        headerText,
        headerText,
        bodyText,
        bodyText,
        fc.boolean(),
        async (subject, name, text, html, eai) => {
          // With a UTF-8 recipient the message is SMTPUTF8 and headers carry raw UTF-8 (RFC 6532).
          const rcpt = eai ? 'jörg@bücher.example' : 'bob@example.net';
          const m = composeMessage({
            from: { name, address: 'zoe@example.org' },
            to: { name, address: rcpt },
            subject,
            text,
            html,
          });
          wireChecks(m.bytes);
          const p = await PostalMime.parse(m.bytes);
          expect(p.subject ?? '').toBe(subject);
          const trimmed = name.replace(/^[ \t]+|[ \t]+$/g, '');
          expect(p.from).toEqual({ name: trimmed, address: 'zoe@example.org' });
          expect(m.smtputf8).toBe(eai);
          expect(p.to).toEqual([{ name: trimmed, address: rcpt }]);
          const want = (t: string): string[] => {
            const n = t.replace(/\r\n|\r|\n/g, '\n');
            return [n, `${n}\n`];
          };
          expect(want(text)).toContain(p.text ?? '');
          expect(want(html)).toContain(p.html ?? '');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('attachment bytes and file names round-trip', async () => {
    await fc.assert(
      fc.asyncProperty(
        headerText.map((s) => s.trim()).filter((s) => s.length > 0 && s.length <= 255),
        fc.uint8Array({ maxLength: 3000 }),
        async (filename, content) => {
          const m = composeMessage({
            from: 'zoe@example.org',
            to: 'bob@example.net',
            text: 'x',
            attachments: [{ filename, content }],
          });
          wireChecks(m.bytes);
          const p = await PostalMime.parse(m.bytes);
          expect(p.attachments).toHaveLength(1);
          expect(p.attachments[0]!.filename).toBe(filename);
          expect(new Uint8Array(p.attachments[0]!.content as ArrayBuffer)).toEqual(content);
        },
      ),
      { numRuns: 150 },
    );
  });
});
