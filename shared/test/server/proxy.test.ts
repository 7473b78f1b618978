/**
 * The Node server adapter before the session: PROXY protocol (v1/v2) on a listener, connection
 * limits on the real client address taken before any TLS handshake, the pending bound, implicit-
 * TLS handshake failures and time-outs, and per-listener handlers. Real sockets on 127.0.0.x.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { testPki } from '../../../test/support/tls.ts';
import { proxiedBy, readProxyHeader } from '../../src/adapter/node/proxy-protocol.ts';
import {
  type ConnectionRefusal,
  createSmtpServer,
  type ListenOptions,
  type NodeSmtpServer,
  type NodeSmtpServerOptions,
} from '../../src/adapter/node/server.ts';
import { SmtpConfigError } from '../../src/core/errors.ts';
import type { SmtpServerHandler, SmtpSession } from '../../src/core/server/types.ts';
import type { Endpoint } from '../../src/core/transport.ts';

const pki = testPki();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const TOO_MANY = '421 4.7.0 mx.test Too many connections, try again later\r\n';

/** A raw peer: exact octets out, one reply (raw text) or null (closed) in. */
class Peer {
  socket: net.Socket;
  #buf = '';
  #closed = false;
  #waiters: (() => void)[] = [];

  constructor(socket: net.Socket) {
    this.socket = socket;
    this.#attach(socket);
  }

  #attach(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.#buf += d.toString('latin1');
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  static async connect(port: number, localAddress = '127.0.0.1'): Promise<Peer> {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new Peer(socket);
  }

