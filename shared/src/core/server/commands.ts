/**
 * The command handlers: one function per verb, each checking the state (RFC 5321 section 4.1.4
 * "Order of Commands"), its arguments, then calling the application's hook and queueing the
 * reply. The order of the checks in each function is the order a reader should reason in.
 */
import { AddressError } from '../address/errors.ts';
import { parseForwardPath, parseReversePath } from '../address/path.ts';
import type { SmtpReply } from '../status.ts';
import { parseCommand, splitPathArgument } from '../wire/command.ts';
import type { LineResult } from '../wire/input.ts';
import { handleAuth } from './auth.ts';
import type { Connection } from './connection.ts';
import { abortTransaction, handleBdat, handleData } from './data.ts';
import { parseMailParams, parseRcptParams } from './params.ts';
import { fixedReply, r } from './replies.ts';
import type { Envelope } from './types.ts';

// Replies sent for nearly every message: encoded once (see `fixedReply`).
const SENDER_OK = fixedReply(250, '2.1.0', 'Sender OK');
const RECIPIENT_OK = fixedReply(250, '2.1.5', 'Recipient OK');
const OK = fixedReply(250, '2.0.0', 'OK');

/** Verbs we know but do not implement (RFC 5321 section 4.2.4: 502). */
const NOT_IMPLEMENTED = new Set(['EXPN', 'SEND', 'SOML', 'SAML', 'TURN', 'ETRN', 'ATRN']);

/**
 * HTTP request methods (RFC 9110 section 9). No SMTP verb has these names; a line starting with
 * one is a browser, a proxy probe or a cross-protocol attack (an HTML form posting SMTP commands
 * through a victim's browser): close at once rather than answer it line by line.
 */
const HTTP_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

export async function dispatch(conn: Connection, line: LineResult): Promise<void> {
  if (line.kind === 'too-long') {
    // RFC 5321 section 4.5.3.1.4 and 4.2.2: "500 Line too long".
    conn.badCommand(r(500, '5.5.2', 'Line too long'));
    return;
  }
  const cmd = parseCommand(line.line);
  if (cmd.kind === 'invalid') {
    conn.badCommand(r(500, '5.5.2', 'Syntax error, command unrecognized'));
    return;
  }
  const { verb, args } = cmd;
  if (HTTP_METHODS.has(verb)) {
    conn.send(
      r(421, '4.7.0', `${conn.options.hostname} This is an SMTP server, not HTTP; closing connection`),
    );
    conn.closeReason = 'http-request';
    return;
  }
  // The line was read up to the largest limit; each command has its own (RFC 5321 section
  // 4.5.3.1.4 and the extensions' allowances for MAIL and RCPT parameters: options.ts).
  const limits = conn.options.commandLineLimits;
  const limit = verb === 'MAIL' ? limits.mail : verb === 'RCPT' ? limits.rcpt : limits.other;
  if (line.line.length + 2 > limit) {
    conn.badCommand(r(500, '5.5.2', 'Line too long'));
    return;
  }
  if (conn.refused && verb !== 'QUIT') {
    // RFC 5321 section 3.1: after a 554 greeting, answer 503 until QUIT.
    conn.badCommand(r(503, '5.5.1', 'No service, send QUIT'));
    return;
  }
  switch (verb) {
    case 'EHLO':
    case 'HELO':
      return hello(conn, verb, args);
    case 'MAIL':
      return mail(conn, args);
    case 'RCPT':
      return rcpt(conn, args);
    case 'DATA':
      return handleData(conn, args);
    case 'BDAT':
      return handleBdat(conn, args);
    case 'RSET':
      return rset(conn, args);
    case 'NOOP':
      // RFC 5321 section 4.1.1.9: any argument is ignored.
      conn.send(OK);
      return;
    case 'QUIT':
      // RFC 5321 section 4.1.1.10: quit = "QUIT" CRLF; section 4.3.2: 501 for arguments to a
      // command that takes none.
      if (args !== '') {
        conn.badCommand(r(501, '5.5.4', 'Syntax: QUIT (no parameters allowed)'));
        return;
      }
      conn.send(r(221, '2.0.0', `${conn.options.hostname} Bye`));
      conn.closeReason = 'quit';
      return;
    case 'VRFY':
      return vrfy(conn, args);
    case 'HELP':
      // RFC 5321 section 4.1.1.8.
      conn.send(
        r(
          214,
          '2.0.0',
          'See https://www.rfc-editor.org/rfc/rfc5321 (commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH)',
        ),
      );
      return;
    case 'STARTTLS':
      return startTls(conn, args);
    case 'AUTH':
      return handleAuth(conn, args);
    default:
      if (NOT_IMPLEMENTED.has(verb)) {
        conn.badCommand(r(502, '5.5.1', 'Command not implemented'));
      } else {
        conn.badCommand(r(500, '5.5.2', 'Syntax error, command unrecognized'));
      }
  }
}

