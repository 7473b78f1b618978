/**
 * Server side of SMTP AUTH (RFC 4954) as small state machines with no I/O. The engine calls
 * `start` with the optional initial response from `AUTH <mechanism> [initial-response]`, then
 * `next` with each client line, and sends what each step asks: `334 <challenge>`, the error
 * reply, or (after checking `credentials`) 235 / 535.
 */
import { base64Decode, base64Encode } from '../encoding/base64.ts';
import { isValidUtf8, timingSafeEqual, utf8Decode, utf8Encode } from '../encoding/bytes.ts';
import { hmacMd5 } from '../encoding/md5.ts';
import { SmtpConfigError } from '../errors.ts';
import type { SmtpReply } from '../status.ts';
import type { SaslMechanismName } from './mechanisms.ts';

export interface SaslCredentials {
  mechanism: SaslMechanismName;
  /** PLAIN: the identity to act as, when the client gave one different from none (RFC 4616 section 2). */
  authzid?: string;
  /** The authentication identity (PLAIN authcid, LOGIN user name, CRAM-MD5 user, XOAUTH2 `user=`). */
  username: string;
  /** PLAIN and LOGIN: the password the client sent. */
  password?: string;
  /** CRAM-MD5: the challenge sent (RFC 2195 section 2). */
  challenge?: string;
  /** CRAM-MD5: the client's digest, 32 lower-case hex digits. */
  response?: string;
  /** CRAM-MD5: true when `response` is HMAC-MD5(secret, challenge); compares in constant time. */
  verify?(secret: string): boolean;
  /** XOAUTH2: the bearer token. */
  token?: string;
}

export type SaslStep =
  | { kind: 'challenge'; challenge: string }
  | { kind: 'done'; credentials: SaslCredentials }
  | { kind: 'error'; reply: SmtpReply };

export interface ServerMechanism {
  readonly name: SaslMechanismName;
  /** `initialResponse` is the AUTH command's second argument as sent (base64, or `=` for empty). */
  start(initialResponse: string | undefined): SaslStep;
  /** One client line after a `334` challenge (`*` cancels). */
  next(line: string): SaslStep;
}

export interface ServerMechanismOptions {
  /** Host name in the CRAM-MD5 challenge `<random.timestamp@hostname>` (RFC 2195 section 2). */
  hostname: string;
  /** Unique part of the CRAM-MD5 challenge; default: 64 random bits and the time, in digits. */
  nonce?: () => string;
}

// RFC 4954 section 4 replies.
const CANCELLED: SmtpReply = { code: 501, enhancedCode: '5.7.0', lines: ['Authentication cancelled'] };
const UNDECODABLE: SmtpReply = { code: 501, enhancedCode: '5.5.2', lines: ['Cannot decode response'] };
const NO_INITIAL: SmtpReply = {
  code: 501,
  enhancedCode: '5.7.0',
  lines: ['Initial response not allowed for this mechanism'],
};
const OUT_OF_SEQUENCE: SmtpReply = {
  code: 503,
  enhancedCode: '5.5.1',
  lines: ['Authentication already finished'],
};

function malformed(what: string): SaslStep {
  return {
    kind: 'error',
    reply: { code: 501, enhancedCode: '5.5.2', lines: [`Malformed ${what} response`] },
  };
}

type Decoded = { ok: true; bytes: Uint8Array } | { ok: false; step: SaslStep };

/** A client response line: `*` cancels, anything else must be strict base64 (RFC 4954 section 4). */
function decodeLine(line: string): Decoded {
  if (line === '*') return { ok: false, step: { kind: 'error', reply: CANCELLED } };
  try {
    return { ok: true, bytes: base64Decode(line) };
  } catch {
    return { ok: false, step: { kind: 'error', reply: UNDECODABLE } };
  }
}

