/**
 * Receiver configuration: every setting comes from the environment (design note, "Contracts").
 *
 * `loadConfig(env)` validates all variables at once and either returns a typed `ReceiverConfig` or
 * throws a `ConfigError` whose `issues` each name the offending variable. `summarizeConfig()` is the
 * one-screen view logged at start-up, with secrets left out.
 */
import { isAbsolute, resolve } from 'node:path';
import { domainToASCII, fileURLToPath } from 'node:url';
import { z } from 'zod';
import { type Cidr, parseCidr } from './cidr.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export type StoreLocation =
  | { readonly kind: 'file'; readonly directory: string }
  | { readonly kind: 's3'; readonly bucket: string; readonly prefix: string };

export interface ReceiverConfig {
  readonly hostname: string;
  /** The address the SMTP listeners bind. */
  readonly bind: string;
  /** The address the ops HTTP endpoint binds (loopback by default: it is unauthenticated). */
  readonly httpBind: string;
  /** `null` when the variable is `off`. */
  readonly mxPort: number | null;
  readonly submissionPort: number | null;
  readonly submissionsPort: number | null;
  readonly httpPort: number | null;
  /** Accepted recipient domains on the MX port, lower-case A-labels. */
  readonly domains: readonly string[];
  readonly tls: { readonly certPath: string; readonly keyPath: string } | null;
  readonly usersFile: string | null;
  readonly store: StoreLocation;
  readonly s3: { readonly forcePathStyle: boolean; readonly partSize: number; readonly queueSize: number };
  readonly maxMessageBytes: number;
  readonly maxRecipients: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly messagesPerIpPerMinute: number;
  readonly proxyProtocolTrusted: readonly Cidr[];
  readonly authMaxFailuresPerIp: number;
  readonly authMaxFailuresPerUser: number;
  readonly authLockoutMs: number;
  readonly storeTimeoutMs: number;
  readonly drainTimeoutMs: number;
  /** MX only: wait this long before the greeting; a client that talks first gets 554 (0 = off). */
  readonly mxGreetDelayMs: number;
  readonly logLevel: LogLevel;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly issues: readonly { variable: string; message: string }[];
  constructor(issues: readonly { variable: string; message: string }[]) {
    super(issues.map((i) => `${i.variable}: ${i.message}`).join('\n'));
    this.issues = issues;
  }
}

/** Defaults, in one place so that docs, infra and tests can refer to them. */
export const DEFAULTS = {
  bind: '0.0.0.0',
  // The ops endpoint (/healthz, /readyz, /metrics) has no authentication: loopback unless a
  // deployment opens it on purpose (container port publishing, Kubernetes probes need 0.0.0.0).
  httpBind: '127.0.0.1',
  mxPort: 2525,
  submissionPort: 2587,
  submissionsPort: 2465,
  httpPort: 9025,
  maxMessageBytes: 25 * 1024 * 1024,
  maxRecipients: 100,
  maxConnections: 1000,
  maxConnectionsPerIp: 20,
  messagesPerIpPerMinute: 120,
  authMaxFailuresPerIp: 5,
  authMaxFailuresPerUser: 10,
  authLockoutMs: 15 * 60_000,
  storeTimeoutMs: 30_000,
  drainTimeoutMs: 30_000,
  mxGreetDelayMs: 0,
  s3PartSize: 5 * 1024 * 1024,
  s3QueueSize: 2,
  logLevel: 'info' as LogLevel,
} as const;

const S3_MIN_PART = 5 * 1024 * 1024;

// ---- small value parsers (each returns a zod schema over an optional string) -------------------

const trimmed = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

