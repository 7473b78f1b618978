/**
 * The HTTP API: `POST /send` and `GET /openapi.json`.
 *
 * `POST /send` checks, in this order: that API_KEYS is set (500), the key (401), the rest of the
 * configuration (500), the media type (415), the body size from `Content-Length` and then while
 * reading (413), JSON (400), the fields (400); then it composes and relays (200, 422, 502, 503,
 * 504). Every response carries `X-Request-Id`, and every JSON body `requestId`.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { checkBearer, wwwAuthenticate } from './auth.ts';
import { ConfigurationError, type Env, readApiKeys, readConfig, type WorkerConfig } from './config.ts';
import { failure, mailerError } from './errors.ts';
import { ErrorResponseSchema, SendRequestSchema, SendSuccessSchema } from './schema.ts';
import { type Background, handleSend } from './send.ts';
import type { MailerError, SendResponse } from './types.ts';

type AppEnv = { Bindings: Env; Variables: { requestId: string } };

/** A client-chosen request id is kept when it is short and plain; otherwise a UUID is made. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function newRequestId(candidate?: string | null): string {
  return candidate && REQUEST_ID.test(candidate) ? candidate : crypto.randomUUID();
}

function jsonResponse(
  body: SendResponse,
  status: number,
  requestId: string,
  headers: Record<string, string> = {},
) {
  const h = new Headers({
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Request-Id': requestId,
    ...headers,
  });
  if (!body.ok && body.error.retryAfterSeconds !== undefined && body.error.status === 503) {
    h.set('Retry-After', String(body.error.retryAfterSeconds));
  }
  return new Response(JSON.stringify(body), { status, headers: h });
}

function errorResponse(
  error: MailerError,
  requestId: string,
  headers: Record<string, string> = {},
): Response {
  return jsonResponse(failure(error, requestId), error.status, requestId, headers);
}

export function responseFor(result: SendResponse): Response {
  return jsonResponse(result, result.ok ? 200 : result.error.status, result.requestId);
}

type BodyRead = { ok: true; text: string } | { ok: false; error: MailerError };

/**
 * Read at most `max` bytes of the body. `Content-Length` over the limit is refused before reading.
 * A body that declares a length within the limit is read in one native call (`arrayBuffer()`):
 * the runtime's HTTP layer delivers exactly the declared octets, and the size is checked again
 * after reading, so a `Request` built in code with a wrong header is refused all the same. A body
 * without one (chunked) is counted while read and cut off at the limit.
 *
 * Reading chunk by chunk costs about 2 ms of workerd CPU for a 350 KB body (about 90 chunks, a
 * promise each) against well under 0.5 ms for `arrayBuffer()`.
 */
export async function readBody(request: Request, max: number): Promise<BodyRead> {
  const tooLarge = (): BodyRead => ({
    ok: false,
    error: mailerError(
      'payload_too_large',
      `the request body is larger than ${max} bytes (MAX_REQUEST_BYTES)`,
    ),
  });
  const declared = request.headers.get('Content-Length')?.trim() ?? null;
  const declaredOk = declared !== null && /^\d+$/.test(declared);
  if (declaredOk && Number(declared) > max) return tooLarge();
  if (request.body === null) return { ok: true, text: '' };

  let bytes: Uint8Array;
  if (declaredOk) {
    bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > max) return tooLarge();
  } else {
    const reader = request.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > max) {
        await reader.cancel().catch(() => {});
        return tooLarge();
      }
      chunks.push(value);
    }
    bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
  }
  try {
    return { ok: true, text: utf8.decode(bytes) };
  } catch {
    return {
      ok: false,
      error: mailerError('invalid_json', 'the request body is not valid UTF-8 (RFC 8259 section 8.1)'),
    };
  }
}