/** The initial response: `=` is the empty response (RFC 4954 section 4). */
function decodeInitial(ir: string): Decoded {
  if (ir === '=') return { ok: true, bytes: new Uint8Array(0) };
  if (ir === '*') return { ok: false, step: { kind: 'error', reply: UNDECODABLE } };
  return decodeLine(ir);
}

function challenge(text: string): SaslStep {
  return { kind: 'challenge', challenge: base64Encode(utf8Encode(text)) };
}

/**
 * Shared skeleton: the mechanism is a list of handlers for successive client messages; after
 * the last one (or an error) further calls answer 503.
 */
function machine(
  name: SaslMechanismName,
  onStart: (ir: Uint8Array | undefined) => SaslStep,
  onNext: (bytes: Uint8Array) => SaslStep,
): ServerMechanism {
  let state: 'new' | 'running' | 'finished' = 'new';
  const settle = (step: SaslStep): SaslStep => {
    if (step.kind !== 'challenge') state = 'finished';
    return step;
  };
  return {
    name,
    start(initialResponse) {
      if (state !== 'new') return { kind: 'error', reply: OUT_OF_SEQUENCE };
      state = 'running';
      if (initialResponse === undefined) return settle(onStart(undefined));
      const d = decodeInitial(initialResponse);
      return settle(d.ok ? onStart(d.bytes) : d.step);
    },
    next(line) {
      if (state !== 'running') return { kind: 'error', reply: OUT_OF_SEQUENCE };
      const d = decodeLine(line);
      return settle(d.ok ? onNext(d.bytes) : d.step);
    },
  };
}

/** PLAIN, RFC 4616 section 2: `[authzid] NUL authcid NUL passwd`, UTF-8, no NUL inside parts. */
function plain(): ServerMechanism {
  const parse = (bytes: Uint8Array): SaslStep => {
    if (!isValidUtf8(bytes)) return malformed('PLAIN');
    const parts = utf8Decode(bytes).split('\0');
    if (parts.length !== 3) return malformed('PLAIN');
    const [authzid, username, password] = parts as [string, string, string];
    // authcid and passwd are 1*SAFE (RFC 4616 section 2); authzid may be empty (absent).
    if (username === '' || password === '') return malformed('PLAIN');
    // RFC 4616 section 2: at most 255 octets each (a server "MUST be capable of accepting"
    // that much; more is allowed, but bounded here by the AUTH line length anyway).
    const credentials: SaslCredentials = { mechanism: 'PLAIN', username, password };
    if (authzid !== '') credentials.authzid = authzid;
    return { kind: 'done', credentials };
  };
  // Without an initial response, send an empty challenge ("334 ") and read the message next.
  return machine(
    'PLAIN',
    (ir) => (ir === undefined ? { kind: 'challenge', challenge: '' } : parse(ir)),
    parse,
  );
}

const USERNAME_PROMPT = 'Username:';
const PASSWORD_PROMPT = 'Password:';

/**
 * LOGIN (draft-murchison-sasl-login): `334 VXNlcm5hbWU6` ("Username:"), then
 * `334 UGFzc3dvcmQ6` ("Password:"). An initial response, if sent, is the user name.
 */
function login(): ServerMechanism {
  let username: string | null = null;
  const takeUser = (bytes: Uint8Array): SaslStep => {
    if (bytes.length === 0 || !isValidUtf8(bytes)) return malformed('LOGIN');
    username = utf8Decode(bytes);
    if (username.includes('\0')) return malformed('LOGIN');
    return challenge(PASSWORD_PROMPT);
  };
  return machine(
    'LOGIN',
    (ir) => (ir === undefined ? challenge(USERNAME_PROMPT) : takeUser(ir)),
    (bytes) => {
      if (username === null) return takeUser(bytes);
      if (!isValidUtf8(bytes)) return malformed('LOGIN');
      const password = utf8Decode(bytes);
      if (password.includes('\0')) return malformed('LOGIN');
      return { kind: 'done', credentials: { mechanism: 'LOGIN', username, password } };
    },
  );
}

function defaultNonce(): string {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return `${words[0]}${words[1]}.${Date.now()}`;
}

