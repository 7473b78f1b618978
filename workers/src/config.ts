/**
 * The Worker's configuration, read from its environment (wrangler.toml `[vars]` and secrets).
 *
 * Everything is validated on every request (it is a handful of string reads): a bad value is a
 * `configuration_error` (HTTP 500) that names the variable, never a silent default.
 */

/** Bindings and variables the Worker reads. All values are strings, as Workers deliver them. */
export interface Env {
  /** Secret. Accepted API keys, separated by commas or newlines. */
  API_KEYS?: string;
  SMTP_HOST?: string;
  SMTP_PORT?: string;
  /** `starttls` (submission, RFC 3207, the default) or `tls` (implicit TLS, RFC 8314 section 3.3). */
  SMTP_SECURITY?: string;
  SMTP_USERNAME?: string;
  /** Secret. */
  SMTP_PASSWORD?: string;
  /** Name sent in EHLO (RFC 5321 section 4.1.1.1); the client's own default when unset. */
  SMTP_HELO?: string;
  SMTP_CONNECT_TIMEOUT_MS?: string;
  SMTP_GREETING_TIMEOUT_MS?: string;
  SMTP_COMMAND_TIMEOUT_MS?: string;
  SMTP_DATA_TIMEOUT_MS?: string;
  /** Upper bound for one whole send, connect to QUIT. */
  SEND_TIMEOUT_MS?: string;
  /** Largest accepted request body (bytes of JSON). */
  MAX_REQUEST_BYTES?: string;
  /** Most recipients (to + cc + bcc) in one message. */
  MAX_RECIPIENTS?: string;
  /** Largest total decoded size of all attachments (bytes). */
  MAX_ATTACHMENT_BYTES?: string;
  /** Seconds put in `Retry-After` when the relay refuses temporarily. */
  RETRY_AFTER_SECONDS?: string;
}

export type RelaySecurity = 'starttls' | 'tls';

export interface Limits {
  maxRequestBytes: number;
  maxRecipients: number;
  maxAttachmentBytes: number;
}

export interface RelayConfig {
  host: string;
  port: number;
  security: RelaySecurity;
  auth: { username: string; password: string } | undefined;
  helo: string | undefined;
  timeouts: { connectMs: number; greetingMs: number; commandMs: number; dataMs: number; quitMs: number };
  sendTimeoutMs: number;
}

export interface WorkerConfig {
  relay: RelayConfig;
  limits: Limits;
  retryAfterSeconds: number;
}

/**
 * Defaults. Recipients: 50 is Amazon SES's per-message limit, a conservative figure for relay
 * services, and below the 100 recipients an RFC 5321 server must be able to buffer (section
 * 4.5.3.1.8), so any conforming relay takes them in one transaction. Sizes: a 10 MiB JSON request holds 7 MiB of
 * attachments in base64; the composed message then stays well under the 25 MB most relays
 * accept and inside a Worker's 128 MB of memory with room to spare.
 */
export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxRequestBytes: 10 * 1024 * 1024,
  maxRecipients: 50,
  maxAttachmentBytes: 7 * 1024 * 1024,
};

/** Hard ceilings a variable may not exceed (Workers: 128 MB of memory per isolate). */
const CEILINGS = {
  maxRequestBytes: 50 * 1024 * 1024,
  maxRecipients: 1000,
  maxAttachmentBytes: 35 * 1024 * 1024,
};

/** A configuration problem; `variable` names the environment variable to fix. */
export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(message);
    this.variable = variable;
  }
}

