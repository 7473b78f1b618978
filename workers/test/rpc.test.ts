/**
 * The Mailer RPC entrypoint: a second Worker ("caller", test/fixtures/caller.js) with a service
 * binding to `Mailer` calls `send()`; the result is the same object POST /send answers with.
 */
import { env, exports } from 'cloudflare:workers';
import PostalMime from 'postal-mime';
import { describe, expect, it } from 'vitest';
import type { SendResponse } from '../src/types.ts';
import { json, message, post, receivedFor, unique } from './helpers.ts';

async function viaBinding(payload: unknown): Promise<SendResponse> {
  const res = await env.CALLER.fetch('http://caller/', { method: 'POST', body: JSON.stringify(payload) });
  expect(res.status).toBe(200);
  return (await res.json()) as SendResponse;
}

/** Everything but the per-request values. */
function shape(result: SendResponse): unknown {
  const { requestId: _r, ...rest } = result;
  if (rest.ok) return { ...rest, messageId: expect.stringMatching(/^<.+@example\.org>$/) };
  return rest;
}

describe('Mailer.send over a service binding', () => {
  it('sends, and resolves to the same shape as POST /send', async () => {
    const to = unique('rpc');
    const bcc = unique('rpc-bcc');
    const gone = unique('reject');
    const result = await viaBinding(message({ to: [to, gone], bcc, subject: 'Über RPC' }));
    expect(result).toEqual({
      ok: true,
      messageId: expect.stringMatching(/^<.+@example\.org>$/),
      accepted: [to, bcc],
      rejected: [{ recipient: gone, code: 550, enhancedCode: '5.1.1', message: 'No such user here' }],
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const [got] = await receivedFor(bcc);
    expect(got?.rcptTo).toEqual([to, bcc]);
    const parsed = await PostalMime.parse(got!.raw);
    expect(parsed.subject).toBe('Über RPC');
    expect(parsed.messageId).toBe(result.ok ? result.messageId : '');

    const http = await json(
      await post(message({ to: [unique('rpc'), gone], bcc: unique('rpc-bcc'), subject: 'Über RPC' })),
    );
    expect(Object.keys(http).sort()).toEqual(Object.keys(result).sort());
  });

  it('bad input: the same 400 error as POST /send, as a value (not a thrown Error)', async () => {
    const bad = {
      from: 'app@example.org',
      to: 'zoe@example.org',
      subject: 'Hi\r\nBcc: victim@example.net',
      text: 'x',
    };
    const rpc = await viaBinding(bad);
    const http = await json(await post(bad));
    expect(rpc.ok).toBe(false);
    expect(shape(rpc)).toEqual(shape(http));
    expect(shape(rpc)).toEqual({
      ok: false,
      error: {
        status: 400,
        code: 'invalid_request',
        message: 'the request has a wrong field: subject must not contain CR, LF or NUL (header injection)',
        fields: [{ path: 'subject', message: 'must not contain CR, LF or NUL (header injection)' }],
      },
    });
  });

  it('takes comma-separated address lists in one string, as POST /send does', async () => {
    const a = unique('rpc-list');
    const b = unique('rpc-list');
    const result = await viaBinding(message({ to: `${a}, "Martin, Jan" <${b}>` }));
    expect(result.ok && result.accepted).toEqual([a, b]);
    const bad = await viaBinding(message({ to: `${a}, zoe..x@example.org` }));
    expect(shape(bad)).toEqual(shape(await json(await post(message({ to: `${a}, zoe..x@example.org` })))));
    expect(!bad.ok && bad.error.fields?.[0]?.path).toBe('to[1]');
  });

  it('relay outcomes: the same 422 with per-recipient detail', async () => {
    const gone = unique('reject');
    const rpc = await viaBinding(message({ to: gone }));
    const http = await json(await post(message({ to: gone })));
    expect(shape(rpc)).toEqual(shape(http));
    expect(rpc.ok === false && rpc.error.status).toBe(422);
  });

  it('a temporary refusal carries retryAfterSeconds, as the HTTP Retry-After', async () => {
    const rpc = await viaBinding(message({ from: 'tempfail@example.org' }));
    expect(rpc.ok).toBe(false);
    if (!rpc.ok) {
      expect(rpc.error.status).toBe(503);
      expect(rpc.error.code).toBe('relay_temporary_failure');
      expect(rpc.error.retryAfterSeconds).toBe(60);
    }
  });

  it('applies MAX_REQUEST_BYTES to the message as JSON', async () => {
    const rpc = await viaBinding(message({ text: 'x'.repeat(10 * 1024 * 1024) }));
    expect(shape(rpc)).toEqual({
      ok: false,
      error: {
        status: 413,
        code: 'payload_too_large',
        message: 'the message is larger than 10485760 bytes as JSON (MAX_REQUEST_BYTES)',
      },
    });
  });

  it('is also reachable as ctx.exports.Mailer (loopback RPC)', async () => {
    const to = unique('loopback');
    const result = await exports.Mailer.send(message({ to }));
    expect(result.ok && result.accepted).toEqual([to]);
  });
});
