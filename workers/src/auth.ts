/**
 * Bearer-token check for `POST /send` (RFC 6750 section 2.1) against the `API_KEYS` secret.
 *
 * Constant time: the presented token and every configured key are hashed with SHA-256 and the
 * fixed-length digests are compared without early exit, against every key, so neither the
 * length of a key nor the position of the first differing byte nor which key matched shows in
 * the response time.
 */

export type BearerCheck = 'ok' | 'missing' | 'invalid';

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

/**
 * The configured keys' digests, computed once per isolate rather than on every request (each
 * `crypto.subtle.digest` is an asynchronous call into the runtime). Which entries exist depends
 * only on the configuration, never on the presented token. Bounded: a rotated secret refills it.
 */
const keyDigests = new Map<string, Promise<Uint8Array>>();
const MAX_CACHED_KEYS = 64;

function keyDigest(key: string): Promise<Uint8Array> {
  let d = keyDigests.get(key);
  if (d === undefined) {
    if (keyDigests.size >= MAX_CACHED_KEYS) keyDigests.clear();
    d = digest(key);
    // A failed digest is not kept: the next request tries again.
    d.catch(() => keyDigests.delete(key));
    keyDigests.set(key, d);
  }
  return d;
}

function equalDigests(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive (RFC 9110 section 11.1). */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (header === null || header === undefined) return undefined;
  const match = /^[ \t]*bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*$/i.exec(header);
  return match?.[1];
}

export async function checkBearer(
  header: string | null | undefined,
  keys: readonly string[],
): Promise<BearerCheck> {
  if (header === null || header === undefined || header.trim() === '') return 'missing';
  const token = bearerToken(header);
  if (token === undefined) return 'invalid';
  const presented = await digest(token);
  let matched = false;
  for (const key of keys) {
    // No short circuit: every key's digest is compared.
    const same = equalDigests(presented, await keyDigest(key));
    matched = matched || same;
  }
  return matched ? 'ok' : 'invalid';
}

/** `WWW-Authenticate` for a 401 (RFC 6750 section 3): `error="invalid_token"` only when a token was sent. */
export function wwwAuthenticate(check: BearerCheck): string {
  return check === 'invalid' ? 'Bearer realm="smtp-edge", error="invalid_token"' : 'Bearer realm="smtp-edge"';
}