function port(fallback: number | null) {
  return trimmed.transform((v, ctx): number | null => {
    if (v === undefined) return fallback;
    if (v.toLowerCase() === 'off') return null;
    if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) {
      ctx.addIssue({ code: 'custom', message: `must be a port number 0-65535 or "off", got "${v}"` });
      return z.NEVER;
    }
    return Number(v);
  });
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/** A byte count: `26214400`, `25MiB`, `25M` (binary units). */
function bytes(fallback: number, min = 1) {
  return trimmed.transform((v, ctx): number => {
    if (v === undefined) return fallback;
    const m = /^(\d+)\s*([a-z]*)$/i.exec(v);
    const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
    const n = m && unit !== undefined ? Number(m[1]) * unit : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a byte count >= ${min} (e.g. 26214400 or 25MiB), got "${v}"`,
      });
      return z.NEVER;
    }
    return n;
  });
}

function integer(fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) {
  return trimmed.transform((v, ctx): number => {
    if (v === undefined) return fallback;
    const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max}, got "${v}"` });
      return z.NEVER;
    }
    return n;
  });
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration with a unit: `500ms`, `30s`, `15m`, `1h`. A bare number is refused (ambiguous). */
function duration(fallbackMs: number, minMs = 1) {
  return trimmed.transform((v, ctx): number => {
    if (v === undefined) return fallbackMs;
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
    const ms = m ? Math.round(Number(m[1]) * (DURATION_UNITS[m[2]!] ?? Number.NaN)) : Number.NaN;
    if (!Number.isFinite(ms) || ms < minMs) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a duration with a unit (500ms, 30s, 15m, 1h), got "${v}"`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

function bool(fallback: boolean) {
  return trimmed.transform((v, ctx): boolean => {
    if (v === undefined) return fallback;
    const l = v.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(l)) return true;
    if (['0', 'false', 'no', 'off'].includes(l)) return false;
    ctx.addIssue({ code: 'custom', message: `must be true or false, got "${v}"` });
    return z.NEVER;
  });
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A domain name as an A-label, or null when it is not a usable host name. */
export function normalizeDomain(input: string): string | null {
  const stripped = input.trim().replace(/\.$/, '');
  if (stripped === '' || stripped.length > 253) return null;
  const ascii = /^[\x21-\x7e]+$/.test(stripped) ? stripped.toLowerCase() : domainToASCII(stripped);
  if (ascii === '' || ascii.length > 253) return null;
  return ascii.split('.').every((label) => LABEL.test(label)) ? ascii : null;
}

const domainList = trimmed.transform((v, ctx): string[] => {
  if (v === undefined) return [];
  const out: string[] = [];
  for (const raw of v.split(/[\s,]+/).filter((d) => d !== '')) {
    const d = normalizeDomain(raw);
    if (d === null) {
      ctx.addIssue({ code: 'custom', message: `"${raw}" is not a domain name` });
      return z.NEVER;
    }
    if (!out.includes(d)) out.push(d);
  }
  return out;
});

const cidrList = trimmed.transform((v, ctx): Cidr[] => {
  if (v === undefined) return [];
  const out: Cidr[] = [];
  for (const raw of v.split(/[\s,]+/).filter((d) => d !== '')) {
    const c = parseCidr(raw);
    if (c === null) {
      ctx.addIssue({ code: 'custom', message: `"${raw}" is not an IP address or CIDR block` });
      return z.NEVER;
    }
    out.push(c);
  }
  return out;
});

const absolutePath = trimmed.transform((v) => (v === undefined ? undefined : resolve(v)));

function storeLocation(cwd: string) {
  return trimmed.transform((v, ctx): StoreLocation => {
    if (v === undefined) return { kind: 'file', directory: resolve(cwd, 'data') };
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: `must be file:///absolute/dir or s3://bucket/prefix, got "${v}"`,
      });
      return z.NEVER;
    }
    if (url.protocol === 'file:') {
      if (url.host !== '' && url.host !== 'localhost') {
        ctx.addIssue({
          code: 'custom',
          message: `a file: URL names a local directory (file:///abs/dir), got "${v}"`,
        });
        return z.NEVER;
      }
      const directory = fileURLToPath(url);
      if (!isAbsolute(directory)) {
        ctx.addIssue({ code: 'custom', message: `the directory must be absolute, got "${v}"` });
        return z.NEVER;
      }
      return { kind: 'file', directory: directory.replace(/\/+$/, '') || '/' };
    }
    if (url.protocol === 's3:') {
      // Bucket names: 3-63 characters of lower-case letters, digits, dots and hyphens.
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(url.hostname)) {
        ctx.addIssue({ code: 'custom', message: `"${url.hostname}" is not an S3 bucket name` });
        return z.NEVER;
      }
      const prefix = decodeURIComponent(url.pathname)
        .split('/')
        .filter((s) => s !== '')
        .join('/');
      if (/[\x00-\x1f\x7f\\]/.test(prefix) || prefix.split('/').some((s) => s === '.' || s === '..')) {
        ctx.addIssue({
          code: 'custom',
          message: `the key prefix "${prefix}" has control characters or dot segments`,
        });
        return z.NEVER;
      }
      return { kind: 's3', bucket: url.hostname, prefix };
    }
    ctx.addIssue({
      code: 'custom',
      message: `must be file:///absolute/dir or s3://bucket/prefix, got "${v}"`,
    });
    return z.NEVER;
  });
}