function text(env: Env, name: keyof Env): string | undefined {
  const value = env[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ConfigurationError(name, `${name} must be a string`);
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function integer(env: Env, name: keyof Env, fallback: number, min: number, max: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,10}$/.test(raw)) {
    throw new ConfigurationError(name, `${name} must be a whole number, got "${raw}"`);
  }
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigurationError(name, `${name} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/** Hostname or IP literal: letters, digits, dots, hyphens, colons (IPv6), brackets. No spaces or CR/LF. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})?|[0-9A-Fa-f:.]+)$/;
/** EHLO argument: a domain or an address literal (RFC 5321 section 4.1.1.1). */
const HELO = /^(?:\[[A-Za-z0-9:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))$/;

/** The limits alone (needed before the body is read, and by the schema checks). */
export function readLimits(env: Env): Limits {
  return {
    maxRequestBytes: integer(
      env,
      'MAX_REQUEST_BYTES',
      DEFAULT_LIMITS.maxRequestBytes,
      1024,
      CEILINGS.maxRequestBytes,
    ),
    maxRecipients: integer(env, 'MAX_RECIPIENTS', DEFAULT_LIMITS.maxRecipients, 1, CEILINGS.maxRecipients),
    maxAttachmentBytes: integer(
      env,
      'MAX_ATTACHMENT_BYTES',
      DEFAULT_LIMITS.maxAttachmentBytes,
      0,
      CEILINGS.maxAttachmentBytes,
    ),
  };
}

/** The relay settings. Throws `ConfigurationError` naming the variable at fault. */
export function readRelayConfig(env: Env): RelayConfig {
  const host = text(env, 'SMTP_HOST');
  if (host === undefined) {
    throw new ConfigurationError('SMTP_HOST', 'SMTP_HOST is not set: name the SMTP relay to send through');
  }
  if (!HOST.test(host)) throw new ConfigurationError('SMTP_HOST', `SMTP_HOST is not a host name: "${host}"`);

  const security = text(env, 'SMTP_SECURITY') ?? 'starttls';
  if (security !== 'starttls' && security !== 'tls') {
    throw new ConfigurationError(
      'SMTP_SECURITY',
      `SMTP_SECURITY must be "starttls" or "tls", got "${security}" (clear-text relaying is not offered)`,
    );
  }
  const port = integer(env, 'SMTP_PORT', security === 'tls' ? 465 : 587, 1, 65535);
  // Cloudflare blocks outbound port 25 from Workers; locally it is not blocked, so the guard is here.
  if (port === 25) {
    throw new ConfigurationError(
      'SMTP_PORT',
      "SMTP_PORT 25 is not allowed: Workers cannot open outbound connections to port 25; use the relay's submission port (587 with starttls, 465 with tls)",
    );
  }

  const username = text(env, 'SMTP_USERNAME');
  const password =
    env.SMTP_PASSWORD === undefined || env.SMTP_PASSWORD === '' ? undefined : env.SMTP_PASSWORD;
  if (username !== undefined && password === undefined) {
    throw new ConfigurationError(
      'SMTP_PASSWORD',
      'SMTP_USERNAME is set but the SMTP_PASSWORD secret is not (wrangler secret put SMTP_PASSWORD)',
    );
  }
  if (username === undefined && password !== undefined) {
    throw new ConfigurationError('SMTP_USERNAME', 'the SMTP_PASSWORD secret is set but SMTP_USERNAME is not');
  }
  if (username !== undefined && /[\r\n\0]/.test(username)) {
    throw new ConfigurationError('SMTP_USERNAME', 'SMTP_USERNAME contains a line break or NUL');
  }
  if (password !== undefined && /[\r\n\0]/.test(password)) {
    throw new ConfigurationError('SMTP_PASSWORD', 'SMTP_PASSWORD contains a line break or NUL');
  }

  const helo = text(env, 'SMTP_HELO');
  if (helo !== undefined && !HELO.test(helo)) {
    throw new ConfigurationError(
      'SMTP_HELO',
      `SMTP_HELO must be a domain name or an address literal, got "${helo}"`,
    );
  }

  // RFC 5321 section 4.5.3.2 suggests minutes per stage for MTAs; an HTTP caller waits, so the
  // defaults are shorter and the whole send is bounded by SEND_TIMEOUT_MS as well.
  const timeouts = {
    connectMs: integer(env, 'SMTP_CONNECT_TIMEOUT_MS', 10_000, 1, 300_000),
    greetingMs: integer(env, 'SMTP_GREETING_TIMEOUT_MS', 30_000, 1, 300_000),
    commandMs: integer(env, 'SMTP_COMMAND_TIMEOUT_MS', 30_000, 1, 300_000),
    dataMs: integer(env, 'SMTP_DATA_TIMEOUT_MS', 60_000, 1, 600_000),
    quitMs: 5_000,
  };
  timeouts.quitMs = Math.min(timeouts.quitMs, timeouts.commandMs);
  const sendTimeoutMs = integer(env, 'SEND_TIMEOUT_MS', 120_000, 1, 900_000);

  return {
    host,
    port,
    security,
    auth: username !== undefined && password !== undefined ? { username, password } : undefined,
    helo,
    timeouts,
    sendTimeoutMs,
  };
}

/**
 * What `readConfig` and `readApiKeys` made of an `env` object, kept for the next request that
 * brings the same object: workerd hands every request of an isolate the same `env`, and its
 * bindings do not change under it, so the twenty-odd variables are read and checked once per
 * isolate instead of on every send (about 0.4 ms of workerd CPU per request). Another object (a
 * new isolate's, a test's) is read afresh; a configuration error is never kept, so it is
 * reported on every request. The kept values are frozen: callers share them.
 */
const configs = new WeakMap<Env, WorkerConfig>();
const apiKeys = new WeakMap<Env, string[]>();

export function readConfig(env: Env): WorkerConfig {
  const known = configs.get(env);
  if (known !== undefined) return known;
  const relay = readRelayConfig(env);
  Object.freeze(relay.timeouts);
  if (relay.auth !== undefined) Object.freeze(relay.auth);
  const config: WorkerConfig = Object.freeze({
    relay: Object.freeze(relay),
    limits: Object.freeze(readLimits(env)),
    retryAfterSeconds: integer(env, 'RETRY_AFTER_SECONDS', 60, 1, 86_400),
  });
  configs.set(env, config);
  return config;
}

/** The accepted API keys: the `API_KEYS` secret split on commas and newlines, blanks dropped. */
export function readApiKeys(env: Env): string[] {
  const known = apiKeys.get(env);
  if (known !== undefined) return known;
  const raw = env.API_KEYS;
  const keys =
    typeof raw !== 'string'
      ? []
      : raw
          .split(/[,\r\n]+/)
          .map((key) => key.trim())
          .filter((key) => key !== '');
  Object.freeze(keys);
  apiKeys.set(env, keys);
  return keys;
}