/** Clear the transaction and tell the handler (RFC 5321 section 4.1.1.5). */
export function resetTransaction(conn: Connection): void {
  const had = conn.session.transaction !== null || conn.bdat !== null;
  abortTransaction(conn, 'transaction reset');
  conn.session.clearTransaction();
  // Improper pipelining is judged per transaction (see Connection.pipelinedAhead): a command
  // sent ahead of the reply to the previous message, an RSET or a HELO is forgotten here.
  conn.pipelinedAhead = false;
  // RCPTs past maxRecipients are counted per transaction (see `rcpt`).
  conn.rcptOvershoot = 0;
  if (had) {
    try {
      conn.handler.reset?.(conn.session);
    } catch (error) {
      conn.reportError(error);
    }
  }
}

/** The EHLO keywords, in the order they are advertised (RFC 5321 section 4.1.1.1). */
export function ehloKeywords(conn: Connection): string[] {
  const o = conn.options;
  const e = o.extensions;
  const secure = conn.session.secure;
  const lines: string[] = [];
  if (e.pipelining) lines.push('PIPELINING'); // RFC 2920
  lines.push(o.maxMessageBytes > 0 ? `SIZE ${o.maxMessageBytes}` : 'SIZE'); // RFC 1870 section 4
  if (e.eightBitMime) lines.push('8BITMIME'); // RFC 6152
  if (e.smtputf8) lines.push('SMTPUTF8'); // RFC 6531
  if (e.dsn) lines.push('DSN'); // RFC 3461
  if (e.chunking) lines.push('CHUNKING'); // RFC 3030
  if (e.binaryMime) lines.push('BINARYMIME'); // RFC 3030 section 3
  if (e.enhancedStatusCodes) lines.push('ENHANCEDSTATUSCODES'); // RFC 2034
  if (e.requireTls && secure) lines.push('REQUIRETLS'); // RFC 8689 section 4: only over TLS
  if (o.startTls && !secure) lines.push('STARTTLS'); // RFC 3207 section 4.2: not after TLS
  if (authOffered(conn)) lines.push(`AUTH ${o.authMechanisms.join(' ')}`); // RFC 4954 section 3
  return lines;
}

/** AUTH is advertised when a handler checks credentials and the connection may carry them. */
export function authOffered(conn: Connection): boolean {
  return (
    conn.handler.auth !== undefined &&
    conn.options.authMechanisms.length > 0 &&
    (conn.session.secure || conn.options.allowInsecureAuth)
  );
}

function hello(conn: Connection, verb: 'EHLO' | 'HELO', args: string): void {
  // RFC 5321 section 4.1.1.1: ehlo = "EHLO" SP ( Domain / address-literal ). Servers should be
  // prepared for extra words after it (same section); the first word is the name.
  const name = args.split(/[ \t]+/)[0] ?? '';
  if (name === '') {
    conn.badCommand(r(501, '5.5.4', `Syntax: ${verb} hostname`));
    return;
  }
  // A new HELO/EHLO resets the transaction, as RSET does (RFC 5321 section 4.1.4).
  resetTransaction(conn);
  conn.session.helo = { verb, name };
  const o = conn.options;
  if (verb === 'HELO') {
    conn.sendPlain(r(250, null, o.hostname));
    return;
  }
  conn.sendPlain(r(250, null, [`${o.hostname} greets ${name}`, ...ehloKeywords(conn)].join('\n')));
}

async function mail(conn: Connection, args: string): Promise<void> {
  const { session, options } = conn;
  if (session.helo === null) {
    conn.badCommand(r(503, '5.5.1', 'Send HELO/EHLO first'));
    return;
  }
  if (session.transaction !== null) {
    conn.badCommand(r(503, '5.5.1', 'Nested MAIL command'));
    return;
  }
  if (options.submission && session.user === null) {
    // RFC 6409 section 4.3 / RFC 4954 section 6: submission requires authentication.
    conn.send(r(530, '5.7.0', 'Authentication required'));
    return;
  }
  const split = splitPathArgument(args, 'FROM');
  if (split.kind === 'error') {
    conn.badCommand(r(501, '5.5.4', 'Syntax: MAIL FROM:<address>'));
    return;
  }
  const params = parseMailParams(conn, split.params);
  if ('code' in params) {
    conn.send(params);
    return;
  }
  let address: string;
  try {
    const path = parseReversePath(split.path, { smtputf8: params.smtputf8 === true });
    address = path.kind === 'null' ? '' : path.mailbox.address;
  } catch (error) {
    conn.send(addressReply(conn, error));
    return;
  }
  const from: Envelope['mailFrom'] = { address, params };
  try {
    // Bounded by commandMs (see Connection.callHook): a hook that never answers gets 451.
    if ((await conn.callHook('mailFrom', () => conn.handler.mailFrom?.(session, from))) === 'stalled') {
      conn.send(r(451, '4.3.0', 'Temporary failure, try again later'));
      return;
    }
  } catch (error) {
    conn.send(conn.replyForError(error, r(451, '4.3.0', 'Temporary failure, try again later')));
    return;
  }
  session.transaction = { mailFrom: from, rcptTo: [] };
  conn.send(SENDER_OK);
}

