/**
 * SMTP smuggling against the deployable receiver (child process, directory store), over its MX
 * port (plain) and its submission port (STARTTLS + AUTH), DATA pipelined and BDAT: every fake
 * end-of-data sequence followed by a complete second transaction never yields a second stored
 * message; the first is refused (550 5.6.0) or stored once with the smuggled octets as content.
 * The store is audited on disk: the count of committed messages equals the count of 250s.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, tempDir, testPki, USER, usersFile } from '../../receiver/test/support/fixtures.ts';
import {
  baseEnv,
  type ReceiverProcess,
  startReceiver,
} from '../../receiver/test/support/receiver-process.ts';
import { RawClient } from '../../shared/test/server/harness.ts';
import { audit, bodyAfterReceived } from '../faults/support.ts';
import { EVIL_FROM, FAKE_ENDS, hasBareLineEnding, smuggledTransaction } from './support.ts';

const pki = testPki();
let rx: ReceiverProcess;
let store: string;
let accepted = 0;
const storedMarkers: string[] = [];

beforeAll(async () => {
  const dir = tempDir('smuggling');
  store = join(dir, 'store');
  rx = await startReceiver({
    ...baseEnv(),
    RECEIVER_STORE: `file://${store}`,
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_TLS_CERT: pki.certPath,
    RECEIVER_TLS_KEY: pki.keyPath,
    RECEIVER_USERS_FILE: await usersFile(dir),
    RECEIVER_SUBMISSIONS_PORT: 'off',
    RECEIVER_MESSAGES_PER_IP_PER_MINUTE: '0',
  });
});

afterAll(async () => {
  expect(await rx.stop()).toBe(0);
});

async function session(port: 'mx' | 'submission'): Promise<RawClient> {
  const c = await RawClient.connect(port === 'mx' ? rx.ports.mx! : rx.ports.submission!);
  expect((await c.reply()).code).toBe(220);
  expect((await c.command('EHLO attacker.example')).code).toBe(250);
  if (port === 'submission') {
    expect((await c.command('STARTTLS')).code).toBe(220);
    await c.startTls();
    expect((await c.command('EHLO attacker.example')).code).toBe(250);
    const plain = Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64');
    expect((await c.command(`AUTH PLAIN ${plain}`)).code).toBe(235);
  }
  return c;
}

const envelope = 'MAIL FROM:<sender@client.example>\r\nRCPT TO:<rcpt@example.com>\r\n';

describe.each(['mx', 'submission'] as const)('receiver %s port', (port) => {
  it.each(FAKE_ENDS)('DATA, pipelined: %s', async (name, seq) => {
    const marker = `RX-${port}-DATA-${name}`;
    const raw = `Subject: ${marker}\r\n\r\nhello${seq}${smuggledTransaction(marker)}\r\n`;
    const c = await session(port);
    c.send(`${envelope}DATA\r\n${raw}.\r\nNOOP\r\n`);
    const replies = await c.replies(5);
    expect(replies.slice(0, 3).map((r) => r.code)).toEqual([250, 250, 354]);
    expect(replies[4]!.raw).toBe('250 2.0.0 OK\r\n');
    if (hasBareLineEnding(raw)) {
      expect(replies[3]!.raw).toBe(
        '550 5.6.0 Message contains bare CR or LF characters (see RFC 5321 section 2.3.8)\r\n',
      );
    } else {
      expect(replies[3]!.code).toBe(250);
      accepted++;
      storedMarkers.push(marker);
    }
    expect((await c.command('RCPT TO:<x@example.com>')).raw).toBe('503 5.5.1 Need MAIL command first\r\n');
    c.close();
  });

  it.each(FAKE_ENDS)('BDAT: %s', async (name, seq) => {
    const marker = `RX-${port}-BDAT-${name}`;
    const payload = `Subject: ${marker}\r\n\r\nhello${seq}${smuggledTransaction(marker)}\r\n.\r\n`;
    const c = await session(port);
    c.send(`${envelope}BDAT ${payload.length} LAST\r\n${payload}NOOP\r\n`);
    const replies = await c.replies(4);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 250]);
    accepted++;
    storedMarkers.push(marker);
    expect((await c.command('RCPT TO:<x@example.com>')).raw).toBe('503 5.5.1 Need MAIL command first\r\n');
    c.close();
  });
});

describe('the store after the attacks', () => {
  it('holds exactly the acknowledged messages, each once, none from the smuggled sender', async () => {
    const names = readdirSync(store, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(store.length + 1));
    const a = await audit(names, async (n) => readFileSync(join(store, n)));
    expect(a.orphanEml).toEqual([]);
    expect(a.orphanJson).toEqual([]);
    expect(a.committed).toHaveLength(accepted);
    expect(a.committed.map((m) => m.json['mailFrom'])).not.toContain(EVIL_FROM);
    const markers = a.committed
      .map((m) => /RX-[a-z]+-[A-Z]+-[^\r\n]+/.exec(bodyAfterReceived(m.eml))?.[0])
      .sort();
    expect(markers).toEqual([...storedMarkers].sort());
    for (const m of a.committed) expect(bodyAfterReceived(m.eml)).toContain(`MAIL FROM:<${EVIL_FROM}>`);
  });
});
