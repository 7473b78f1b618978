/**
 * Bad input to POST /send: exact status and JSON for each case. None of these reaches the relay.
 */
import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { failureOf, message, post } from './helpers.ts';

describe('API key', () => {
  it('refuses a request without Authorization with 401 and WWW-Authenticate', async () => {
    const res = await post(message(), { key: null });
    const body = await failureOf(res, 401);
    expect(res.headers.get('WWW-Authenticate')).toBe('Bearer realm="smtp-edge"');
    expect(body.error).toEqual({
      status: 401,
      code: 'unauthorized',
      message: 'send an API key as Authorization: Bearer <key>',
    });
  });

  it('refuses a wrong key with error="invalid_token"', async () => {
    const res = await post(message(), { key: 'test-key-3' });
    const body = await failureOf(res, 401);
    expect(res.headers.get('WWW-Authenticate')).toBe('Bearer realm="smtp-edge", error="invalid_token"');
    expect(body.error.code).toBe('unauthorized');
    expect(body.error.message).toBe('the API key is not valid (Authorization: Bearer <key>)');
  });

  it('refuses a prefix of a valid key and a valid key with a suffix', async () => {
    await failureOf(await post(message(), { key: 'test-key-' }), 401);
    await failureOf(await post(message(), { key: 'test-key-10' }), 401);
  });

  it('refuses another scheme (Basic) as an invalid credential', async () => {
    const res = await post(message(), { key: null, headers: { Authorization: 'Basic dGVzdDp0ZXN0' } });
    await failureOf(res, 401);
    expect(res.headers.get('WWW-Authenticate')).toBe('Bearer realm="smtp-edge", error="invalid_token"');
  });

  it('accepts every key of API_KEYS (comma and newline separated) and a lower-case scheme', async () => {
    // The body is empty on purpose: passing authentication shows as a 400 instead of a 401.
    for (const auth of ['Bearer test-key-1', 'Bearer test-key-2', 'bearer test-key-2']) {
      const res = await post(undefined, { key: null, headers: { Authorization: auth }, raw: '' });
      const body = await failureOf(res, 400);
      expect(body.error.code).toBe('invalid_json');
    }
  });

  it('checks the key before reading the body', async () => {
    const res = await post(undefined, { key: 'wrong', raw: 'x'.repeat(20_000_000) });
    await failureOf(res, 401);
  });

  it('answers 500 configuration_error when API_KEYS is not set', async () => {
    const res = await post(message(), { env: { API_KEYS: ' , \n' } });
    const body = await failureOf(res, 500);
    expect(body.error).toEqual({
      status: 500,
      code: 'configuration_error',
      message: 'the API_KEYS secret is not set: wrangler secret put API_KEYS',
    });
  });
});

describe('body and media type', () => {
  it('415 when Content-Type is not JSON', async () => {
    const res = await post(message(), { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    const body = await failureOf(res, 415);
    expect(body.error).toEqual({
      status: 415,
      code: 'unsupported_media_type',
      message: 'send the message as JSON with Content-Type: application/json',
    });
  });

  it('accepts application/json with a charset parameter', async () => {
    const res = await post({}, { headers: { 'Content-Type': 'application/json; charset=utf-8' } });
    const body = await failureOf(res, 400);
    expect(body.error.code).toBe('invalid_request');
  });

  it('400 invalid_json for malformed JSON, an empty body, and bytes that are not UTF-8', async () => {
    let body = await failureOf(await post(undefined, { raw: '{"from": ' }), 400);
    expect(body.error.code).toBe('invalid_json');
    expect(body.error.message).toMatch(/^the request body is not valid JSON: /);
    body = await failureOf(await post(undefined, { raw: '' }), 400);
    expect(body.error).toEqual({ status: 400, code: 'invalid_json', message: 'the request body is empty' });
    body = await failureOf(await post(undefined, { raw: new Uint8Array([0x7b, 0xff, 0x7d]) }), 400);
    expect(body.error).toEqual({
      status: 400,
      code: 'invalid_json',
      message: 'the request body is not valid UTF-8 (RFC 8259 section 8.1)',
    });
  });

  it('400 when the body is JSON but not an object', async () => {
    const body = await failureOf(await post([message()]), 400);
    expect(body.error.fields).toEqual([{ path: '', message: 'the body must be a JSON object' }]);
  });

  it('413 from Content-Length before reading', async () => {
    const res = await post(undefined, {
      env: { MAX_REQUEST_BYTES: '2048' },
      raw: 'x'.repeat(4096),
      headers: { 'Content-Length': '4096' },
    });
    const body = await failureOf(res, 413);
    expect(body.error).toEqual({
      status: 413,
      code: 'payload_too_large',
      message: 'the request body is larger than 2048 bytes (MAX_REQUEST_BYTES)',
    });
  });

  it('413 while reading a body sent without Content-Length', async () => {
    const big = JSON.stringify(message({ text: 'y'.repeat(5000) }));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const bytes = new TextEncoder().encode(big);
        for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.slice(i, i + 1000));
        controller.close();
      },
    });
    const res = await post(undefined, { env: { MAX_REQUEST_BYTES: '2048' }, raw: stream });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });

  it('a body just under the limit is read (and then validated)', async () => {
    const res = await post(
      { from: 'a@example.org', pad: 'z'.repeat(1900) },
      { env: { MAX_REQUEST_BYTES: '2048' } },
    );
    const body = await failureOf(res, 400);
    expect(body.error.fields).toContainEqual({ path: 'pad', message: 'is not a known field' });
  });
});

