/**
 * Per-address abuse limits, with bounded memory: each table holds at most `maxKeys` entries and drops
 * the least recently touched one when full.
 *
 * - `AuthLockout`: failed AUTH attempts are counted per client address (IPv6 by /64) and per pair
 *   (client address, user name). Once either count reaches its limit, further attempts that it covers
 *   are refused without checking the password, until `lockoutMs` has passed since its last failure:
 *   - the address lock (`maxFailuresPerIp`) is hard: it covers every user name from that address, and
 *     a success does not clear it (a valid account must not reset an attacker's count);
 *   - the pair lock (`maxFailuresPerUser`) covers only that user name from that address; a success
 *     from that address clears it.
 *   There is deliberately no lock on a user name alone: it would let anyone lock a real user out by
 *   failing for that name from anywhere. A correct password from an address that is not locked itself
 *   succeeds whatever other addresses did (review finding 9). The cost: a guesser with many addresses
 *   gets `maxFailuresPerIp` tries per address per lockout period; slow password hashing ({SCRYPT})
 *   and long passwords are the defence there.
 *   (RFC 4954 section 9 lets a server limit failed attempts; it refuses with 454 4.7.0, section 6.)
 * - `MessageRate`: a token bucket per client address: `perMinute` transactions, refilled evenly.
 */
import { limitKey } from './cidr.ts';

type Clock = () => number;

class BoundedMap<V> {
  private readonly map = new Map<string, V>();
  private readonly maxKeys: number;
  constructor(maxKeys: number) {
    this.maxKeys = maxKeys;
  }
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.maxKeys) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
}

interface Failures {
  count: number;
  last: number;
}

export interface AuthLockoutOptions {
  /** Failures from one address (any user names) before the address is locked. */
  maxFailuresPerIp: number;
  /** Failures for one user name from one address before that pair is locked. */
  maxFailuresPerUser: number;
  lockoutMs: number;
  maxKeys?: number;
  now?: Clock;
}

/** Which lock refused an attempt: the whole address, or this user name from this address. */
export type AuthLock = 'ip' | 'ip_user';

export class AuthLockout {
  private readonly byIp: BoundedMap<Failures>;
  private readonly byIpUser: BoundedMap<Failures>;
  private readonly o: Required<AuthLockoutOptions>;

  constructor(options: AuthLockoutOptions) {
    this.o = { maxKeys: 100_000, now: Date.now, ...options };
    this.byIp = new BoundedMap(this.o.maxKeys);
    this.byIpUser = new BoundedMap(this.o.maxKeys);
  }

  private active(f: Failures | undefined, max: number): boolean {
    return f !== undefined && f.count >= max && this.o.now() - f.last < this.o.lockoutMs;
  }

  /** The pair key: the address key and the case-folded user name, separated by a NUL (in neither). */
  private static pairKey(address: string, user: string): string {
    return `${limitKey(address)}\u0000${user.toLowerCase()}`;
  }

  /** `ip`, `ip_user` or null: which lock (if any) refuses this attempt. */
  locked(address: string, user: string): AuthLock | null {
    if (this.active(this.byIp.get(limitKey(address)), this.o.maxFailuresPerIp)) return 'ip';
    if (this.active(this.byIpUser.get(AuthLockout.pairKey(address, user)), this.o.maxFailuresPerUser))
      return 'ip_user';
    return null;
  }

  failure(address: string, user: string): void {
    const now = this.o.now();
    const bump = (table: BoundedMap<Failures>, key: string) => {
      const f = table.get(key);
      const fresh = f === undefined || now - f.last >= this.o.lockoutMs;
      table.set(key, { count: fresh ? 1 : f.count + 1, last: now });
    };
    bump(this.byIp, limitKey(address));
    if (user !== '') bump(this.byIpUser, AuthLockout.pairKey(address, user));
  }

  /** A correct password: clears this (address, user) count; the address count stays. */
  success(address: string, user: string): void {
    this.byIpUser.delete(AuthLockout.pairKey(address, user));
  }
}

interface Bucket {
  tokens: number;
  at: number;
}

export class MessageRate {
  private readonly buckets: BoundedMap<Bucket>;
  private readonly perMinute: number;
  private readonly now: Clock;

  /** `perMinute` 0 means unlimited. */
  constructor(perMinute: number, options: { maxKeys?: number; now?: Clock } = {}) {
    this.perMinute = perMinute;
    this.now = options.now ?? Date.now;
    this.buckets = new BoundedMap(options.maxKeys ?? 100_000);
  }

  /** Take one token for `address`; false when the address is over its rate. */
  take(address: string): boolean {
    if (this.perMinute === 0) return true;
    const key = limitKey(address);
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.perMinute, at: now };
    const tokens = Math.min(this.perMinute, b.tokens + ((now - b.at) * this.perMinute) / 60_000);
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now });
      return false;
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return true;
  }
}
