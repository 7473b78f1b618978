import PostalMime, { type Email } from 'postal-mime';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SmtpMessageError } from '../errors.ts';
import { type ComposedMessage, composeMessage, type MessageInput } from './compose.ts';
import { crlfLines, decodeUnstructured, fieldValue } from './testing.ts';

const DATE = new Date(Date.UTC(2026, 10, 28, 9, 5, 3));
const base = { from: 'zoe@example.org', to: 'bob@example.net', date: DATE, messageId: '<id1@example.org>' };

function str(m: ComposedMessage): string {
  return new TextDecoder().decode(m.bytes);
}

function headerBlock(m: ComposedMessage): string {
  const s = str(m);
  return s.slice(0, s.indexOf('\r\n\r\n') + 2);
}

/** The unfolded fields of the top-level header, in order. */
function fields(m: ComposedMessage): Array<[string, string]> {
  return headerBlock(m)
    .replace(/\r\n(?=[ \t])/g, '')
    .split('\r\n')
    .filter((l) => l !== '')
    .map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i), l.slice(i + 2)];
    });
}

function parse(m: ComposedMessage): Promise<Email> {
  return PostalMime.parse(m.bytes);
}

/** postal-mime turns CRLF into LF and keeps the CRLF before a boundary as a final LF. */
function expectText(parsed: string | undefined, input: string): void {
  const want = input.replace(/\r\n|\r|\n/g, '\n');
  expect([want, `${want}\n`]).toContain(parsed);
}

function assertWire(m: ComposedMessage): void {
  const s = str(m);
  expect(s.endsWith('\r\n')).toBe(true);
  for (const line of crlfLines(s.slice(0, -2)))
    expect(new TextEncoder().encode(line).length).toBeLessThanOrEqual(998);
}