const logLevel = trimmed.transform((v, ctx): LogLevel => {
  if (v === undefined) return DEFAULTS.logLevel;
  const levels: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!(levels as string[]).includes(v)) {
    ctx.addIssue({ code: 'custom', message: `must be one of ${levels.join(', ')}, got "${v}"` });
    return z.NEVER;
  }
  return v as LogLevel;
});

/** An IP address to listen on (no host names, no prefix length). */
function ipAddress(fallback: string) {
  return trimmed.transform((v, ctx): string => {
    const address = v ?? fallback;
    if (parseCidr(address) === null || address.includes('/')) {
      ctx.addIssue({
        code: 'custom',
        message: `must be an IP address to listen on (0.0.0.0, ::, 127.0.0.1), got "${address}"`,
      });
      return z.NEVER;
    }
    return address;
  });
}

function schema(cwd: string, defaultHostname: string) {
  return z.object({
    RECEIVER_HOSTNAME: trimmed.transform((v, ctx): string => {
      const name = normalizeDomain(v ?? defaultHostname);
      if (name === null) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a fully qualified host name, got "${v ?? defaultHostname}"`,
        });
        return z.NEVER;
      }
      return name;
    }),
    RECEIVER_BIND: ipAddress(DEFAULTS.bind),
    RECEIVER_HTTP_BIND: ipAddress(DEFAULTS.httpBind),
    RECEIVER_MX_PORT: port(DEFAULTS.mxPort),
    RECEIVER_SUBMISSION_PORT: port(DEFAULTS.submissionPort),
    RECEIVER_SUBMISSIONS_PORT: port(DEFAULTS.submissionsPort),
    RECEIVER_HTTP_PORT: port(DEFAULTS.httpPort),
    RECEIVER_DOMAINS: domainList,
    RECEIVER_TLS_CERT: absolutePath,
    RECEIVER_TLS_KEY: absolutePath,
    RECEIVER_USERS_FILE: absolutePath,
    RECEIVER_STORE: storeLocation(cwd),
    RECEIVER_S3_FORCE_PATH_STYLE: bool(false),
    RECEIVER_S3_PART_SIZE: bytes(DEFAULTS.s3PartSize, S3_MIN_PART),
    RECEIVER_S3_QUEUE_SIZE: integer(DEFAULTS.s3QueueSize, 1, 16),
    RECEIVER_MAX_MESSAGE_BYTES: bytes(DEFAULTS.maxMessageBytes, 1024),
    RECEIVER_MAX_RECIPIENTS: integer(DEFAULTS.maxRecipients, 1, 10_000),
    RECEIVER_MAX_CONNECTIONS: integer(DEFAULTS.maxConnections, 1, 1_000_000),
    RECEIVER_MAX_CONNECTIONS_PER_IP: integer(DEFAULTS.maxConnectionsPerIp, 1, 1_000_000),
    RECEIVER_MESSAGES_PER_IP_PER_MINUTE: integer(DEFAULTS.messagesPerIpPerMinute, 0, 1_000_000),
    RECEIVER_PROXY_PROTOCOL_TRUSTED: cidrList,
    RECEIVER_AUTH_MAX_FAILURES_PER_IP: integer(DEFAULTS.authMaxFailuresPerIp, 1, 1_000_000),
    RECEIVER_AUTH_MAX_FAILURES_PER_USER: integer(DEFAULTS.authMaxFailuresPerUser, 1, 1_000_000),
    RECEIVER_AUTH_LOCKOUT: duration(DEFAULTS.authLockoutMs),
    RECEIVER_STORE_TIMEOUT: duration(DEFAULTS.storeTimeoutMs, 10),
    RECEIVER_DRAIN_TIMEOUT: duration(DEFAULTS.drainTimeoutMs, 0),
    RECEIVER_MX_GREET_DELAY: duration(DEFAULTS.mxGreetDelayMs, 0),
    RECEIVER_LOG_LEVEL: logLevel,
  });
}

/** Every variable the receiver reads itself (the AWS SDK reads its own `AWS_*` variables). */
export const VARIABLES: readonly string[] = Object.keys(schema('/', 'localhost').shape);

export interface LoadOptions {
  /** Directory the default `./data` store is resolved against. */
  cwd?: string;
  /** Used when RECEIVER_HOSTNAME is unset (normally `os.hostname()`). */
  defaultHostname?: string;
}

/** Validate the environment. Throws `ConfigError` listing every bad variable. */
export function loadConfig(
  env: Record<string, string | undefined>,
  options: LoadOptions = {},
): ReceiverConfig {
  const parsed = schema(options.cwd ?? process.cwd(), options.defaultHostname ?? 'localhost').safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? 'environment'), message: i.message })),
    );
  }
  const e = parsed.data;
  const issues: { variable: string; message: string }[] = [];
  const submissionOn = e.RECEIVER_SUBMISSION_PORT !== null || e.RECEIVER_SUBMISSIONS_PORT !== null;

  if (e.RECEIVER_TLS_CERT !== undefined && e.RECEIVER_TLS_KEY === undefined) {
    issues.push({ variable: 'RECEIVER_TLS_KEY', message: 'is required when RECEIVER_TLS_CERT is set' });
  }
  if (e.RECEIVER_TLS_KEY !== undefined && e.RECEIVER_TLS_CERT === undefined) {
    issues.push({ variable: 'RECEIVER_TLS_CERT', message: 'is required when RECEIVER_TLS_KEY is set' });
  }
  if (submissionOn && e.RECEIVER_TLS_CERT === undefined && e.RECEIVER_TLS_KEY === undefined) {
    issues.push({
      variable: 'RECEIVER_TLS_CERT',
      message:
        'the submission ports need TLS (AUTH is refused without it): set RECEIVER_TLS_CERT and RECEIVER_TLS_KEY, ' +
        'or set RECEIVER_SUBMISSION_PORT=off and RECEIVER_SUBMISSIONS_PORT=off',
    });
  }
  if (submissionOn && e.RECEIVER_USERS_FILE === undefined) {
    issues.push({
      variable: 'RECEIVER_USERS_FILE',
      message:
        'the submission ports accept mail only from authenticated users: set RECEIVER_USERS_FILE, ' +
        'or set RECEIVER_SUBMISSION_PORT=off and RECEIVER_SUBMISSIONS_PORT=off',
    });
  }
  if (e.RECEIVER_MX_PORT !== null && e.RECEIVER_DOMAINS.length === 0) {
    issues.push({
      variable: 'RECEIVER_DOMAINS',
      message:
        'the MX port accepts mail only for these domains: set it (e.g. example.com), or set RECEIVER_MX_PORT=off',
    });
  }
  if (e.RECEIVER_MX_PORT === null && !submissionOn) {
    issues.push({ variable: 'RECEIVER_MX_PORT', message: 'every SMTP port is off: nothing to do' });
  }
  const ports = [
    ['RECEIVER_MX_PORT', e.RECEIVER_MX_PORT],
    ['RECEIVER_SUBMISSION_PORT', e.RECEIVER_SUBMISSION_PORT],
    ['RECEIVER_SUBMISSIONS_PORT', e.RECEIVER_SUBMISSIONS_PORT],
    ['RECEIVER_HTTP_PORT', e.RECEIVER_HTTP_PORT],
  ] as const;
  for (let i = 0; i < ports.length; i++) {
    for (let j = 0; j < i; j++) {
      const [a, pa] = ports[j]!;
      const [b, pb] = ports[i]!;
      if (pa !== null && pa !== 0 && pa === pb)
        issues.push({ variable: b, message: `uses the same port as ${a} (${pa})` });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);

  return {
    hostname: e.RECEIVER_HOSTNAME,
    bind: e.RECEIVER_BIND,
    httpBind: e.RECEIVER_HTTP_BIND,
    mxPort: e.RECEIVER_MX_PORT,
    submissionPort: e.RECEIVER_SUBMISSION_PORT,
    submissionsPort: e.RECEIVER_SUBMISSIONS_PORT,
    httpPort: e.RECEIVER_HTTP_PORT,
    domains: e.RECEIVER_DOMAINS,
    tls:
      e.RECEIVER_TLS_CERT !== undefined && e.RECEIVER_TLS_KEY !== undefined
        ? { certPath: e.RECEIVER_TLS_CERT, keyPath: e.RECEIVER_TLS_KEY }
        : null,
    usersFile: e.RECEIVER_USERS_FILE ?? null,
    store: e.RECEIVER_STORE,
    s3: {
      forcePathStyle: e.RECEIVER_S3_FORCE_PATH_STYLE,
      partSize: e.RECEIVER_S3_PART_SIZE,
      queueSize: e.RECEIVER_S3_QUEUE_SIZE,
    },
    maxMessageBytes: e.RECEIVER_MAX_MESSAGE_BYTES,
    maxRecipients: e.RECEIVER_MAX_RECIPIENTS,
    maxConnections: e.RECEIVER_MAX_CONNECTIONS,
    maxConnectionsPerIp: e.RECEIVER_MAX_CONNECTIONS_PER_IP,
    messagesPerIpPerMinute: e.RECEIVER_MESSAGES_PER_IP_PER_MINUTE,
    proxyProtocolTrusted: e.RECEIVER_PROXY_PROTOCOL_TRUSTED,
    authMaxFailuresPerIp: e.RECEIVER_AUTH_MAX_FAILURES_PER_IP,
    authMaxFailuresPerUser: e.RECEIVER_AUTH_MAX_FAILURES_PER_USER,
    authLockoutMs: e.RECEIVER_AUTH_LOCKOUT,
    storeTimeoutMs: e.RECEIVER_STORE_TIMEOUT,
    drainTimeoutMs: e.RECEIVER_DRAIN_TIMEOUT,
    mxGreetDelayMs: e.RECEIVER_MX_GREET_DELAY,
    logLevel: e.RECEIVER_LOG_LEVEL,
  };
}

/** The effective settings as a flat object for the start-up log line. No secrets. */
export function summarizeConfig(
  c: ReceiverConfig,
  env: Record<string, string | undefined>,
): Record<string, unknown> {
  const portText = (p: number | null) => (p === null ? 'off' : p);
  const store =
    c.store.kind === 'file'
      ? `file://${c.store.directory}`
      : `s3://${c.store.bucket}/${c.store.prefix}` +
        ` (endpoint ${env['AWS_ENDPOINT_URL_S3'] ?? env['AWS_ENDPOINT_URL'] ?? 'AWS default'},` +
        ` region ${env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'SDK default'},` +
        ` credentials ${env['AWS_ACCESS_KEY_ID'] ? 'from AWS_ACCESS_KEY_ID' : 'SDK default chain'},` +
        ` path-style ${c.s3.forcePathStyle}, part ${c.s3.partSize} B x ${c.s3.queueSize})`;
  return {
    hostname: c.hostname,
    listeners: `${c.bind} mx=${portText(c.mxPort)} submission=${portText(c.submissionPort)} submissions=${portText(c.submissionsPort)}; ${c.httpBind} http=${portText(c.httpPort)}`,
    domains: c.domains.join(',') || '(none)',
    tls: c.tls === null ? 'off (no STARTTLS)' : `cert ${c.tls.certPath}, key ${c.tls.keyPath}`,
    usersFile: c.usersFile ?? '(none)',
    store,
    limits:
      `message ${c.maxMessageBytes} B, ${c.maxRecipients} rcpt, ${c.maxConnections} conn` +
      ` (${c.maxConnectionsPerIp}/IP), ${c.messagesPerIpPerMinute || 'unlimited'} msg/IP/min`,
    auth: `lockout after ${c.authMaxFailuresPerIp} failures per IP or ${c.authMaxFailuresPerUser} per (IP, user) for ${c.authLockoutMs} ms`,
    proxyProtocol:
      c.proxyProtocolTrusted.length === 0 ? 'off' : c.proxyProtocolTrusted.map((x) => x.text).join(','),
    timeouts: `store ${c.storeTimeoutMs} ms, drain ${c.drainTimeoutMs} ms, mx greet delay ${c.mxGreetDelayMs} ms`,
    logLevel: c.logLevel,
  };
}
