import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { base64Decode, base64Encode } from '../encoding/base64.ts';
import { utf8Decode, utf8Encode } from '../encoding/bytes.ts';
import { SmtpConfigError, SmtpError, SmtpProtocolError } from '../errors.ts';
import { createClientMechanism } from './client.ts';
import { SASL_MECHANISM_NAMES, SASL_MECHANISMS, saslAllowed } from './mechanisms.ts';
import { createServerMechanism, type SaslStep, xoauth2ErrorChallenge } from './server.ts';

const b64 = (s: string) => base64Encode(utf8Encode(s));
const unb64 = (s: string) => utf8Decode(base64Decode(s));
const opts = { hostname: 'postoffice.reston.mci.net' };

function done(step: SaslStep) {
  if (step.kind !== 'done') throw new Error(`expected done, got ${JSON.stringify(step)}`);
  return step.credentials;
}

describe('server PLAIN (RFC 4616)', () => {
  it('RFC 4616 section 4 example 1: no initial response, empty challenge, then the message', () => {
    const m = createServerMechanism('PLAIN', opts);
    expect(m.start(undefined)).toEqual({ kind: 'challenge', challenge: '' });
    expect(done(m.next(b64('\0tim\0tanstaaftanstaaf')))).toEqual({
      mechanism: 'PLAIN',
      username: 'tim',
      password: 'tanstaaftanstaaf',
    });
  });

  it('RFC 4616 section 4 example 2: initial response with an authzid', () => {
    const m = createServerMechanism('PLAIN', opts);
    expect(done(m.start(b64('Ursel\0Kurt\0xipj3plmq')))).toEqual({
      mechanism: 'PLAIN',
      authzid: 'Ursel',
      username: 'Kurt',
      password: 'xipj3plmq',
    });
  });

  it('refuses malformed messages with 501 5.5.2', () => {
    for (const bad of ['tim\0pw', '\0\0pw', '\0tim\0', 'a\0b\0c\0d', '']) {
      const step = createServerMechanism('PLAIN', opts).start(bad === '' ? '=' : b64(bad));
      expect(step, JSON.stringify(bad)).toMatchObject({
        kind: 'error',
        reply: { code: 501, enhancedCode: '5.5.2' },
      });
    }
    const invalidUtf8 = base64Encode(Uint8Array.of(0, 0x74, 0, 0xc3, 0x28));
    expect(createServerMechanism('PLAIN', opts).start(invalidUtf8)).toMatchObject({ kind: 'error' });
  });

  it('accepts UTF-8 identities and passwords', () => {
    expect(done(createServerMechanism('PLAIN', opts).start(b64('\0zoë\0pässwörd')))).toMatchObject({
      username: 'zoë',
      password: 'pässwörd',
    });
  });
});

describe('server: cancel, bad base64, sequencing (RFC 4954 section 4)', () => {
  it('"*" cancels with 501 5.7.0', () => {
    for (const name of SASL_MECHANISM_NAMES) {
      const m = createServerMechanism(name, opts);
      expect(m.start(undefined).kind).toBe('challenge');
      expect(m.next('*')).toEqual({
        kind: 'error',
        reply: { code: 501, enhancedCode: '5.7.0', lines: ['Authentication cancelled'] },
      });
      expect(m.next('*')).toMatchObject({ kind: 'error', reply: { code: 503 } });
    }
  });

  it('invalid base64 gets 501 5.5.2', () => {
    for (const bad of ['=AAA', 'AAA=BBB', 'dGlt IGI=', 'dGltIGI', '!!!!']) {
      const m = createServerMechanism('LOGIN', opts);
      m.start(undefined);
      expect(m.next(bad), bad).toMatchObject({ kind: 'error', reply: { code: 501, enhancedCode: '5.5.2' } });
    }
    expect(createServerMechanism('PLAIN', opts).start('*')).toMatchObject({
      reply: { code: 501, enhancedCode: '5.5.2' },
    });
  });

  it('next before start, and start twice, are out of sequence', () => {
    const m = createServerMechanism('PLAIN', opts);
    expect(m.next(b64('\0a\0b'))).toMatchObject({ kind: 'error', reply: { code: 503 } });
    m.start(undefined);
    expect(m.start(undefined)).toMatchObject({ kind: 'error', reply: { code: 503 } });
  });
});

