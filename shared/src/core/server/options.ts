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
  readonly maxCommandLineBytes: number;
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
    maxCommandLineBytes: count('maxCommandLineBytes', options.maxCommandLineBytes, 512, 512),
    maxTextLineBytes: count('maxTextLineBytes', options.maxTextLineBytes, 1000, 1000),
    longLines: options.longLines ?? 'accept',
    maxBadCommands: count('maxBadCommands', options.maxBadCommands, 10),
    maxAuthFailures: count('maxAuthFailures', options.maxAuthFailures, 3),
    authFailureDelayMs: count('authFailureDelayMs', options.authFailureDelayMs, 1000),
    maxAuthLineBytes: count('maxAuthLineBytes', options.maxAuthLineBytes, 12288, 512),
    bareLineEndings: options.bareLineEndings ?? 'reject',
    extensions: {
      pipelining: ext.pipelining ?? true,
      eightBitMime: ext.eightBitMime ?? true,
      smtputf8: ext.smtputf8 ?? true,
      dsn: ext.dsn ?? true,
      chunking,
      // RFC 3030 section 3: BINARYMIME can only be used with CHUNKING.
      binaryMime: chunking && (ext.binaryMime ?? true),
      enhancedStatusCodes: ext.enhancedStatusCodes ?? true,
      requireTls: ext.requireTls ?? false,
    },
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
