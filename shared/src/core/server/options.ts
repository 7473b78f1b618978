/**
 * Server options with every default filled in, validated once per listener.
 */
import { SmtpConfigError } from '../errors.ts';
import type { SaslMechanismName, SmtpServerOptions, SmtpSession, Timers } from './types.ts';

const MINUTE = 60_000;

export interface ResolvedServerOptions {
  readonly hostname: string;
  readonly banner: string;
  readonly submission: boolean;
  readonly authMechanisms: readonly SaslMechanismName[];
  readonly allowInsecureAuth: boolean;
  readonly startTls: boolean;
  readonly implicitTls: boolean;
  readonly maxMessageBytes: number;
  readonly maxRecipients: number;
  /** The longest command line read at all (the largest of `commandLineLimits`). */
  readonly maxCommandLineBytes: number;
  /** The longest line per command, CRLF included (see `commandLineLimits()`). */
  readonly commandLineLimits: CommandLineLimits;
  readonly maxTextLineBytes: number;
  readonly longLines: 'accept' | 'reject';
  readonly maxBadCommands: number;
  readonly maxAuthFailures: number;
  readonly authFailureDelayMs: number;
  readonly maxAuthLineBytes: number;
  readonly bareLineEndings: 'reject' | 'normalize';
  readonly extensions: {
    readonly pipelining: boolean;
    readonly eightBitMime: boolean;
    readonly smtputf8: boolean;
    readonly dsn: boolean;
    readonly chunking: boolean;
    readonly binaryMime: boolean;
    readonly enhancedStatusCodes: boolean;
    readonly requireTls: boolean;
  };
  readonly timeouts: {
    readonly greetingMs: number;
    readonly commandMs: number;
    readonly dataInitMs: number;
    readonly dataBlockMs: number;
    readonly dataTerminationMs: number;
  };
  readonly earlyTalkerDelayMs: number;
  readonly maxPendingReplyBytes: number;
  readonly onError: ((session: SmtpSession | null, error: unknown) => void) | undefined;
  readonly timers: Timers;
}

/** Longest command lines (octets, CRLF included): MAIL, RCPT, and every other command. */
export interface CommandLineLimits {
  readonly mail: number;
  readonly rcpt: number;
  readonly other: number;
}

/** RFC 5321 section 4.5.3.1.4: "512 octets. SMTP extensions may be used to increase this limit." */
const COMMAND_LINE = 512;

/**
 * The command-line limits that follow from the extensions the server offers (RFC 5321 section
 * 4.5.3.1.4; RFC 3461 section 5.4: a server must accept a command line "large enough for each
 * SMTP command and any combination of ESMTP parameters which may be used with that command").
 * Each allowance is the extension's own figure, rounded up to what our parameter parser accepts
 * (the leading space, the keyword and "=" included):
 * - MAIL: SIZE= 26 (RFC 1870 section 3 item 5), BODY= 16 (RFC 3030 section 3 item 8; covers
 *   BODY=8BITMIME), SMTPUTF8 10 (RFC 6531 section 3.1 item 5), RET= 9 and ENVID= 107 (RFC 3461
 *   sections 4.3, 4.4, 5.4: RET 8, ENVID value 100), AUTH= 506 (RFC 4954 section 3 item 5: 500,
 *   counted whenever AUTH mechanisms are configured), REQUIRETLS 11 (RFC 8689 section 2 item 5).
 * - RCPT: NOTIFY= 29 and ORCPT= 507 (RFC 3461 section 5.4: 28 and 500; 530 in all).
 * - Any other command: 512.
 * With the defaults this is 1186 octets for MAIL and 1048 for RCPT. An explicit
 * `maxCommandLineBytes` replaces all three with one flat limit.
 */
export function commandLineLimits(
  extensions: ResolvedServerOptions['extensions'],
  auth: boolean,
): CommandLineLimits {
  const e = extensions;
  const mail =
    COMMAND_LINE +
    26 +
    (e.eightBitMime || e.binaryMime ? 16 : 0) +
    (e.smtputf8 ? 10 : 0) +
    (e.dsn ? 9 + 107 : 0) +
    (auth ? 506 : 0) +
    (e.requireTls ? 11 : 0);
  const rcpt = COMMAND_LINE + (e.dsn ? 29 + 507 : 0);
  return { mail, rcpt, other: COMMAND_LINE };
}

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
  now: () => performance.now(),
};

