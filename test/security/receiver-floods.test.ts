/**
 * Floods against the deployable receiver (child process): each is limited with the right reply,
 * counted or logged, and the service keeps serving others.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../receiver/test/support/fixtures.ts';
import {
  baseEnv,
  type ReceiverProcess,
  startReceiver,
} from '../../receiver/test/support/receiver-process.ts';
import { RawClient } from '../../shared/test/server/harness.ts';
import { until } from './support.ts';

let rx: ReceiverProcess;

beforeAll(async () => {
  rx = await startReceiver({
    ...baseEnv(),
    RECEIVER_STORE: `file://${tempDir('floods')}/store`,
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_SUBMISSION_PORT: 'off',
    RECEIVER_SUBMISSIONS_PORT: 'off',
    RECEIVER_MAX_CONNECTIONS_PER_IP: '3',
    RECEIVER_MAX_RECIPIENTS: '5',
  });
});

afterAll(async () => {
  expect(await rx.stop()).toBe(0);
});

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${rx.ports.http}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && labels.split(',').every((p) => l.includes(p)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function greetingFrom(localAddress: string): Promise<string> {
  const s = net.connect({ port: rx.ports.mx!, host: '127.0.0.1', localAddress });
  s.on('error', () => {});
  let text = '';
  s.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  await until(() => text.includes('\r\n'), `greeting to ${localAddress}`);
  s.destroy();
  return text;
}

/** A connection that got its 220 (earlier tests' slots are released a moment after they close). */
async function served(): Promise<RawClient> {
  for (let i = 0; i < 100; i++) {
    const c = await RawClient.connect(rx.ports.mx!);
    c.socket.on('error', () => {});
    if ((await c.reply()).code === 220) return c;
    c.close();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('never served');
}

describe('receiver under floods', () => {
  it('12 connections from one address: 3 served, 9 get 421 4.7.0 and are counted; another address is served', async () => {
    const before = await metric('receiver_smtp_connections_refused_total', 'reason="max_connections_per_ip"');
    const held: RawClient[] = [];
    const codes: number[] = [];
    for (let i = 0; i < 12; i++) {
      const c = await RawClient.connect(rx.ports.mx!);
      held.push(c);
      const r = await c.reply();
      codes.push(r.code);
      if (r.code === 421)
        expect(r.raw).toBe('421 4.7.0 mx.test.example Too many connections, try again later\r\n');
    }
    expect(codes).toEqual([220, 220, 220, ...Array(9).fill(421)]);
    expect(await greetingFrom('127.0.0.2')).toMatch(/^220 mx\.test\.example /);
    const after = await metric('receiver_smtp_connections_refused_total', 'reason="max_connections_per_ip"');
    expect(after - before).toBe(9);
    for (const c of held) c.close();
  });

  it('an RCPT flood ends in 452 4.5.3 then 421 4.7.0; the connection is logged with its reason', async () => {
    const client = await served();
    expect((await client.command('EHLO flood.example')).code).toBe(250);
    client.send('MAIL FROM:<a@client.example>\r\n');
    client.send(Array.from({ length: 5000 }, (_, i) => `RCPT TO:<r${i}@example.com>\r\n`).join(''));
    const replies = await client.replies(1 + 5 + 5 + 11);
    expect(replies[0]!.code).toBe(250);
    expect(replies.slice(1, 6).every((r) => r.code === 250)).toBe(true);
    expect(replies.slice(6, 21).every((r) => r.raw === '452 4.5.3 Too many recipients\r\n')).toBe(true);
    expect(replies[21]!.raw).toBe('421 4.7.0 mx.test.example Too many errors, closing connection\r\n');
    await client.waitClosed();
    const line = await rx.waitFor(
      (l) => l.event === 'connection' && l['helo'] === 'flood.example',
      'connection log',
    );
    expect(line['reason']).toBe('too-many-errors');
  });

  // The "connection closed" log line carries the engine's `session.closeReason` (`reason`), and
  // the closes are counted by reason (receiver_smtp_connections_closed_total).
  it('an HTTP request on the MX port: 421 4.7.0, closed, logged and counted with reason http-request', async () => {
    const before = await metric('receiver_smtp_connections_closed_total', 'reason="http-request"');
    const c = await served();
    c.send('GET / HTTP/1.1\r\nHost: mx\r\n\r\n');
    expect((await c.reply()).raw).toBe(
      '421 4.7.0 mx.test.example This is an SMTP server, not HTTP; closing connection\r\n',
    );
    await c.waitClosed();
    const line = await rx.waitFor(
      (l) => l.event === 'connection' && l['helo'] === null && l['reason'] === 'http-request',
      'connection log with reason http-request',
    );
    expect(line['listener']).toBe('mx');
    expect(await metric('receiver_smtp_connections_closed_total', 'reason="http-request"')).toBe(before + 1);
  });
});
