/** Shared pieces of the receiver's end-to-end tests. */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { testPki } from '../../../test/support/tls.ts';
import { hashPassword } from '../../src/users.ts';

export { testPki };

export const USER = 'alice';
export const PASSWORD = 'correct horse battery staple';

/** A users file with alice ({SCRYPT}, low cost for tests) and bob ({PLAIN}). */
export async function usersFile(dir: string): Promise<string> {
  const path = join(dir, 'users');
  writeFileSync(
    path,
    `# test users\n${USER}:${await hashPassword(PASSWORD, { ln: 10 })}\nbob:{PLAIN}bob-secret\n`,
  );
  return path;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `receiver-e2e-${prefix}-`));
}

/**
 * A message with the things that must survive byte for byte: 8-bit text, a line that starts with
 * a dot (dot-stuffed on the wire), trailing spaces, an empty line at the end.
 */
export function rawMessage(tag: string, extraBytes = 0): Uint8Array {
  const text =
    `From: Zoë <zoe@example.org>\r\nTo: bob@example.com\r\nSubject: test ${tag}\r\n` +
    `Message-ID: <${tag}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Transfer-Encoding: 8bit\r\n\r\nGrüße, ${tag}.\r\n.leading dot\r\n..two dots\r\ntrailing   \r\n` +
    `${'x'.repeat(extraBytes)}\r\n\r\n`;
  return new TextEncoder().encode(text);
}

/** Split a stored .eml into our Received header and the rest. */
export function splitStored(eml: Uint8Array): { received: string; body: Uint8Array } {
  const text = Buffer.from(eml).toString('latin1');
  if (!text.startsWith('Received: ')) throw new Error('stored message does not start with Received:');
  let end = text.indexOf('\r\n');
  while (text[end + 2] === '\t' || text[end + 2] === ' ') end = text.indexOf('\r\n', end + 2);
  return { received: text.slice(0, end + 2), body: eml.subarray(end + 2) };
}

/** Files (relative paths) under a directory, recursively, dot files included. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .sort();
}

export function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

export interface SendOptions {
  port: number;
  ca: string;
  secure?: boolean;
  auth?: { user: string; pass: string };
  from?: string;
  to: string[];
  raw: Uint8Array;
  dsn?: boolean;
}

/** Send with nodemailer (STARTTLS required unless `secure`), the raw bytes as given. */
export async function sendWithNodemailer(o: SendOptions): Promise<{ response: string; accepted: unknown[] }> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: o.port,
    secure: o.secure ?? false,
    requireTLS: !o.secure,
    name: 'client.test.example',
    tls: { ca: o.ca, servername: 'localhost' },
    auth: o.auth,
  });
  try {
    const info = await transport.sendMail({
      envelope: { from: o.from ?? 'zoe@example.org', to: o.to },
      raw: Buffer.from(o.raw),
      ...(o.dsn
        ? {
            dsn: {
              id: 'env-1',
              return: 'headers',
              notify: ['failure', 'delay'],
              recipient: 'bob@example.com',
            },
          }
        : {}),
    });
    return { response: info.response, accepted: info.accepted };
  } finally {
    transport.close();
  }
}
