import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCommand, splitPathArgument } from './command.ts';

const enc = new TextEncoder();

describe('parseCommand', () => {
  it('splits verb and arguments, upper-casing the verb', () => {
    expect(parseCommand('ehlo client.example')).toEqual({
      kind: 'command',
      verb: 'EHLO',
      args: 'client.example',
    });
    expect(parseCommand('MAIL FROM:<a@b> SIZE=10  ')).toEqual({
      kind: 'command',
      verb: 'MAIL',
      args: 'FROM:<a@b> SIZE=10',
    });
    expect(parseCommand('QUIT')).toEqual({ kind: 'command', verb: 'QUIT', args: '' });
    expect(parseCommand('STARTTLS')).toEqual({ kind: 'command', verb: 'STARTTLS', args: '' });
  });

  it('accepts raw octets that are UTF-8', () => {
    expect(parseCommand(enc.encode('RCPT TO:<jösé@exämple.org>'))).toEqual({
      kind: 'command',
      verb: 'RCPT',
      args: 'TO:<jösé@exämple.org>',
    });
  });

  it('refuses empty lines, bad verbs, control characters and malformed UTF-8', () => {
    expect(parseCommand('')).toEqual({ kind: 'invalid', reason: 'empty' });
    expect(parseCommand(' HELO x')).toEqual({ kind: 'invalid', reason: 'bad-verb' });
    expect(parseCommand('HE:LO x')).toEqual({ kind: 'invalid', reason: 'bad-verb' });
    expect(parseCommand('NOOP\rQUIT')).toEqual({ kind: 'invalid', reason: 'control-character' });
    expect(parseCommand('MAIL FROM:<a\x00@b>')).toEqual({ kind: 'invalid', reason: 'control-character' });
    expect(parseCommand('RCPT TO:<a@b>\nDATA')).toEqual({ kind: 'invalid', reason: 'control-character' });
    expect(parseCommand(Uint8Array.of(0x48, 0x45, 0x4c, 0x4f, 0x20, 0xff))).toEqual({
      kind: 'invalid',
      reason: 'not-utf8',
    });
  });

  it('never throws on arbitrary octets', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const r = parseCommand(b);
        expect(['command', 'invalid']).toContain(r.kind);
      }),
    );
  });
});

describe('splitPathArgument', () => {
  it('splits the path from the parameters', () => {
    expect(splitPathArgument('FROM:<a@b.example> SIZE=100 BODY=8BITMIME', 'FROM')).toEqual({
      kind: 'path',
      path: '<a@b.example>',
      params: 'SIZE=100 BODY=8BITMIME',
    });
    expect(splitPathArgument('FROM:<>', 'FROM')).toEqual({ kind: 'path', path: '<>', params: '' });
    expect(splitPathArgument('to:<postmaster>', 'TO')).toEqual({
      kind: 'path',
      path: '<postmaster>',
      params: '',
    });
  });

  it('tolerates white space after the colon', () => {
    expect(splitPathArgument('FROM: <a@b>', 'FROM')).toMatchObject({ kind: 'path', path: '<a@b>' });
  });

  it('honours quoted strings inside the path', () => {
    expect(splitPathArgument('TO:<"a>b"@c.example> NOTIFY=NEVER', 'TO')).toEqual({
      kind: 'path',
      path: '<"a>b"@c.example>',
      params: 'NOTIFY=NEVER',
    });
    expect(splitPathArgument('TO:<"a\\">b"@c.example>', 'TO')).toMatchObject({
      path: '<"a\\">b"@c.example>',
    });
  });

  it('reports a missing keyword or a malformed path', () => {
    expect(splitPathArgument('TO:<a@b>', 'FROM')).toEqual({ kind: 'error', reason: 'keyword' });
    expect(splitPathArgument('FROM', 'FROM')).toEqual({ kind: 'error', reason: 'keyword' });
    expect(splitPathArgument('FROM:a@b', 'FROM')).toEqual({ kind: 'error', reason: 'syntax' });
    expect(splitPathArgument('FROM:<a@b', 'FROM')).toEqual({ kind: 'error', reason: 'syntax' });
    expect(splitPathArgument('FROM:<a@b>SIZE=1', 'FROM')).toEqual({ kind: 'error', reason: 'syntax' });
    expect(splitPathArgument('FROM:<a<b>', 'FROM')).toEqual({ kind: 'error', reason: 'syntax' });
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.constantFrom('FROM' as const, 'TO' as const), (s, k) => {
        const r = splitPathArgument(`${k}:${s}`, k);
        expect(['path', 'error']).toContain(r.kind);
      }),
    );
  });
});
