/**
 * workerd reports socket failures as generic `Error`s whose text is all we get:
 * `proxy request failed, cannot connect to the specified address`, `internal error; reference = …`,
 * `Connection refused`, `Network connection lost`, `Stream was cancelled`. These map them to the
 * typed errors of the core, with messages that say what to do.
 */
import { SmtpConnectionError, SmtpError, SmtpTlsError } from '../../core/errors.ts';

/** What the socket was doing when it failed: it decides how an opaque error is read. */
export type WorkersSocketPhase = 'connect' | 'tls' | 'io';

export interface WorkersErrorContext {
  host: string;
  port: number;
  phase: WorkersSocketPhase;
}

function text(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Turn anything thrown by `connect()`, `opened`, a stream read/write or `startTls()` into an SmtpError. */
/** A connection failure that a plain TCP probe showed to be a failed TLS handshake (implicit TLS). */
export function implicitTlsFailure(err: unknown, ctx: Omit<WorkersErrorContext, 'phase'>): SmtpTlsError {
  return new SmtpTlsError(
    `TLS with ${ctx.host}:${ctx.port} failed: the port accepts TCP but the TLS handshake failed, so the ` +
      `certificate is untrusted, expired or issued for another name than ${ctx.host}, or the port does not ` +
      `speak implicit TLS (use security "starttls" for 587/25). workerd said: ${text(err)}`,
    { cause: err },
  );
}

export function mapWorkersError(err: unknown, ctx: WorkersErrorContext): SmtpError {
  if (err instanceof SmtpError) return err;
  const msg = text(err);
  const where = `${ctx.host}:${ctx.port}`;
  const options = { cause: err };
  if (/proxy request failed|cannot connect to the specified address/i.test(msg)) {
    // workerd says this for a refused or unreachable port as well as for addresses Workers may
    // not reach in production (private, reserved and Cloudflare-owned IPs).
    return new SmtpConnectionError(
      `cannot connect to ${where}: nothing accepted the connection (is the server up and the port right? ` +
        'In production Workers also refuse private, reserved and Cloudflare-owned addresses: use the ' +
        `relay's public host name). workerd said: ${msg}`,
      options,
    );
  }
  if (/connection refused|ECONNREFUSED/i.test(msg)) {
    return new SmtpConnectionError(
      `${where} refused the connection: is the SMTP server running on that port?`,
      options,
    );
  }
  if (
    /certificate|x509|handshake|ssl|tls|verify/i.test(msg) ||
    (ctx.phase === 'tls' && /internal error/i.test(msg))
  ) {
    return new SmtpTlsError(
      `TLS with ${where} failed: the server certificate may be untrusted, expired or issued for another name ` +
        `than ${ctx.host} (Workers always verify it and cannot trust extra CAs in production). workerd said: ${msg}`,
      options,
    );
  }
  if (/timed out|timeout/i.test(msg)) {
    return new SmtpConnectionError(`the connection to ${where} timed out: ${msg}`, options);
  }
  if (/lost|reset|cancel|closed|broken pipe|EPIPE/i.test(msg)) {
    return new SmtpConnectionError(`the connection to ${where} was lost: ${msg}`, options);
  }
  if (ctx.phase === 'connect') {
    return new SmtpConnectionError(`cannot connect to ${where}: ${msg}`, options);
  }
  return new SmtpConnectionError(`socket error on the connection to ${where}: ${msg}`, options);
}
