/**
 * The public shapes of the SMTP server engine: options, the per-connection session, the
 * envelope, and the handler an application implements.
 *
 * The model is go-smtp's backend/session pair and nodemailer smtp-server's hooks: one
 * `SmtpServerHandler` serves every connection; each connection gets its own `SmtpSession`.
 */
import type { SmtpReplyError } from '../errors.ts';
import type { SaslCredentials, SaslMechanismName } from '../sasl/index.ts';
import type { EnhancedCode } from '../status.ts';
import type { Endpoint, TlsInfo } from '../transport.ts';
import type { CloseReason } from './connection.ts';

export type { SaslCredentials, SaslMechanismName };

/** Injected timer functions (defaults to `globalThis`), so the core never owns a clock. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /**
   * Optional: the current time in milliseconds, on the clock `setTimeout` runs on (the default
   * is `performance.now()`). With it, a connection keeps one timer and moves its deadline for
   * each wait; without it, each wait on the peer starts and cancels a timer of its own.
   */
  now?(): number;
}

/** ESMTP extensions the server may advertise; every one defaults to true. */
export interface SmtpServerExtensions {
  /** RFC 2920. */
  pipelining?: boolean;
  /** RFC 6152: BODY=8BITMIME. */
  eightBitMime?: boolean;
  /** RFC 6531: UTF-8 mailboxes with the SMTPUTF8 parameter. */
  smtputf8?: boolean;
  /** RFC 3461: RET, ENVID, NOTIFY, ORCPT. */
  dsn?: boolean;
  /** RFC 3030: BDAT. */
  chunking?: boolean;
  /** RFC 3030: BODY=BINARYMIME (only together with chunking). */
  binaryMime?: boolean;
  /** RFC 2034: enhanced status codes in replies. */
  enhancedStatusCodes?: boolean;
  /** RFC 8689: the REQUIRETLS MAIL parameter (advertised only on TLS connections). Default false. */
  requireTls?: boolean;
}

/** RFC 5321 section 4.5.3.2 timeouts, server side; each is how long we wait for the client. */
export interface SmtpServerTimeouts {
  /** From accepting the connection to the first command (after the greeting). Default: `commandMs`. */
  greetingMs?: number;
  /** Waiting for the next command. Default 5 minutes (RFC 5321 section 4.5.3.2.7). */
  commandMs?: number;
  /** After the 354, waiting for the first data octets. Default 2 minutes (section 4.5.3.2.2 mirror). */
  dataInitMs?: number;
  /** Between two data blocks (DATA or BDAT). Default 3 minutes (section 4.5.3.2.3). */
  dataBlockMs?: number;
  /**
   * After the end of the data, the longest we wait for `handler.data` to settle before answering
   * 451 4.3.0 ourselves (the client gives up at 10 minutes, RFC 5321 section 4.5.3.2.6). Default
   * 10 minutes. Also bounds how long one write of replies may block on a client that does not read.
   */
  dataTerminationMs?: number;
}

