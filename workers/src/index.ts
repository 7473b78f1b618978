/**
 * The edge sender Worker.
 *
 * - `fetch`: the HTTP API (`POST /send`, `GET /openapi.json`), see `app.ts`.
 * - `Mailer`: an RPC entrypoint for other Workers through a service binding
 *   (`services = [{ binding = "MAILER", service = "smtp-edge-mailer", entrypoint = "Mailer" }]`).
 *
 * Nothing is connected at module scope: Workers forbid I/O in global scope, and each send opens
 * its own single SMTP connection inside the request.
 */
import { WorkerEntrypoint } from 'cloudflare:workers';
import { createApp, newRequestId } from './app.ts';
import { ConfigurationError, type Env, readLimits } from './config.ts';
import { failure, mailerError } from './errors.ts';
import { handleSend } from './send.ts';
import type { MailerRpc, SendRequest, SendResponse } from './types.ts';

export type * from './types.ts';

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;

/**
 * `send(message)` takes the `POST /send` JSON body and resolves to the same `SendResponse` the
 * HTTP API answers with; failures resolve to `{ ok: false, error }` (Workers RPC would drop the
 * fields of a thrown Error). A service binding is the caller's credential: no API key is asked.
 */
export class Mailer extends WorkerEntrypoint<Env> implements MailerRpc {
  async send(message: SendRequest): Promise<SendResponse> {
    const requestId = newRequestId();
    // The same size limit as the HTTP body, measured on the message's JSON form.
    let limits: ReturnType<typeof readLimits>;
    try {
      limits = readLimits(this.env);
    } catch (err) {
      if (err instanceof ConfigurationError)
        return failure(mailerError('configuration_error', err.message), requestId);
      throw err;
    }
    let size: number;
    try {
      size = new TextEncoder().encode(JSON.stringify(message) ?? '').byteLength;
    } catch {
      return failure(
        mailerError('invalid_request', 'the message is not JSON-serializable', {
          fields: [{ path: '', message: 'must be a plain object of strings, arrays and objects' }],
        }),
        requestId,
      );
    }
    if (size > limits.maxRequestBytes) {
      return failure(
        mailerError(
          'payload_too_large',
          `the message is larger than ${limits.maxRequestBytes} bytes as JSON (MAX_REQUEST_BYTES)`,
        ),
        requestId,
      );
    }
    try {
      // The result goes back as soon as the relay's final reply is in; QUIT finishes under
      // this invocation's waitUntil.
      return await handleSend(message, this.env, requestId, {
        background: (work) => this.ctx.waitUntil(work),
      });
    } catch (err) {
      console.error(`[${requestId}] Mailer.send failed`, err);
      return failure(
        mailerError('internal_error', 'the Worker failed unexpectedly; the Worker log has the details'),
        requestId,
      );
    }
  }
}