/**
 * CRAM-MD5, RFC 2195 section 2: challenge `<random.timestamp@hostname>`; the client answers
 * `user SP hex(HMAC-MD5(secret, challenge))`.
 */
function cramMd5(options: ServerMechanismOptions): ServerMechanism {
  const text = `<${(options.nonce ?? defaultNonce)()}@${options.hostname}>`;
  return machine(
    'CRAM-MD5',
    (ir) => (ir === undefined ? challenge(text) : { kind: 'error', reply: NO_INITIAL }),
    (bytes) => {
      if (!isValidUtf8(bytes)) return malformed('CRAM-MD5');
      const answer = utf8Decode(bytes);
      const sp = answer.lastIndexOf(' ');
      const username = answer.slice(0, sp);
      const digest = answer.slice(sp + 1).toLowerCase();
      if (sp <= 0 || !/^[0-9a-f]{32}$/.test(digest) || username.includes('\0')) return malformed('CRAM-MD5');
      const expected = Uint8Array.from(digest.match(/../g)!, (h) => Number.parseInt(h, 16));
      const challengeBytes = utf8Encode(text);
      return {
        kind: 'done',
        credentials: {
          mechanism: 'CRAM-MD5',
          username,
          challenge: text,
          response: digest,
          verify: (secret: string) => timingSafeEqual(hmacMd5(utf8Encode(secret), challengeBytes), expected),
        },
      };
    },
  );
}

/**
 * XOAUTH2 (Google / Microsoft SASL XOAUTH2 profile): `user=<name>^Aauth=Bearer <token>^A^A`.
 * After a refused token a server sends a `334` with a base64 JSON error and expects an empty
 * line before its 535; `xoauth2ErrorChallenge` builds that challenge.
 */
function xoauth2(): ServerMechanism {
  const parse = (bytes: Uint8Array): SaslStep => {
    if (!isValidUtf8(bytes)) return malformed('XOAUTH2');
    const text = utf8Decode(bytes);
    if (!text.endsWith('\x01\x01')) return malformed('XOAUTH2');
    let username: string | undefined;
    let token: string | undefined;
    for (const field of text.slice(0, -2).split('\x01')) {
      const eq = field.indexOf('=');
      if (eq <= 0) return malformed('XOAUTH2');
      const key = field.slice(0, eq);
      const value = field.slice(eq + 1);
      if (key === 'user') username = value;
      else if (key === 'auth') {
        const m = /^Bearer ([\x21-\x7e]+)$/i.exec(value);
        if (m === null) return malformed('XOAUTH2');
        token = m[1];
      }
    }
    if (username === undefined || username === '' || token === undefined || username.includes('\0')) {
      return malformed('XOAUTH2');
    }
    return { kind: 'done', credentials: { mechanism: 'XOAUTH2', username, token } };
  };
  return machine(
    'XOAUTH2',
    (ir) => (ir === undefined ? { kind: 'challenge', challenge: '' } : parse(ir)),
    parse,
  );
}

/** The base64 JSON error challenge an XOAUTH2 server sends after refusing a token. */
export function xoauth2ErrorChallenge(status = '401', scope?: string): string {
  const body: Record<string, string> = { status, schemes: 'Bearer' };
  if (scope !== undefined) body['scope'] = scope;
  return base64Encode(utf8Encode(JSON.stringify(body)));
}

/** A fresh server-side mechanism for one AUTH command. */
export function createServerMechanism(
  name: SaslMechanismName,
  options: ServerMechanismOptions,
): ServerMechanism {
  switch (name) {
    case 'PLAIN':
      return plain();
    case 'LOGIN':
      return login();
    case 'CRAM-MD5':
      return cramMd5(options);
    case 'XOAUTH2':
      return xoauth2();
    default:
      // Only reachable from untyped callers: check names with `isSaslMechanismName` first.
      throw new SmtpConfigError(`unknown SASL mechanism ${String(name)}`);
  }
}
