/**
 * Exim 4.96 as a BDAT client (RFC 3030 CHUNKING) of our server: the message must arrive through
 * BDAT, octet for octet, in clear text, after STARTTLS with AUTH, and when it is large enough
 * for Exim to split it into several chunks.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requirePeers, runEximSend } from '../support/peers.ts';
import { INTEROP_USERS, type InteropServer, startInteropServer } from '../support/smtp-edge-server.ts';

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

const MESSAGE = [
  'From: Zoë <zoe@example.org>',
  'To: bob@example.net',
  'Subject: exim BDAT interop',
  'Message-ID: <exim-bdat@example.org>',
  'Date: Sat, 28 Nov 2026 12:00:00 +0000',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 8bit',
  '',
  // With BDAT nothing is dot-stuffed: these lines must arrive as they are.
  '.',
  '..',
  '.leading dot',
  'Grüße',
  '',
].join('\r\n');

let srv: InteropServer;
beforeAll(async () => {
  requirePeers('exim');
  srv = await startInteropServer({ rejectRecipients: ['nobody@example.net'] });
});
afterAll(async () => srv?.close());
beforeEach(() => {
  srv.messages.length = 0;
  srv.authAttempts.length = 0;
});

describe('exim (BDAT client) -> smtp-edge server', () => {
  it('one BDAT LAST chunk in clear text, two recipients, octets equal', async () => {
    const r = await runEximSend({
      port: srv.port,
      from: 'zoe@example.org',
      to: ['bob@example.net', 'carol@example.net'],
      message: MESSAGE,
    });
    expect(r.delivered, `${r.stderr}\n${r.mainlog}`).toBe(true);
    expect(r.commands).toContain(`BDAT ${Buffer.byteLength(MESSAGE)} LAST`);
    expect(r.commands.some((c) => c.startsWith('DATA'))).toBe(false);
    expect(srv.messages).toHaveLength(1);
    const m = srv.messages[0]!;
    expect(m.envelope.mailFrom.address).toBe('zoe@example.org');
    expect(m.envelope.rcptTo.map((x) => x.address)).toEqual(['bob@example.net', 'carol@example.net']);
    expect(m.session.helo).toEqual({ verb: 'EHLO', name: 'exim-client.test' });
    expect(text(m.bytes)).toBe(MESSAGE);
  });

  it('STARTTLS + AUTH PLAIN on the submission port, then BDAT', async () => {
    const r = await runEximSend({
      port: srv.submissionPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      message: MESSAGE,
      security: 'starttls',
      auth: { user: 'alice', pass: INTEROP_USERS['alice']! },
    });
    expect(r.delivered, `${r.stderr}\n${r.mainlog}`).toBe(true);
    expect(r.commands).toContain('STARTTLS');
    expect(r.commands.some((c) => c.startsWith('AUTH PLAIN'))).toBe(true);
    expect(r.usedChunking).toBe(true);
    expect(srv.authAttempts).toEqual([{ mechanism: 'PLAIN', username: 'alice', ok: true }]);
    expect(srv.messages[0]!.session).toMatchObject({ user: 'alice', secure: true });
    expect(text(srv.messages[0]!.bytes)).toBe(MESSAGE);
  });

  it('a 2 MB message arrives intact through BDAT', async () => {
    const line = (i: number) => `${String(i).padStart(7, '0')} ${'abcdefghij'.repeat(7)}\r\n`;
    const lines: string[] = [];
    for (let i = 0; lines.length * 80 < 2_000_000; i++) lines.push(line(i));
    const big = `Subject: big\r\n\r\n${lines.join('')}`;
    const r = await runEximSend({
      port: srv.port,
      from: 'zoe@example.org',
      to: ['bob@example.net'],
      message: big,
    });
    expect(r.delivered, `${r.stderr}\n${r.mainlog}`).toBe(true);
    const bdat = r.commands.filter((c) => c.startsWith('BDAT '));
    expect(bdat.length).toBeGreaterThanOrEqual(1);
    expect(bdat.at(-1)).toMatch(/ LAST$/);
    const declared = bdat.reduce((n, c) => n + Number(c.split(' ')[1]), 0);
    expect(declared).toBe(Buffer.byteLength(big));
    expect(Buffer.from(srv.messages[0]!.bytes).equals(Buffer.from(big))).toBe(true);
  });

  it('a refused recipient is reported by exim, the others get the message, the bounce comes from <>', async () => {
    const r = await runEximSend({
      port: srv.port,
      from: 'zoe@example.org',
      to: ['nobody@example.net', 'bob@example.net'],
      message: MESSAGE,
    });
    expect(r.mainlog).toMatch(/\*\* nobody@example\.net .*550 5\.1\.1 No such user here/);
    expect(r.mainlog).toMatch(/=> bob@example\.net /);
    // Exim then bounces to the sender, through the same route: our server gets that too, from <>.
    await expect.poll(() => srv.messages.length).toBe(2);
    const [orig, bounce] = srv.messages;
    expect(orig!.envelope.rcptTo.map((x) => x.address)).toEqual(['bob@example.net']);
    expect(bounce!.envelope.mailFrom.address).toBe('');
    expect(bounce!.envelope.rcptTo.map((x) => x.address)).toEqual(['zoe@example.org']);
    expect(text(bounce!.bytes)).toContain('550 5.1.1 No such user here');
  });

  it('a message over our SIZE is refused at MAIL (Exim declares SIZE=, RFC 1870 section 6)', async () => {
    const small = await startInteropServer({ options: { maxMessageBytes: 50_000 } });
    try {
      const big = `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(100);
      const r = await runEximSend({
        port: small.port,
        from: 'zoe@example.org',
        to: ['bob@example.net'],
        message: big,
      });
      expect(r.delivered).toBe(false);
      expect(r.commands.find((c) => c.startsWith('MAIL FROM:'))).toMatch(/ SIZE=\d+/);
      // Exim pipelines a first BDAT chunk with MAIL and RCPT. We refuse MAIL (552), then RCPT and
      // that BDAT (503), skip the chunk's octets instead of reading them as commands, and QUIT works.
      expect(r.stderr).toMatch(/SMTP<< 552 5\.3\.4 [^\n]*\n\s+SMTP<< 503 5\.5\.1 /);
      expect(r.stderr).not.toMatch(/SMTP<< 50[0-2] /);
      expect(r.stderr).toContain('221 2.0.0 mx.smtp-edge.test Bye');
      expect(r.mainlog).toMatch(
        /\*\* bob@example\.net .*552 5\.3\.4 Message size exceeds fixed maximum message size/,
      );
      expect(small.messages.filter((m) => m.envelope.mailFrom.address !== '')).toHaveLength(0);
    } finally {
      await small.close();
    }
  });
});
