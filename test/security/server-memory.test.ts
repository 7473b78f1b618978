/**
 * Bounded memory under attack (issue 8): the server runs in a child process (so the attacker's
 * own buffers are not counted) and reports its memory after a forced GC. Many connections at
 * once push large amounts of hostile input: command lines without line ends, 100 KB lines, a
 * 2^63 BDAT chunk, a 64 MiB DATA message, pipelined floods. The server's memory after the attack
 * stays within a fixed bound, far below what was sent; no octet count is assumed about timing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  connections: number;
}

const here = dirname(fileURLToPath(import.meta.url));
let child: ChildProcess;
let port: number;
let next: ((line: string) => void)[] = [];

function line(): Promise<string> {
  return new Promise((resolve) => next.push(resolve));
}

async function mem(): Promise<Mem> {
  const p = line();
  child.stdin!.write('mem\n');
  return JSON.parse(await p) as Mem;
}

beforeAll(async () => {
  child = spawn(process.execPath, ['--expose-gc', join(here, 'fixtures', 'memory-server.ts')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (l) => {
    const w = next;
    next = [];
    for (const f of w) f(l);
  });
  port = (JSON.parse(await line()) as { port: number }).port;
});

afterAll(async () => {
  child.stdin!.write('quit\n');
  await new Promise((r) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      r(null);
    });
  });
});

/** Connect, send `head`, then stream `total` octets from `block`, then close. Replies are drained. */
async function attack(head: string, block: Buffer, total: number): Promise<void> {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  s.on('data', () => {});
  await new Promise((r) => s.once('connect', r));
  const closed = new Promise((r) => s.once('close', r));
  s.write(head);
  let sent = 0;
  while (sent < total && !s.destroyed) {
    if (!s.write(block)) {
      await new Promise((r) => {
        s.once('drain', r);
        s.once('close', r);
      });
    }
    sent += block.length;
  }
  s.end();
  await closed;
}

describe('server memory under attack (child process, after GC)', () => {
  it('stays bounded while 40 connections push 640 MiB of hostile input', async () => {
    // Warm up (JIT, TLS-less paths, buffers) and take the baseline.
    await attack(
      'EHLO warm\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n',
      Buffer.from('x\r\n'.repeat(1000)),
      3000 * 10,
    );
    const base = await mem();
    const MiB = 1024 * 1024;
    const noLf = Buffer.alloc(64 * 1024, 0x41);
    const longLines = Buffer.from(`${'L'.repeat(100_000)}\r\n`.repeat(4));
    const dataLines = Buffer.from(`${'d'.repeat(998)}\r\n`.repeat(64));
    const rcpts = Buffer.from(
      Array.from({ length: 500 }, (_, i) => `RCPT TO:<r${i}@x.example>\r\n`).join(''),
    );
    const attacks: Promise<void>[] = [];
    for (let i = 0; i < 10; i++) {
      // A command "line" that never ends.
      attacks.push(attack('EHLO a\r\nNOOP ', noLf, 16 * MiB));
      // 100 KB lines as commands.
      attacks.push(attack('EHLO a\r\n', longLines, 16 * MiB));
      // A 2^63 BDAT chunk.
      attacks.push(
        attack(
          'EHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 9223372036854775808 LAST\r\n',
          noLf,
          16 * MiB,
        ),
      );
      // A big DATA message, then RCPT floods in the same connection.
      attacks.push(
        attack(
          'EHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n',
          dataLines,
          16 * MiB,
        ).then(() => attack('EHLO a\r\nMAIL FROM:<a@b.example>\r\n', rcpts, 4 * MiB)),
      );
    }
    // Sample while the attack runs (each sample after a full GC: live memory only).
    let done = false;
    void Promise.all(attacks).then(() => {
      done = true;
    });
    const during: Mem[] = [];
    while (!done) {
      during.push(await mem());
      await new Promise((r) => setTimeout(r, 50));
    }
    // The server ends its side of each session a moment after the client saw the close.
    let after = await mem();
    for (let i = 0; i < 100 && after.connections > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await mem();
    }
    const peakBuffers = Math.max(...during.map((m) => m.arrayBuffers));
    const peakHeap = Math.max(...during.map((m) => m.heapUsed));
    // 640 MiB went in through 40 connections; live memory stays at a few chunks per connection.
    expect(during.length).toBeGreaterThan(0);
    expect(peakBuffers - base.arrayBuffers).toBeLessThan(24 * MiB);
    expect(peakHeap - base.heapUsed).toBeLessThan(32 * MiB);
    expect(after.heapUsed - base.heapUsed).toBeLessThan(8 * MiB);
    expect(after.arrayBuffers - base.arrayBuffers).toBeLessThan(4 * MiB);
    expect(after.connections).toBe(0);
  }, 120_000);
});
