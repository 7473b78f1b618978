import { describe, expect, it } from 'vitest';
import { addressLiteral, canonicalIp, limitKey, matchesAny, parseCidr } from '../src/cidr.ts';
import { ConfigError, DEFAULTS, loadConfig, summarizeConfig } from '../src/config.ts';

const base = {
  RECEIVER_DOMAINS: 'Example.COM, example.org',
  RECEIVER_TLS_CERT: '/etc/tls/cert.pem',
  RECEIVER_TLS_KEY: '/etc/tls/key.pem',
  RECEIVER_USERS_FILE: '/etc/receiver/users',
};

function issuesOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env, { cwd: '/srv', defaultHostname: 'mx.example.com' });
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => i.variable);
    throw e;
  }
  return [];
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig(base, { cwd: '/srv', defaultHostname: 'mx.example.com' });
    expect(c).toMatchObject({
      hostname: 'mx.example.com',
      bind: '0.0.0.0',
      httpBind: '127.0.0.1',
      mxPort: 2525,
      submissionPort: 2587,
      submissionsPort: 2465,
      httpPort: 9025,
      domains: ['example.com', 'example.org'],
      store: { kind: 'file', directory: '/srv/data' },
      maxMessageBytes: DEFAULTS.maxMessageBytes,
      maxRecipients: 100,
      storeTimeoutMs: 30_000,
      drainTimeoutMs: 30_000,
      authLockoutMs: 900_000,
      s3: { forcePathStyle: false, partSize: 5 * 1024 * 1024, queueSize: 2 },
    });
  });

  it('parses every kind of value', () => {
    const c = loadConfig(
      {
        ...base,
        RECEIVER_HOSTNAME: 'MX1.Example.com.',
        RECEIVER_BIND: '::',
        RECEIVER_HTTP_BIND: '::1',
        RECEIVER_MX_PORT: '25',
        RECEIVER_SUBMISSION_PORT: 'off',
        RECEIVER_SUBMISSIONS_PORT: 'OFF',
        RECEIVER_HTTP_PORT: '0',
        RECEIVER_DOMAINS: 'bücher.example',
        RECEIVER_STORE: 's3://my-bucket/inbound/mx/',
        RECEIVER_S3_FORCE_PATH_STYLE: 'yes',
        RECEIVER_S3_PART_SIZE: '8MiB',
        RECEIVER_MAX_MESSAGE_BYTES: '10M',
        RECEIVER_PROXY_PROTOCOL_TRUSTED: '10.0.0.0/8, 2001:db8::/32',
        RECEIVER_STORE_TIMEOUT: '1.5s',
        RECEIVER_DRAIN_TIMEOUT: '0s',
        RECEIVER_AUTH_LOCKOUT: '15m',
        RECEIVER_LOG_LEVEL: 'debug',
      },
      { cwd: '/srv' },
    );
    expect(c.hostname).toBe('mx1.example.com');
    expect([c.bind, c.httpBind]).toEqual(['::', '::1']);
    expect(c.submissionPort).toBeNull();
    expect(c.submissionsPort).toBeNull();
    expect(c.httpPort).toBe(0);
    expect(c.domains).toEqual(['xn--bcher-kva.example']);
    expect(c.store).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: 'inbound/mx' });
    expect(c.s3.partSize).toBe(8 * 1024 * 1024);
    expect(c.maxMessageBytes).toBe(10 * 1024 * 1024);
    expect(c.storeTimeoutMs).toBe(1500);
    expect(c.drainTimeoutMs).toBe(0);
    expect(c.proxyProtocolTrusted.map((x) => x.text)).toEqual(['10.0.0.0/8', '2001:db8::/32']);
  });

  it.each([
    ['RECEIVER_MX_PORT', '70000'],
    ['RECEIVER_MX_PORT', 'twenty-five'],
    ['RECEIVER_HTTP_PORT', '-1'],
    ['RECEIVER_DOMAINS', 'exa mple..com'],
    ['RECEIVER_STORE', 'ftp://x/y'],
    ['RECEIVER_STORE', 's3://UPPER/x'],
    ['RECEIVER_STORE', 'file://host/dir'],
    ['RECEIVER_STORE', 'relative/dir'],
    ['RECEIVER_S3_FORCE_PATH_STYLE', 'maybe'],
    ['RECEIVER_S3_PART_SIZE', '1MiB'],
    ['RECEIVER_MAX_MESSAGE_BYTES', '12 parsecs'],
    ['RECEIVER_MAX_RECIPIENTS', '0'],
    ['RECEIVER_MAX_CONNECTIONS', '1.5'],
    ['RECEIVER_PROXY_PROTOCOL_TRUSTED', '10.0.0.0/33'],
    ['RECEIVER_STORE_TIMEOUT', '30'],
    ['RECEIVER_DRAIN_TIMEOUT', 'soon'],
    ['RECEIVER_MX_GREET_DELAY', '1 second'],
    ['RECEIVER_LOG_LEVEL', 'loud'],
    ['RECEIVER_BIND', 'localhost'],
    ['RECEIVER_HTTP_BIND', 'localhost'],
    ['RECEIVER_HTTP_BIND', '10.0.0.0/8'],
    ['RECEIVER_HOSTNAME', 'bad_host!'],
  ])('names %s when it is "%s"', (variable, value) => {
    expect(issuesOf({ ...base, [variable]: value })).toContain(variable);
  });

  it('requires what each enabled listener needs', () => {
    expect(issuesOf({ ...base, RECEIVER_DOMAINS: undefined })).toEqual(['RECEIVER_DOMAINS']);
    expect(issuesOf({ ...base, RECEIVER_USERS_FILE: undefined })).toEqual(['RECEIVER_USERS_FILE']);
    expect(issuesOf({ ...base, RECEIVER_TLS_CERT: undefined, RECEIVER_TLS_KEY: undefined })).toEqual([
      'RECEIVER_TLS_CERT',
    ]);
    expect(issuesOf({ ...base, RECEIVER_TLS_KEY: undefined })).toEqual(['RECEIVER_TLS_KEY']);
    // MX alone needs neither TLS nor users.
    expect(
      issuesOf({
        RECEIVER_DOMAINS: 'example.com',
        RECEIVER_SUBMISSION_PORT: 'off',
        RECEIVER_SUBMISSIONS_PORT: 'off',
      }),
    ).toEqual([]);
    expect(
      issuesOf({
        RECEIVER_MX_PORT: 'off',
        RECEIVER_SUBMISSION_PORT: 'off',
        RECEIVER_SUBMISSIONS_PORT: 'off',
      }),
    ).toEqual(['RECEIVER_MX_PORT']);
    expect(issuesOf({ ...base, RECEIVER_HTTP_PORT: '2525' })).toEqual(['RECEIVER_HTTP_PORT']);
  });

  it('reports every bad variable at once', () => {
    expect(issuesOf({ ...base, RECEIVER_MX_PORT: 'x', RECEIVER_LOG_LEVEL: 'y' }).sort()).toEqual([
      'RECEIVER_LOG_LEVEL',
      'RECEIVER_MX_PORT',
    ]);
  });

  it('summarizes without secrets', () => {
    const env = {
      ...base,
      RECEIVER_STORE: 's3://bkt/p',
      AWS_ACCESS_KEY_ID: 'AKIAXXX',
      AWS_SECRET_ACCESS_KEY: 'sekrit',
    };
    const text = JSON.stringify(summarizeConfig(loadConfig(env, { cwd: '/' }), env));
    expect(text).not.toContain('sekrit');
    expect(text).not.toContain('AKIAXXX');
    expect(text).toContain('s3://bkt/p');
  });
});

