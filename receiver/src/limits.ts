/**
 * Per-address and per-user abuse limits, with bounded memory: each table holds at most `maxKeys`
 * entries and drops the least recently touched one when full.
 *
 * - `AuthLockout`: after `maxFailures` failed AUTH attempts (by client address, IPv6 by /64, and by
 *   user name), further attempts are refused without checking the password until `lockoutMs` has
 *   passed since the last failure. A success clears the user's count, never the address's.
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
  maxFailuresPerIp: number;
  maxFailuresPerUser: number;
  lockoutMs: number;
  maxKeys?: number;
  now?: Clock;
}

export class AuthLockout {
  private readonly byIp: BoundedMap<Failures>;
  private readonly byUser: BoundedMap<Failures>;
  private readonly o: Required<AuthLockoutOptions>;

  constructor(options: AuthLockoutOptions) {
    this.o = { maxKeys: 100_000, now: Date.now, ...options };
    this.byIp = new BoundedMap(this.o.maxKeys);
    this.byUser = new BoundedMap(this.o.maxKeys);
  }

  private active(f: Failures | undefined, max: number): boolean {
    return f !== undefined && f.count >= max && this.o.now() - f.last < this.o.lockoutMs;
  }

  /** `ip`, `user` or null: which lock (if any) refuses this attempt. */
  locked(address: string, user: string): 'ip' | 'user' | null {
    if (this.active(this.byIp.get(limitKey(address)), this.o.maxFailuresPerIp)) return 'ip';
    if (this.active(this.byUser.get(user.toLowerCase()), this.o.maxFailuresPerUser)) return 'user';
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
    if (user !== '') bump(this.byUser, user.toLowerCase());
  }

  success(user: string): void {
    this.byUser.delete(user.toLowerCase());
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