describe('fields', () => {
  it('names every wrong field at once', async () => {
    const res = await post({
      to: ['zoe@example.org', 42, { address: 'not-an-address' }],
      cc: [],
      subject: 7,
      attachments: [{ filename: 'a.txt', content: 'aGVsbG8=', colour: 'red' }],
      dsn: { ret: 'ALL' },
      surprise: true,
    });
    const body = await failureOf(res, 400);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.fields).toEqual([
      { path: 'from', message: 'is required' },
      {
        path: 'to[1]',
        message: 'must be an address string such as "Zoë" <zoe@example.org>, or an object {name, address}',
      },
      { path: 'to[2].address', message: 'must be an address such as zoe@example.org' },
      { path: 'cc', message: 'must not be an empty list' },
      { path: 'subject', message: 'must be a string' },
      { path: 'attachments[0].colour', message: 'is not a known field' },
      { path: 'dsn.ret', message: 'must be FULL or HDRS' },
      { path: 'surprise', message: 'is not a known field' },
    ]);
    expect(body.error.message).toBe(
      'the request has wrong fields: from is required; to[1] must be an address string such as "Zoë" <zoe@example.org>, or an object {name, address}; to[2].address must be an address such as zoe@example.org (and 5 more)',
    );
  });

  it('requires a recipient and some content', async () => {
    const body = await failureOf(await post({ from: 'app@example.org', subject: 'Nothing' }), 400);
    expect(body.error.fields).toEqual([
      { path: 'to', message: 'at least one recipient is required in to, cc or bcc' },
      { path: 'text', message: 'the message is empty: give text, html or attachments' },
    ]);
  });

  const injection = 'must not contain CR, LF or NUL (header injection)';

  it('refuses CR/LF in the subject', async () => {
    const body = await failureOf(await post(message({ subject: 'Hi\r\nBcc: victim@example.net' })), 400);
    expect(body.error.fields).toEqual([{ path: 'subject', message: injection }]);
  });

  it('refuses a bare LF or a NUL in a header value, and CR/LF smuggled in a header name', async () => {
    const body = await failureOf(
      await post(
        message({ headers: { 'X-Tag': 'a\nBcc: victim@example.net', 'X-Nul': 'a\0b', 'X-A\r\nBcc': 'x' } }),
      ),
      400,
    );
    expect(body.error.fields).toEqual([
      { path: 'headers.X-Tag', message: injection },
      { path: 'headers.X-Nul', message: injection },
      {
        path: 'headers.X-A\r\nBcc',
        message:
          'is not a valid header field name (printable ASCII, no spaces or colon, RFC 5322 section 3.6.8)',
      },
    ]);
  });

  it('refuses CR/LF in an address string, a display name and an address object', async () => {
    const body = await failureOf(
      await post(
        message({
          from: 'app@example.org\r\nRCPT TO:<victim@example.net>',
          to: [{ name: 'Zoë\r\nBcc: victim@example.net', address: 'zoe@example.org' }],
          cc: { address: 'cc@example.org\nX: y' },
          replyTo: 'reply@example.org\r',
        }),
      ),
      400,
    );
    expect(body.error.fields).toEqual([
      { path: 'from', message: injection },
      { path: 'to[0].name', message: injection },
      { path: 'cc.address', message: injection },
      { path: 'replyTo', message: injection },
    ]);
  });

  it('refuses header fields the Worker writes itself', async () => {
    const body = await failureOf(
      await post(message({ headers: { Bcc: 'x@example.org', 'content-type': 'text/html' } })),
      400,
    );
    const reserved =
      'is written by the Worker: use the JSON fields (from, to, cc, bcc, replyTo, subject, text, html, attachments)';
    expect(body.error.fields).toEqual([
      { path: 'headers.Bcc', message: reserved },
      { path: 'headers.content-type', message: reserved },
    ]);
  });

  it('refuses bad base64, a bad media type and a file name with a line break', async () => {
    const body = await failureOf(
      await post(
        message({
          attachments: [
            { filename: 'a.bin', content: 'not base64!' },
            { filename: 'b.bin', content: 'aGVsbG8' },
            { filename: 'c.bin', content: 'aGVsbG8=', contentType: 'text' },
            { filename: 'd\r\n.bin', content: 'aGVsbG8=' },
          ],
        }),
      ),
      400,
    );
    const base64 = 'must be valid base64 (RFC 4648 section 4, with = padding)';
    expect(body.error.fields).toEqual([
      { path: 'attachments[0].content', message: base64 },
      { path: 'attachments[1].content', message: base64 },
      {
        path: 'attachments[2].contentType',
        message: 'must be a media type such as application/pdf or text/csv; charset=utf-8',
      },
      { path: 'attachments[3].filename', message: injection },
    ]);
  });

  it('refuses non-canonical base64 (non-zero pad bits, RFC 4648 section 3.5) with the other field errors', async () => {
    const body = await failureOf(
      await post({
        from: 'app@example.org',
        attachments: [
          { filename: 'a.bin', content: 'QR==' },
          { filename: 'b.bin', content: 'aGVsbG9=' },
          { filename: 'c.bin', content: 'aGVs\r\nbG8=' },
        ],
      }),
      400,
    );
    const base64 = 'must be valid base64 (RFC 4648 section 4, with = padding)';
    expect(body.error.fields).toEqual([
      { path: 'attachments[0].content', message: base64 },
      { path: 'attachments[1].content', message: base64 },
    ]);
  });

  it('accepts base64 with MIME line breaks (and fails later only for other reasons)', async () => {
    const body = await failureOf(
      await post({ from: 'app@example.org', attachments: [{ filename: 'a.bin', content: 'aGVs\r\nbG8=' }] }),
      400,
    );
    expect(body.error.fields).toEqual([
      { path: 'to', message: 'at least one recipient is required in to, cc or bcc' },
    ]);
  });

  it('refuses more recipients than MAX_RECIPIENTS across to, cc and bcc', async () => {
    const to = Array.from({ length: 30 }, (_, i) => `to${i}@example.org`);
    const cc = Array.from({ length: 15 }, (_, i) => `cc${i}@example.org`);
    const bcc = Array.from({ length: 6 }, (_, i) => `bcc${i}@example.org`);
    const body = await failureOf(await post(message({ to, cc, bcc })), 400);
    expect(body.error.fields).toEqual([
      { path: 'bcc', message: 'too many recipients: to, cc and bcc hold 51 together and the limit is 50' },
    ]);
    const lower = await failureOf(
      await post(message({ to: to.slice(0, 3) }), { env: { MAX_RECIPIENTS: '2' } }),
      400,
    );
    expect(lower.error.fields).toEqual([
      { path: 'to', message: 'too many recipients: to, cc and bcc hold 3 together and the limit is 2' },
    ]);
  });

  it('counts every address of a comma-separated string against MAX_RECIPIENTS', async () => {
    const list = (n: number, p: string) => Array.from({ length: n }, (_, i) => `${p}${i}@example.org`);
    const body = await failureOf(
      await post(message({ to: list(40, 'to').join(', '), cc: [list(11, 'cc').join(',')] })),
      400,
    );
    expect(body.error.fields).toEqual([
      { path: 'cc', message: 'too many recipients: to, cc and bcc hold 51 together and the limit is 50' },
    ]);
    // A quoted comma is not a separator: these are 2 addresses, under a limit of 2.
    const quoted = await failureOf(
      await post(message({ to: '"Doe, Jan" <jan@example.org>, zoe@example.org', bcc: 'x@example.org' }), {
        env: { MAX_RECIPIENTS: '2' },
      }),
      400,
    );
    expect(quoted.error.fields).toEqual([
      { path: 'bcc', message: 'too many recipients: to, cc and bcc hold 3 together and the limit is 2' },
    ]);
  });

  it('refuses a string list of more than 1000 addresses in one field', async () => {
    const to = Array.from({ length: 1001 }, (_, i) => `r${i}@example.org`).join(',');
    const body = await failureOf(
      await post({ from: 'app@example.org', replyTo: to, to: 'zoe@example.org', text: 'x' }),
      400,
    );
    expect(body.error.fields).toEqual([{ path: 'replyTo', message: 'must hold at most 1000 addresses' }]);
  });

  it('refuses a huge recipient list outright, before looking at each address', async () => {
    const to = Array.from({ length: 5000 }, (_, i) => (i === 7 ? 42 : `r${i}@example.org`));
    const body = await failureOf(await post({ from: 'app@example.org', to, text: 'x' }), 400);
    expect(body.error.fields).toEqual([
      { path: 'to', message: 'too many recipients: to, cc and bcc hold 5000 together and the limit is 50' },
    ]);
  });

  it('refuses attachments over MAX_ATTACHMENT_BYTES once decoded', async () => {
    const content = btoa('x'.repeat(1500));
    const body = await failureOf(
      await post(message({ attachments: [{ filename: 'a.txt', content }] }), {
        env: { MAX_ATTACHMENT_BYTES: '1024' },
      }),
      400,
    );
    expect(body.error.fields).toEqual([
      { path: 'attachments', message: 'attachments total 1500 bytes once decoded; the limit is 1024' },
    ]);
  });

  it('refuses NEVER with other DSN values and a bad ENVID', async () => {
    const body = await failureOf(
      await post(message({ dsn: { notify: ['NEVER', 'FAILURE'], envid: 'has space' } })),
      400,
    );
    expect(body.error.fields).toEqual([
      { path: 'dsn.notify', message: 'NEVER cannot be combined with other values (RFC 3461 section 4.1)' },
      { path: 'dsn.envid', message: 'must be 1 to 100 printable ASCII characters (RFC 3461 section 4.4)' },
    ]);
  });
});

