/**
 * The Workers adapter inside workerd (@cloudflare/vitest-plugin), against the Node test
 * servers of global-setup.ts: plain, STARTTLS and implicit TLS with the test CA trusted via
 * NODE_EXTRA_CA_CERTS, an untrusted certificate refused, port 25 refused, a closed port.
 * Each server answers the end of data with `size=N sha256=HEX` of what it received, so the
 * exact bytes are checked from here.
 */
import { describe, expect, inject, it } from 'vitest';
import {
  SmtpAuthError,
  SmtpConfigError,
  SmtpConnectionError,
  SmtpError,
  SmtpTlsError,
} from '../../core/errors.ts';
import { connectSmtp, sendMail } from './index.ts';

const ports = inject('smtpPorts');
const user = { username: 'ann', password: 'secret pass' };
const message = 'From: a@x.test\r\nTo: b@y.test\r\nSubject: edge\r\n\r\n.dot\r\nbody\r\n';

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function expectStored(responseText: string, wire: string): Promise<void> {
  expect(responseText).toBe(`OK size=${new TextEncoder().encode(wire).length} sha256=${await sha256(wire)}`);
}

async function caught(p: Promise<unknown>): Promise<SmtpError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SmtpError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

const dataWire = 'From: a@x.test\r\nTo: b@y.test\r\nSubject: edge\r\n\r\n..dot\r\nbody\r\n.\r\n';

describe('Workers adapter: connect() from cloudflare:sockets', () => {
  it('sends over plain TCP with pipelining and dot-stuffing', async () => {
    const result = await sendMail(
      { host: '127.0.0.1', port: ports.plain, security: 'none', helo: 'edge.test' },
      { from: 'a@x.test', to: ['b@y.test', 'c@y.test'] },
      message,
    );
    expect(result.accepted).toEqual(['b@y.test', 'c@y.test']);
    expect(result.rejected).toEqual([]);
    expect(result.response.code).toBe(250);
    await expectStored(result.response.lines.join(' '), dataWire);
  });

  it('sends over STARTTLS with AUTH, the test CA trusted', async () => {
    const session = await connectSmtp({
      host: 'localhost',
      port: ports.starttls,
      security: 'starttls',
      helo: 'edge.test',
      auth: user,
    });
    expect(session.secure).toBe(true);
    expect(session.authenticatedAs).toBe('ann');
    expect(session.capabilities.get('AUTH')).toEqual(['PLAIN', 'LOGIN']);
    const r1 = await session.send({ from: 'a@x.test', to: ['b@y.test'] }, message);
    await expectStored(r1.response.lines.join(' '), dataWire);
    // a second message on the same connection
    const r2 = await session.send({ from: 'a@x.test', to: ['c@y.test'] }, new TextEncoder().encode('x'));
    await expectStored(r2.response.lines.join(' '), 'x\r\n.\r\n');
    await session.quit();
  });

  it('sends over implicit TLS with AUTH', async () => {
    const result = await sendMail(
      { host: 'localhost', port: ports.implicit, security: 'tls', helo: 'edge.test', auth: user },
      { from: 'a@x.test', to: ['b@y.test'] },
      message,
    );
    expect(result.accepted).toEqual(['b@y.test']);
    await expectStored(result.response.lines.join(' '), dataWire);
  });

  it('sends a ReadableStream body with BDAT', async () => {
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode('Subject: s\r\n\r\n'));
        c.enqueue(enc.encode('.x\n'));
        c.close();
      },
    });
    const result = await sendMail(
      {
        host: '127.0.0.1',
        port: ports.chunking,
        security: 'none',
        helo: 'edge.test',
        chunking: { chunkSize: 8 },
      },
      { from: 'a@x.test', to: ['b@y.test'] },
      body,
    );
    await expectStored(result.response.lines.join(' '), 'Subject: s\r\n\r\n.x\r\n');
  });

  it('refuses an untrusted certificate after STARTTLS with SmtpTlsError, no fall back', async () => {
    const err = await caught(
      connectSmtp({
        host: 'localhost',
        port: ports.untrustedStarttls,
        security: 'starttls',
        starttlsPolicy: 'opportunistic',
        helo: 'edge.test',
      }),
    );
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(err.kind).toBe('tls');
    expect(err.message).toContain('TLS with localhost');
  });

  it('refuses an untrusted certificate on implicit TLS with SmtpTlsError', async () => {
    const err = await caught(
      connectSmtp({ host: 'localhost', port: ports.untrustedImplicit, security: 'tls', helo: 'edge.test' }),
    );
    expect(err.message).toContain('TLS with localhost');
    expect(err).toBeInstanceOf(SmtpTlsError);
  });

  it('refuses port 25 with SmtpConfigError before connecting', async () => {
    const err = await caught(connectSmtp({ host: 'smtp.example.com', port: 25, security: 'starttls' }));
    expect(err).toBeInstanceOf(SmtpConfigError);
    expect(err.message).toBe(
      'Cloudflare Workers block outbound port 25; use 587 (STARTTLS) or 465 (implicit TLS) on your relay',
    );
  });

  it('refuses tls options the runtime cannot honour', async () => {
    const err = await caught(
      connectSmtp({ host: 'localhost', port: 465, security: 'tls', tls: { rejectUnauthorized: false } }),
    );
    expect(err).toBeInstanceOf(SmtpConfigError);
  });

  it('maps a refused connection to SmtpConnectionError', async () => {
    const err = await caught(
      connectSmtp({ host: '127.0.0.1', port: ports.closed, security: 'none', helo: 'edge.test' }),
    );
    expect(err.message).toContain('nothing accepted the connection');
    // on implicit TLS too: the TCP probe tells a closed port from a failed handshake
    const tlsErr = await caught(
      connectSmtp({ host: '127.0.0.1', port: ports.closed, security: 'tls', helo: 'edge.test' }),
    );
    expect(tlsErr).toBeInstanceOf(SmtpConnectionError);
    expect(err).toBeInstanceOf(SmtpConnectionError);
    expect(err.kind).toBe('connection');
  });

  it('refuses AUTH over clear text', async () => {
    const err = await caught(
      connectSmtp({ host: '127.0.0.1', port: ports.plain, security: 'none', helo: 'edge.test', auth: user }),
    );
    expect(err).toBeInstanceOf(SmtpAuthError);
  });

  it('sends DSN parameters', async () => {
    const result = await sendMail(
      { host: '127.0.0.1', port: ports.plain, security: 'none', helo: 'edge.test' },
      {
        from: 'a@x.test',
        to: ['b@y.test'],
        dsn: { notify: ['FAILURE', 'DELAY'], ret: 'HDRS', envid: 'e 1' },
      },
      'x',
    );
    expect(result.accepted).toEqual(['b@y.test']);
  });
});
