/**
 * Client options, envelope and result types (the public contract of the client), and the
 * resolution of defaults. Nothing here does I/O.
 */
import { SmtpConfigError } from '../errors.ts';
import type { SaslMechanismName } from '../sasl/mechanisms.ts';
import type { EnhancedCode, SmtpReply } from '../status.ts';
import { validateHeloName } from './ehlo.ts';

export interface SmtpClientTimeouts {
  /** TCP (and implicit TLS) connection setup. Not in RFC 5321; default 30 s. */
  connectMs?: number;
  /** The 220 greeting: RFC 5321 section 4.5.3.2.1, 5 minutes. */
  greetingMs?: number;
  /** Each command reply (EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET, NOOP, DATA's 354): section 4.5.3.2.2-4, 5 minutes. */
  commandMs?: number;
  /**
   * Sending the data and waiting for the final reply after `.` or BDAT: section 4.5.3.2.5
   * (3 minutes per data block) and 4.5.3.2.6 (10 minutes for the final reply). Applied per
   * write and to the final reply; default 10 minutes.
   */
  dataMs?: number;
  /** QUIT's 221 and the close after it. Not in RFC 5321; default 5 s so `quit()` never hangs. */
  quitMs?: number;
}

export interface SmtpClientOptions {
  host: string;
  port: number;
  /** `tls` = implicit TLS from the first byte (RFC 8314 section 3.3); `starttls` = RFC 3207; `none` = clear text. */
  security: 'starttls' | 'tls' | 'none';
  /**
   * Only for `security: 'starttls'`. `required`: fail with `SmtpTlsError` when STARTTLS is not
   * offered or refused. `opportunistic`: continue in clear text then. Default `required` when
   * `auth` is set, else `opportunistic`.
   */
  starttlsPolicy?: 'required' | 'opportunistic';
  /** The EHLO/HELO name (RFC 5321 section 4.1.1.1). Default: the adapter's host name, else the local address literal. */
  helo?: string;
  auth?: {
    username: string;
    password?: string;
    accessToken?: string;
    mechanism?: SaslMechanismName;
  };
  /** Allow AUTH over a connection without TLS. Default false. */
  allowInsecureAuth?: boolean;
  tls?: { rejectUnauthorized?: boolean; ca?: string | string[]; servername?: string };
  timeouts?: SmtpClientTimeouts;
  /** What to do when `envelope.dsn` is given but the server lacks DSN (RFC 3461): fail (default) or send without. */
  dsnUnsupported?: 'error' | 'drop';
  /** Use BDAT (RFC 3030) when CHUNKING is advertised. Default true with 64 KiB chunks. */
  chunking?: boolean | { chunkSize: number };
  /** Batch commands (RFC 2920) when PIPELINING is advertised. Default true. */
  pipelining?: boolean;
  /** Aborts whatever the session is doing and closes the connection. */
  signal?: AbortSignal;
}

export interface DsnOptions {
  /** RFC 3461 section 4.3: return the full message or only headers in a DSN. */
  ret?: 'FULL' | 'HDRS';
  /** RFC 3461 section 4.4: envelope identifier (printable ASCII; sent xtext-encoded). */
  envid?: string;
  /** RFC 3461 section 4.1. */
  notify?: ('SUCCESS' | 'FAILURE' | 'DELAY')[] | 'NEVER';
  /**
   * Send ORCPT with each RCPT: `rfc822;<xtext>` (RFC 3461 section 4.2), or for a non-ASCII
   * recipient `utf-8;<utf-8-addr-xtext>` (RFC 6533 section 3).
   */
  orcpt?: boolean;
}

export interface SendEnvelope {
  /** Reverse-path; `''` is the null path `<>` (RFC 5321 section 4.5.5). */
  from: string;
  to: string[];
  dsn?: DsnOptions;
  /** Size to declare with SIZE= (RFC 1870) for a streamed body; in-memory bodies are measured. */
  size?: number;
  /** RFC 8689: require TLS for every hop; refused unless this connection is TLS and the server offers REQUIRETLS. */
  requireTls?: boolean;
  /**
   * Declare BODY= yourself (RFC 6152, RFC 3030). By default in-memory bodies are inspected and a
   * streamed body is declared 8BITMIME when the server offers it.
   */
  body?: '7BIT' | '8BITMIME' | 'BINARYMIME';
  /** Force SMTPUTF8 (RFC 6531), e.g. for a streamed body with UTF-8 headers. Set automatically otherwise. */
  smtpUtf8?: boolean;
}

