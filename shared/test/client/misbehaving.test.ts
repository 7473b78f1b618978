/**
 * Servers that break the protocol or stop answering: each case ends in the right typed error,
 * in bounded time (short configured timeouts, no wall-clock assertions) and bounded memory.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { testPki } from '../../../test/support/tls.ts';
import { connectSmtp } from '../../src/adapter/node/client.ts';
import {
  SmtpAbortError,
  SmtpConnectionError,
  SmtpProtocolError,
  SmtpReplyError,
  SmtpTimeoutError,
} from '../../src/core/errors.ts';
import { recordedSession, rejection } from './support/client.ts';
import { type RawConn, type RawServer, startFakeSmtp, startRawServer } from './support/fake-server.ts';

let server: RawServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function raw(handler: (c: RawConn) => Promise<void>): Promise<RawServer> {
  server = await startRawServer(handler);
  return server;
}

const base = { host: '127.0.0.1', security: 'none' as const, helo: 'client.test' };

describe('misbehaving servers', () => {
  it('a garbled greeting is an SmtpProtocolError and the connection is closed', async () => {
    const s = await raw(async (c) => {
      await c.send('HTTP/1.1 400 Bad Request\r\n\r\n');
      await c.closed;
    });
    const err = await rejection(connectSmtp({ ...base, port: s.port }));
    expect(err).toBeInstanceOf(SmtpProtocolError);
    expect(err.kind).toBe('protocol');
    expect(err.message).toContain('garbled reply line');
    await s.connections[0]!.closed;
  });

  it('a garbled line inside a multi-line EHLO reply is an SmtpProtocolError', async () => {
    const s = await raw(async (c) => {
      await c.send('220 ok\r\n');
      await c.readLine();
      await c.send('250-ok\r\n251 mixed codes\r\n');
      await c.closed;
    });
    const err = await rejection(connectSmtp({ ...base, port: s.port }));
    expect(err).toBeInstanceOf(SmtpProtocolError);
    expect(err.command).toBe('EHLO');
  });

  it('reads replies split across packets one byte at a time', async () => {
    const s = await raw(async (c) => {
      const dribble = async (text: string) => {
        for (const ch of text) {
          await c.send(ch);
          await new Promise((r) => setImmediate(r));
        }
      };
      await dribble('220 slow.test ESMTP\r\n');
      await c.readLine();
      await dribble('250-slow.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n');
      await c.readLine();
      await dribble('221 2.0.0 bye\r\n');
      c.end();
    });
    const session = await connectSmtp({ ...base, port: s.port });
    expect(session.greeting?.lines).toEqual(['slow.test ESMTP']);
    expect([...session.capabilities.keys()]).toEqual(['PIPELINING', 'SIZE']);
    await session.quit();
  });

  it('a 100000-line reply ends in SmtpProtocolError after a bounded number of lines', async () => {
    let sent = 0;
    const s = await raw(async (c) => {
      await c.send('220 ok\r\n');
      await c.readLine();
      const line = '250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n';
      for (let i = 0; i < 100; i++) {
        if (c.socket.destroyed) return;
        await c.send(line.repeat(1000));
        sent += 1000;
      }
      await c.send('250 end\r\n');
    });
    const err = await rejection(connectSmtp({ ...base, port: s.port }));
    expect(err).toBeInstanceOf(SmtpProtocolError);
    expect(err.message).toMatch(/reply longer than \d+ lines/);
    expect(sent).toBeLessThan(100_000);
  });

  it('an endless reply line ends in SmtpProtocolError', async () => {
    const s = await raw(async (c) => {
      await c.send('220 ');
      const chunk = 'a'.repeat(64 * 1024);
      for (let i = 0; i < 64 && !c.socket.destroyed; i++) await c.send(chunk);
    });
    const err = await rejection(connectSmtp({ ...base, port: s.port }));
    expect(err).toBeInstanceOf(SmtpProtocolError);
    expect(err.message).toContain('longer than');
  });

  it('a server that never greets ends in SmtpTimeoutError(greeting)', async () => {
    const s = await raw(async (c) => {
      await c.closed;
    });
    const err = await rejection(connectSmtp({ ...base, port: s.port, timeouts: { greetingMs: 200 } }));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    expect(err.stage).toBe('greeting');
    expect(err.kind).toBe('timeout');
  });

  it('a server that stops answering after RCPT ends in SmtpTimeoutError and a closed session', async () => {
    const s = await raw(async (c) => {
      await c.send('220 ok\r\n');
      await c.readLine();
      await c.send('250 ok\r\n');
      await c.readLine(); // MAIL
      await c.send('250 ok\r\n');
      await c.closed;
    });
    const session = await connectSmtp({ ...base, port: s.port, timeouts: { commandMs: 200 } });
    const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x'));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    expect(err.stage).toBe('RCPT');
    expect(err.command).toBe('RCPT');
    expect(session.state).toBe('closed');
    await s.connections[0]!.closed;
    await session.quit(); // no-op, never hangs
  });

  it('a server that closes mid-transaction ends in SmtpConnectionError', async () => {
    const s = await raw(async (c) => {
      await c.send('220 ok\r\n');
      await c.readLine();
      await c.send('250 ok\r\n');
      await c.readLine();
      c.end();
    });
    const session = await connectSmtp({ ...base, port: s.port });
    const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x'));
    expect(err).toBeInstanceOf(SmtpConnectionError);
    expect(err.temporary).toBe(true);
  });

  it('421 closes the session', async () => {
    const s = await raw(async (c) => {
      await c.send('220 ok\r\n');
      await c.readLine();
      await c.send('250 ok\r\n');
      await c.readLine();
      await c.send('421 4.3.2 shutting down\r\n');
      c.end();
    });
    const session = await connectSmtp({ ...base, port: s.port });
    const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x'));
    expect(err).toBeInstanceOf(SmtpReplyError);
    expect(err.code).toBe(421);
    expect(err.temporary).toBe(true);
    expect(session.state).toBe('closed');
  });

  it('quit() resolves even when the server never answers QUIT nor closes', async () => {
    const s = await raw(async (c) => {
      await c.send('220 ok\r\n');
      await c.readLine();
      await c.send('250 ok\r\n');
      await c.readLine(); // QUIT: no answer, no close
      await c.closed;
    });
    const session = await connectSmtp({ ...base, port: s.port, timeouts: { quitMs: 100 } });
    await session.quit();
    expect(session.state).toBe('closed');
  });

  it('an AbortSignal stops a send in progress with SmtpAbortError', async () => {
    const s = await raw(async (c) => {
      await c.send('220 ok\r\n');
      await c.readLine();
      await c.send('250 ok\r\n');
      await c.readLine(); // MAIL, never answered
      await c.closed;
    });
    const session = await connectSmtp({ ...base, port: s.port });
    const controller = new AbortController();
    const p = session.send({ from: 'a@x.test', to: ['b@y.test'] }, 'x', controller.signal);
    await new Promise((r) => setTimeout(r, 20));
    controller.abort(new Error('user gave up'));
    const err = await rejection(p);
    expect(err).toBeInstanceOf(SmtpAbortError);
    expect(err.kind).toBe('aborted');
    expect(session.state).toBe('closed');
  });

  it('an AbortSignal stops a send whose body stream has stalled', async () => {
    const s = await startFakeSmtp({ extensions: ['PIPELINING'] });
    try {
      const session = await connectSmtp({ ...base, port: s.port });
      const controller = new AbortController();
      const stalled = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('Subject: s\r\n\r\npart one\r\n'));
          // never closes
        },
      });
      const p = session.send({ from: 'a@x.test', to: ['b@y.test'] }, stalled, controller.signal);
      await new Promise((r) => setTimeout(r, 50));
      controller.abort();
      const err = await rejection(p);
      expect(err).toBeInstanceOf(SmtpAbortError);
      expect(session.state).toBe('closed');
      expect(s.sessions[0]!.messages).toHaveLength(0);
    } finally {
      await s.close();
    }
  });

  it('a body stream that stalls longer than dataMs ends in SmtpTimeoutError', async () => {
    const s = await startFakeSmtp({});
    try {
      const session = await connectSmtp({ ...base, port: s.port, timeouts: { dataMs: 100 } });
      const stalled = new ReadableStream<Uint8Array>({ start() {} });
      const err = await rejection(session.send({ from: 'a@x.test', to: ['b@y.test'] }, stalled));
      expect(err).toBeInstanceOf(SmtpTimeoutError);
      expect(err.stage).toBe('reading the message body');
      expect(s.sessions[0]!.messages).toHaveLength(0);
    } finally {
      await s.close();
    }
  });

  it('a connection refused is an SmtpConnectionError', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const err = await rejection(connectSmtp({ ...base, port }));
    expect(err).toBeInstanceOf(SmtpConnectionError);
    expect(err.message).toContain('refused the connection');
  });

  it('bytes injected after the STARTTLS 220 are never read as replies (RFC 3207 section 4.2)', async () => {
    const pki = testPki();
    const s = await raw(async (c) => {
      await c.send('220 ok\r\n');
      await c.readLine();
      await c.send('250-ok\r\n250 STARTTLS\r\n');
      await c.readLine(); // STARTTLS
      // The 220 and a forged EHLO reply in one packet, before the handshake.
      await c.send('220 go ahead\r\n250-evil.test\r\n250-INJECTED\r\n250 AUTH PLAIN\r\n');
      await c.upgrade({ key: pki.key, cert: pki.cert });
      const ehlo = await c.readLine();
      if (ehlo !== 'EHLO client.test') throw new Error(`unexpected ${ehlo}`);
      await c.send('250-secure.test\r\n250 PIPELINING\r\n');
      await c.readLine();
      await c.send('221 bye\r\n');
      c.end();
    });
    const session = await connectSmtp({
      ...base,
      port: s.port,
      security: 'starttls',
      starttlsPolicy: 'required',
      tls: { ca: pki.caCert, servername: 'localhost' },
    });
    expect(session.secure).toBe(true);
    expect([...session.capabilities.keys()]).toEqual(['PIPELINING']);
    await session.quit();
  });
});

describe('recorded wire under faults', () => {
  it('never sends a second command while a non-pipelined reply is pending', async () => {
    const s = await startFakeSmtp({ extensions: [] });
    try {
      const { session, writes } = await recordedSession(s.port);
      await session.greet();
      await session.send({ from: 'a@x.test', to: ['b@y.test', 'c@y.test'] }, 'x');
      expect(writes.every((w) => w.split('\r\n').filter(Boolean).length === 1 || w.endsWith('.\r\n'))).toBe(
        true,
      );
      await session.quit();
    } finally {
      await s.close();
    }
  });
});