function errorOf(input: MessageInput): SmtpMessageError {
  try {
    composeMessage(input);
  } catch (e) {
    expect(e).toBeInstanceOf(SmtpMessageError);
    return e as SmtpMessageError;
  }
  throw new Error('composeMessage did not throw');
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('composeMessage: exact output', () => {
  it('writes a plain ASCII text message byte for byte', () => {
    const m = composeMessage({ ...base, subject: 'Hello', text: 'Hi Bob,\nsee you.' });
    expect(str(m)).toBe(
      'Date: Sat, 28 Nov 2026 09:05:03 +0000\r\n' +
        'From: zoe@example.org\r\n' +
        'To: bob@example.net\r\n' +
        'Subject: Hello\r\n' +
        'Message-ID: <id1@example.org>\r\n' +
        'MIME-Version: 1.0\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Transfer-Encoding: 7bit\r\n' +
        '\r\n' +
        'Hi Bob,\r\nsee you.\r\n',
    );
    expect(m.messageId).toBe('<id1@example.org>');
    expect(m.envelope).toEqual({ from: 'zoe@example.org', to: ['bob@example.net'] });
    expect(m.smtputf8).toBe(false);
    expect(m.eightBit).toBe(false);
  });

  it('uses quoted-printable for non-ASCII text, ending with a soft break (exact text round trip)', () => {
    const m = composeMessage({ ...base, text: 'Grüße' });
    expect(str(m)).toContain('Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe=\r\n');
  });

  it('writes the header fields in order and never writes Bcc', () => {
    const m = composeMessage({
      ...base,
      sender: 'agent@example.org',
      replyTo: ['help@example.org'],
      cc: 'carol@example.net',
      bcc: ['secret@example.com'],
      subject: 's',
      inReplyTo: '<p1@x.example>',
      references: ['<p0@x.example>', 'p1@x.example'],
      headers: { 'X-Campaign': 'autumn' },
      text: 't',
    });
    expect(fields(m).map(([k]) => k)).toEqual([
      'Date',
      'From',
      'Sender',
      'Reply-To',
      'To',
      'Cc',
      'Subject',
      'Message-ID',
      'In-Reply-To',
      'References',
      'X-Campaign',
      'MIME-Version',
      'Content-Type',
      'Content-Transfer-Encoding',
    ]);
    expect(str(m)).not.toMatch(/bcc|secret/i);
    expect(Object.fromEntries(fields(m))['References']).toBe('<p0@x.example> <p1@x.example>');
    expect(m.envelope).toEqual({
      from: 'agent@example.org',
      to: ['bob@example.net', 'carol@example.net', 'secret@example.com'],
    });
  });

  it('deduplicates envelope recipients with a case-insensitive domain, keeping local-part case', () => {
    const m = composeMessage({
      ...base,
      to: ['a@Example.NET', 'A@example.net'],
      cc: 'a@example.net',
      bcc: '"Bob" <a@EXAMPLE.net>',
      text: '',
    });
    expect(m.envelope.to).toEqual(['a@Example.NET', 'A@example.net']);
  });

  it('generates a unique random Message-ID on the From domain (A-label) or messageIdDomain', () => {
    const a = composeMessage({ from: 'zoe@bücher.example', to: 'b@example.net', text: '' });
    const b = composeMessage({ from: 'zoe@bücher.example', to: 'b@example.net', text: '' });
    expect(a.messageId).toMatch(/^<[0-9a-f]+\.[0-9a-f]{32}@xn--bcher-kva\.example>$/);
    expect(a.messageId).not.toBe(b.messageId);
    expect(
      composeMessage({ ...base, messageId: undefined, messageIdDomain: 'mail.example.com' }).messageId,
    ).toMatch(/@mail\.example\.com>$/);
    expect(composeMessage({ ...base, messageId: 'bare@example.org' }).messageId).toBe('<bare@example.org>');
  });

  it('formats Date per RFC 5322 section 3.3 in UTC and defaults to now', () => {
    const m = composeMessage({ from: 'zoe@example.org', text: '' });
    const date = Object.fromEntries(fields(m))['Date']!;
    expect(date).toMatch(
      /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/,
    );
    expect(Math.abs(Date.parse(date) - Date.now())).toBeLessThan(5 * 60_000);
  });
});

describe('composeMessage: internationalized addresses', () => {
  it('writes a UTF-8 local part raw (RFC 6532) and sets smtputf8', async () => {
    const m = composeMessage({ ...base, to: 'jörg@bücher.example', text: 'x' });
    expect(m.smtputf8).toBe(true);
    expect(str(m)).toContain('To: jörg@bücher.example\r\n');
    expect(m.envelope.to).toEqual(['jörg@bücher.example']);
    expect((await parse(m)).to?.[0]?.address).toBe('jörg@bücher.example');
  });

  it('writes names, subject, custom values and file names as raw UTF-8 in an SMTPUTF8 message (RFC 6532 section 3.6)', async () => {
    const m = composeMessage({
      ...base,
      from: 'Zoë Saldaña <zoe@example.org>',
      to: '"Jörg, Jr." <jörg@bücher.example>',
      subject: 'Grüße aus 日本 🎉',
      headers: { 'X-Note': 'Café crème' },
      text: 'x',
      attachments: [{ filename: 'résumé.pdf', content: 'JVBERi0=' }],
    });
    expect(m.smtputf8).toBe(true);
    const s = str(m);
    expect(s).toContain('From: Zoë Saldaña <zoe@example.org>\r\n');
    expect(s).toContain('To: "Jörg, Jr." <jörg@bücher.example>\r\n');
    expect(s).toContain('Subject: Grüße aus 日本 🎉\r\n');
    expect(s).toContain('X-Note: Café crème\r\n');
    expect(s).toContain('name="résumé.pdf"');
    expect(s).not.toContain('=?utf-8?');
    const p = await parse(m);
    expect(p.subject).toBe('Grüße aus 日本 🎉');
    expect(p.from).toEqual({ name: 'Zoë Saldaña', address: 'zoe@example.org' });
    expect(p.to).toEqual([{ name: 'Jörg, Jr.', address: 'jörg@bücher.example' }]);
    expect(p.attachments[0]!.filename).toBe('résumé.pdf');
  });

  it('converts an IDN domain with an ASCII local part to A-labels and stays ASCII', () => {
    const m = composeMessage({ ...base, to: 'Zoë <bob@bücher.example>', text: 'x' });
    expect(m.smtputf8).toBe(false);
    expect(str(m)).toContain('To: =?utf-8?Q?Zo=C3=AB?= <bob@xn--bcher-kva.example>\r\n');
    expect(m.bytes.every((b) => b < 0x80)).toBe(true);
  });

  it('sets smtputf8 for a Bcc-only UTF-8 recipient, without writing it', () => {
    const m = composeMessage({ ...base, bcc: 'δοκιμή@παράδειγμα.δοκιμή', text: 'x' });
    expect(m.smtputf8).toBe(true);
    expect(m.bytes.every((b) => b < 0x80)).toBe(true);
  });
});

describe('composeMessage: input errors name the field', () => {
  it.each<[string, Partial<MessageInput>, string]>([
    ['a bad recipient', { to: ['ok@example.net', 'not-an-address'] }, 'to[1]'],
    ['a missing from', { from: undefined as unknown as string }, 'from'],
    ['two froms', { from: ['a@example.org', 'b@example.org'] as unknown as string }, 'from'],
    ['CRLF in the subject', { subject: 'hi\r\nBcc: evil@example.com' }, 'subject'],
    ['LF in the subject', { subject: 'hi\nthere' }, 'subject'],
    ['NUL in the subject', { subject: 'hi\u0000' }, 'subject'],
    ['CR in a display name', { cc: { name: 'Eve\rX', address: 'eve@example.net' } }, 'cc.name'],
    ['CRLF in a header value', { headers: { 'X-Foo': 'a\r\nBcc: evil@example.com' } }, 'headers.X-Foo'],
    ['a bad header name', { headers: { 'X Foo': 'a' } }, 'headers.X Foo'],
    ['a header name with a colon', { headers: { 'X-Foo:': 'a' } }, 'headers.X-Foo:'],
    ['Content-Type in headers', { headers: { 'content-type': 'text/html' } }, 'headers.content-type'],
    ['MIME-Version in headers', { headers: { 'MIME-Version': '2.0' } }, 'headers.MIME-Version'],
    ['Bcc in headers', { headers: { Bcc: 'x@example.com' } }, 'headers.Bcc'],
    ['From in headers', { headers: { From: 'x@example.com' } }, 'headers.From'],
    ['Received in headers', { headers: { Received: 'from x by y' } }, 'headers.Received'],
    ['Message-ID twice', { headers: { 'Message-ID': '<a@b.example>' } }, 'headers.Message-ID'],
    [
      'a malformed Date header',
      { messageId: undefined, date: undefined, headers: { Date: 'yesterday' } },
      'headers.Date',
    ],
    ['an invalid date', { date: new Date(Number.NaN) }, 'date'],
    ['a bad messageId', { messageId: '<no-at-sign>' }, 'messageId'],
    ['a bad inReplyTo', { inReplyTo: '<a b@c>' }, 'inReplyTo'],
    ['a bad reference', { references: ['<ok@x.example>', '<bad'] }, 'references[1]'],
    [
      'invalid base64 content',
      { attachments: [{ filename: 'a.bin', content: 'not base64!' }] },
      'attachments[0].content',
    ],
    [
      'non-canonical base64',
      { attachments: [{ filename: 'a.bin', content: 'QQ' }] },
      'attachments[0].content',
    ],
    [
      'a wrong content type',
      { attachments: [{ filename: 'a', content: '', contentType: 'text' }] },
      'attachments[0].contentType',
    ],
    [
      'CRLF in a content type',
      { attachments: [{ filename: 'a', content: '', contentType: 'text/plain\r\nX: y' }] },
      'attachments[0].contentType',
    ],
    [
      'a multipart content type',
      { attachments: [{ filename: 'a', content: '', contentType: 'multipart/mixed' }] },
      'attachments[0].contentType',
    ],
    [
      'CRLF in a filename',
      { attachments: [{ filename: 'a\r\n.txt', content: '' }] },
      'attachments[0].filename',
    ],
    ['an empty filename', { attachments: [{ filename: ' ', content: '' }] }, 'attachments[0].filename'],
    [
      'CRLF in a content id',
      { attachments: [{ filename: 'a', content: '', contentId: 'x\r\ny' }] },
      'attachments[0].contentId',
    ],
    [
      '8-bit message/rfc822',
      {
        attachments: [
          {
            filename: 'm.eml',
            content: new TextEncoder().encode('Subject: é\r\n\r\n'),
            contentType: 'message/rfc822',
          },
        ],
      },
      'attachments[0].content',
    ],
    ['a lone surrogate in the text', { text: 'a\ud800b' }, 'text'],
    ['a non-string text', { text: 42 as unknown as string }, 'text'],
  ])('%s', (_what, patch, field) => {
    const error = errorOf({ ...base, text: 't', ...patch } as MessageInput);
    expect(error.field).toBe(field);
    expect(error.kind).toBe('message');
  });
});

describe('composeMessage: address lists in a string (as nodemailer takes them)', () => {
  it('accepts comma-separated lists in to, cc, bcc and replyTo', () => {
    const m = composeMessage({
      ...base,
      to: 'b@example.org, "Doe, John" <john@example.org>',
      cc: ['c@example.org, d@example.org', { name: 'E', address: 'e@example.org' }],
      bcc: 'hidden@example.org,archive@example.org,',
      replyTo: 'r1@example.org, r2@example.org',
      text: 'x',
    });
    expect(m.envelope.to).toEqual([
      'b@example.org',
      'john@example.org',
      'c@example.org',
      'd@example.org',
      'e@example.org',
      'hidden@example.org',
      'archive@example.org',
    ]);
    const f = Object.fromEntries(fields(m));
    expect(f.To).toBe('b@example.org, "Doe, John" <john@example.org>');
    expect(f.Cc).toBe('c@example.org, d@example.org, E <e@example.org>');
    expect(f['Reply-To']).toBe('r1@example.org, r2@example.org');
    expect(f.Bcc).toBeUndefined();
  });

  it('deduplicates across a string list and the other fields', () => {
    const m = composeMessage({ ...base, to: 'b@example.org, b@EXAMPLE.ORG', cc: 'b@example.org', text: 'x' });
    expect(m.envelope.to).toEqual(['b@example.org']);
  });

  it.each<[string, Partial<MessageInput>, string]>([
    ['the second address of a string list', { to: 'b@example.org, not-an-address' }, 'to[1]'],
    ['inside the string of an array element', { cc: ['c@example.org', 'd@example.org, bad@'] }, 'cc[1][1]'],
    ['a one-address string keeps its path', { bcc: ['ok@example.org', 'bad@'] }, 'bcc[1]'],
    ['CRLF in the second address', { to: 'b@example.org, c@example.org\r\nBcc: e@evil.example' }, 'to[1]'],
    ['a group', { to: 'Friends: a@example.org, b@example.org;' }, 'to'],
    ['an unquoted display name with a comma', { replyTo: 'Doe, John <john@example.org>' }, 'replyTo[0]'],
    ['several addresses in from', { from: 'a@example.org, b@example.org' }, 'from'],
    ['several addresses in sender', { sender: 'a@example.org, b@example.org' }, 'sender'],
  ])('names the field: %s', (_what, patch, field) => {
    const error = errorOf({ ...base, text: 't', ...patch } as MessageInput);
    expect(error.field).toBe(field);
  });

  it('from takes one mailbox, and says why', () => {
    expect(errorOf({ ...base, from: 'a@example.org, b@example.org', text: 't' }).message).toBe(
      'from takes one address, and "a@example.org, b@example.org" holds 2 (several authors would need a Sender field, RFC 5322 section 3.6.2, which is not supported; put the others in replyTo or cc)',
    );
    // A display name with a quoted comma is one mailbox.
    const m = composeMessage({ ...base, from: '"Doe, John" <john@example.org>', text: 't' });
    expect(Object.fromEntries(fields(m)).From).toBe('"Doe, John" <john@example.org>');
    expect(m.envelope.from).toBe('john@example.org');
  });
});

describe('composeMessage: JSON input', () => {
  it('treats null optional fields as absent', () => {
    const json = JSON.parse(
      '{"from":"zoe@example.org","to":"bob@example.net","cc":null,"bcc":null,"subject":null,"html":null,"text":"x",' +
        '"attachments":[{"filename":"a.txt","content":"eA==","contentType":null,"contentId":null,"disposition":null}]}',
    ) as MessageInput;
    const m = composeMessage(json);
    expect(m.envelope.to).toEqual(['bob@example.net']);
    expect(str(m)).toContain('Content-Type: text/plain; name=a.txt\r\n');
  });
});

describe('composeMessage: custom headers', () => {
  it('writes custom headers, encoding non-ASCII values and folding long ones', () => {
    const long = Array.from({ length: 30 }, (_, i) => `item${i}`).join(' ');
    const m = composeMessage({
      ...base,
      text: 't',
      headers: { 'X-Tag': 'Café', 'X-Long': long, 'X-Empty': '' },
    });
    const f = headerBlock(m);
    expect(f).toContain('X-Tag: =?utf-8?Q?Caf=C3=A9?=\r\n');
    expect(f).toContain('X-Empty:\r\n');
    expect(
      decodeUnstructured(fieldValue(f.slice(f.indexOf('X-Long:'), f.indexOf('X-Empty:')), 'X-Long')),
    ).toBe(long);
  });

  it('takes Message-ID, Date, In-Reply-To and References from headers when no dedicated field is set', () => {
    const m = composeMessage({
      from: 'zoe@example.org',
      text: 't',
      headers: {
        'message-id': '<given@example.org>',
        Date: 'Fri, 27 Nov 2026 10:00:00 +0100',
        'In-Reply-To': '<p@example.org>',
        References: '<o@example.org> <p@example.org>',
      },
    });
    expect(m.messageId).toBe('<given@example.org>');
    const f = Object.fromEntries(fields(m));
    expect(f['Date']).toBe('Fri, 27 Nov 2026 10:00:00 +0100');
    expect(f['In-Reply-To']).toBe('<p@example.org>');
    expect(f['References']).toBe('<o@example.org> <p@example.org>');
  });
});

describe('composeMessage: MIME structure', () => {
  const contentTypes = (m: ComposedMessage): string[] =>
    [
      ...str(m)
        .replace(/\r\n(?=[ \t])/g, '')
        .matchAll(/^Content-Type: ([^;\r]+)/gm),
    ].map((x) => x[1]!);

  it('text only -> text/plain; html only -> text/html', () => {
    expect(contentTypes(composeMessage({ ...base, text: 'a' }))).toEqual(['text/plain']);
    expect(contentTypes(composeMessage({ ...base, html: '<b>a</b>' }))).toEqual(['text/html']);
    expect(contentTypes(composeMessage({ ...base }))).toEqual(['text/plain']);
  });

  it('text + html -> multipart/alternative with text first', () => {
    expect(contentTypes(composeMessage({ ...base, text: 'a', html: '<b>a</b>' }))).toEqual([
      'multipart/alternative',
      'text/plain',
      'text/html',
    ]);
  });

  it('attachments -> multipart/mixed around the body; inline cid parts -> multipart/related with the html', async () => {
    const m = composeMessage({
      ...base,
      text: 'plain',
      html: '<img src="cid:logo@example.org">',
      attachments: [
        {
          filename: 'logo.png',
          content: new Uint8Array([137, 80, 78, 71]),
          contentId: '<logo@example.org>',
          disposition: 'inline',
        },
        { filename: 'report.pdf', content: 'JVBERi0=' },
      ],
    });
    expect(contentTypes(m)).toEqual([
      'multipart/mixed',
      'multipart/alternative',
      'text/plain',
      'multipart/related',
      'text/html',
      'image/png',
      'application/pdf',
    ]);
    expect(str(m)).toMatch(/multipart\/related;\r?\n? boundary="[^"]+"; type="text\/html"/);
    const p = await parse(m);
    expect(p.html).toContain('cid:logo@example.org');
    const logo = p.attachments.find((a) => a.filename === 'logo.png')!;
    expect(logo.contentId).toBe('<logo@example.org>');
    expect(logo.related).toBe(true);
    expect(new Uint8Array(logo.content as ArrayBuffer)).toEqual(new Uint8Array([137, 80, 78, 71]));
    const pdf = p.attachments.find((a) => a.filename === 'report.pdf')!;
    expect(new TextDecoder().decode(pdf.content as ArrayBuffer)).toBe('%PDF-');
    expect(pdf.mimeType).toBe('application/pdf');
  });

  it('boundaries are at most 70 bchars and never occur in the enclosed content', () => {
    // First random draw (the boundary) all zeros, and the text holds exactly that delimiter.
    const zeros = `--=_smtp-edge_${'00'.repeat(12)}`;
    const real = crypto.getRandomValues.bind(crypto);
    const spy = vi.spyOn(crypto, 'getRandomValues');
    spy.mockImplementationOnce(<T extends ArrayBufferView | null>(a: T): T => a);
    spy.mockImplementation(real);
    const m = composeMessage({ ...base, text: `${zeros}\r\n${zeros}--`, html: '<p>x</p>' });
    const boundary = /boundary="([^"]+)"/.exec(str(m))![1]!;
    expect(boundary).not.toBe(zeros.slice(2));
    expect(boundary.length).toBeLessThanOrEqual(70);
    expect(boundary).toMatch(/^[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]$/);
    expect(str(m).split(`--${boundary}`).length).toBe(4); // two openers and the closer
  });

  it('uses the extension for the default type and application/octet-stream otherwise', () => {
    const m = composeMessage({
      ...base,
      attachments: [
        { filename: 'a.JPG', content: '' },
        { filename: 'noext', content: '' },
        { filename: 'x.csv', content: '', contentType: 'Text/CSV; charset="utf-8"; header=present' },
      ],
    });
    const unfolded = str(m).replace(/\r\n(?=[ \t])/g, '');
    expect(unfolded).toContain('Content-Type: image/jpeg; name=a.JPG\r\n');
    expect(unfolded).toContain('Content-Type: application/octet-stream; name=noext\r\n');
    expect(unfolded).toContain('Content-Type: text/csv; charset=utf-8; header=present; name=x.csv\r\n');
  });

  it('attaches a 7-bit message/rfc822 as 7bit, not base64 (RFC 2046 section 5.2.1)', async () => {
    const inner = 'From: a@example.org\nSubject: inner\n\nbody\n';
    const m = composeMessage({
      ...base,
      text: 'see attached',
      attachments: [
        { filename: 'fwd.eml', content: new TextEncoder().encode(inner), contentType: 'message/rfc822' },
      ],
    });
    expect(str(m)).toContain(
      'Content-Type: message/rfc822; name=fwd.eml\r\nContent-Transfer-Encoding: 7bit\r\n',
    );
    expect(str(m)).toContain('Subject: inner\r\n\r\nbody\r\n');
  });
});

