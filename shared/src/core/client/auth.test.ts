import { describe, expect, it } from 'vitest';
import { SmtpAuthError } from '../errors.ts';
import { authenticate, chooseMechanism } from './auth.ts';

const pw = { username: 'ann', password: 'pw' };

describe('chooseMechanism (RFC 4954)', () => {
  it('over TLS prefers PLAIN, then LOGIN, then CRAM-MD5', () => {
    expect(chooseMechanism(['LOGIN', 'PLAIN', 'CRAM-MD5'], pw, true)).toBe('PLAIN');
    expect(chooseMechanism(['CRAM-MD5', 'LOGIN'], pw, true)).toBe('LOGIN');
    expect(chooseMechanism(['cram-md5'], pw, true)).toBe('CRAM-MD5');
  });

  it('over clear text (allowInsecureAuth) prefers CRAM-MD5, which does not reveal the password', () => {
    expect(chooseMechanism(['PLAIN', 'LOGIN', 'CRAM-MD5'], pw, false)).toBe('CRAM-MD5');
  });

  it('uses XOAUTH2 for an access token', () => {
    expect(chooseMechanism(['PLAIN', 'XOAUTH2'], { username: 'ann', accessToken: 't' }, true)).toBe(
      'XOAUTH2',
    );
    expect(() => chooseMechanism(['PLAIN'], { username: 'ann', accessToken: 't' }, true)).toThrow(
      SmtpAuthError,
    );
  });

  it('honours a configured mechanism only when offered', () => {
    expect(chooseMechanism(['PLAIN', 'LOGIN'], { ...pw, mechanism: 'LOGIN' }, true)).toBe('LOGIN');
    expect(() => chooseMechanism(['PLAIN'], { ...pw, mechanism: 'LOGIN' }, true)).toThrow(
      /not the configured/,
    );
  });

  it('refuses when the server offers no AUTH', () => {
    expect(() => chooseMechanism(undefined, pw, true)).toThrow(/does not offer AUTH/);
  });
});

describe('authenticate', () => {
  it('CRAM-MD5: answers the challenge with user and HMAC-MD5 hex (RFC 2195 section 2)', async () => {
    // RFC 2195 section 2 example: challenge <1896.697170952@postoffice.reston.mci.net>, secret tanstaaftanstaaf.
    const sent: string[] = [];
    const replies = [
      { code: 334, enhancedCode: null, lines: [btoa('<1896.697170952@postoffice.reston.mci.net>')] },
      { code: 235, enhancedCode: '2.7.0' as const, lines: ['ok'] },
    ];
    const name = await authenticate(
      { send: async (l) => void sent.push(l), read: async () => replies.shift()! },
      ['CRAM-MD5'],
      { username: 'tim', password: 'tanstaaftanstaaf' },
      true,
    );
    expect(name).toBe('CRAM-MD5');
    expect(sent).toEqual(['AUTH CRAM-MD5', btoa('tim b913a602c7eda7a495b4e6e7334d3890')]);
  });

  it('cancels with * when the server sends a challenge the mechanism cannot answer', async () => {
    const sent: string[] = [];
    const replies = [
      { code: 334, enhancedCode: null, lines: ['not base64 !!'] },
      { code: 501, enhancedCode: '5.7.0' as const, lines: ['cancelled'] },
    ];
    await expect(
      authenticate(
        { send: async (l) => void sent.push(l), read: async () => replies.shift()! },
        ['PLAIN'],
        pw,
        true,
      ),
    ).rejects.toThrow(SmtpAuthError);
    expect(sent).toEqual([`AUTH PLAIN ${btoa('\0ann\0pw')}`, '*']);
  });
});
