import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseProxyHeader, readProxyHeader } from '../src/proxy-protocol.ts';

const enc = new TextEncoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function v2(cmd: number, fam: number, payload: number[]): Uint8Array {
  return Uint8Array.from([...SIG, 0x20 | cmd, fam, payload.length >> 8, payload.length & 0xff, ...payload]);
}

describe('parseProxyHeader', () => {
  it('parses v1 TCP4, TCP6 and UNKNOWN', () => {
    expect(parseProxyHeader(enc.encode('PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO x\r\n'))).toEqual({
      kind: 'ok',
      version: 1,
      length: 44,
      source: { address: '192.0.2.1', port: 56324 },
      destination: { address: '198.51.100.2', port: 25 },
    });
    const six = parseProxyHeader(enc.encode('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'));
    expect(six.kind === 'ok' && six.source).toEqual({ address: '2001:db8::1', port: 1 });
    expect(parseProxyHeader(enc.encode('PROXY UNKNOWN ffff::1 x y z\r\n'))).toMatchObject({
      kind: 'ok',
      source: null,
    });
  });

  it('waits for more bytes, and refuses malformed v1 headers', () => {
    expect(parseProxyHeader(enc.encode('PRO')).kind).toBe('incomplete');
    expect(parseProxyHeader(enc.encode('PROXY TCP4 192.0.2.1')).kind).toBe('incomplete');
    for (const bad of [
      'PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n',
      'PROXY TCP4 256.0.2.1 198.51.100.2 1 2\r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.2 1 65536\r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n',
      'PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n',
      'PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n',
      'PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n',
      'EHLO client\r\n',
      `PROXY TCP4 ${'1'.repeat(120)}`,
    ]) {
      expect(parseProxyHeader(enc.encode(bad)).kind, bad).toBe('invalid');
    }
  });

  it('parses v2 PROXY TCP4/TCP6 with TLVs, and LOCAL', () => {
    const r = parseProxyHeader(
      v2(1, 0x11, [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0, 25, 0x04, 0, 1, 0x41]),
    );
    expect(r).toEqual({
      kind: 'ok',
      version: 2,
      length: 32,
      source: { address: '192.0.2.1', port: 56324 },
      destination: { address: '198.51.100.2', port: 25 },
    });
    const src6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1];
    const dst6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 2];
    const r6 = parseProxyHeader(v2(1, 0x21, [...src6, ...dst6, 0, 1, 0, 2]));
    expect(r6.kind === 'ok' && r6.source).toEqual({ address: '2001:db8:0:0:0:0:0:1', port: 1 });
    expect(parseProxyHeader(v2(0, 0x00, []))).toMatchObject({ kind: 'ok', source: null, length: 16 });
    expect(parseProxyHeader(v2(1, 0x11, [1, 2, 3])).kind).toBe('invalid');
    expect(parseProxyHeader(v2(1, 0x12, [])).kind).toBe('invalid'); // UDP
    expect(parseProxyHeader(Uint8Array.from([...SIG, 0x11, 0x11, 0, 0])).kind).toBe('invalid'); // version 1 in v2
    expect(parseProxyHeader(Uint8Array.from(SIG.slice(0, 5))).kind).toBe('incomplete');
    expect(
      parseProxyHeader(v2(1, 0x11, [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0, 25]).subarray(0, 20)).kind,
    ).toBe('incomplete');
  });
});

describe('readProxyHeader on a socket', () => {
  async function pair(): Promise<{ server: Socket; client: Socket; close: () => void }> {
    return new Promise((resolve) => {
      const srv = createServer((server) => resolve({ server, client, close: () => srv.close() }));
      let client: Socket;
      srv.listen(0, '127.0.0.1', () => {
        client = connect((srv.address() as { port: number }).port, '127.0.0.1');
      });
    });
  }

  it('returns the header and leaves the following bytes in the socket, even when split', async () => {
    const { server, client, close } = await pair();
    const p = readProxyHeader(server, 5000);
    client.write('PROXY TCP4 203.0.113.9 ');
    await new Promise((r) => setTimeout(r, 20));
    client.write('198.51.100.2 4000 25\r\nEHLO x\r\n');
    const h = await p;
    expect(h.source).toEqual({ address: '203.0.113.9', port: 4000 });
    const rest = await new Promise<string>((r) => {
      server.once('data', (d) => r(d.toString()));
      server.resume();
    });
    expect(rest).toBe('EHLO x\r\n');
    client.destroy();
    server.destroy();
    close();
  });

  it('rejects garbage and a silent peer', async () => {
    const a = await pair();
    const p = readProxyHeader(a.server, 5000);
    a.client.write('EHLO x\r\n');
    await expect(p).rejects.toThrow('not a PROXY header');
    a.client.destroy();
    a.server.destroy();
    a.close();
    const b = await pair();
    await expect(readProxyHeader(b.server, 50)).rejects.toThrow('no PROXY header within 50 ms');
    b.client.destroy();
    b.server.destroy();
    b.close();
  });
});