describe('configuration', () => {
  it('refuses port 25 with a clear configuration error', async () => {
    const body = await failureOf(await post(message(), { env: { SMTP_PORT: '25' } }), 500);
    expect(body.error.code).toBe('configuration_error');
    expect(body.error.message).toBe(
      "SMTP_PORT 25 is not allowed: Workers cannot open outbound connections to port 25; use the relay's submission port (587 with starttls, 465 with tls)",
    );
  });

  it('refuses clear text and a missing host', async () => {
    let body = await failureOf(await post(message(), { env: { SMTP_SECURITY: 'none' } }), 500);
    expect(body.error.message).toBe(
      'SMTP_SECURITY must be "starttls" or "tls", got "none" (clear-text relaying is not offered)',
    );
    body = await failureOf(await post(message(), { env: { SMTP_HOST: '' } }), 500);
    expect(body.error.message).toBe('SMTP_HOST is not set: name the SMTP relay to send through');
  });

  it('refuses a username without a password and a bad number', async () => {
    let body = await failureOf(await post(message(), { env: { SMTP_PASSWORD: '' } }), 500);
    expect(body.error.message).toBe(
      'SMTP_USERNAME is set but the SMTP_PASSWORD secret is not (wrangler secret put SMTP_PASSWORD)',
    );
    body = await failureOf(await post(message(), { env: { MAX_RECIPIENTS: 'lots' } }), 500);
    expect(body.error.message).toBe('MAX_RECIPIENTS must be a whole number, got "lots"');
  });
});

