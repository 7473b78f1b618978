/**
 * AUTH (RFC 4954) from the client side: choose a mechanism the server offers and run the
 * challenge/response exchange. The mechanisms themselves (PLAIN RFC 4616, LOGIN, CRAM-MD5
 * RFC 2195, XOAUTH2) live in `core/sasl`.
 */
import { SmtpAuthError, SmtpProtocolError } from '../errors.ts';
import { createClientMechanism } from '../sasl/client.ts';
import type { SaslMechanismName } from '../sasl/mechanisms.ts';
import { replyToString, type SmtpReply } from '../status.ts';
import type { SmtpClientOptions } from './options.ts';

/** How the session lets the AUTH exchange talk to the server. */
export interface AuthExchange {
  send(line: string): Promise<void>;
  read(): Promise<SmtpReply>;
}

type Credentials = NonNullable<SmtpClientOptions['auth']>;

/** Most 334 rounds we answer: PLAIN/XOAUTH2 need 0-1, LOGIN 2, CRAM-MD5 1. */
const MAX_ROUNDS = 5;

/**
 * Pick the mechanism: the configured one when the server offers it; XOAUTH2 for an access
 * token; for a password over TLS PLAIN, then LOGIN, then CRAM-MD5, and over clear text (only
 * with allowInsecureAuth) CRAM-MD5 first, as it does not reveal the password.
 */
export function chooseMechanism(
  offered: readonly string[] | undefined,
  auth: Credentials,
  secure: boolean,
): SaslMechanismName {
  if (offered === undefined) {
    throw new SmtpAuthError(
      'the server does not offer AUTH (no AUTH keyword in its EHLO reply), so we cannot log in',
    );
  }
  const has = new Set(offered.map((m) => m.toUpperCase()));
  const list = offered.join(' ') || '(none)';
  if (auth.mechanism !== undefined) {
    if (!has.has(auth.mechanism)) {
      throw new SmtpAuthError(
        `the server offers AUTH ${list}, not the configured mechanism ${auth.mechanism}`,
      );
    }
    return auth.mechanism;
  }
  const candidates: SaslMechanismName[] = [];
  if (auth.accessToken !== undefined) candidates.push('XOAUTH2');
  if (auth.password !== undefined) {
    candidates.push(
      ...((secure ? ['PLAIN', 'LOGIN', 'CRAM-MD5'] : ['CRAM-MD5', 'PLAIN', 'LOGIN']) as SaslMechanismName[]),
    );
  }
  const pick = candidates.find((m) => has.has(m));
  if (pick === undefined) {
    throw new SmtpAuthError(
      `no usable AUTH mechanism: the server offers ${list}; we can do ${candidates.join(', ')}`,
    );
  }
  return pick;
}

/** Run AUTH to completion; throws `SmtpAuthError` when the server refuses. */
export async function authenticate(
  io: AuthExchange,
  offered: readonly string[] | undefined,
  auth: Credentials,
  secure: boolean,
): Promise<SaslMechanismName> {
  const name = chooseMechanism(offered, auth, secure);
  const mechanism = createClientMechanism(name, {
    username: auth.username,
    ...(auth.password === undefined ? {} : { password: auth.password }),
    ...(auth.accessToken === undefined ? {} : { accessToken: auth.accessToken }),
  });
  // RFC 4954 section 4: the initial response is base64, "=" when empty, absent when null.
  const initial = mechanism.initialResponse();
  await io.send(initial === null ? `AUTH ${name}` : `AUTH ${name} ${initial}`);
  for (let round = 0; ; round++) {
    const reply = await io.read();
    if (reply.code === 235) return name;
    if (reply.code !== 334) {
      throw new SmtpAuthError(
        `authentication as ${auth.username} with ${name} failed: ${replyToString(reply)}`,
        reply,
      );
    }
    if (round >= MAX_ROUNDS) {
      await cancel(io);
      throw new SmtpProtocolError(`the server sent more than ${MAX_ROUNDS} AUTH challenges`, {
        command: 'AUTH',
      });
    }
    let response: string;
    try {
      response = mechanism.respond(reply.lines.join('').trim());
    } catch (err) {
      // RFC 4954 section 4: "*" cancels the exchange; the server answers 501.
      await cancel(io);
      throw new SmtpAuthError(
        `authentication with ${name} failed: ${err instanceof Error ? err.message : String(err)}`,
        undefined,
        { cause: err },
      );
    }
    await io.send(response);
  }
}

async function cancel(io: AuthExchange): Promise<void> {
  await io.send('*');
  await io.read();
}
