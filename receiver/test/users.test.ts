import { describe, expect, it } from 'vitest';
import { AuthLockout, MessageRate } from '../src/limits.ts';
import { hashPassword, UserDb, UsersFileError } from '../src/users.ts';

describe('users file', () => {
  it('verifies {SCRYPT} hashes made by hashPassword, and {PLAIN} / {PLAIN.B64} secrets', async () => {
    const hash = await hashPassword('correct horse', { ln: 10 });
    expect(hash).toMatch(/^\{SCRYPT\}\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    const db = UserDb.parse(
      `# comment\n\nalice:${hash}\nbob:{PLAIN}s3cret\ncarol:{PLAIN.B64}${Buffer.from('a:b').toString('base64')}::1000:1000::/home/carol\n`,
    );
    expect(db.size).toBe(3);
    expect(await db.verify('alice', 'correct horse')).toBe(true);
    expect(await db.verify('alice', 'correct horsE')).toBe(false);
    expect(await db.verify('bob', 's3cret')).toBe(true);
    expect(await db.verify('bob', 's3cret ')).toBe(false);
    expect(await db.verify('carol', 'a:b')).toBe(true);
    expect(await db.verify('mallory', 'anything')).toBe(false);
    expect(await db.verify('Alice', 'correct horse')).toBe(false);
    expect(db.plainSecret('bob')).toBe('s3cret');
    expect(db.plainSecret('alice')).toBeNull();
    expect(db.everyUserHasPlainSecret).toBe(false);
    expect(UserDb.parse('bob:{PLAIN}x\n').everyUserHasPlainSecret).toBe(true);
  });

  it('normalizes Unicode passwords (NFC) on both sides', async () => {
    const hash = await hashPassword('caf\u00e9', { ln: 10 });
    const db = UserDb.parse(`u:${hash}`);
    expect(await db.verify('u', 'cafe\u0301')).toBe(true);
  });

  it.each([
    ['nocolon', /line 1/],
    ['u:{MD5}abc', /line 1 \(u\)/],
    ['u:{SCRYPT}$scrypt$ln=30,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA', /line 1/],
    ['u:{PLAIN}', /line 1/],
    ['u:{PLAIN}a\nu:{PLAIN}b', /line 2: user u is listed twice/],
    [' :{PLAIN}x', /line 1/],
  ])('refuses %j', (text, msg) => {
    expect(() => UserDb.parse(text)).toThrow(UsersFileError);
    expect(() => UserDb.parse(text)).toThrow(msg);
  });
});

describe('AuthLockout', () => {
  it('locks an address after N failures, for the lockout time since the last failure', () => {
    let now = 0;
    const l = new AuthLockout({
      maxFailuresPerIp: 3,
      maxFailuresPerUser: 100,
      lockoutMs: 1000,
      now: () => now,
    });
    for (let i = 0; i < 2; i++) l.failure('192.0.2.1', `u${i}`);
    expect(l.locked('192.0.2.1', 'x')).toBeNull();
    l.failure('192.0.2.1', 'u3');
    expect(l.locked('192.0.2.1', 'x')).toBe('ip');
    expect(l.locked('192.0.2.2', 'x')).toBeNull();
    now = 999;
    expect(l.locked('192.0.2.1', 'x')).toBe('ip');
    now = 1000;
    expect(l.locked('192.0.2.1', 'x')).toBeNull();
  });

  it('failures for a user from other addresses never lock that user out (review finding 9)', () => {
    const l = new AuthLockout({ maxFailuresPerIp: 3, maxFailuresPerUser: 2, lockoutMs: 1000, now: () => 0 });
    // Twenty addresses each fail once for bob: bob from a clean address is not locked.
    for (let i = 1; i <= 20; i++) l.failure(`192.0.2.${i}`, 'bob');
    expect(l.locked('198.51.100.9', 'bob')).toBeNull();
    expect(l.locked('198.51.100.9', 'BOB')).toBeNull();
    // An address that failed once for bob is not locked either (below both limits).
    expect(l.locked('192.0.2.1', 'bob')).toBeNull();
  });

  it('locks (address, user) after maxFailuresPerUser; success from that address clears the pair only', () => {
    const l = new AuthLockout({ maxFailuresPerIp: 5, maxFailuresPerUser: 2, lockoutMs: 1000, now: () => 0 });
    l.failure('192.0.2.1', 'Bob');
    l.success('192.0.2.1', 'bob');
    l.failure('192.0.2.1', 'bob');
    expect(l.locked('192.0.2.1', 'bob')).toBeNull();
    l.failure('192.0.2.1', 'BOB');
    expect(l.locked('192.0.2.1', 'bob')).toBe('ip_user');
    // Only that pair: another user from that address, and bob from another address, go on.
    expect(l.locked('192.0.2.1', 'alice')).toBeNull();
    expect(l.locked('192.0.2.2', 'bob')).toBeNull();
    // The address has 3 failures (one before the success): a success for the pair does not clear them.
    l.success('192.0.2.1', 'bob');
    expect(l.locked('192.0.2.1', 'bob')).toBeNull();
    l.failure('192.0.2.1', 'carol');
    l.failure('192.0.2.1', 'dave');
    expect(l.locked('192.0.2.1', 'bob')).toBe('ip');
    expect(l.locked('192.0.2.1', 'erin')).toBe('ip');
    l.success('192.0.2.1', 'bob');
    expect(l.locked('192.0.2.1', 'bob')).toBe('ip');
  });

  it('keys the (address, user) pair by the IPv6 /64 too', () => {
    const l = new AuthLockout({
      maxFailuresPerIp: 100,
      maxFailuresPerUser: 2,
      lockoutMs: 1000,
      now: () => 0,
    });
    l.failure('2001:db8::1', 'bob');
    l.failure('2001:db8::2', 'bob');
    expect(l.locked('2001:db8::ffff', 'bob')).toBe('ip_user');
    expect(l.locked('2001:db8:0:1::1', 'bob')).toBeNull();
  });

  it('treats an IPv6 /64 as one address and stays bounded', () => {
    const l = new AuthLockout({
      maxFailuresPerIp: 2,
      maxFailuresPerUser: 100,
      lockoutMs: 1000,
      maxKeys: 10,
      now: () => 0,
    });
    l.failure('2001:db8::1', 'a');
    l.failure('2001:db8::2', 'b');
    expect(l.locked('2001:db8::ffff', 'c')).toBe('ip');
    for (let i = 0; i < 50; i++) l.failure(`10.0.0.${i}`, `z${i}`);
    // The oldest entries were evicted, so the table never grew past maxKeys.
    expect(l.locked('2001:db8::ffff', 'c')).toBeNull();
  });
});

describe('MessageRate', () => {
  it('allows N per minute per address, refilling evenly', () => {
    let now = 0;
    const r = new MessageRate(3, { now: () => now });
    expect([r.take('192.0.2.1'), r.take('192.0.2.1'), r.take('192.0.2.1'), r.take('192.0.2.1')]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(r.take('192.0.2.2')).toBe(true);
    now = 20_000; // one token back
    expect(r.take('192.0.2.1')).toBe(true);
    expect(r.take('192.0.2.1')).toBe(false);
    expect(new MessageRate(0).take('x')).toBe(true);
  });
});
