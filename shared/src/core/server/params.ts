/**
 * MAIL FROM / RCPT TO parameters, server side: which ones this server accepts (only those of
 * extensions it advertised), with the values parsed by the shared codec (`core/wire/params.ts`),
 * and the reply for anything else.
 *
 * RFC 5321 section 4.1.1.11: an unknown or unadvertised parameter gets 555 5.5.4; a malformed
 * value of a known one gets 501 5.5.4. RFC 1870 section 6.1: a declared SIZE above our limit
 * gets 552 5.3.4. A session that said HELO was offered no extension at all (RFC 5321 section
 * 4.1.1.1), so every parameter gets 555 5.5.4 there.
 */
import type { SmtpReply } from '../status.ts';
import {
  EsmtpParamError,
  parseAuthParam,
  parseBodyParam,
  parseDsnMailParams,
  parseDsnRcptParams,
  parseEsmtpParams,
  parseRequireTlsParam,
  parseSizeParam,
  parseSmtpUtf8Param,
} from '../wire/params.ts';
import type { Connection } from './connection.ts';
import { r } from './replies.ts';
import type { MailParams, RcptParams } from './types.ts';

const unsupported = (keyword: string): SmtpReply => r(555, '5.5.4', `Unsupported parameter ${keyword}`);

const NONE: ReadonlySet<string> = new Set();

/** Extensions were offered to this session: it said EHLO, not HELO (RFC 5321 section 4.1.1.1). */
function extended(conn: Connection): boolean {
  return conn.session.helo?.verb === 'EHLO';
}

/** The MAIL keywords this connection accepts now (those whose extension was advertised). */
function mailKeywords(conn: Connection): ReadonlySet<string> {
  if (!extended(conn)) return NONE;
  const e = conn.options.extensions;
  const known = new Set(['SIZE', 'BODY']);
  if (e.smtputf8) known.add('SMTPUTF8');
  if (e.dsn) {
    known.add('RET');
    known.add('ENVID');
  }
  // RFC 4954 section 5: a server that implements AUTH accepts AUTH= on MAIL.
  if (conn.handler.auth !== undefined) known.add('AUTH');
  // RFC 8689 section 4.1: REQUIRETLS only over TLS.
  if (e.requireTls && conn.session.secure) known.add('REQUIRETLS');
  return known;
}

function paramReply(conn: Connection, error: unknown): SmtpReply {
  if (error instanceof EsmtpParamError) return error.reply;
  conn.reportError(error);
  return r(501, '5.5.4', 'Syntax error in parameters');
}

/** Parse and check the MAIL parameters; returns the reply to send when they are not acceptable. */
export function parseMailParams(conn: Connection, text: string): MailParams | SmtpReply {
  const o = conn.options;
  const e = o.extensions;
  try {
    const { params: map } = parseEsmtpParams(text);
    const known = mailKeywords(conn);
    for (const keyword of map.keys()) if (!known.has(keyword)) return unsupported(keyword);
    const params: MailParams = { other: {} };
    const size = map.get('SIZE');
    if (size !== undefined) {
      params.size = parseSizeParam(size);
      if (o.maxMessageBytes > 0 && params.size > o.maxMessageBytes) {
        // RFC 1870 section 6.1.
        return r(552, '5.3.4', 'Message size exceeds fixed maximum message size');
      }
    }
    const body = map.get('BODY');
    if (body !== undefined) {
      const value = parseBodyParam(body);
      // RFC 6152 / RFC 3030 section 3: only the body types we advertised.
      if ((value === '8BITMIME' && !e.eightBitMime) || (value === 'BINARYMIME' && !e.binaryMime)) {
        return unsupported(`BODY=${value}`);
      }
      params.body = value;
    }
    const utf8 = map.get('SMTPUTF8');
    if (utf8 !== undefined) params.smtputf8 = parseSmtpUtf8Param(utf8);
    const dsn = parseDsnMailParams(map);
    if (dsn.ret !== undefined) params.ret = dsn.ret;
    if (dsn.envid !== undefined) params.envid = dsn.envid;
    const auth = map.get('AUTH');
    if (auth !== undefined) params.auth = parseAuthParam(auth);
    const requireTls = map.get('REQUIRETLS');
    if (requireTls !== undefined) params.requiretls = parseRequireTlsParam(requireTls);
    return params;
  } catch (error) {
    return paramReply(conn, error);
  }
}

/** Parse and check the RCPT parameters (RFC 3461 section 4.1, 4.2). */
export function parseRcptParams(conn: Connection, text: string): RcptParams | SmtpReply {
  try {
    const { params: map } = parseEsmtpParams(text);
    const dsn = conn.options.extensions.dsn && extended(conn);
    for (const keyword of map.keys()) {
      if (!dsn || (keyword !== 'NOTIFY' && keyword !== 'ORCPT')) return unsupported(keyword);
    }
    const parsed = parseDsnRcptParams(map);
    const params: RcptParams = { other: {} };
    if (parsed.notify !== undefined) params.notify = parsed.notify;
    if (parsed.orcpt !== undefined) params.orcpt = parsed.orcpt;
    return params;
  } catch (error) {
    return paramReply(conn, error);
  }
}