/** RFC 8259 section 8.1: JSON text is UTF-8; a leading BOM is dropped, invalid octets refused. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function isJsonMediaType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

const sendRoute = createRoute({
  method: 'post',
  path: '/send',
  summary: 'Send one message through the SMTP relay',
  description:
    'Composes an RFC 5322 message from the JSON body and relays it with STARTTLS or implicit TLS and AUTH. ' +
    'Bcc recipients are in the envelope only. The same object is returned by the `Mailer.send()` RPC method.',
  security: [{ bearerAuth: [] }],
  request: { body: { required: true, content: { 'application/json': { schema: SendRequestSchema } } } },
  responses: {
    200: {
      description: 'The relay accepted the message for every recipient, or for some (see `rejected`)',
      content: { 'application/json': { schema: SendSuccessSchema } },
    },
    400: {
      description: 'Not JSON, or wrong fields (see `error.fields`)',
      content: { 'application/json': { schema: ErrorResponseSchema } },
    },
    401: {
      description: 'No or wrong API key',
      content: { 'application/json': { schema: ErrorResponseSchema } },
    },
    413: {
      description: 'Body larger than MAX_REQUEST_BYTES',
      content: { 'application/json': { schema: ErrorResponseSchema } },
    },
    415: {
      description: 'Content-Type is not application/json',
      content: { 'application/json': { schema: ErrorResponseSchema } },
    },
    422: {
      description:
        'The relay accepted no recipient, or refused the sender or the message for good (see `error.smtp`)',
      content: { 'application/json': { schema: ErrorResponseSchema } },
    },
    500: {
      description: 'The Worker is misconfigured',
      content: { 'application/json': { schema: ErrorResponseSchema } },
    },
    502: {
      description: 'Relay unreachable, TLS failure, authentication refused, or protocol error',
      content: { 'application/json': { schema: ErrorResponseSchema } },
    },
    503: {
      description: 'The relay refused temporarily; retry after `Retry-After` seconds',
      headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds to wait' } },
      content: { 'application/json': { schema: ErrorResponseSchema } },
    },
    504: {
      description: 'The relay stopped answering',
      content: { 'application/json': { schema: ErrorResponseSchema } },
    },
  },
});

/**
 * The request's `waitUntil`, so the SMTP QUIT can finish after the response is sent; undefined
 * when the app is called without an execution context (`app.fetch(request, env)`), where the
 * QUIT is then awaited before answering.
 */
function backgroundOf(c: {
  executionCtx: { waitUntil(work: Promise<unknown>): void };
}): Background | undefined {
  let ctx: { waitUntil(work: Promise<unknown>): void };
  try {
    ctx = c.executionCtx; // Hono throws when the fetch call had no context
  } catch {
    return undefined;
  }
  return (work) => ctx.waitUntil(work);
}

export function createApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();

  app.use('*', async (c, next) => {
    c.set('requestId', newRequestId(c.req.header('X-Request-Id')));
    await next();
    c.res.headers.set('X-Request-Id', c.get('requestId'));
  });

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'One of the keys in the API_KEYS secret',
  });
  // The route is documented from the schemas; the handler below reads the body itself so that the
  // size limit applies while reading and HTTP and RPC share one validation path.
  app.openAPIRegistry.registerPath(sendRoute);

  app.post('/send', async (c) => {
    const requestId = c.get('requestId');
    const keys = readApiKeys(c.env);
    if (keys.length === 0) {
      return errorResponse(
        mailerError('configuration_error', 'the API_KEYS secret is not set: wrangler secret put API_KEYS'),
        requestId,
      );
    }
    const check = await checkBearer(c.req.header('Authorization'), keys);
    if (check !== 'ok') {
      return errorResponse(
        mailerError(
          'unauthorized',
          check === 'missing'
            ? 'send an API key as Authorization: Bearer <key>'
            : 'the API key is not valid (Authorization: Bearer <key>)',
        ),
        requestId,
        { 'WWW-Authenticate': wwwAuthenticate(check) },
      );
    }

    let config: WorkerConfig;
    try {
      config = readConfig(c.env);
    } catch (err) {
      if (err instanceof ConfigurationError)
        return errorResponse(mailerError('configuration_error', err.message), requestId);
      throw err;
    }

    if (!isJsonMediaType(c.req.header('Content-Type') ?? null)) {
      return errorResponse(
        mailerError('unsupported_media_type', 'send the message as JSON with Content-Type: application/json'),
        requestId,
      );
    }
    const body = await readBody(c.req.raw, config.limits.maxRequestBytes);
    if (!body.ok) return errorResponse(body.error, requestId);
    if (body.text.trim() === '')
      return errorResponse(mailerError('invalid_json', 'the request body is empty'), requestId);
    let input: unknown;
    try {
      input = JSON.parse(body.text);
    } catch (err) {
      return errorResponse(
        mailerError('invalid_json', `the request body is not valid JSON: ${(err as Error).message}`),
        requestId,
      );
    }
    const background = backgroundOf(c);
    return responseFor(
      await handleSend(
        input,
        c.env,
        requestId,
        background === undefined ? { config } : { config, background },
      ),
    );
  });

  app.all('/send', (c) =>
    errorResponse(mailerError('method_not_allowed', 'use POST /send'), c.get('requestId'), { Allow: 'POST' }),
  );

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'smtp-edge mailer',
      version: '0.1.0',
      description:
        'Sends mail from the edge through an SMTP relay (RFC 5321) with STARTTLS (RFC 3207) or implicit TLS and AUTH (RFC 4954).',
    },
  });

  app.notFound((c) =>
    errorResponse(
      mailerError(
        'not_found',
        `no route ${c.req.method} ${new URL(c.req.url).pathname}; see GET /openapi.json`,
      ),
      c.get('requestId'),
    ),
  );
  app.onError((err, c) => {
    const requestId = c.get('requestId') ?? newRequestId();
    console.error(`[${requestId}] unhandled error`, err);
    return errorResponse(
      mailerError('internal_error', 'the Worker failed unexpectedly; the Worker log has the details'),
      requestId,
    );
  });

  return app;
}