describe('routes', () => {
  it('every response has a request id; a safe client id is kept, another replaced', async () => {
    const kept = await post(message(), { key: null, headers: { 'X-Request-Id': 'trace-42.a' } });
    expect(kept.headers.get('X-Request-Id')).toBe('trace-42.a');
    const replaced = await post(message(), { key: null, headers: { 'X-Request-Id': 'bad id <script>' } });
    expect(replaced.headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('404 and 405 are JSON with a request id', async () => {
    const notFound = await exports.default.fetch('http://mailer.test/nope');
    expect(notFound.status).toBe(404);
    const nf = (await notFound.json()) as { ok: boolean; error: { code: string }; requestId: string };
    expect(nf.error.code).toBe('not_found');
    expect(nf.requestId).toBe(notFound.headers.get('X-Request-Id'));
    const wrongMethod = await exports.default.fetch('http://mailer.test/send');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('Allow')).toBe('POST');
  });

  it('serves an OpenAPI 3.1 document generated from the schemas', async () => {
    const res = await exports.default.fetch('http://mailer.test/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { security: unknown; responses: Record<string, unknown> }>>;
      components: {
        schemas: Record<string, { required?: string[]; properties?: Record<string, unknown> }>;
        securitySchemes: unknown;
      };
    };
    expect(doc.openapi).toBe('3.1.0');
    const send = doc.paths['/send']?.post;
    expect(Object.keys(send?.responses ?? {}).sort()).toEqual(
      ['200', '400', '401', '413', '415', '422', '500', '502', '503', '504'].sort(),
    );
    expect(send?.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.components.securitySchemes).toEqual({
      bearerAuth: { type: 'http', scheme: 'bearer', description: 'One of the keys in the API_KEYS secret' },
    });
    const request = doc.components.schemas.SendRequest;
    expect(request?.required).toEqual(['from']);
    expect(Object.keys(request?.properties ?? {})).toEqual([
      'from',
      'to',
      'cc',
      'bcc',
      'replyTo',
      'subject',
      'text',
      'html',
      'attachments',
      'headers',
      'dsn',
    ]);
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['Address', 'Attachment', 'SendSuccess', 'Error', 'RecipientRejection']),
    );
  });
});
