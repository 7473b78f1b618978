/**
 * postfix's smtp-source (a C load client, plain DATA) against our server: thousands of messages
 * over parallel sessions, none lost, none duplicated, every one the right size. Durations are for
 * bench/, not asserted here.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requirePeers, runSmtpSource, startSmtpSink } from '../support/peers.ts';
import { type InteropServer, startInteropServer } from '../support/smtp-edge-server.ts';

const BODY = 10 * 1024;

let srv: InteropServer;
/** The payload smtp-source sends for BODY, as postfix's own smtp-sink received it (CRLF form). */
let reference: string;
beforeAll(async () => {
  requirePeers('smtpSource', 'smtpSink');
  const sink = await startSmtpSink();
  try {
    const r = await runSmtpSource({ port: sink.port, bodyBytes: BODY, subject: 'load' });
    expect(r.code, r.stderr).toBe(0);
    const [m] = await sink.waitForMessages(1);
    const t = Buffer.from(m!.contentCrlf).toString('latin1');
    reference = t.slice(t.indexOf('\r\n\r\n') + 4);
  } finally {
    await sink.stop();
  }
  srv = await startInteropServer();
});
afterAll(async () => srv?.close());
beforeEach(() => {
  srv.messages.length = 0;
});

/** Check every message smtp-source sent: headers, the payload smtp-sink also saw, unique Message-Ids. */
function checkAll(count: number) {
  expect(srv.messages).toHaveLength(count);
  const ids = new Set<string>();
  for (const m of srv.messages) {
    expect(m.envelope.mailFrom.address).toBe('load@example.org');
    expect(m.envelope.rcptTo.map((r) => r.address)).toEqual(['sink@example.net']);
    const text = Buffer.from(m.bytes).toString('latin1');
    const split = text.indexOf('\r\n\r\n');
    expect(split).toBeGreaterThan(0);
    const header = text.slice(0, split + 2);
    const body = text.slice(split + 4);
    expect(header).toMatch(
      /^From: <load@example\.org>\r\nTo: <sink@example\.net>\r\nDate: [^\r\n]+\r\nMessage-Id: <[^>]+>\r\nSubject: load\r\n$/,
    );
    ids.add(/Message-Id: (<[^>]+>)/.exec(header)?.[1] ?? '');
    expect(body).toBe(reference);
  }
  expect(ids.size).toBe(count);
}

describe('smtp-source -> smtp-edge server', () => {
  it('2,000 messages of 10 KB over 10 parallel sessions (connections reused): none lost', async () => {
    const r = await runSmtpSource({
      port: srv.port,
      messages: 2000,
      sessions: 10,
      bodyBytes: BODY,
      reuseConnection: true,
      from: 'load@example.org',
      to: 'sink@example.net',
      helo: 'source.test',
      subject: 'load',
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    checkAll(2000);
  });

  it('500 messages over 10 sessions, one connection per message: none lost', async () => {
    const r = await runSmtpSource({
      port: srv.port,
      messages: 500,
      sessions: 10,
      bodyBytes: BODY,
      from: 'load@example.org',
      to: 'sink@example.net',
      helo: 'source.test',
      subject: 'load',
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    checkAll(500);
    expect(new Set(srv.messages.map((m) => m.session.id)).size).toBe(500);
  });

  it('messages over the size limit (no SIZE declared) get 552 5.3.4 after the data; the session goes on', async () => {
    const small = await startInteropServer({ options: { maxMessageBytes: 50_000 } });
    try {
      const r = await runSmtpSource({
        port: small.port,
        messages: 3,
        bodyBytes: 100_000,
        reuseConnection: true,
        noAbort: true,
        from: 'load@example.org',
        to: 'sink@example.net',
        subject: 'load',
      });
      // smtp-source -A reports each refusal and carries on with the next message on the same connection.
      expect(
        `${r.stdout}${r.stderr}`.match(/552 5\.3\.4 Message size exceeds fixed maximum message size/g),
      ).toHaveLength(3);
      expect(small.messages).toHaveLength(0);
    } finally {
      await small.close();
    }
  });
});