export interface SmtpServerOptions {
  /** Our name in the greeting and the EHLO reply. */
  hostname: string;
  /** Text after "ESMTP" in the greeting. Default "ready". */
  banner?: string;
  /** RFC 6409 message submission: MAIL before AUTH gets 530 5.7.0. */
  submission?: boolean;
  /** Mechanisms offered when `handler.auth` exists. Default PLAIN LOGIN (CRAM-MD5 and XOAUTH2 only when listed). */
  authMechanisms?: SaslMechanismName[];
  /** Allow AUTH before TLS. Default false: 538 5.7.11 (RFC 4954 section 6, RFC 5248). */
  allowInsecureAuth?: boolean;
  /** Advertise STARTTLS (the transport must be able to upgrade). Default false. */
  startTls?: boolean;
  /** The connection is already TLS (port 465, RFC 8314). Informational: TLS state comes from the transport. */
  implicitTls?: boolean;
  /** SIZE advertised and enforced (RFC 1870). Default 25 MiB. 0 disables the limit (SIZE without a number). */
  maxMessageBytes?: number;
  /** RCPT commands accepted per transaction. Default 100 (RFC 5321 section 4.5.3.1.8); more get 452 4.5.3. */
  maxRecipients?: number;
  /**
   * Longest command line including CRLF, for every command alike; longer gets 500 5.5.2. Default:
   * per command, 512 (RFC 5321 section 4.5.3.1.4) plus the allowances of the offered extensions'
   * parameters for MAIL and RCPT (1186 and 1048 octets with the default extensions and AUTH
   * mechanisms; see `commandLineLimits`). At least 512.
   */
  maxCommandLineBytes?: number;
  /** Longest text line in DATA including CRLF. Default 1000 (RFC 5321 section 4.5.3.1.6). See `longLines`. */
  maxTextLineBytes?: number;
  /**
   * What to do with a DATA message that has a line longer than `maxTextLineBytes`: `accept`
   * (default; RFC 5321 section 4.5.3.1 asks receivers to impose no limit where possible and the
   * bytes are stored as sent) or `reject` (550 5.6.0 after the end of data).
   */
  longLines?: 'accept' | 'reject';
  /** Unrecognized / invalid commands tolerated per connection. Default 10; the next gets 421 4.7.0 and the connection closes. */
  maxBadCommands?: number;
  /** Failed AUTH attempts per connection. Default 3; the next failure gets 421 4.7.0 and the connection closes. */
  maxAuthFailures?: number;
  /** Delay before answering a failed AUTH. Default 1000 ms. */
  authFailureDelayMs?: number;
  /** Longest AUTH exchange line (RFC 4954 section 4: at least 12288 octets). Default 12288. */
  maxAuthLineBytes?: number;
  /**
   * Bare CR or LF in DATA (RFC 5321 section 2.3.8). `reject` (default): read to the real end,
   * then 550 5.6.0. `normalize`: store CRLF instead. Either way only `<CRLF>.<CRLF>` ends the data.
   */
  bareLineEndings?: 'reject' | 'normalize';
  extensions?: SmtpServerExtensions;
  timeouts?: SmtpServerTimeouts;
  /**
   * Wait this long before the greeting; a client that sends anything meanwhile is an early
   * talker (it cannot have seen the greeting, RFC 5321 section 4.3.1, RFC 2920 section 3.1) and
   * gets 554 5.5.0 and the connection closes. Default 0 (no wait, no check).
   */
  earlyTalkerDelayMs?: number;
  /** Most replies (octets) queued before they are written even in the middle of a pipelined batch. Default 64 KiB. */
  maxPendingReplyBytes?: number;
  /** Called with unexpected exceptions from handlers (the client got 451 4.3.0 / 454 4.7.0). */
  onError?(session: SmtpSession | null, error: unknown): void;
  /** Timer functions; default `globalThis`. */
  timers?: Timers;
}

/** The MAIL FROM parameters (RFC 1870, 6152, 3030, 6531, 3461, 4954 section 5, 8689). */
export interface MailParams {
  /** SIZE= (RFC 1870). */
  size?: number;
  /** BODY= (RFC 6152, RFC 3030). */
  body?: '7BIT' | '8BITMIME' | 'BINARYMIME';
  /** SMTPUTF8 (RFC 6531 section 3.4). */
  smtputf8?: boolean;
  /** RET= (RFC 3461 section 4.3). */
  ret?: 'FULL' | 'HDRS';
  /** ENVID= decoded from xtext (RFC 3461 section 4.4). */
  envid?: string;
  /** AUTH= decoded from xtext; `<>` for "unknown" (RFC 4954 section 5). */
  auth?: string;
  /** REQUIRETLS (RFC 8689 section 4.1). */
  requiretls?: boolean;
  /** Any other parameter the server accepted (none by default): keyword upper-cased. */
  other: Record<string, string | true>;
}