async function rcpt(conn: Connection, args: string): Promise<void> {
  const { session, options } = conn;
  const tx = session.transaction;
  if (tx === null) {
    conn.badCommand(r(503, '5.5.1', 'Need MAIL command first'));
    return;
  }
  if (conn.bdat !== null) {
    // RFC 3030 section 2: the message is being transferred; the envelope is closed.
    conn.badCommand(r(503, '5.5.1', 'RCPT not allowed during BDAT transfer'));
    return;
  }
  const split = splitPathArgument(args, 'TO');
  if (split.kind === 'error') {
    conn.badCommand(r(501, '5.5.4', 'Syntax: RCPT TO:<address>'));
    return;
  }
  if (tx.rcptTo.length >= options.maxRecipients) {
    // RFC 5321 section 4.5.3.1.10: 452 too many recipients (the client retries the rest later).
    // A client that keeps going past twice the limit in one transaction is not retrying later:
    // from there each excess RCPT counts as a bad command, so a flood of RCPTs ends with 421
    // (as Postfix's smtpd_recipient_overshoot_limit does). The count restarts with each
    // transaction, so a client that defers a few recipients of every message is never cut.
    const reply = r(452, '4.5.3', 'Too many recipients');
    conn.rcptOvershoot++;
    if (conn.rcptOvershoot > options.maxRecipients) conn.badCommand(reply);
    else conn.send(reply);
    return;
  }
  const params = parseRcptParams(conn, split.params);
  if ('code' in params) {
    conn.send(params);
    return;
  }
  let address: string;
  try {
    const path = parseForwardPath(split.path, { smtputf8: tx.mailFrom.params.smtputf8 === true });
    address = path.kind === 'postmaster' ? 'Postmaster' : path.mailbox.address;
  } catch (error) {
    conn.send(addressReply(conn, error));
    return;
  }
  const recipient = { address, params };
  try {
    if ((await conn.callHook('rcptTo', () => conn.handler.rcptTo?.(session, recipient))) === 'stalled') {
      conn.send(r(451, '4.3.0', 'Temporary failure, try again later'));
      return;
    }
  } catch (error) {
    conn.send(conn.replyForError(error, r(451, '4.3.0', 'Temporary failure, try again later')));
    return;
  }
  // The transaction may have been reset while the hook ran only by this same loop, so tx is current.
  tx.rcptTo.push(recipient);
  conn.send(RECIPIENT_OK);
}

function addressReply(conn: Connection, error: unknown): SmtpReply {
  if (error instanceof AddressError) return error.reply;
  conn.reportError(error);
  return r(501, '5.1.3', 'Bad address syntax');
}

function rset(conn: Connection, args: string): void {
  if (args !== '') {
    // RFC 5321 section 4.1.1.5: rset = "RSET" CRLF.
    conn.badCommand(r(501, '5.5.4', 'Syntax: RSET'));
    return;
  }
  resetTransaction(conn);
  conn.send(OK);
}

function vrfy(conn: Connection, args: string): void {
  if (args === '') {
    conn.badCommand(r(501, '5.5.4', 'Syntax: VRFY address'));
    return;
  }
  // RFC 5321 section 3.5.3 / 7.3: we never confirm or deny a mailbox.
  conn.send(r(252, '2.5.0', 'Cannot VRFY user, but will accept message and attempt delivery'));
}

async function startTls(conn: Connection, args: string): Promise<void> {
  const { session, options } = conn;
  if (!options.startTls) {
    conn.badCommand(r(502, '5.5.1', 'Command not implemented'));
    return;
  }
  if (session.secure) {
    // RFC 3207 section 4: no second TLS negotiation.
    conn.badCommand(r(503, '5.5.1', 'TLS already active'));
    return;
  }
  if (args !== '') {
    // RFC 3207 section 4: "STARTTLS" with no parameters; 501 for parameters.
    conn.badCommand(r(501, '5.5.4', 'Syntax: STARTTLS (no parameters allowed)'));
    return;
  }
  conn.send(r(220, '2.0.0', 'Ready to start TLS'));
  await conn.flush();
  if (conn.closing) return;
  // RFC 3207 section 4.2: discard anything the client pipelined after STARTTLS (it did not come
  // over TLS), and forget everything learnt so far: the client must EHLO again.
  conn.input.clear();
  resetTransaction(conn);
  session.forgetAll();
  try {
    await conn.transport.startTls();
  } catch (error) {
    // RFC 3207 section 4.1: after a failed handshake the server closes the connection.
    conn.reportError(error);
    conn.closeReason = 'tls-failed';
  }
}
