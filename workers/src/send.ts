/**
 * One send, shared by `POST /send` and `Mailer.send()`: configuration → validation → composition
 * → one SMTP connection to the relay → outcome. Never throws for a mail failure: every outcome is
 * a `SendResponse` value.
 *
 * Platform limits: the socket is opened here, inside the request (never in global scope), and
 * exactly one SMTP connection is used per send, well under the 6 simultaneous connections a
 * Worker invocation may hold.
 *
 * Latency: the outcome is returned as soon as the relay's final reply arrives. The QUIT (RFC 5321
 * section 4.1.1.10) and the close then finish in the background the caller gives
 * (`ctx.waitUntil`), bounded by the client's quit timeout (5 s for the 221, 5 s for the close).
 */
import { composeMessage, type MessageInput, sendOnce as sendOverOneConnection } from '@smtp-edge/protocol';
import { connectSmtp, type SendEnvelope, type SmtpClientOptions } from '@smtp-edge/protocol/workers';
import { ConfigurationError, type Env, type RelayConfig, readConfig, type WorkerConfig } from './config.ts';
import { failure, fromSmtpError, invalidRequest, mailerError } from './errors.ts';
import { type ParsedSendRequest, validateSendRequest } from './schema.ts';
import type { SendResponse } from './types.ts';

/** Options for the protocol client: TLS always required, never relaxed (no clear-text fall back). */
export function clientOptions(relay: RelayConfig, signal: AbortSignal): SmtpClientOptions {
  const options: SmtpClientOptions = {
    host: relay.host,
    port: relay.port,
    security: relay.security,
    // RFC 3207 section 4.1 and RFC 8314 section 5.2: the client decides the security it needs; a
    // relay without STARTTLS (or with a certificate that fails verification) is an error here.
    starttlsPolicy: 'required',
    timeouts: { ...relay.timeouts },
    signal,
  };
  if (relay.helo !== undefined) options.helo = relay.helo;
  if (relay.auth !== undefined)
    options.auth = { username: relay.auth.username, password: relay.auth.password };
  return options;
}

function list<T>(value: T | T[] | undefined): T[] | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value : [value];
}

/**
 * The validated request as the composer's input (same field names). Address fields pass as they
 * are, so the composer's field paths are the request's: `to` for a single string, `to[1]` for the
 * second address of `to: 'a@x, b@y'`, `to[2]` for the third element of an array.
 */
export function messageInput(req: ParsedSendRequest): MessageInput {
  const input: MessageInput = { from: req.from };
  if (req.to !== undefined) input.to = req.to;
  if (req.cc !== undefined) input.cc = req.cc;
  if (req.bcc !== undefined) input.bcc = req.bcc;
  if (req.replyTo !== undefined) input.replyTo = req.replyTo;
  if (req.subject !== undefined) input.subject = req.subject;
  if (req.text !== undefined) input.text = req.text;
  if (req.html !== undefined) input.html = req.html;
  if (req.attachments) {
    input.attachments = req.attachments.map((a) => ({
      filename: a.filename,
      // Whitespace (MIME line breaks) is fine: the composer re-wraps the base64 text itself.
      content: a.content,
      ...(a.contentType === undefined ? {} : { contentType: a.contentType }),
    }));
  }
  if (req.headers) input.headers = { ...req.headers };
  return input;
}

function dsnOf(req: ParsedSendRequest): SendEnvelope['dsn'] | undefined {
  if (req.dsn === undefined) return undefined;
  const dsn: NonNullable<SendEnvelope['dsn']> = {};
  if (req.dsn.ret !== undefined) dsn.ret = req.dsn.ret;
  if (req.dsn.envid !== undefined) dsn.envid = req.dsn.envid;
  const notify = list(req.dsn.notify);
  if (notify !== undefined) {
    dsn.notify = notify.includes('NEVER') ? 'NEVER' : (notify as ('SUCCESS' | 'FAILURE' | 'DELAY')[]);
  }
  return dsn;
}

export interface SendDependencies {
  compose: typeof composeMessage;
  connect: typeof connectSmtp;
}

const realDependencies: SendDependencies = { compose: composeMessage, connect: connectSmtp };

/**
 * Where work that must outlive the response goes: `ctx.waitUntil` of the request (HTTP) or of the
 * entrypoint (RPC). Without one, the QUIT is awaited before the outcome is returned.
 */