describe('server LOGIN', () => {
  it('prompts Username: then Password:', () => {
    const m = createServerMechanism('LOGIN', opts);
    expect(m.start(undefined)).toEqual({ kind: 'challenge', challenge: 'VXNlcm5hbWU6' });
    expect(m.next(b64('tim'))).toEqual({ kind: 'challenge', challenge: 'UGFzc3dvcmQ6' });
    expect(done(m.next(b64('secret')))).toEqual({ mechanism: 'LOGIN', username: 'tim', password: 'secret' });
  });

  it('takes the user name from an initial response', () => {
    const m = createServerMechanism('LOGIN', opts);
    expect(m.start(b64('tim'))).toEqual({ kind: 'challenge', challenge: 'UGFzc3dvcmQ6' });
    expect(done(m.next(b64('secret'))).username).toBe('tim');
    expect(createServerMechanism('LOGIN', opts).start('=')).toMatchObject({
      kind: 'error',
      reply: { code: 501 },
    });
  });
});

describe('server CRAM-MD5 (RFC 2195)', () => {
  it('the RFC 2195 section 2 example, with its exact challenge and digest', () => {
    const m = createServerMechanism('CRAM-MD5', { ...opts, nonce: () => '1896.697170952' });
    expect(m.start(undefined)).toEqual({
      kind: 'challenge',
      challenge: 'PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+',
    });
    const creds = done(m.next('dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw'));
    expect(creds).toMatchObject({
      mechanism: 'CRAM-MD5',
      username: 'tim',
      challenge: '<1896.697170952@postoffice.reston.mci.net>',
      response: 'b913a602c7eda7a495b4e6e7334d3890',
    });
    expect(creds.verify?.('tanstaaftanstaaf')).toBe(true);
    expect(creds.verify?.('tanstaaftanstaag')).toBe(false);
    expect(creds.verify?.('')).toBe(false);
  });

  it('default challenges have the <random.timestamp@hostname> form and differ', () => {
    const a = unb64(
      (createServerMechanism('CRAM-MD5', opts).start(undefined) as { challenge: string }).challenge,
    );
    const b = unb64(
      (createServerMechanism('CRAM-MD5', opts).start(undefined) as { challenge: string }).challenge,
    );
    expect(a).toMatch(/^<\d+\.\d+@postoffice\.reston\.mci\.net>$/);
    expect(a).not.toBe(b);
  });

  it('refuses an initial response (501 5.7.0) and malformed answers', () => {
    expect(createServerMechanism('CRAM-MD5', opts).start(b64('x'))).toMatchObject({
      kind: 'error',
      reply: { code: 501, enhancedCode: '5.7.0' },
    });
    for (const bad of [
      'tim',
      'tim b913a602',
      ' b913a602c7eda7a495b4e6e7334d3890',
      'tim b913a602c7eda7a495b4e6e7334d389z',
    ]) {
      const m = createServerMechanism('CRAM-MD5', opts);
      m.start(undefined);
      expect(m.next(b64(bad)), bad).toMatchObject({
        kind: 'error',
        reply: { code: 501, enhancedCode: '5.5.2' },
      });
    }
  });
});

describe('server XOAUTH2', () => {
  it('parses user and bearer token', () => {
    const m = createServerMechanism('XOAUTH2', opts);
    expect(
      done(
        m.start(
          b64(
            'user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01',
          ),
        ),
      ),
    ).toEqual({
      mechanism: 'XOAUTH2',
      username: 'someuser@example.com',
      token: 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg',
    });
  });

  it('refuses malformed messages', () => {
    for (const bad of [
      'user=a\x01auth=Bearer t\x01',
      'user=a\x01\x01',
      'auth=Bearer t\x01\x01',
      'user=a\x01auth=Basic t\x01\x01',
    ]) {
      expect(createServerMechanism('XOAUTH2', opts).start(b64(bad)), JSON.stringify(bad)).toMatchObject({
        kind: 'error',
      });
    }
  });

  it('error challenge is base64 JSON', () => {
    expect(JSON.parse(unb64(xoauth2ErrorChallenge()))).toEqual({ status: '401', schemes: 'Bearer' });
  });
});