describe('composeMessage: round trip through postal-mime', () => {
  it('keeps emoji, CJK, RTL and a very long subject, names and bodies', async () => {
    const subject = `Re: ${'🎉 Überraschung! 漢字かな交じり文 مرحبا بالعالم שלום '.repeat(8)}end`;
    const text = `${'مرحبا بالعالم — 你好，世界 — 👩‍👩‍👧‍👦 '.repeat(40)}\n${'x'.repeat(5000)}\nlast line   `;
    const html = `<p dir="rtl">${'שלום עולם '.repeat(300)}</p>`;
    const m = composeMessage({
      ...base,
      from: { name: 'Zoë "Z" Saldaña, Jr.', address: 'zoe@example.org' },
      to: ['田中 太郎 <taro@example.jp>', '"O\'Brien, Pat" <pat@example.ie>', 'plain@example.net'],
      cc: { name: 'محمد', address: 'mo@example.eg' },
      replyTo: 'Support <help@example.org>',
      subject,
      text,
      html,
    });
    assertWire(m);
    for (const line of crlfLines(headerBlock(m))) expect(line.length).toBeLessThanOrEqual(78);
    const p = await parse(m);
    expect(p.subject).toBe(subject);
    expect(p.from).toEqual({ name: 'Zoë "Z" Saldaña, Jr.', address: 'zoe@example.org' });
    expect(p.to).toEqual([
      { name: '田中 太郎', address: 'taro@example.jp' },
      { name: "O'Brien, Pat", address: 'pat@example.ie' },
      { name: '', address: 'plain@example.net' },
    ]);
    expect(p.cc).toEqual([{ name: 'محمد', address: 'mo@example.eg' }]);
    expect(p.replyTo).toEqual([{ name: 'Support', address: 'help@example.org' }]);
    expectText(p.text, text);
    expectText(p.html, html);
    expect(p.messageId).toBe('<id1@example.org>');
  });

  it('keeps attachment bytes and non-ASCII, long and quoted file names', async () => {
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
    const names = [
      'résumé.pdf',
      '报告 2026 第一季度 最终版 (已审核) 非常长的文件名称 用于测试续行.xlsx',
      'a "quoted" name\\with backslash.txt',
      `${'long-ascii-name-'.repeat(10)}.bin`,
      '🎉.png',
    ];
    const m = composeMessage({
      ...base,
      text: 'files',
      attachments: names.map((filename, i) => ({
        filename,
        content: i % 2 === 0 ? bytes : btoa(String.fromCharCode(...bytes)),
      })),
    });
    assertWire(m);
    const p = await parse(m);
    expect(p.attachments.map((a) => a.filename)).toEqual(names);
    for (const a of p.attachments) expect(new Uint8Array(a.content as ArrayBuffer)).toEqual(bytes);
  });

  it('base64 text content gives the same octets as the decoded bytes, folded or not (no decode/encode round trip)', () => {
    const bytes = Uint8Array.from({ length: 3001 }, (_, i) => (i * 131 + 7) & 255);
    const b64 = btoa(String.fromCharCode(...bytes));
    const fixed = { ...base, date: new Date(0), messageId: '<fixed@example.org>', text: 'x' };
    const compose = (content: Uint8Array | string, contentType?: string) =>
      str(
        composeMessage({
          ...fixed,
          attachments: [{ filename: 'a.bin', content, ...(contentType ? { contentType } : {}) }],
        }),
      ).replace(/=_smtp-edge_[0-9a-f]+/g, 'BOUNDARY');
    const expected = compose(bytes);
    expect(compose(b64)).toBe(expected);
    expect(compose(b64.replace(/.{1,64}/g, '$&\r\n'))).toBe(expected);
    expect(compose(` ${b64.replace(/.{1,10}/g, '$&\t')}\n`)).toBe(expected);
    // A message/rfc822 given as base64 is still decoded and attached as 7bit text.
    const inner = 'From: a@example.org\r\nSubject: inner\r\n\r\nbody\r\n';
    expect(compose(btoa(inner), 'message/rfc822')).toBe(
      compose(new TextEncoder().encode(inner), 'message/rfc822'),
    );
    expect(compose(btoa(inner), 'message/rfc822')).toContain('Subject: inner\r\n\r\nbody\r\n');
  });

  it('carries a 3 MB attachment exactly, in 76-character base64 lines', async () => {
    const big = new Uint8Array(3 * 1024 * 1024);
    for (let off = 0; off < big.length; off += 65536) crypto.getRandomValues(big.subarray(off, off + 65536));
    const m = composeMessage({ ...base, text: 'big', attachments: [{ filename: 'big.bin', content: big }] });
    assertWire(m);
    const s = str(m);
    const body = s.slice(s.indexOf('big.bin\r\n\r\n') + 11);
    expect(body.slice(0, 78)).toMatch(/^[A-Za-z0-9+/]{76}\r\n$/);
    const p = await parse(m);
    expect(p.attachments).toHaveLength(1);
    expect(new Uint8Array(p.attachments[0]!.content as ArrayBuffer)).toEqual(big);
  });
});
