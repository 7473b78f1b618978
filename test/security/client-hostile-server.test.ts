/**
 * The client against hostile servers (issue 8): every case ends in a typed error, in bounded
 * time (short configured timeouts; no wall-clock assertions) and bounded memory, and nothing
 * that should only travel under TLS (AUTH, MAIL, the message) is ever sent in clear text.
 *
 * Servers are scripted raw sockets (shared/test/client/support/fake-server.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectSmtp, sendMail } from '../../shared/src/adapter/node/client.ts';
import type { SmtpClientOptions } from '../../shared/src/core/client/options.ts';
import {
  SmtpConnectionError,
  SmtpProtocolError,
  SmtpTimeoutError,
  SmtpTlsError,
} from '../../shared/src/core/errors.ts';
import {
  type RawConn,
  type RawServer,
  startRawServer,
} from '../../shared/test/client/support/fake-server.ts';
import { testPki } from '../support/tls.ts';
import { sleep } from './support.ts';

let server: RawServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function raw(
  handler: (c: RawConn) => Promise<void>,
  options: Parameters<typeof startRawServer>[1] = {},
): Promise<RawServer> {
  server = await startRawServer(handler, options);
  return server;
}

const pki = testPki();
const short = { connectMs: 1500, greetingMs: 400, commandMs: 400, dataMs: 400, quitMs: 300 };
const secure: Omit<SmtpClientOptions, 'port'> = {
  host: '127.0.0.1',
  security: 'starttls',
  starttlsPolicy: 'required',
  helo: 'client.test',
  tls: { ca: pki.caCert, servername: 'localhost' },
  auth: { username: 'alice', password: 'secret' },
  timeouts: short,
};
const envelope = { from: 'a@example.org', to: ['b@example.org'] };
const body = 'Subject: secret\r\n\r\nthe secret body\r\n';

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** What the client sent in clear text never includes credentials or the envelope. */
function assertNothingSecretInClear(c: RawConn, cleartextUntil = c.received()): void {
  expect(cleartextUntil).not.toMatch(/AUTH|MAIL FROM|RCPT TO|secret|c2VjcmV0/);
}

describe('client: STARTTLS downgrade and injection', () => {
  it('STARTTLS stripped from EHLO (downgrade): SmtpTlsError, nothing else sent', async () => {
    const s = await raw(async (c) => {
      await c.send('220 mx ESMTP\r\n');
      await c.readLine();
      await c.send('250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n');
      await c.readLine();
      await c.send('221 bye\r\n');
    });
    const err = await failure(sendMail({ ...secure, port: s.port }, envelope, body));
    expect(err).toBeInstanceOf(SmtpTlsError);
    await s.connections[0]!.closed;
    assertNothingSecretInClear(s.connections[0]!);
  });

  it('STARTTLS refused (454), and STARTTLS answered with plaintext instead of a handshake: SmtpTlsError', async () => {
    for (const after of ['454 4.7.0 TLS not available\r\n', '220 go\r\n250 fake EHLO\r\n']) {
      const s = await raw(async (c) => {
        await c.send('220 mx ESMTP\r\n');
        await c.readLine();
        await c.send('250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n');
        await c.readLine();
        await c.send(after);
        // Answer whatever comes next (a ClientHello, or a command) with plaintext.
        c.socket.on('data', () => {
          c.socket.write('250 plaintext where TLS was due\r\n');
        });
        await c.closed;
      });
      const err = await failure(sendMail({ ...secure, port: s.port }, envelope, body));
      expect(err).toBeInstanceOf(SmtpTlsError);
      await s.connections[0]!.closed;
      const sent = s.connections[0]!.received();
      // After STARTTLS: a TLS ClientHello (binary) at most; never a command in clear text.
      assertNothingSecretInClear(s.connections[0]!, sent);
      await s.close();
      server = undefined;
    }
  });

  it('a forged reply injected after the 220, in its own packet before the handshake: SmtpTlsError, never read as a reply', async () => {
    const s = await raw(async (c) => {
      await c.send('220 mx ESMTP\r\n');
      await c.readLine();
      await c.send('250-mx\r\n250 STARTTLS\r\n');
      await c.readLine();
      await c.send('220 go ahead\r\n');
      await sleep(30);
      await c.send('250-forged\r\n250 AUTH PLAIN\r\n235 2.7.0 fake auth ok\r\n');
      await c.upgrade({ key: pki.key, cert: pki.cert });
      for (;;) {
        const l = await c.readLine();
        if (l === null) return;
        await c.send('250 ok\r\n');
      }
    });
    const err = await failure(connectSmtp({ ...secure, port: s.port }));
    // Either the forged octets broke the handshake (TLS error), or they were discarded and the
    // session goes on under TLS; they are never taken as the EHLO or AUTH reply.
    expect(err).toBeInstanceOf(SmtpTlsError);
    assertNothingSecretInClear(s.connections[0]!);
  });

  it('opportunistic STARTTLS with a certificate for another name: SmtpTlsError, no clear-text retry', async () => {
    const s = await raw(async (c) => {
      await c.send('220 mx ESMTP\r\n');
      await c.readLine();
      await c.send('250-mx\r\n250 STARTTLS\r\n');
      await c.readLine();
      await c.send('220 go ahead\r\n');
      await c.upgrade({ key: pki.wrongNameKey, cert: pki.wrongNameCert }).catch(() => {});
    });
    const { auth: _a, ...noAuth } = secure;
    const err = await failure(
      sendMail({ ...noAuth, starttlsPolicy: 'opportunistic', port: s.port }, envelope, body),
    );
    expect(err).toBeInstanceOf(SmtpTlsError);
    await sleep(50);
    // One connection only (no reconnect in clear text), and nothing but EHLO/STARTTLS in it.
    expect(s.connections).toHaveLength(1);
    assertNothingSecretInClear(s.connections[0]!);
  });
});