export type MessageBody = string | Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

export interface RecipientResult {
  recipient: string;
  code: number;
  enhancedCode: EnhancedCode | null;
  message: string;
}

export interface SendResult {
  accepted: string[];
  rejected: RecipientResult[];
  /** The final reply to DATA's `.` or to BDAT LAST. */
  response: SmtpReply;
  envelope: { from: string; to: string[] };
}

/** RFC 5321 section 4.5.3.2 values, plus our own for connect and QUIT. */
export const DEFAULT_TIMEOUTS: Readonly<Required<SmtpClientTimeouts>> = Object.freeze({
  connectMs: 30_000,
  greetingMs: 5 * 60_000,
  commandMs: 5 * 60_000,
  dataMs: 10 * 60_000,
  quitMs: 5_000,
});

export const DEFAULT_CHUNK_SIZE = 64 * 1024;

/** Options with defaults applied; what the session works from. */
export interface ResolvedClientOptions {
  readonly host: string;
  readonly port: number;
  readonly security: 'starttls' | 'tls' | 'none';
  readonly starttlsPolicy: 'required' | 'opportunistic';
  readonly helo: string | undefined;
  readonly auth: SmtpClientOptions['auth'];
  readonly allowInsecureAuth: boolean;
  readonly servername: string;
  readonly timeouts: Readonly<Required<SmtpClientTimeouts>>;
  readonly dsnUnsupported: 'error' | 'drop';
  /** 0 = do not use BDAT. */
  readonly chunkSize: number;
  readonly pipelining: boolean;
  readonly signal: AbortSignal | undefined;
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0)
    throw new SmtpConfigError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/** Apply defaults and check option types; throws `SmtpConfigError`. */
export function resolveClientOptions(options: SmtpClientOptions): ResolvedClientOptions {
  if (typeof options.host !== 'string' || options.host === '') throw new SmtpConfigError('host is required');
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new SmtpConfigError(`port must be an integer from 1 to 65535, got ${String(options.port)}`);
  }
  if (options.security !== 'starttls' && options.security !== 'tls' && options.security !== 'none') {
    throw new SmtpConfigError(
      `security must be 'starttls', 'tls' or 'none', got ${String(options.security)}`,
    );
  }
  if (options.helo !== undefined) validateHeloName(options.helo);
  const policy = options.starttlsPolicy ?? (options.auth ? 'required' : 'opportunistic');
  if (policy !== 'required' && policy !== 'opportunistic') {
    throw new SmtpConfigError(`starttlsPolicy must be 'required' or 'opportunistic', got ${String(policy)}`);
  }
  const timeouts = { ...DEFAULT_TIMEOUTS };
  for (const key of Object.keys(DEFAULT_TIMEOUTS) as (keyof SmtpClientTimeouts)[]) {
    const v = options.timeouts?.[key];
    if (v !== undefined) timeouts[key] = positiveInt(v, `timeouts.${key}`);
  }
  let chunkSize = DEFAULT_CHUNK_SIZE;
  if (options.chunking === false) chunkSize = 0;
  else if (typeof options.chunking === 'object')
    chunkSize = positiveInt(options.chunking.chunkSize, 'chunking.chunkSize');
  if (options.auth) {
    const a = options.auth;
    if (typeof a.username !== 'string') throw new SmtpConfigError('auth.username must be a string');
    if (a.password === undefined && a.accessToken === undefined) {
      throw new SmtpConfigError('auth needs a password or an accessToken');
    }
    if (a.mechanism !== undefined && !['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'].includes(a.mechanism)) {
      throw new SmtpConfigError(`auth.mechanism ${String(a.mechanism)} is not supported`);
    }
  }
  return {
    host: options.host,
    port: options.port,
    security: options.security,
    starttlsPolicy: policy,
    helo: options.helo,
    auth: options.auth,
    allowInsecureAuth: options.allowInsecureAuth === true,
    servername: options.tls?.servername ?? options.host,
    timeouts,
    dsnUnsupported: options.dsnUnsupported ?? 'error',
    chunkSize,
    pipelining: options.pipelining !== false,
    signal: options.signal,
  };
}