describe('cidr', () => {
  it('matches IPv4, IPv6 and mapped addresses', () => {
    const blocks = ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'].map((t) => parseCidr(t)!);
    expect(matchesAny('10.1.2.3', blocks)).toBe(true);
    expect(matchesAny('::ffff:10.1.2.3', blocks)).toBe(true);
    expect(matchesAny('11.0.0.1', blocks)).toBe(false);
    expect(matchesAny('2001:db8:1::5', blocks)).toBe(true);
    expect(matchesAny('2001:db9::5', blocks)).toBe(false);
    expect(matchesAny('192.0.2.7', blocks)).toBe(true);
    expect(matchesAny('192.0.2.8', blocks)).toBe(false);
    expect(matchesAny('not-an-ip', blocks)).toBe(false);
    expect(parseCidr('::/0')).not.toBeNull();
    expect(parseCidr('1.2.3.4/24/1')).toBeNull();
  });

  it('writes canonical addresses and RFC 5321 address literals', () => {
    expect(canonicalIp('2001:0db8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(canonicalIp('2001:db8:0:1:0:0:0:0')).toBe('2001:db8:0:1::');
    expect(canonicalIp('::1')).toBe('::1');
    expect(addressLiteral('192.0.2.1')).toBe('[192.0.2.1]');
    expect(addressLiteral('2001:db8::1')).toBe('[IPv6:2001:db8::1]');
    expect(limitKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(limitKey('::ffff:198.51.100.4')).toBe('198.51.100.4');
  });
});
