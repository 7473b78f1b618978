/**
 * AUTH (RFC 4954): mechanism negotiation, the 334 challenge/response exchange, and the call to
 * `handler.auth`. The SASL mechanisms themselves are the shared state machines of `core/sasl`.
 */
import type { SaslMechanismName } from '../sasl/mechanisms.ts';
import { createServerMechanism, type SaslStep, xoauth2ErrorChallenge } from '../sasl/server.ts';
import type { SmtpReply } from '../status.ts';
import type { Connection } from './connection.ts';
import { limitReached } from './limits.ts';
import { r, replyOfError } from './replies.ts';

const latin1 = new TextDecoder('latin1');

export async function handleAuth(conn: Connection, args: string): Promise<void> {
  const { session, options: o, handler } = conn;
  if (handler.auth === undefined || o.authMechanisms.length === 0) {
    conn.badCommand(r(502, '5.5.1', 'Command not implemented'));
    return;
  }
  if (!session.secure && !o.allowInsecureAuth) {
    // RFC 4954 section 6 and RFC 5248: 538 5.7.11 encryption required.
    conn.send(r(538, '5.7.11', 'Encryption required for requested authentication mechanism'));
    return;
  }
  if (session.helo === null) {
    conn.badCommand(r(503, '5.5.1', 'Send EHLO first'));
    return;
  }
  if (session.user !== null) {
    // RFC 4954 section 4: "After a successful AUTH command completes, a server MUST reject any
    // further AUTH commands with a 503 reply."
    conn.badCommand(r(503, '5.5.1', 'Already authenticated'));
    return;
  }
  if (session.transaction !== null) {
    // RFC 4954 section 4: "The AUTH command is not permitted during a mail transaction."
    conn.badCommand(r(503, '5.5.1', 'AUTH not permitted during a mail transaction'));
    return;
  }
  const words = args.split(/[ \t]+/).filter((w) => w !== '');
  if (words.length === 0 || words.length > 2) {
    conn.badCommand(r(501, '5.5.4', 'Syntax: AUTH mechanism [initial-response]'));
    return;
  }
  const name = words[0]!.toUpperCase() as SaslMechanismName;
  if (!o.authMechanisms.includes(name)) {
    // RFC 4954 section 4: 504 for a mechanism we do not support.
    conn.badCommand(r(504, '5.5.4', 'Unrecognized authentication type'));
    return;
  }
  const mechanism = createServerMechanism(name, { hostname: o.hostname });
  let step: SaslStep = mechanism.start(words[1]);
  while (step.kind === 'challenge') {
    // RFC 4954 section 4: "334" SP [base64] CRLF; 3xx replies carry no enhanced code (RFC 2034).
    conn.sendPlain({ code: 334, enhancedCode: null, lines: [step.challenge] });
    const line = await readAuthLine(conn);
    if (line === null) return;
    if (line === 'too-long') {
      // RFC 4954 section 4: 500 5.5.6 Authentication Exchange line is too long.
      conn.badCommand(r(500, '5.5.6', 'Authentication exchange line is too long'));
      return;
    }
    step = mechanism.next(line);
  }
  if (step.kind === 'error') {
    if (step.reply.enhancedCode === '5.7.0' && step.reply.code === 501) conn.send(step.reply);
    else conn.badCommand(step.reply);
    return;
  }
  let result: { user: string } | null;
  try {
    const credentials = step.credentials;
    // Bounded by commandMs (see Connection.callHook): a hook that never answers gets 454.
    const outcome = await conn.callHook('auth', () => handler.auth?.(session, credentials) ?? null);
    if (outcome === 'stalled') {
      // RFC 4954 section 6: 454 4.7.0 Temporary authentication failure.
      conn.send(r(454, '4.7.0', 'Temporary authentication failure'));
      return;
    }
    result = outcome;
  } catch (error) {
    const reply = replyOfError(error);
    if (reply !== null) {
      if (reply.code >= 500) await failure(conn, reply);
      else conn.send(reply);
      return;
    }
    conn.reportError(error);
    // RFC 4954 section 6: 454 4.7.0 Temporary authentication failure.
    conn.send(r(454, '4.7.0', 'Temporary authentication failure'));
    return;
  }
  if (result === null || typeof result.user !== 'string') {
    if (name === 'XOAUTH2') {
      // XOAUTH2: the error is a 334 challenge the client answers with an empty line, then 535.
      conn.sendPlain({ code: 334, enhancedCode: null, lines: [xoauth2ErrorChallenge()] });
      if ((await readAuthLine(conn)) === null) return;
    }
    await failure(conn, r(535, '5.7.8', 'Authentication credentials invalid'));
    return;
  }
  session.user = result.user;
  conn.send(r(235, '2.7.0', 'Authentication successful'));
}

/** A failed attempt: counted, delayed, and the connection closed after too many. */
async function failure(conn: Connection, reply: SmtpReply): Promise<void> {
  const o = conn.options;
  conn.authFailures++;
  // Ended early when the connection is cut at the shutdown deadline.
  if (o.authFailureDelayMs > 0) await conn.sleep(o.authFailureDelayMs);
  if (limitReached(conn.authFailures, o.maxAuthFailures)) {
    conn.send(r(421, '4.7.0', `${o.hostname} Too many authentication failures, closing connection`));
    conn.closeReason = 'too-many-auth-failures';
    return;
  }
  conn.send(reply);
}

/** One line of the AUTH exchange, or null when the connection ended (a 421 is queued on timeout). */
async function readAuthLine(conn: Connection): Promise<string | 'too-long' | null> {
  // One deadline for the whole line (not per read): a client dripping octets cannot hold the
  // exchange open forever.
  const o = conn.options;
  const line = await conn.readLineWithin(o.maxAuthLineBytes, o.timeouts.commandMs, 'auth');
  if (line === null) return null;
  return line.kind === 'too-long' ? 'too-long' : latin1.decode(line.line);
}
