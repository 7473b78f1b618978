/**
 * Failures as values: every failure of `POST /send` and `Mailer.send()` is a `MailerError`
 * (`types.ts`) with an HTTP status, a stable `code` and a sentence a person can act on.
 * `fromSmtpError` maps the protocol package's typed errors (discriminated on `kind`, which
 * survives bundling and cloning where `instanceof` may not) to these outcomes.
 */
import type { SmtpError, SmtpReply } from '@smtp-edge/protocol';
import type { RelayConfig } from './config.ts';
import type {
  FieldError,
  MailerError,
  MailerErrorCode,
  RecipientRejection,
  SendFailure,
  SmtpDetail,
} from './types.ts';

export const STATUS: Readonly<Record<MailerErrorCode, number>> = {
  invalid_json: 400,
  invalid_request: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  recipients_rejected: 422,
  message_rejected: 422,
  configuration_error: 500,
  internal_error: 500,
  relay_unreachable: 502,
  relay_tls_failed: 502,
  relay_auth_failed: 502,
  relay_protocol_error: 502,
  relay_temporary_failure: 503,
  relay_timeout: 504,
};

export function mailerError(
  code: MailerErrorCode,
  message: string,
  extra: Omit<MailerError, 'status' | 'code' | 'message'> = {},
): MailerError {
  return { status: STATUS[code], code, message, ...extra };
}

export function invalidRequest(fields: FieldError[]): MailerError {
  const summary = fields
    .slice(0, 3)
    .map((f) => (f.path === '' ? f.message : `${f.path} ${f.message}`))
    .join('; ');
  const more = fields.length > 3 ? ` (and ${fields.length - 3} more)` : '';
  return mailerError(
    'invalid_request',
    `the request has ${fields.length === 1 ? 'a wrong field' : 'wrong fields'}: ${summary}${more}`,
    {
      fields,
    },
  );
}

export function failure(error: MailerError, requestId: string): SendFailure {
  return { ok: false, error, requestId };
}

function replyText(reply: SmtpReply): string {
  return reply.lines.join(' ').trim();
}

function smtpDetail(reply: SmtpReply, command: string | undefined): SmtpDetail {
  const detail: SmtpDetail = {
    code: reply.code,
    enhancedCode: reply.enhancedCode,
    message: replyText(reply),
  };
  if (command !== undefined) detail.command = command;
  return detail;
}

function shortReply(detail: SmtpDetail): string {
  return [String(detail.code), detail.enhancedCode, detail.message]
    .filter((p) => p !== null && p !== '')
    .join(' ');
}

interface RejectedLike {
  recipient: string;
  code: number;
  enhancedCode: string | null;
  message: string;
}

/** The per-recipient list the client attaches to a reply error when every recipient was refused. */
function rejectedOf(err: object): RecipientRejection[] | undefined {
  const list = (err as { rejected?: unknown }).rejected;
  if (!Array.isArray(list) || list.length === 0) return undefined;
  return (list as RejectedLike[]).map((r) => ({
    recipient: String(r.recipient),
    code: Number(r.code),
    enhancedCode: r.enhancedCode ?? null,
    message: String(r.message ?? ''),
  }));
}

function isSmtpError(err: unknown): err is SmtpError {
  return err instanceof Error && typeof (err as { kind?: unknown }).kind === 'string';
}

/** Map an error thrown by `sendMail` to the outcome the issue specifies. */
export function fromSmtpError(err: unknown, relay: RelayConfig, retryAfterSeconds: number): MailerError {
  const where = `the SMTP relay ${relay.host}:${relay.port}`;
  if (!isSmtpError(err)) {
    return mailerError('internal_error', 'sending failed unexpectedly; the Worker log has the details');
  }
  const retry = { retryAfterSeconds };
  switch (err.kind) {
    case 'reply': {
      const reply = (err as SmtpError & { reply?: SmtpReply }).reply;
      const smtp = reply === undefined ? undefined : smtpDetail(reply, err.command);
      const rejected = rejectedOf(err);
      if (rejected !== undefined) {
        // Every recipient refused. All of them temporarily: retry later; any of them for good: 422.
        if (rejected.every((r) => r.code >= 400 && r.code < 500)) {
          return mailerError(
            'relay_temporary_failure',
            `${where} refused every recipient for now; retry after ${retryAfterSeconds} seconds`,
            { rejected, ...retry, ...(smtp ? { smtp } : {}) },
          );
        }
        return mailerError(
          'recipients_rejected',
          `${where} accepted none of the recipients; see rejected for each one`,
          {
            rejected,
            ...(smtp ? { smtp } : {}),
          },
        );
      }
      const said = smtp ? ` (${shortReply(smtp)})` : '';
      const during = err.command === undefined ? '' : ` at ${err.command}`;
      if (err.temporary) {
        return mailerError(
          'relay_temporary_failure',
          `${where} refused the message for now${during}${said}; retry after ${retryAfterSeconds} seconds`,
          { ...retry, ...(smtp ? { smtp } : {}) },
        );
      }
      return mailerError(
        'message_rejected',
        `${where} refused the message${during}${said}`,
        smtp ? { smtp } : {},
      );
    }
    case 'auth': {
      const reply = (err as SmtpError & { reply?: SmtpReply }).reply;
      const smtp = reply === undefined ? undefined : smtpDetail(reply, 'AUTH');
      const said = smtp ? ` (${shortReply(smtp)})` : ` (${err.message})`;
      if (err.temporary) {
        return mailerError(
          'relay_temporary_failure',
          `${where} could not authenticate the Worker for now${said}; retry after ${retryAfterSeconds} seconds`,
          { ...retry, ...(smtp ? { smtp } : {}) },
        );
      }
      return mailerError(
        'relay_auth_failed',
        `${where} refused the Worker's credentials${said}: check SMTP_USERNAME and the SMTP_PASSWORD secret`,
        smtp ? { smtp } : {},
      );
    }
    case 'connection':
      return mailerError(
        'relay_unreachable',
        `could not talk to ${where}: ${err.message}. Check SMTP_HOST and SMTP_PORT, or retry later`,
      );
    case 'tls':
      return mailerError(
        'relay_tls_failed',
        `no secure connection to ${where}: ${err.message}. The message was not sent in clear text`,
      );
    case 'timeout': {
      // After the data was sent the relay may have taken the message without us hearing so
      // (RFC 5321 section 4.1.1.4: the final reply decides): say so, a retry may duplicate it.
      const stage = `${(err as SmtpError & { stage?: string }).stage ?? ''} ${err.command ?? ''}`;
      const unknown = /\b(DATA|BDAT)\b/i.test(stage)
        ? '; the relay may have accepted the message anyway, so a retry may deliver it twice'
        : '';
      return mailerError('relay_timeout', `${where} stopped answering: ${err.message}${unknown}`);
    }
    case 'aborted':
      return mailerError(
        'relay_timeout',
        `the send through ${where} did not finish within ${relay.sendTimeoutMs} ms (SEND_TIMEOUT_MS)`,
      );
    case 'protocol':
      return mailerError('relay_protocol_error', `${where} broke the SMTP protocol: ${err.message}`);
    case 'config':
      return mailerError('configuration_error', `the relay settings are wrong: ${err.message}`);
    case 'message':
      return mailerError('message_rejected', `the message cannot be sent through ${where}: ${err.message}`);
    default:
      return mailerError('internal_error', `sending failed: ${err.message}`);
  }
}
