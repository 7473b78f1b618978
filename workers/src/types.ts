/**
 * The public contract of the edge sender, for HTTP clients and for Workers that bind to the
 * `Mailer` entrypoint. The HTTP body of `POST /send` and the value `Mailer.send()` resolves to are
 * the same `SendResponse` object.
 *
 * A binding Worker imports only types (`@smtp-edge/workers` is this folder as an npm workspace;
 * `workers/src/index.ts` re-exports everything here):
 *
 * ```ts
 * import type { Mailer } from '@smtp-edge/workers';
 * interface Env { MAILER: Service<Mailer> }
 * const result = await env.MAILER.send({ from: 'app@example.org', to: 'zoe@example.org', subject: 'Hi', text: 'Hello' });
 * if (!result.ok) console.error(result.error.code, result.error.message);
 * ```
 */

/** `zoe@example.org`, `"Zoë" <zoe@example.org>`, or `{ name: 'Zoë', address: 'zoe@example.org' }`. */
export type Address = string | { name?: string; address: string };

/** One address or a list of them (as nodemailer users expect). */
export type AddressList = Address | Address[];

export interface Attachment {
  /** File name shown to the recipient (RFC 2183 `filename`, RFC 2231-encoded when not ASCII). */
  filename: string;
  /** The file, base64 (RFC 4648 section 4; line breaks allowed). */
  content: string;
  /** `type/subtype`; guessed from the file name when absent. */
  contentType?: string;
}

/** RFC 3461 section 4.1 NOTIFY keywords. `NEVER` stands alone. Lower case is accepted too. */
export type DsnNotify = 'SUCCESS' | 'FAILURE' | 'DELAY' | 'NEVER' | 'success' | 'failure' | 'delay' | 'never';

export interface DsnOptions {
  /** Applies to every recipient. */
  notify?: DsnNotify | DsnNotify[];
  /** RFC 3461 section 4.3: return the full message or only its headers in a failure report. */
  ret?: 'FULL' | 'HDRS' | 'full' | 'hdrs';
  /** RFC 3461 section 4.4: an envelope identifier, printable ASCII, at most 100 characters. */
  envid?: string;
}

export interface SendRequest {
  from: Address;
  to?: AddressList;
  cc?: AddressList;
  /** Envelope recipients only: never written into the message. */
  bcc?: AddressList;
  replyTo?: AddressList;
  subject?: string;
  text?: string;
  html?: string;
  attachments?: Attachment[];
  /** Extra header fields, e.g. `{ "In-Reply-To": "<id@example.org>" }`. Values are single lines. */
  headers?: Record<string, string>;
  dsn?: DsnOptions;
}

/** A recipient the relay refused (RFC 5321 section 4.2 reply, RFC 3463 enhanced code). */
export interface RecipientRejection {
  recipient: string;
  code: number;
  enhancedCode: string | null;
  message: string;
}

export interface SendSuccess {
  ok: true;
  /** The `Message-ID` header value, with angle brackets. */
  messageId: string;
  accepted: string[];
  /** Recipients the relay refused while accepting the others (empty when all were accepted). */
  rejected: RecipientRejection[];
  requestId: string;
}

export type MailerErrorCode =
  | 'invalid_json' // 400: the body is not JSON
  | 'invalid_request' // 400: fields are missing or wrong; see `fields`
  | 'unauthorized' // 401: no or wrong API key
  | 'not_found' // 404
  | 'method_not_allowed' // 405
  | 'payload_too_large' // 413: the body exceeds MAX_REQUEST_BYTES
  | 'unsupported_media_type' // 415: send `Content-Type: application/json`
  | 'recipients_rejected' // 422: the relay accepted none of the recipients; see `rejected`
  | 'message_rejected' // 422: the relay refused the sender or the message for good; see `smtp`
  | 'configuration_error' // 500: the Worker's variables or secrets are wrong; the operator must fix them
  | 'internal_error' // 500
  | 'relay_unreachable' // 502: no connection to the relay, or it went away
  | 'relay_tls_failed' // 502: TLS handshake failed, certificate refused, or STARTTLS not offered
  | 'relay_auth_failed' // 502: the relay refused SMTP_USERNAME / SMTP_PASSWORD
  | 'relay_protocol_error' // 502: the relay broke the SMTP protocol
  | 'relay_temporary_failure' // 503: the relay refused for now; retry after `retryAfterSeconds`
  | 'relay_timeout'; // 504: the relay stopped answering

/** One wrong input field. `path` is like `to[2]`, `attachments[0].content`, `headers.X-Foo`; `""` is the whole body. */
export interface FieldError {
  path: string;
  message: string;
}

/** The relay's reply that decided the outcome. */
export interface SmtpDetail {
  code: number;
  enhancedCode: string | null;
  message: string;
  /** The SMTP command that got this reply, e.g. `MAIL`, `RCPT`, `DATA`. */
  command?: string;
}

export interface MailerError {
  /** The HTTP status of the same failure on `POST /send`. */
  status: number;
  code: MailerErrorCode;
  /** A sentence a person can act on. */
  message: string;
  fields?: FieldError[];
  smtp?: SmtpDetail;
  /** With `recipients_rejected`: every refused recipient. */
  rejected?: RecipientRejection[];
  /** With 503: also sent as the `Retry-After` header. */
  retryAfterSeconds?: number;
}

export interface SendFailure {
  ok: false;
  error: MailerError;
  requestId: string;
}

/**
 * What `POST /send` answers (as JSON) and what `Mailer.send()` resolves to. `Mailer.send()` never
 * rejects for a mail failure: Workers RPC drops an Error's own properties, so failures come back
 * as values with `ok: false`.
 */
export type SendResponse = SendSuccess | SendFailure;

/** The RPC surface of the `Mailer` entrypoint, for `Service<MailerRpc>` bindings. */
export interface MailerRpc {
  send(message: SendRequest): Promise<SendResponse>;
}
