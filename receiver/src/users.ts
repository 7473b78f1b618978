/**
 * Submission credentials: RECEIVER_USERS_FILE, one `name:{SCHEME}data` per line (Dovecot passwd-file
 * style; anything after a further `:` is ignored, so Dovecot files with uid/gid/home fields load too).
 *
 * Schemes:
 * - `{SCRYPT}$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>` (PHC string format, unpadded base64),
 *   made by `npm run receiver -- hash-password`. Verified with node:crypto scrypt + timingSafeEqual.
 * - `{PLAIN}secret` (no `:` in the secret) and `{PLAIN.B64}base64`: clear-text secrets. CRAM-MD5
 *   (RFC 2195) needs them, because the server must compute an HMAC keyed with the password.
 * Blank lines and lines starting with `#` are ignored.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export type Scheme = 'SCRYPT' | 'PLAIN';

interface ScryptParams {
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

type Secret = { scheme: 'SCRYPT'; params: ScryptParams } | { scheme: 'PLAIN'; password: string };

/** Default cost: N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds per verification). */
export const SCRYPT_DEFAULTS = { ln: 15, r: 8, p: 1, saltBytes: 16, hashBytes: 32 } as const;

// Upper bounds for parameters read from the file, so a typo cannot make every AUTH take minutes or
// exhaust memory: 128 * N * r * p bytes at most 1 GiB.
const MAX_SCRYPT_MEMORY = 1024 * 1024 * 1024;

export class UsersFileError extends Error {
  override name = 'UsersFileError';
}

function scrypt(
  password: string | Buffer,
  salt: Buffer,
  keylen: number,
  ln: number,
  r: number,
  p: number,
): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, { N, r, p, maxmem: 128 * N * r * p + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

/** `{SCRYPT}$scrypt$ln=15,r=8,p=1$<salt>$<hash>` for `password`. */
export async function hashPassword(
  password: string,
  cost: { ln?: number; r?: number; p?: number } = {},
): Promise<string> {
  const ln = cost.ln ?? SCRYPT_DEFAULTS.ln;
  const r = cost.r ?? SCRYPT_DEFAULTS.r;
  const p = cost.p ?? SCRYPT_DEFAULTS.p;
  const salt = randomBytes(SCRYPT_DEFAULTS.saltBytes);
  const hash = await scrypt(password.normalize('NFC'), salt, SCRYPT_DEFAULTS.hashBytes, ln, r, p);
  return `{SCRYPT}$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(hash)}`;
}

function parseScrypt(data: string): ScryptParams | null {
  const m =
    /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/.exec(
      data,
    );
  if (!m) return null;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 1 || ln > 24 || r < 1 || p < 1 || 128 * 2 ** ln * r * p > MAX_SCRYPT_MEMORY) return null;
  const salt = Buffer.from(m[4]!, 'base64');
  const hash = Buffer.from(m[5]!, 'base64');
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return null;
  return { ln, r, p, salt, hash };
}

function parseSecret(field: string): Secret | null {
  const m = /^\{([A-Za-z0-9.-]+)\}(.*)$/.exec(field);
  if (!m) return null;
  const scheme = m[1]!.toUpperCase();
  const data = m[2]!;
  if (scheme === 'SCRYPT') {
    const params = parseScrypt(data);
    return params === null ? null : { scheme: 'SCRYPT', params };
  }
  if (scheme === 'PLAIN' || scheme === 'CLEAR' || scheme === 'CLEARTEXT') {
    return data === '' ? null : { scheme: 'PLAIN', password: data };
  }
  if (scheme === 'PLAIN.B64' || scheme === 'PLAIN.BASE64') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data)) return null;
    const password = Buffer.from(data, 'base64').toString('utf8');
    return password === '' ? null : { scheme: 'PLAIN', password };
  }
  return null;
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest();

export class UserDb {
  private readonly users: ReadonlyMap<string, Secret>;
  /** A real scrypt hash verified for unknown users, so that a wrong name costs the same time as a wrong password. */
  private readonly decoy: ScryptParams;

  private constructor(users: Map<string, Secret>) {
    this.users = users;
    this.decoy = { ...SCRYPT_DEFAULTS, salt: randomBytes(16), hash: randomBytes(32) };
  }

  /** Parse a users file. Throws `UsersFileError` naming the line of the first problem. */
  static parse(text: string): UserDb {
    const users = new Map<string, Secret>();
    const lines = text.split(/\r?\n/);
    lines.forEach((line, i) => {
      if (line.trim() === '' || line.trimStart().startsWith('#')) return;
      const colon = line.indexOf(':');
      const name = colon < 0 ? '' : line.slice(0, colon);
      if (!/^[^\s:\x00-\x1f\x7f]{1,256}$/.test(name)) {
        throw new UsersFileError(`line ${i + 1}: expected name:{SCHEME}data`);
      }
      const field = line.slice(colon + 1).split(':')[0] ?? '';
      const secret = parseSecret(field);
      if (secret === null) {
        throw new UsersFileError(
          `line ${i + 1} (${name}): unsupported or malformed secret; use {SCRYPT}… from hash-password, {PLAIN}… or {PLAIN.B64}…`,
        );
      }
      if (users.has(name)) throw new UsersFileError(`line ${i + 1}: user ${name} is listed twice`);
      users.set(name, secret);
    });
    return new UserDb(users);
  }

  static async load(path: string): Promise<UserDb> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new UsersFileError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    return UserDb.parse(text);
  }

  get size(): number {
    return this.users.size;
  }

  /**
   * CRAM-MD5 is offered only when every user has a clear-text secret: a client that picks
   * CRAM-MD5 (many prefer it when offered) would otherwise fail for users with a hashed password.
   */
  get everyUserHasPlainSecret(): boolean {
    if (this.users.size === 0) return false;
    for (const s of this.users.values()) if (s.scheme !== 'PLAIN') return false;
    return true;
  }

  /** The clear-text secret for challenge-response mechanisms, or null. */
  plainSecret(name: string): string | null {
    const s = this.users.get(name);
    return s?.scheme === 'PLAIN' ? s.password : null;
  }

  /** Check a password. Unknown users and wrong passwords take comparable time. */
  async verify(name: string, password: string): Promise<boolean> {
    const s = this.users.get(name);
    if (s === undefined) {
      const d = this.decoy;
      await scrypt(password.normalize('NFC'), d.salt, d.hash.length, d.ln, d.r, d.p);
      return false;
    }
    if (s.scheme === 'PLAIN') return timingSafeEqual(sha256(password), sha256(s.password));
    const { ln, r, p, salt, hash } = s.params;
    const got = await scrypt(password.normalize('NFC'), salt, hash.length, ln, r, p);
    return timingSafeEqual(got, hash);
  }
}
