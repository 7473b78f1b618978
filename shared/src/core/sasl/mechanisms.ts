/**
 * The SASL mechanisms SMTP AUTH (RFC 4954) uses here, and what each exposes. Both engines
 * read this table: a server does not offer, and a client does not use, a mechanism that sends
 * a secret in clear over a connection without TLS (RFC 4954 section 4, RFC 4616 section 6).
 */

export type SaslMechanismName = 'PLAIN' | 'LOGIN' | 'CRAM-MD5' | 'XOAUTH2';

export const SASL_MECHANISM_NAMES: readonly SaslMechanismName[] = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'];

export interface SaslMechanismInfo {
  /** The password or token crosses the wire readable by anyone who can read the connection. */
  readonly sendsSecretInClear: boolean;
  /** The server must hold the clear-text secret to check it (no hash suffices): CRAM-MD5. */
  readonly serverNeedsClearSecret: boolean;
  /** The client needs a password (else an OAuth access token). */
  readonly clientNeeds: 'password' | 'accessToken';
  /** The client may send an initial response with AUTH (RFC 4954 section 4). */
  readonly initialResponse: boolean;
}

export const SASL_MECHANISMS: Readonly<Record<SaslMechanismName, SaslMechanismInfo>> = {
  // RFC 4616 section 6: PLAIN must only be used over an encrypted connection.
  PLAIN: {
    sendsSecretInClear: true,
    serverNeedsClearSecret: false,
    clientNeeds: 'password',
    initialResponse: true,
  },
  // draft-murchison-sasl-login: the same exposure as PLAIN.
  LOGIN: {
    sendsSecretInClear: true,
    serverNeedsClearSecret: false,
    clientNeeds: 'password',
    initialResponse: true,
  },
  // RFC 2195: only a keyed digest crosses the wire, but the server must store the secret.
  'CRAM-MD5': {
    sendsSecretInClear: false,
    serverNeedsClearSecret: true,
    clientNeeds: 'password',
    initialResponse: false,
  },
  // A bearer token is as good as a password for its lifetime.
  XOAUTH2: {
    sendsSecretInClear: true,
    serverNeedsClearSecret: false,
    clientNeeds: 'accessToken',
    initialResponse: true,
  },
};

/** True for a mechanism name this package implements (case-insensitive, as SASL names are). */
export function isSaslMechanismName(name: string): name is SaslMechanismName {
  return (SASL_MECHANISM_NAMES as readonly string[]).includes(name);
}

/** Whether `name` may be used (offered, or chosen) on a connection that is, or is not, encrypted. */
export function saslAllowed(name: SaslMechanismName, encrypted: boolean): boolean {
  return encrypted || !SASL_MECHANISMS[name].sendsSecretInClear;
}
