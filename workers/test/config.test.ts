/** The configuration readers alone: defaults, ranges, and the variable named in every error. */
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DEFAULT_LIMITS,
  readApiKeys,
  readConfig,
  readRelayConfig,
} from '../src/config.ts';

const base = { SMTP_HOST: 'smtp.example.com' };

function errorOf(env: Record<string, string>): { variable: string; message: string } {
  try {
    readConfig(env);
  } catch (err) {
    if (err instanceof ConfigurationError) return { variable: err.variable, message: err.message };
    throw err;
  }
  throw new Error('expected a ConfigurationError');
}

describe('readConfig', () => {
  it('applies the defaults: starttls on 587, the documented limits and timeouts', () => {
    const config = readConfig(base);
    expect(config.relay).toEqual({
      host: 'smtp.example.com',
      port: 587,
      security: 'starttls',
      auth: undefined,
      helo: undefined,
      timeouts: { connectMs: 10_000, greetingMs: 30_000, commandMs: 30_000, dataMs: 60_000, quitMs: 5_000 },
      sendTimeoutMs: 120_000,
    });
    expect(config.limits).toEqual(DEFAULT_LIMITS);
    expect(config.retryAfterSeconds).toBe(60);
  });

  it('defaults to 465 for implicit TLS, and treats empty strings (wrangler.toml "") as unset', () => {
    const config = readConfig({
      ...base,
      SMTP_SECURITY: 'tls',
      SMTP_PORT: '',
      SMTP_USERNAME: '',
      SMTP_HELO: ' ',
    });
    expect(config.relay.port).toBe(465);
    expect(config.relay.auth).toBeUndefined();
    expect(config.relay.helo).toBeUndefined();
  });

  it('reads credentials and bounds QUIT by the command timeout', () => {
    const relay = readRelayConfig({
      ...base,
      SMTP_USERNAME: 'u',
      SMTP_PASSWORD: ' p w ',
      SMTP_COMMAND_TIMEOUT_MS: '2000',
    });
    expect(relay.auth).toEqual({ username: 'u', password: ' p w ' });
    expect(relay.timeouts.quitMs).toBe(2000);
  });

  it('names the variable at fault', () => {
    expect(errorOf({})).toEqual({
      variable: 'SMTP_HOST',
      message: 'SMTP_HOST is not set: name the SMTP relay to send through',
    });
    expect(errorOf({ SMTP_HOST: 'smtp.example.com\r\nX' }).variable).toBe('SMTP_HOST');
    expect(errorOf({ ...base, SMTP_PORT: '70000' })).toEqual({
      variable: 'SMTP_PORT',
      message: 'SMTP_PORT must be between 1 and 65535, got 70000',
    });
    expect(errorOf({ ...base, SMTP_PORT: '-1' }).message).toBe('SMTP_PORT must be a whole number, got "-1"');
    expect(errorOf({ ...base, SMTP_PASSWORD: 'p' })).toEqual({
      variable: 'SMTP_USERNAME',
      message: 'the SMTP_PASSWORD secret is set but SMTP_USERNAME is not',
    });
    expect(errorOf({ ...base, SMTP_USERNAME: 'u', SMTP_PASSWORD: 'a\nb' }).variable).toBe('SMTP_PASSWORD');
    expect(errorOf({ ...base, SMTP_HELO: 'bad name' })).toEqual({
      variable: 'SMTP_HELO',
      message: 'SMTP_HELO must be a domain name or an address literal, got "bad name"',
    });
    expect(errorOf({ ...base, MAX_REQUEST_BYTES: '100' }).message).toBe(
      'MAX_REQUEST_BYTES must be between 1024 and 52428800, got 100',
    );
    expect(errorOf({ ...base, MAX_RECIPIENTS: '0' }).variable).toBe('MAX_RECIPIENTS');
    expect(errorOf({ ...base, SEND_TIMEOUT_MS: '0' }).variable).toBe('SEND_TIMEOUT_MS');
    expect(errorOf({ ...base, RETRY_AFTER_SECONDS: '1.5' }).variable).toBe('RETRY_AFTER_SECONDS');
  });

  it('accepts an address literal as EHLO name and an IPv6 literal as host', () => {
    const relay = readRelayConfig({ SMTP_HOST: '[::1]', SMTP_HELO: '[192.0.2.1]' });
    expect(relay.host).toBe('[::1]');
    expect(relay.helo).toBe('[192.0.2.1]');
  });
});

describe('readApiKeys', () => {
  it('splits on commas and newlines, trims, drops blanks', () => {
    expect(readApiKeys({ API_KEYS: ' a ,b\r\n\nc,, ' })).toEqual(['a', 'b', 'c']);
    expect(readApiKeys({})).toEqual([]);
  });
});
