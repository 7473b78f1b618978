/**
 * Our SMTP server set up the way the interop suite drives it from real clients: the shared test
 * harness (shared/test/server/harness.ts, which records every message's envelope and exact octets)
 * with three listeners on 127.0.0.1 and a small user table.
 *
 * - `port`: plain with STARTTLS (an MX-style port);
 * - `submissionPort`: STARTTLS, submission (AUTH before MAIL, RFC 6409);
 * - `implicitTlsPort`: TLS from the first octet (RFC 8314 section 3), submission.
 *
 * AUTH offers PLAIN, LOGIN and CRAM-MD5 (after TLS only, unless `allowInsecureAuth`).
 */

import { reject } from '../../shared/src/core/server/replies.ts';
import type { SaslCredentials, SmtpServerHandler } from '../../shared/src/core/server/types.ts';
import { startTestServer, type TestServer, type TestServerSetup } from '../../shared/test/server/harness.ts';

/** Users known to the interop server (name -> password); CRAM-MD5 needs the plain secret. */
export const INTEROP_USERS: Readonly<Record<string, string>> = Object.freeze({
  alice: 'correct horse battery',
  'bob@example.org': 'b0b p@ss:with;chars',
});

export interface InteropServerSetup {
  /** Senders refused at MAIL with 550 5.7.1. */
  rejectSenders?: string[];
  /** Recipients refused at RCPT with 550 5.1.1. */
  rejectRecipients?: string[];
  options?: TestServerSetup['options'];
  handler?: Partial<SmtpServerHandler>;
}

export interface InteropServer extends TestServer {
  submissionPort: number;
  implicitTlsPort: number;
  /** Every AUTH attempt the handler saw: mechanism, user, accepted. */
  authAttempts: Array<{ mechanism: string; username: string; ok: boolean }>;
}

function checkCredentials(c: SaslCredentials): boolean {
  const secret = INTEROP_USERS[c.username];
  if (secret === undefined) return false;
  if (c.mechanism === 'CRAM-MD5') return c.verify?.(secret) === true;
  return c.password === secret;
}

export async function startInteropServer(setup: InteropServerSetup = {}): Promise<InteropServer> {
  const authAttempts: InteropServer['authAttempts'] = [];
  const rejectSenders = new Set(setup.rejectSenders ?? []);
  const rejectRecipients = new Set(setup.rejectRecipients ?? []);
  const srv = await startTestServer({
    handler: {
      auth: (_session, credentials) => {
        const ok = checkCredentials(credentials);
        authAttempts.push({ mechanism: credentials.mechanism, username: credentials.username, ok });
        return ok ? { user: credentials.username } : null;
      },
      mailFrom: (_session, from) => {
        if (rejectSenders.has(from.address)) throw reject(550, '5.7.1', 'Sender refused by policy');
      },
      rcptTo: (_session, rcpt) => {
        if (rejectRecipients.has(rcpt.address)) throw reject(550, '5.1.1', 'No such user here');
      },
      ...setup.handler,
    },
    options: {
      hostname: 'mx.smtp-edge.test',
      authMechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
      ...setup.options,
    },
    listen: [
      { startTls: true },
      { startTls: true, submission: true },
      { implicitTls: true, submission: true },
    ],
  });
  return {
    ...srv,
    submissionPort: srv.ports[1]!,
    implicitTlsPort: srv.ports[2]!,
    authAttempts,
  };
}