export type Background = (work: Promise<unknown>) => void;

export interface SendOptions {
  /** The configuration, when the caller has already read it. */
  config?: WorkerConfig;
  deps?: SendDependencies;
  /** Finish the QUIT here, after the outcome is returned (see the module comment). */
  background?: Background;
}

/**
 * Validate, compose and relay `input` (already parsed JSON or an RPC argument).
 * `config` may be passed when the caller has already read it. Logs one line per send.
 */
export async function handleSend(
  input: unknown,
  env: Env,
  requestId: string,
  options: SendOptions = {},
): Promise<SendResponse> {
  const started = Date.now();
  const result = await sendOnce(input, env, requestId, options);
  logOutcome(result, Date.now() - started);
  return result;
}

/**
 * One structured log line per send for Workers Logs: outcome and counts, never addresses or
 * content.
 */
function logOutcome(result: SendResponse, ms: number): void {
  const line = result.ok
    ? {
        event: 'send',
        requestId: result.requestId,
        status: 200,
        accepted: result.accepted.length,
        rejected: result.rejected.length,
        ms,
      }
    : {
        event: 'send',
        requestId: result.requestId,
        status: result.error.status,
        code: result.error.code,
        smtp: result.error.smtp
          ? `${result.error.smtp.code} ${result.error.smtp.enhancedCode ?? ''}`.trim()
          : undefined,
        ms,
      };
  console.log(JSON.stringify(line));
}

async function sendOnce(
  input: unknown,
  env: Env,
  requestId: string,
  options: SendOptions,
): Promise<SendResponse> {
  let config: WorkerConfig;
  try {
    config = options.config ?? readConfig(env);
  } catch (err) {
    if (err instanceof ConfigurationError)
      return failure(mailerError('configuration_error', err.message), requestId);
    throw err;
  }
  const deps = options.deps ?? realDependencies;

  const validation = validateSendRequest(input, config.limits);
  if (!validation.ok) return failure(invalidRequest(validation.fields), requestId);
  const request = validation.value;

  let composed: ReturnType<typeof composeMessage>;
  try {
    composed = deps.compose(messageInput(request));
  } catch (err) {
    // The composer checks what the schema cannot (full address grammar, encodings) and names the field.
    if (isMessageError(err)) {
      const field = err.field ?? '';
      return failure(invalidRequest([{ path: field, message: stripField(err.message, field) }]), requestId);
    }
    throw err;
  }

  const envelope: SendEnvelope = { from: composed.envelope.from, to: composed.envelope.to };
  const dsn = dsnOf(request);
  if (dsn !== undefined) envelope.dsn = dsn;
  if (composed.smtputf8) envelope.smtpUtf8 = true;

  const deadline = AbortSignal.timeout(config.relay.sendTimeoutMs);
  try {
    // One connection; the QUIT after the final reply goes to the background when there is one.
    const background = options.background;
    const result = await sendOverOneConnection(
      deps.connect,
      clientOptions(config.relay, deadline),
      envelope,
      composed.bytes,
      background === undefined ? {} : { background: (quit) => background(quit) },
    );
    const rejected = result.rejected.map((r) => ({
      recipient: r.recipient,
      code: r.code,
      enhancedCode: r.enhancedCode,
      message: r.message,
    }));
    if (result.accepted.length === 0) {
      return failure(
        mailerError(
          'recipients_rejected',
          'the relay accepted none of the recipients; see rejected for each one',
          {
            rejected,
          },
        ),
        requestId,
      );
    }
    return { ok: true, messageId: composed.messageId, accepted: [...result.accepted], rejected, requestId };
  } catch (err) {
    const error = fromSmtpError(err, config.relay, config.retryAfterSeconds);
    if (error.code === 'internal_error') console.error(`[${requestId}] send failed`, err);
    return failure(error, requestId);
  }
}

/** The composer's `SmtpMessageError`, recognised by its `kind` (see core/errors.ts). */
function isMessageError(err: unknown): err is Error & { kind: 'message'; field?: string } {
  return err instanceof Error && (err as { kind?: unknown }).kind === 'message';
}

/** The composer prefixes messages with `field: `; the field is reported separately. */
function stripField(message: string, field: string): string {
  const prefix = `${field}: `;
  return field !== '' && message.startsWith(prefix) ? message.slice(prefix.length) : message;
}
