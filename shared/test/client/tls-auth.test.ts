/**
 * Connection security and AUTH through the Node adapter: STARTTLS policy, certificate checks
 * (trusted CA, untrusted, wrong name), implicit TLS, AUTH mechanism choice and refusals.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { testPki } from '../../../test/support/tls.ts';
import { connectSmtp } from '../../src/adapter/node/client.ts';
import { SmtpAuthError, SmtpMessageError, SmtpTlsError } from '../../src/core/errors.ts';
import { rejection } from './support/client.ts';
import { type FakeSmtp, type FakeSmtpOptions, startFakeSmtp } from './support/fake-server.ts';

const pki = testPki();
let server: FakeSmtp | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function fake(options: FakeSmtpOptions): Promise<FakeSmtp> {
  server = await startFakeSmtp(options);
  return server;
}

const trusted = { ca: pki.caCert, servername: 'localhost' };
const base = { host: '127.0.0.1', helo: 'client.test', tls: trusted };
const user = { username: 'ann', password: 'secret pass' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('STARTTLS (RFC 3207)', () => {
  it('upgrades, says EHLO again and uses the new capabilities', async () => {
    const s = await fake({
      tls: { key: pki.key, cert: pki.cert },
      extensions: ['STARTTLS', 'PIPELINING'],
      extensionsAfterTls: ['PIPELINING', 'AUTH PLAIN LOGIN'],
    });
    const session = await connectSmtp({ ...base, port: s.port, security: 'starttls' });
    expect(session.secure).toBe(true);
    expect(session.capabilities.get('AUTH')).toEqual(['PLAIN', 'LOGIN']);
    expect(s.sessions[0]!.commands).toEqual(['EHLO client.test', 'STARTTLS', 'EHLO client.test']);
    await session.quit();
  });

  it('required but not offered: SmtpTlsError, and nothing else is sent', async () => {
    const s = await fake({ extensions: ['PIPELINING', 'AUTH PLAIN'] });
    const err = await rejection(
      connectSmtp({ ...base, port: s.port, security: 'starttls', starttlsPolicy: 'required' }),
    );
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(err.kind).toBe('tls');
    expect(err.message).toContain('does not offer STARTTLS');
    expect(s.sessions[0]!.commands).toEqual(['EHLO client.test']);
  });

  it('with credentials the policy defaults to required: never a silent fall back to clear text', async () => {
    const s = await fake({ extensions: ['AUTH PLAIN'] });
    const err = await rejection(connectSmtp({ ...base, port: s.port, security: 'starttls', auth: user }));
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(s.sessions[0]!.commands).toEqual(['EHLO client.test']);
  });

  it('opportunistic without STARTTLS continues in clear text', async () => {
    const s = await fake({ extensions: ['PIPELINING'] });
    const session = await connectSmtp({ ...base, port: s.port, security: 'starttls' });
    expect(session.secure).toBe(false);
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x');
    await session.quit();
  });

  it('a refused STARTTLS (454) with TLS required is an SmtpTlsError', async () => {
    const s = await fake({
      extensions: ['STARTTLS'],
      override: (line) => (line === 'STARTTLS' ? '454 4.7.0 TLS not available' : undefined),
    });
    const err = await rejection(
      connectSmtp({ ...base, port: s.port, security: 'starttls', starttlsPolicy: 'required' }),
    );
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(err.message).toContain('454');
  });

  it('an untrusted certificate is an SmtpTlsError, with no fall back', async () => {
    const s = await fake({
      tls: { key: pki.untrustedKey, cert: pki.untrustedCert },
      extensions: ['STARTTLS'],
    });
    const err = await rejection(
      connectSmtp({ ...base, port: s.port, security: 'starttls', starttlsPolicy: 'opportunistic' }),
    );
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(s.sessions[0]!.commands).toEqual(['EHLO client.test', 'STARTTLS']);
  });

  it('a certificate for another name is an SmtpTlsError', async () => {
    const s = await fake({
      tls: { key: pki.wrongNameKey, cert: pki.wrongNameCert },
      extensions: ['STARTTLS'],
    });
    const err = await rejection(connectSmtp({ ...base, port: s.port, security: 'starttls' }));
    expect(err).toBeInstanceOf(SmtpTlsError);
  });
});

describe('implicit TLS (RFC 8314 section 3.3)', () => {
  it('connects with a trusted certificate', async () => {
    const s = await fake({
      tls: { key: pki.key, cert: pki.cert },
      implicitTls: true,
      extensions: ['AUTH PLAIN'],
      users: { ann: 'secret pass' },
    });
    const session = await connectSmtp({ ...base, port: s.port, security: 'tls', auth: user });
    expect(session.secure).toBe(true);
    expect(session.authenticatedAs).toBe('ann');
    await session.quit();
  });

  it('refuses an untrusted certificate with SmtpTlsError', async () => {
    const s = await fake({ tls: { key: pki.untrustedKey, cert: pki.untrustedCert }, implicitTls: true });
    const err = await rejection(connectSmtp({ ...base, port: s.port, security: 'tls' }));
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(err.message).toContain('not signed by a trusted CA');
  });

  it('refuses a certificate for another name with SmtpTlsError', async () => {
    const s = await fake({ tls: { key: pki.wrongNameKey, cert: pki.wrongNameCert }, implicitTls: true });
    const err = await rejection(connectSmtp({ ...base, port: s.port, security: 'tls' }));
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(err.message).toContain('not issued for');
  });

  it('rejectUnauthorized: false accepts it when asked to (tests only)', async () => {
    const s = await fake({ tls: { key: pki.untrustedKey, cert: pki.untrustedCert }, implicitTls: true });
    const session = await connectSmtp({
      ...base,
      port: s.port,
      security: 'tls',
      tls: { rejectUnauthorized: false },
    });
    expect(session.secure).toBe(true);
    await session.quit();
  });
});

describe('AUTH (RFC 4954)', () => {
  const tlsServer = (extra: Partial<FakeSmtpOptions> = {}) =>
    fake({
      tls: { key: pki.key, cert: pki.cert },
      extensions: ['STARTTLS'],
      extensionsAfterTls: ['AUTH PLAIN LOGIN', 'PIPELINING'],
      users: { ann: 'secret pass' },
      ...extra,
    });

  it('PLAIN with an initial response over STARTTLS', async () => {
    const s = await tlsServer();
    const session = await connectSmtp({ ...base, port: s.port, security: 'starttls', auth: user });
    expect(session.authenticatedAs).toBe('ann');
    expect(s.sessions[0]!.commands.at(-1)).toBe(`AUTH PLAIN ${b64('\0ann\0secret pass')}`);
    expect(s.sessions[0]!.authUser).toBe('ann');
    await session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x');
    await session.quit();
  });

  it('LOGIN when that is what is offered or configured', async () => {
    const s = await tlsServer({ extensionsAfterTls: ['AUTH LOGIN'] });
    const session = await connectSmtp({ ...base, port: s.port, security: 'starttls', auth: user });
    expect(s.sessions[0]!.commands.slice(-3)).toEqual(['AUTH LOGIN', b64('ann'), b64('secret pass')]);
    await session.quit();
  });

  it('wrong credentials: SmtpAuthError carrying the 535 reply', async () => {
    const s = await tlsServer();
    const err = await rejection(
      connectSmtp({
        ...base,
        port: s.port,
        security: 'starttls',
        auth: { username: 'ann', password: 'nope' },
      }),
    );
    expect(err).toBeInstanceOf(SmtpAuthError);
    expect(err.kind).toBe('auth');
    expect((err.reply as { code: number }).code).toBe(535);
    expect(err.message).toContain('535 5.7.8');
  });

  it('never sends credentials without TLS unless allowInsecureAuth', async () => {
    const s = await fake({ extensions: ['AUTH PLAIN LOGIN'], users: { ann: 'secret pass' } });
    const err = await rejection(connectSmtp({ ...base, port: s.port, security: 'none', auth: user }));
    expect(err).toBeInstanceOf(SmtpAuthError);
    expect(err.message).toContain('without TLS');
    expect(s.sessions[0]!.commands).toEqual(['EHLO client.test']);
    const ok = await connectSmtp({
      ...base,
      port: s.port,
      security: 'none',
      auth: user,
      allowInsecureAuth: true,
    });
    expect(ok.authenticatedAs).toBe('ann');
    await ok.quit();
  });

  it('a configured mechanism the server does not offer is an SmtpAuthError before AUTH is sent', async () => {
    const s = await tlsServer();
    const err = await rejection(
      connectSmtp({ ...base, port: s.port, security: 'starttls', auth: { ...user, mechanism: 'CRAM-MD5' } }),
    );
    expect(err).toBeInstanceOf(SmtpAuthError);
    expect(err.message).toContain('CRAM-MD5');
    expect(s.sessions[0]!.commands.some((c) => c.startsWith('AUTH'))).toBe(false);
  });

  it('no AUTH offered at all is an SmtpAuthError', async () => {
    const s = await tlsServer({ extensionsAfterTls: ['PIPELINING'] });
    const err = await rejection(connectSmtp({ ...base, port: s.port, security: 'starttls', auth: user }));
    expect(err).toBeInstanceOf(SmtpAuthError);
    expect(err.message).toContain('does not offer AUTH');
  });
});

describe('REQUIRETLS (RFC 8689)', () => {
  it('is sent over TLS when offered, refused over clear text', async () => {
    const s = await fake({
      tls: { key: pki.key, cert: pki.cert },
      extensions: ['STARTTLS', 'REQUIRETLS'],
      extensionsAfterTls: ['REQUIRETLS'],
    });
    const session = await connectSmtp({ ...base, port: s.port, security: 'starttls' });
    await session.send({ from: 'a@x.test', to: ['b@y.test'], requireTls: true }, 'x');
    expect(s.sessions[0]!.commands).toContain('MAIL FROM:<a@x.test> REQUIRETLS');
    await session.quit();
    const plain = await connectSmtp({ ...base, port: s.port, security: 'none' });
    const err = await rejection(plain.send({ from: 'a@x.test', to: ['b@y.test'], requireTls: true }, 'x'));
    expect(err).toBeInstanceOf(SmtpMessageError);
    expect(err.field).toBe('requireTls');
    await plain.quit();
  });
});