describe('client: certificates', () => {
  it.each([
    ['a certificate for another name', 'wrongName'],
    ['an untrusted self-signed certificate', 'untrusted'],
  ] as const)('implicit TLS with %s: SmtpTlsError, nothing sent', async (_what, which) => {
    const cert = which === 'wrongName' ? pki.wrongNameCert : pki.untrustedCert;
    const key = which === 'wrongName' ? pki.wrongNameKey : pki.untrustedKey;
    let spoke = false;
    const s = await raw(
      async (c) => {
        spoke = true;
        await c.send('220 mx ESMTP\r\n');
        await c.readLine();
      },
      { implicitTls: { key, cert } },
    );
    const err = await failure(sendMail({ ...secure, security: 'tls', port: s.port }, envelope, body));
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(spoke).toBe(false);
  });

  it('STARTTLS with a certificate for another name: SmtpTlsError; AUTH never sent', async () => {
    const s = await raw(async (c) => {
      await c.send('220 mx ESMTP\r\n');
      await c.readLine();
      await c.send('250-mx\r\n250 STARTTLS\r\n');
      await c.readLine();
      await c.send('220 go ahead\r\n');
      await c.upgrade({ key: pki.wrongNameKey, cert: pki.wrongNameCert }).catch(() => {});
    });
    const err = await failure(sendMail({ ...secure, port: s.port }, envelope, body));
    expect(err).toBeInstanceOf(SmtpTlsError);
    expect(err.message).toContain('localhost');
    assertNothingSecretInClear(s.connections[0]!);
  });
});

describe('client: servers that stall or never end a reply', () => {
  it('accepts TCP and never speaks: SmtpTimeoutError (greeting)', async () => {
    const s = await raw(async (c) => {
      await c.closed;
    });
    const err = await failure(connectSmtp({ ...secure, security: 'none', auth: undefined, port: s.port }));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    expect((err as SmtpTimeoutError).message).toMatch(/greeting/);
  });

  it('accepts TCP and never answers the TLS ClientHello: SmtpTimeoutError (connect)', async () => {
    const s = await raw(async (c) => {
      await c.closed;
    });
    const err = await failure(connectSmtp({ ...secure, security: 'tls', port: s.port }));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
  });

  it('replies ended by bare LF are never replies: SmtpTimeoutError, then SmtpProtocolError when they pile up', async () => {
    const s = await raw(async (c) => {
      await c.send('220 mx ESMTP\n250 ok\n');
      await c.closed;
    });
    const err = await failure(connectSmtp({ ...secure, security: 'none', auth: undefined, port: s.port }));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    await s.close();
    const t = await raw(async (c) => {
      // An endless greeting without any CRLF.
      for (let i = 0; i < 200 && !c.socket.destroyed; i++) await c.send(`220 mx ${'x'.repeat(1000)}\n`);
    });
    server = t;
    const err2 = await failure(connectSmtp({ ...secure, security: 'none', auth: undefined, port: t.port }));
    expect(err2).toBeInstanceOf(SmtpProtocolError);
  });

  it('an endless multi-line reply dripped line by line ends at the reply deadline', async () => {
    let lines = 0;
    const s = await raw(async (c) => {
      await c.send('220 mx ESMTP\r\n');
      await c.readLine();
      while (!c.socket.destroyed && lines < 400) {
        await c.send(`250-line ${lines++}\r\n`);
        await sleep(10);
      }
    });
    const err = await failure(connectSmtp({ ...secure, security: 'none', auth: undefined, port: s.port }));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    // The deadline is for the whole reply: the server could not keep the client for 400 lines.
    expect(lines).toBeLessThan(400);
  });

  it('an endless multi-line reply sent fast: SmtpProtocolError after a bounded number of lines', async () => {
    const s = await raw(async (c) => {
      await c.send('220 mx ESMTP\r\n');
      await c.readLine();
      const block = '250-x\r\n'.repeat(1000);
      for (let i = 0; i < 1000 && !c.socket.destroyed; i++) await c.send(block);
    });
    const err = await failure(connectSmtp({ ...secure, security: 'none', auth: undefined, port: s.port }));
    expect(err).toBeInstanceOf(SmtpProtocolError);
  });

  it('a server that closes in the middle of a reply: SmtpConnectionError', async () => {
    const s = await raw(async (c) => {
      await c.send('220 mx ESMTP\r\n');
      await c.readLine();
      await c.send('250-mx\r\n250-PIPE');
      c.end();
    });
    const err = await failure(connectSmtp({ ...secure, security: 'none', auth: undefined, port: s.port }));
    expect(err).toBeInstanceOf(SmtpConnectionError);
  });
});
