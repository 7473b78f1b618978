import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { testPki } from '../../../../test/support/tls.ts';
import { NodeSocketTransport } from './transport.ts';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A TCP server whose first accepted socket is returned with a connected client socket. */
async function pair(): Promise<{ server: net.Socket; client: net.Socket }> {
  const srv = net.createServer();
  servers.push(srv);
  const accepted = new Promise<net.Socket>((resolve) => srv.once('connection', resolve));
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  return { server: await accepted, client };
}

const text = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('latin1'));

async function readText(t: NodeSocketTransport, n: number): Promise<string> {
  let out = '';
  while (out.length < n) {
    const b = await t.read();
    if (b === null) break;
    out += text(b);
  }
  return out;
}

describe('NodeSocketTransport', () => {
  it('reads what the peer sent, then null at end of stream; knows both endpoints', async () => {
    const { server, client } = await pair();
    const t = new NodeSocketTransport(server, { role: 'server' });
    expect(t.remote?.address).toBe('127.0.0.1');
    expect(t.local?.port).toBe(server.localPort);
    expect(t.tls).toBeNull();
    client.end('hello\r\n');
    expect(await readText(t, 7)).toBe('hello\r\n');
    expect(await t.read()).toBeNull();
    await t.close();
  });

  it('applies backpressure: unread input stays bounded in the process', async () => {
    const { server, client } = await pair();
    const t = new NodeSocketTransport(server, { role: 'server' });
    const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
    client.write(big);
    // Let the kernel move what it can.
    await new Promise((r) => setTimeout(r, 100));
    expect(server.readableLength).toBeLessThanOrEqual(server.readableHighWaterMark + 64 * 1024);
    expect(client.writableLength).toBeGreaterThan(0);
    let got = 0;
    while (got < big.length) {
      const b = await t.read();
      if (b === null) break;
      got += b.length;
    }
    expect(got).toBe(big.length);
    client.destroy();
    await t.close();
  });

  it('server STARTTLS drops plaintext received before the handshake (RFC 3207 section 4.2)', async () => {
    const pki = testPki();
    const { server, client } = await pair();
    const t = new NodeSocketTransport(server, { role: 'server', tls: { key: pki.key, cert: pki.cert } });
    client.write('STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n');
    expect(await readText(t, 10)).toMatch(/^STARTTLS\r\n/);
    // Whatever is still buffered must not survive the upgrade.
    client.write('RCPT TO:<injected@evil.example>\r\n');
    await new Promise((r) => setTimeout(r, 20));
    const upgraded = t.startTls();
    const secure = tls.connect({ socket: client, ca: pki.caCert, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    await upgraded;
    expect(t.tls).toMatchObject({
      protocol: expect.stringMatching(/^TLSv1\.[23]$/),
      servername: 'localhost',
    });
    secure.write('EHLO after\r\n');
    expect(await readText(t, 12)).toBe('EHLO after\r\n');
    await t.write(new TextEncoder().encode('250 ok\r\n'));
    const reply = await new Promise<string>((resolve) =>
      secure.once('data', (d: Buffer) => resolve(d.toString())),
    );
    expect(reply).toBe('250 ok\r\n');
    secure.destroy();
    await t.close();
  });

  it('client STARTTLS verifies the chain and the name (TLS 1.2 minimum)', async () => {
    const pki = testPki();
    const cases = [
      { cert: pki.cert, key: pki.key, ok: true },
      { cert: pki.untrustedCert, key: pki.untrustedKey, ok: false },
      { cert: pki.wrongNameCert, key: pki.wrongNameKey, ok: false },
    ];
    for (const c of cases) {
      const { server, client } = await pair();
      const serverSide = new tls.TLSSocket(server, {
        isServer: true,
        secureContext: tls.createSecureContext({ key: c.key, cert: c.cert }),
      });
      serverSide.on('error', () => {});
      const t = new NodeSocketTransport(client, {
        role: 'client',
        tls: { ca: pki.caCert, servername: 'localhost' },
      });
      if (c.ok) {
        await t.startTls();
        expect(t.tls?.authorized).toBe(true);
      } else {
        await expect(t.startTls()).rejects.toMatchObject({ kind: 'tls' });
      }
      serverSide.destroy();
      await t.close();
    }
  });

  it('close() settles even when the peer never closes its side', async () => {
    const { server, client } = await pair();
    client.on('end', () => {
      /* a peer that never ends its side */
    });
    const t = new NodeSocketTransport(server, { role: 'server', closeGraceMs: 50 });
    await t.close();
    expect(server.destroyed).toBe(true);
    client.destroy();
  });

  it('write after close rejects with a connection error', async () => {
    const { server, client } = await pair();
    const t = new NodeSocketTransport(server, { role: 'server' });
    client.destroy();
    await t.close();
    await expect(t.write(new Uint8Array([1]))).rejects.toMatchObject({ kind: 'connection' });
  });
});