describe('client mechanisms', () => {
  it('PLAIN sends the RFC 4616 message as initial response', () => {
    const c = createClientMechanism('PLAIN', { username: 'tim', password: 'tanstaaftanstaaf' });
    expect(c.initialResponse()).toBe(b64('\0tim\0tanstaaftanstaaf'));
    expect(c.respond('')).toBe(b64('\0tim\0tanstaaftanstaaf'));
    expect(() => c.respond('')).toThrow(SmtpProtocolError);
    expect(
      createClientMechanism('PLAIN', {
        username: 'Kurt',
        password: 'xipj3plmq',
        authzid: 'Ursel',
      }).initialResponse(),
    ).toBe(b64('Ursel\0Kurt\0xipj3plmq'));
  });

  it('LOGIN answers the prompts in order', () => {
    const c = createClientMechanism('LOGIN', { username: 'tim', password: 'secret' });
    expect(c.initialResponse()).toBeNull();
    expect(c.respond('VXNlcm5hbWU6')).toBe(b64('tim'));
    expect(c.respond('UGFzc3dvcmQ6')).toBe(b64('secret'));
    expect(() => c.respond('UGFzc3dvcmQ6')).toThrow(SmtpProtocolError);
  });

  it('CRAM-MD5 gives the RFC 2195 section 2 response', () => {
    const c = createClientMechanism('CRAM-MD5', { username: 'tim', password: 'tanstaaftanstaaf' });
    expect(c.initialResponse()).toBeNull();
    expect(c.respond('PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+')).toBe(
      'dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw',
    );
    expect(() =>
      createClientMechanism('CRAM-MD5', { username: 'tim', password: 'x' }).respond('not base64!'),
    ).toThrow(SmtpProtocolError);
  });

  it('XOAUTH2 sends user and token; answers an error challenge with an empty line', () => {
    const c = createClientMechanism('XOAUTH2', { username: 'u@example.com', accessToken: 'tok' });
    expect(unb64(c.initialResponse()!)).toBe('user=u@example.com\x01auth=Bearer tok\x01\x01');
    expect(c.respond(xoauth2ErrorChallenge())).toBe('');
  });

  it('refuses credentials the mechanism cannot carry', () => {
    expect(() => createClientMechanism('PLAIN', { username: 'a\0b', password: 'p' })).toThrow(
      SmtpConfigError,
    );
    expect(() => createClientMechanism('PLAIN', { username: 'a' })).toThrow(SmtpConfigError);
    expect(() => createClientMechanism('PLAIN', { username: '', password: 'p' })).toThrow(SmtpConfigError);
    expect(() => createClientMechanism('CRAM-MD5', { username: 'a b', password: 'p' })).toThrow(
      SmtpConfigError,
    );
    expect(() => createClientMechanism('XOAUTH2', { username: 'a' })).toThrow(SmtpConfigError);
    expect(() => createClientMechanism('XOAUTH2', { username: 'a', accessToken: 't\r\nQUIT' })).toThrow(
      SmtpConfigError,
    );
  });
});

describe('client and server agree', () => {
  const text = fc
    .string({ minLength: 1, maxLength: 30, unit: 'grapheme' })
    .filter((s) => !/[\0\x01 ]/.test(s));
  it('for every mechanism and arbitrary credentials', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SASL_MECHANISM_NAMES), text, text, (name, username, secret) => {
        const client = createClientMechanism(name, { username, password: secret, accessToken: 'token-123' });
        const server = createServerMechanism(name, opts);
        const ir = client.initialResponse();
        let step = server.start(ir ?? undefined);
        for (let i = 0; step.kind === 'challenge' && i < 5; i++)
          step = server.next(client.respond(step.challenge));
        const creds = done(step);
        expect(creds.username).toBe(username);
        if (name === 'CRAM-MD5') expect(creds.verify?.(secret)).toBe(true);
        else if (name === 'XOAUTH2') expect(creds.token).toBe('token-123');
        else expect(creds.password).toBe(secret);
      }),
    );
  });

  it('servers answer arbitrary lines with steps, never throws', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SASL_MECHANISM_NAMES),
        fc.option(fc.string()),
        fc.array(fc.string(), { maxLength: 4 }),
        (name, ir, lines) => {
          const m = createServerMechanism(name, opts);
          m.start(ir ?? undefined);
          for (const line of lines) expect(['challenge', 'done', 'error']).toContain(m.next(line).kind);
        },
      ),
    );
  });

  it('clients only throw SmtpError on arbitrary challenges', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SASL_MECHANISM_NAMES),
        fc.array(fc.string(), { maxLength: 4 }),
        (name, lines) => {
          const c = createClientMechanism(name, { username: 'u', password: 'p', accessToken: 't' });
          for (const line of lines) {
            try {
              c.respond(line);
            } catch (e) {
              expect(e).toBeInstanceOf(SmtpError);
            }
          }
        },
      ),
    );
  });
});

describe('mechanism table', () => {
  it('only CRAM-MD5 keeps the secret off the wire; it alone needs the clear secret on the server', () => {
    expect(SASL_MECHANISM_NAMES.filter((n) => !SASL_MECHANISMS[n].sendsSecretInClear)).toEqual(['CRAM-MD5']);
    expect(SASL_MECHANISM_NAMES.filter((n) => SASL_MECHANISMS[n].serverNeedsClearSecret)).toEqual([
      'CRAM-MD5',
    ]);
    expect(saslAllowed('PLAIN', false)).toBe(false);
    expect(saslAllowed('PLAIN', true)).toBe(true);
    expect(saslAllowed('CRAM-MD5', false)).toBe(true);
  });
});