/** The RCPT TO parameters (RFC 3461). */
export interface RcptParams {
  /** NOTIFY= (RFC 3461 section 4.1). */
  notify?: Array<'SUCCESS' | 'FAILURE' | 'DELAY'> | 'NEVER';
  /** ORCPT= with its address decoded: xtext (RFC 3461 section 4.2), UTF-8 octets in xtext, or the RFC 6533 `utf-8` forms. */
  orcpt?: { type: string; address: string };
  other: Record<string, string | true>;
}

export interface Envelope {
  /** The reverse-path; `address` is '' for the null path `<>`. */
  mailFrom: { address: string; params: MailParams };
  /** Accepted recipients, in order. */
  rcptTo: Array<{ address: string; params: RcptParams }>;
}

/** One per connection; handlers receive it on every call. */
export interface SmtpSession {
  /** Unique and log-friendly, e.g. `c1f9a0b2e4d7-1`. */
  readonly id: string;
  readonly local: Endpoint | null;
  readonly remote: Endpoint | null;
  /** TLS details once encrypted (implicit TLS or after STARTTLS). */
  readonly tls: TlsInfo | null;
  /** The last successful HELO/EHLO; null before it and after STARTTLS. */
  readonly helo: { verb: 'HELO' | 'EHLO'; name: string } | null;
  /** The authenticated identity (what `handler.auth` returned), or null. */
  readonly user: string | null;
  /** The transaction in progress (after MAIL), or null. */
  readonly transaction: Envelope | null;
  /** True when the connection is encrypted. */
  readonly secure: boolean;
  /** Scratch space for the handler (kept for the whole connection). */
  data: Record<string, unknown>;
  /**
   * Why the connection ended (`quit`, `timeout`, `too-many-errors`, `http-request`,
   * `improper-pipelining`…), set before `handler.close` runs so it can be logged; null before.
   */
  readonly closeReason?: CloseReason | null;
}

/** What `handler.data` may return: `message` is the text after `250 2.0.0`, e.g. "Ok: queued as ID". */
export type DataResult = { message?: string };

export interface SmtpServerHandler {
  /** A connection arrived (before the greeting). Throw to refuse it (554, or your `reject()` reply). */
  connect?(session: SmtpSession): Promise<void> | void;
  /**
   * Check credentials. Return `{ user }` to accept (235 2.7.0) or null to refuse (535 5.7.8).
   * CRAM-MD5 credentials carry `verify(secret)` instead of a password.
   */
  auth?(
    session: SmtpSession,
    credentials: SaslCredentials,
  ): Promise<{ user: string } | null> | { user: string } | null;
  /** Throw `reject(...)` to refuse the sender. */
  mailFrom?(session: SmtpSession, from: Envelope['mailFrom']): Promise<void> | void;
  /** Throw `reject(...)` to refuse the recipient (e.g. 550 5.1.1, 550 5.7.1 relaying denied). */
  rcptTo?(session: SmtpSession, rcpt: Envelope['rcptTo'][number]): Promise<void> | void;
  /**
   * The message: `message` yields its exact octets (after dot-unstuffing for DATA, the chunks
   * concatenated for BDAT) as the handler pulls them. Consume it, store it, then resolve: the
   * 250 is sent only after the promise resolves. If the stream errors, the message is not
   * acceptable (too big, bare line endings, connection lost): abort, nothing will be acknowledged.
   */
  data(
    session: SmtpSession,
    envelope: Envelope,
    message: ReadableStream<Uint8Array>,
    // biome-ignore lint/suspicious/noConfusingVoidType: an async handler that returns nothing is fine
  ): Promise<DataResult | void>;
  /** The transaction was reset (RSET, a new HELO/EHLO, STARTTLS, or a failed message). */
  reset?(session: SmtpSession): void;
  /** The connection ended. */
  close?(session: SmtpSession): void;
}

/** Re-exported for handler authors: the error `reject()` returns. */
export type { EnhancedCode, SmtpReplyError };