function count(name: string, value: number | undefined, fallback: number, min = 0): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min) {
    throw new SmtpConfigError(`option ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return v;
}

// RFC 1035 / RFC 5321 section 4.1.2: a domain or an address literal; no spaces or controls.
const HOSTNAME =
  /^(?:\[[^\s\]]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?)$/;

export function resolveOptions(options: SmtpServerOptions): ResolvedServerOptions {
  if (typeof options.hostname !== 'string' || !HOSTNAME.test(options.hostname)) {
    throw new SmtpConfigError(
      `option hostname must be a domain name or address literal, got ${JSON.stringify(options.hostname)}`,
    );
  }
  const banner = options.banner ?? 'ready';
  if (/[\x00-\x1f\x7f]/.test(banner))
    throw new SmtpConfigError('option banner must not contain control characters');
  const ext = options.extensions ?? {};
  const t = options.timeouts ?? {};
  const commandMs = count('timeouts.commandMs', t.commandMs, 5 * MINUTE, 1);
  const chunking = ext.chunking ?? true;
  const mechanisms = (options.authMechanisms ?? ['PLAIN', 'LOGIN']).map(
    (m) => m.toUpperCase() as SaslMechanismName,
  );
  const extensions = {
    pipelining: ext.pipelining ?? true,
    eightBitMime: ext.eightBitMime ?? true,
    smtputf8: ext.smtputf8 ?? true,
    dsn: ext.dsn ?? true,
    chunking,
    // RFC 3030 section 3: BINARYMIME can only be used with CHUNKING.
    binaryMime: chunking && (ext.binaryMime ?? true),
    enhancedStatusCodes: ext.enhancedStatusCodes ?? true,
    requireTls: ext.requireTls ?? false,
  };
  const lineLimits: CommandLineLimits =
    options.maxCommandLineBytes === undefined
      ? commandLineLimits(extensions, mechanisms.length > 0)
      : flat(count('maxCommandLineBytes', options.maxCommandLineBytes, COMMAND_LINE, COMMAND_LINE));
  return {
    hostname: options.hostname,
    banner,
    submission: options.submission ?? false,
    authMechanisms: [...new Set(mechanisms)],
    allowInsecureAuth: options.allowInsecureAuth ?? false,
    startTls: options.startTls ?? false,
    implicitTls: options.implicitTls ?? false,
    maxMessageBytes: count('maxMessageBytes', options.maxMessageBytes, 25 * 1024 * 1024),
    maxRecipients: count('maxRecipients', options.maxRecipients, 100, 1),
    maxCommandLineBytes: Math.max(lineLimits.mail, lineLimits.rcpt, lineLimits.other),
    commandLineLimits: lineLimits,
    maxTextLineBytes: count('maxTextLineBytes', options.maxTextLineBytes, 1000, 1000),
    longLines: options.longLines ?? 'accept',
    maxBadCommands: count('maxBadCommands', options.maxBadCommands, 10),
    maxAuthFailures: count('maxAuthFailures', options.maxAuthFailures, 3),
    authFailureDelayMs: count('authFailureDelayMs', options.authFailureDelayMs, 1000),
    maxAuthLineBytes: count('maxAuthLineBytes', options.maxAuthLineBytes, 12288, 512),
    bareLineEndings: options.bareLineEndings ?? 'reject',
    extensions,
    timeouts: {
      greetingMs: count('timeouts.greetingMs', t.greetingMs, commandMs, 1),
      commandMs,
      dataInitMs: count('timeouts.dataInitMs', t.dataInitMs, 2 * MINUTE, 1),
      dataBlockMs: count('timeouts.dataBlockMs', t.dataBlockMs, 3 * MINUTE, 1),
      dataTerminationMs: count('timeouts.dataTerminationMs', t.dataTerminationMs, 10 * MINUTE, 1),
    },
    earlyTalkerDelayMs: count('earlyTalkerDelayMs', options.earlyTalkerDelayMs, 0),
    maxPendingReplyBytes: count('maxPendingReplyBytes', options.maxPendingReplyBytes, 64 * 1024, 512),
    onError: options.onError,
    timers: options.timers ?? defaultTimers,
  };
}

function flat(limit: number): CommandLineLimits {
  return { mail: limit, rcpt: limit, other: limit };
}
