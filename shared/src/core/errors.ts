/**
 * Typed errors shared by the client, the server and the adapters.
 *
 * Every failure a caller can act on is one of these classes; `kind` is a stable discriminator
 * that survives structured cloning (Workers RPC), where `instanceof` does not.
 */
import { type EnhancedCode, isTransient, replyToString, type SmtpReply } from './status.ts';

export type SmtpErrorKind =
  | 'reply' // the server answered with a negative reply
  | 'auth' // authentication failed or is impossible
  | 'connection' // TCP connect failed, reset, or the peer closed unexpectedly
  | 'tls' // handshake failed, certificate refused, or STARTTLS required but not offered
  | 'timeout' // a stage did not finish in time
  | 'protocol' // the peer broke the protocol (garbled reply, line too long, injected bytes)
  | 'config' // the caller asked for something impossible (port 25 on Workers, bad option)
  | 'message' // the message or an envelope field cannot be sent as given (CR/LF in an address, 998-octet line)
  | 'aborted'; // an AbortSignal fired

export interface SmtpErrorOptions {
  cause?: unknown;
  /** The SMTP command (verb) during which the error happened, e.g. `RCPT`. */
  command?: string;
}

export class SmtpError extends Error {
  override name = 'SmtpError';
  readonly kind: SmtpErrorKind;
  readonly command: string | undefined;
  /** Whether retrying later may succeed. */
  readonly temporary: boolean;

  constructor(kind: SmtpErrorKind, message: string, temporary: boolean, options: SmtpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.command = options.command;
    this.temporary = temporary;
  }
}

/** The peer answered a command with a 4xx or 5xx reply (or an unexpected positive one). */
export class SmtpReplyError extends SmtpError {
  override name = 'SmtpReplyError';
  readonly reply: SmtpReply;
  readonly code: number;
  readonly enhancedCode: EnhancedCode | null;

  constructor(reply: SmtpReply, options: SmtpErrorOptions = {}) {
    const where = options.command === undefined ? '' : `${options.command}: `;
    super('reply', `${where}${replyToString(reply)}`, isTransient(reply.code), options);
    this.reply = reply;
    this.code = reply.code;
    this.enhancedCode = reply.enhancedCode;
  }

  get permanent(): boolean {
    return !this.temporary;
  }
}

/** Authentication failed (535), was refused (538 encryption required), or no mechanism fits. */
export class SmtpAuthError extends SmtpError {
  override name = 'SmtpAuthError';
  readonly reply: SmtpReply | undefined;
  constructor(message: string, reply?: SmtpReply, options: SmtpErrorOptions = {}) {
    super('auth', message, reply !== undefined && isTransient(reply.code), { command: 'AUTH', ...options });
    this.reply = reply;
  }
}

export class SmtpConnectionError extends SmtpError {
  override name = 'SmtpConnectionError';
  constructor(message: string, options: SmtpErrorOptions = {}) {
    super('connection', message, true, options);
  }
}

export class SmtpTlsError extends SmtpError {
  override name = 'SmtpTlsError';
  constructor(message: string, options: SmtpErrorOptions = {}) {
    super('tls', message, false, options);
  }
}

export class SmtpTimeoutError extends SmtpError {
  override name = 'SmtpTimeoutError';
  readonly stage: string;
  readonly timeoutMs: number;
  constructor(stage: string, timeoutMs: number, options: SmtpErrorOptions = {}) {
    super('timeout', `no answer from the peer during ${stage} within ${timeoutMs} ms`, true, options);
    this.stage = stage;
    this.timeoutMs = timeoutMs;
  }
}

export class SmtpProtocolError extends SmtpError {
  override name = 'SmtpProtocolError';
  constructor(message: string, options: SmtpErrorOptions = {}) {
    super('protocol', message, false, options);
  }
}

export class SmtpConfigError extends SmtpError {
  override name = 'SmtpConfigError';
  constructor(message: string, options: SmtpErrorOptions = {}) {
    super('config', message, false, options);
  }
}

export class SmtpMessageError extends SmtpError {
  override name = 'SmtpMessageError';
  /** The field that is wrong, e.g. `to[2]` or `headers.X-Foo`, when known. */
  readonly field: string | undefined;
  constructor(message: string, field?: string, options: SmtpErrorOptions = {}) {
    super('message', message, false, options);
    this.field = field;
  }
}

export class SmtpAbortError extends SmtpError {
  override name = 'SmtpAbortError';
  constructor(reason?: unknown) {
    super('aborted', 'the operation was aborted', false, { cause: reason });
  }
}