  /** TLS over this connection now (implicit TLS), trusting the test CA. */
  async tls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tls.connect({ socket: plain, ca: pki.caCert, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#attach(secure);
  }

  send(data: string | Uint8Array): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The next complete reply as received, or null when the server closed first. */
  async reply(): Promise<string | null> {
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[0];
      }
      if (this.#closed) return null;
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  async command(line: string): Promise<string | null> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  get closed(): boolean {
    return this.#closed;
  }

  async waitClosed(): Promise<void> {
    while (!this.#closed) await new Promise<void>((r) => this.#waiters.push(r));
  }

  close(): void {
    this.socket.destroy();
  }
}

const drain: SmtpServerHandler['data'] = async (_s, _e, stream) => {
  for await (const _ of stream) {
    /* discard */
  }
};

interface Setup {
  options?: Partial<NodeSmtpServerOptions>;
  listen?: Partial<ListenOptions>;
}

let server: NodeSmtpServer | undefined;
let peers: Peer[] = [];
afterEach(async () => {
  for (const p of peers) p.close();
  peers = [];
  await server?.close({ deadlineMs: 1000 });
  server = undefined;
});

/** Start a server; `remotes` records each session's remote endpoint, `refusals` each refusal. */
async function start(setup: Setup = {}) {
  const remotes: (Endpoint | null)[] = [];
  const refusals: ConnectionRefusal[] = [];
  const handler: SmtpServerHandler = {
    connect: (s: SmtpSession) => {
      remotes.push(s.remote);
    },
    data: drain,
  };
  server = createSmtpServer(handler, {
    hostname: 'mx.test',
    tls: { key: pki.key, cert: pki.cert },
    onConnectionRefused: (r) => refusals.push(r),
    ...setup.options,
  });
  const info = await server.listen({ port: 0, host: '127.0.0.1', name: 'test', ...setup.listen });
  return { port: info.port, remotes, refusals, server };
}

async function peer(port: number, localAddress?: string): Promise<Peer> {
  const p = await Peer.connect(port, localAddress);
  peers.push(p);
  return p;
}

describe('PROXY protocol on a listener', () => {
  it('v1 from a trusted proxy: the session remote is the client it names', async () => {
    const s = await start({ listen: { proxyProtocol: { trusted: ['127.0.0.2'] } } });
    const p = await peer(s.port, '127.0.0.2');
    p.send('PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n');
    expect(await p.reply()).toBe('220 mx.test ESMTP ready\r\n');
    expect(s.remotes).toEqual([{ address: '203.0.113.7', port: 40000, proxiedBy: '127.0.0.2' }]);
    expect(proxiedBy(s.remotes[0]!)).toBe('127.0.0.2');
    expect((await p.command('EHLO client.test'))?.startsWith('250-mx.test')).toBe(true);
  });

  it('v2 split over several packets, with an IPv4-mapped TCP6 source, before implicit TLS', async () => {
    const s = await start({
      listen: { implicitTls: true, proxyProtocol: { trusted: ['127.0.0.0/24'] } },
    });
    const p = await peer(s.port, '127.0.0.3');
    const src = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 20];
    const dst = [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1];
    const header = Uint8Array.from([...SIG, 0x21, 0x21, 0, 36, ...src, ...dst, 0x9c, 0x40, 0x01, 0xd1]);
    p.send(header.subarray(0, 7));
    await new Promise((r) => setTimeout(r, 20));
    p.send(header.subarray(7));
    await p.tls();
    expect(await p.reply()).toBe('220 mx.test ESMTP ready\r\n');
    expect(s.remotes).toEqual([{ address: '198.51.100.20', port: 40000, proxiedBy: '127.0.0.3' }]);
  });

  it('v2 LOCAL (a health check) keeps the connection address', async () => {
    const s = await start({ listen: { proxyProtocol: { trusted: ['127.0.0.2'] } } });
    const p = await peer(s.port, '127.0.0.2');
    p.send(Uint8Array.from([...SIG, 0x20, 0x00, 0, 0]));
    expect(await p.reply()).toBe('220 mx.test ESMTP ready\r\n');
    expect(s.remotes[0]?.address).toBe('127.0.0.2');
    expect(proxiedBy(s.remotes[0]!)).toBeNull();
  });

  it('a trusted proxy that sends no header, or garbage, is closed without a greeting', async () => {
    const s = await start({ listen: { proxyProtocol: { trusted: ['127.0.0.2'], timeoutMs: 100 } } });
    const silent = await peer(s.port, '127.0.0.2');
    expect(await silent.reply()).toBeNull();
    const garbage = await peer(s.port, '127.0.0.2');
    garbage.send('EHLO client.test\r\n');
    expect(await garbage.reply()).toBeNull();
    expect(s.remotes).toEqual([]);
    expect(s.server.refused['proxy-header']).toBe(2);
    expect(s.refusals.map((r) => [r.reason, r.listener, r.peer])).toEqual([
      ['proxy-header', 'test', '127.0.0.2'],
      ['proxy-header', 'test', '127.0.0.2'],
    ]);
    expect(s.refusals.map((r) => (r.error as { kind?: string }).kind).sort()).toEqual([
      'protocol',
      'timeout',
    ]);
  });

  it('an untrusted source is served with its own address, and closed if it sends a PROXY header', async () => {
    const s = await start({ listen: { proxyProtocol: { trusted: ['127.0.0.2'] } } });
    const honest = await peer(s.port, '127.0.0.4');
    expect(await honest.reply()).toBe('220 mx.test ESMTP ready\r\n');
    expect(await honest.command('NOOP')).toBe('250 2.0.0 OK\r\n');
    const spoof = await peer(s.port, '127.0.0.5');
    expect(await spoof.reply()).toBe('220 mx.test ESMTP ready\r\n');
    spoof.send('PROXY TCP4 10.9.9.9 192.0.2.1 1 25\r\n');
    expect(await spoof.reply()).toBeNull();
    const spoof2 = await peer(s.port, '127.0.0.5');
    expect(await spoof2.reply()).toBe('220 mx.test ESMTP ready\r\n');
    spoof2.send(Uint8Array.from([...SIG, 0x21, 0x11, 0, 12, 10, 9, 9, 9, 1, 2, 3, 4, 0, 1, 0, 2]));
    expect(await spoof2.reply()).toBeNull();
    expect(s.remotes.map((r) => r?.address)).toEqual(['127.0.0.4', '127.0.0.5', '127.0.0.5']);
    expect(s.server.refused['proxy-untrusted']).toBe(2);
  });

  it('required: connections from anywhere but a trusted proxy are closed at once', async () => {
    const s = await start({ listen: { proxyProtocol: { trusted: ['127.0.0.2'], required: true } } });
    const p = await peer(s.port, '127.0.0.4');
    expect(await p.reply()).toBeNull();
    expect(s.refusals).toEqual([
      { reason: 'proxy-untrusted', listener: 'test', peer: '127.0.0.4', client: '127.0.0.4' },
    ]);
  });

  it('refuses a listener whose trusted list has something other than an address or CIDR block', async () => {
    const s = await start();
    for (const bad of ['10.0.0.0/33', 'example.org', '10.0.0.0/8/1', '2001:db8::/129', '10.0.0.0/x']) {
      await expect(
        s.server.listen({ port: 0, host: '127.0.0.1', proxyProtocol: { trusted: [bad] } }),
      ).rejects.toBeInstanceOf(SmtpConfigError);
    }
  });
});

describe('connection limits before the session', () => {
  it('per client address after PROXY: other clients behind the same proxy still get in', async () => {
    const s = await start({
      options: { maxConnectionsPerIp: 1 },
      listen: { proxyProtocol: { trusted: ['127.0.0.2'] } },
    });
    const a = await peer(s.port, '127.0.0.2');
    a.send('PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n');
    expect(await a.reply()).toBe('220 mx.test ESMTP ready\r\n');
    const b = await peer(s.port, '127.0.0.2');
    b.send('PROXY TCP4 203.0.113.8 192.0.2.1 40001 25\r\n');
    expect(await b.reply()).toBe('220 mx.test ESMTP ready\r\n');
    const c = await peer(s.port, '127.0.0.2');
    c.send('PROXY TCP4 203.0.113.7 192.0.2.1 40002 25\r\n');
    expect(await c.reply()).toBe(TOO_MANY);
    await c.waitClosed();
    expect(s.refusals).toEqual([
      { reason: 'max-connections-per-ip', listener: 'test', peer: '127.0.0.2', client: '203.0.113.7' },
    ]);
  });

  it('limitKey groups addresses (IPv6 by /64 here)', async () => {
    const s = await start({
      options: {
        maxConnectionsPerIp: 1,
        limitKey: (a) => (a.includes(':') ? `${a.split(':').slice(0, 4).join(':')}/64` : a),
      },
      listen: { proxyProtocol: { trusted: ['127.0.0.2'] } },
    });
    const a = await peer(s.port, '127.0.0.2');
    a.send('PROXY TCP6 2001:db8:1:2:0:0:0:1 2001:db8::25 40000 25\r\n');
    expect(await a.reply()).toBe('220 mx.test ESMTP ready\r\n');
    expect(s.remotes[0]?.address).toBe('2001:db8:1:2::1');
    const b = await peer(s.port, '127.0.0.2');
    b.send('PROXY TCP6 2001:db8:1:2::99 2001:db8::25 40001 25\r\n');
    expect(await b.reply()).toBe(TOO_MANY);
    const c = await peer(s.port, '127.0.0.2');
    c.send('PROXY TCP6 2001:db8:1:3::1 2001:db8::25 40002 25\r\n');
    expect(await c.reply()).toBe('220 mx.test ESMTP ready\r\n');
  });

  it('implicit TLS: the slot is taken before the handshake, and the 421 goes over TLS', async () => {
    const s = await start({ options: { maxConnections: 1 }, listen: { implicitTls: true } });
    // A connection that never starts its handshake already holds the only slot.
    const idle = await peer(s.port);
    await new Promise((r) => setTimeout(r, 20));
    const second = await peer(s.port, '127.0.0.6');
    await second.tls();
    expect(await second.reply()).toBe(TOO_MANY);
    expect(s.refusals).toEqual([
      { reason: 'max-connections', listener: 'test', peer: '127.0.0.6', client: '127.0.0.6' },
    ]);
    // The slot comes back when the idle one goes: the next client gets a session.
    idle.close();
    let greeting: string | null = null;
    for (let i = 0; i < 100 && greeting === null; i++) {
      const next = await peer(s.port);
      await next.tls();
      const reply = await next.reply();
      if (reply?.startsWith('220 ')) greeting = reply;
      else await new Promise((r) => setTimeout(r, 10));
    }
    expect(greeting).toBe('220 mx.test ESMTP ready\r\n');
  });

  it('implicit TLS handshake failures and time-outs are counted, closed, and release the slot', async () => {
    const s = await start({
      options: { maxConnections: 1, tlsHandshakeTimeoutMs: 100 },
      listen: { implicitTls: true },
    });
    const plaintext = await peer(s.port);
    plaintext.send('EHLO client.test\r\n');
    await plaintext.waitClosed();
    const silent = await peer(s.port);
    await silent.waitClosed();
    expect(s.server.refused['tls-handshake']).toBe(1);
    expect(s.server.refused['tls-handshake-timeout']).toBe(1);
    expect(s.refusals.map((r) => r.reason)).toEqual(['tls-handshake', 'tls-handshake-timeout']);
    expect(s.refusals[0]?.error).toBeInstanceOf(Error);
    const ok = await peer(s.port);
    await ok.tls();
    expect(await ok.reply()).toBe('220 mx.test ESMTP ready\r\n');
    expect(s.server.connections).toBe(1);
  });

  it('maxPendingConnections bounds connections waiting for a PROXY header', async () => {
    const s = await start({
      options: { maxPendingConnections: 1 },
      listen: { proxyProtocol: { trusted: ['127.0.0.2'] } },
    });
    const waiting = await peer(s.port, '127.0.0.2');
    await new Promise((r) => setTimeout(r, 20));
    const over = await peer(s.port, '127.0.0.2');
    expect(await over.reply()).toBeNull();
    expect(s.refusals.map((r) => r.reason)).toEqual(['pending']);
    // The waiting one goes on once its header arrives.
    waiting.send('PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n');
    expect(await waiting.reply()).toBe('220 mx.test ESMTP ready\r\n');
  });
});

describe('listeners with their own handler', () => {
  it('each listener serves its handler; close() ends both', async () => {
    const seen: string[] = [];
    server = createSmtpServer(
      { connect: () => void seen.push('default'), data: drain },
      { hostname: 'mx.test', maxConnections: 1 },
    );
    const a = await server.listen({ port: 0, host: '127.0.0.1' });
    const b = await server.listen({
      port: 0,
      host: '127.0.0.1',
      banner: 'other',
      handler: { connect: () => void seen.push('own'), data: drain },
    });
    const pa = await peer(a.port);
    expect(await pa.reply()).toBe('220 mx.test ESMTP ready\r\n');
    // The connection limit is shared by both listeners.
    const over = await peer(b.port);
    expect(await over.reply()).toBe(TOO_MANY);
    pa.close();
    let pb: Peer | null = null;
    for (let i = 0; i < 100 && pb === null; i++) {
      const p = await peer(b.port);
      if ((await p.reply()) === '220 mx.test ESMTP other\r\n') pb = p;
      else await new Promise((r) => setTimeout(r, 10));
    }
    expect(pb).not.toBeNull();
    expect(seen).toEqual(['default', 'own']);
    expect(server.connections).toBe(1);
    await server.close({ deadlineMs: 100 });
    expect(await pb!.reply()).toBe('421 4.3.2 mx.test Service shutting down, closing connection\r\n');
    server = undefined;
  });
});

describe('readProxyHeader on a socket', () => {
  async function pair(): Promise<{ server: net.Socket; client: net.Socket; close: () => void }> {
    return new Promise((resolve) => {
      let client: net.Socket;
      const srv = net.createServer((s) => resolve({ server: s, client, close: () => srv.close() }));
      srv.listen(0, '127.0.0.1', () => {
        client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
      });
    });
  }

  it('returns the header and leaves the following bytes in the socket, even when split', async () => {
    const { server: s, client, close } = await pair();
    const p = readProxyHeader(s, 5000);
    client.write('PROXY TCP4 203.0.113.9 ');
    await new Promise((r) => setTimeout(r, 20));
    client.write('198.51.100.2 4000 25\r\nEHLO x\r\n');
    const h = await p;
    expect(h).toEqual({
      version: 1,
      length: 45,
      source: { address: '203.0.113.9', port: 4000 },
      destination: { address: '198.51.100.2', port: 25 },
    });
    const rest = await new Promise<string>((r) => {
      s.once('data', (d) => r(d.toString()));
      s.resume();
    });
    expect(rest).toBe('EHLO x\r\n');
    client.destroy();
    s.destroy();
    close();
  });

  it('rejects garbage, a silent peer, and a peer that closes', async () => {
    const a = await pair();
    const p = readProxyHeader(a.server, 5000);
    a.client.write('EHLO x\r\n');
    await expect(p).rejects.toThrow('PROXY header: not a PROXY header');
    a.client.destroy();
    a.server.destroy();
    a.close();
    const b = await pair();
    await expect(readProxyHeader(b.server, 50)).rejects.toThrow('during the PROXY header within 50 ms');
    b.client.destroy();
    b.server.destroy();
    b.close();
    const c = await pair();
    const q = readProxyHeader(c.server, 5000);
    c.client.end('PROXY TCP4');
    await expect(q).rejects.toThrow('connection closed before the PROXY header');
    c.client.destroy();
    c.server.destroy();
    c.close();
  });
});
