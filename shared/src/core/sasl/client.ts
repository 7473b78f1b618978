/**
 * Client side of SMTP AUTH (RFC 4954): what to send after `AUTH <mechanism>` and in answer to
 * each `334` challenge. Values in and out are the base64 text of the wire.
 */

import { base64Decode, base64Encode } from '../encoding/base64.ts';
import { hex, utf8Decode, utf8Encode } from '../encoding/bytes.ts';
import { hmacMd5 } from '../encoding/md5.ts';
import { SmtpConfigError, SmtpProtocolError } from '../errors.ts';
import { SASL_MECHANISMS, type SaslMechanismName } from './mechanisms.ts';

export interface SaslClientCredentials {
  username: string;
  password?: string;
  /** XOAUTH2 bearer token. */
  accessToken?: string;
  /** PLAIN: identity to act as (RFC 4616 section 2); omitted when not given. */
  authzid?: string;
}

export interface ClientMechanism {
  readonly name: SaslMechanismName;
  /**
   * The argument for `AUTH <mechanism> <initial-response>`: base64, or `=` for an empty
   * initial response (RFC 4954 section 4); null when the mechanism starts without one.
   */
  initialResponse(): string | null;
  /**
   * The line answering one `334 <challenge>` (base64; may be empty). Throws
   * `SmtpProtocolError` for a challenge that is not base64 or not expected: the caller then
   * cancels with `*` (RFC 4954 section 4).
   */
  respond(challengeBase64: string): string;
}

const b64 = (s: string) => base64Encode(utf8Encode(s));

function need(value: string | undefined, what: string, mechanism: string): string {
  if (value === undefined) throw new SmtpConfigError(`${mechanism} needs a ${what}`);
  return value;
}

function noChars(value: string, chars: RegExp, what: string, mechanism: string): void {
  if (chars.test(value))
    throw new SmtpConfigError(`${mechanism}: the ${what} contains a character it cannot carry`);
}

/** A client-side mechanism for one AUTH exchange. Throws `SmtpConfigError` for unusable credentials. */
export function createClientMechanism(
  name: SaslMechanismName,
  creds: SaslClientCredentials,
): ClientMechanism {
  const info = SASL_MECHANISMS[name];
  if (info === undefined) throw new SmtpConfigError(`unknown SASL mechanism ${String(name)}`);
  switch (name) {
    case 'PLAIN': {
      // RFC 4616 section 2: no NUL in any part; authcid and passwd non-empty.
      const password = need(creds.password, 'password', name);
      const authzid = creds.authzid ?? '';
      for (const [v, what] of [
        [creds.username, 'user name'],
        [password, 'password'],
        [authzid, 'authzid'],
      ] as const) {
        noChars(v, /\0/, what, name);
      }
      if (creds.username === '' || password === '')
        throw new SmtpConfigError('PLAIN needs a non-empty user name and password');
      const message = b64(`${authzid}\0${creds.username}\0${password}`);
      let answered = false;
      return {
        name,
        initialResponse: () => message,
        respond: (challengeBase64) => {
          // Only an empty challenge ("334 ") makes sense, when the initial response was not sent.
          if (challengeBase64 !== '' || answered) throw new SmtpProtocolError('unexpected PLAIN challenge');
          answered = true;
          return message;
        },
      };
    }
    case 'LOGIN': {
      const password = need(creds.password, 'password', name);
      noChars(creds.username, /\0/, 'user name', name);
      noChars(password, /\0/, 'password', name);
      let step = 0;
      return {
        name,
        initialResponse: () => null,
        respond: (challengeBase64) => {
          // Servers word the prompts differently ("Username:", "User Name", "username:"); the
          // order is fixed: user name first, then password.
          const prompt = utf8Decode(base64Decode(challengeBase64)).toLowerCase();
          step++;
          if (step === 1 && !prompt.includes('pass')) return b64(creds.username);
          if (step <= 2 && !prompt.includes('user')) {
            step = 2;
            return b64(password);
          }
          throw new SmtpProtocolError('unexpected LOGIN challenge');
        },
      };
    }
    case 'CRAM-MD5': {
      const password = need(creds.password, 'password', name);
      noChars(creds.username, /[\0 ]/, 'user name', name);
      let done = false;
      return {
        name,
        initialResponse: () => null,
        respond: (challengeBase64) => {
          if (done) throw new SmtpProtocolError('unexpected second CRAM-MD5 challenge');
          const challenge = base64Decode(challengeBase64);
          if (challenge.length === 0) throw new SmtpProtocolError('empty CRAM-MD5 challenge');
          done = true;
          // RFC 2195 section 2: user name, a space, the digest in lower-case hex.
          return b64(`${creds.username} ${hex(hmacMd5(utf8Encode(password), challenge))}`);
        },
      };
    }
    case 'XOAUTH2': {
      const token = need(creds.accessToken, 'access token', name);
      noChars(creds.username, /[\x00-\x1f\x7f]/, 'user name', name);
      noChars(token, /[^\x21-\x7e]/, 'access token', name);
      const message = b64(`user=${creds.username}\x01auth=Bearer ${token}\x01\x01`);
      let errors = 0;
      return {
        name,
        initialResponse: () => message,
        respond: (challengeBase64) => {
          if (challengeBase64 === '') return message;
          // A base64 JSON error: answer with an empty line to get the final 535 reply.
          base64Decode(challengeBase64);
          if (++errors > 1) throw new SmtpProtocolError('unexpected XOAUTH2 challenge');
          return '';
        },
      };
    }
  }
}
