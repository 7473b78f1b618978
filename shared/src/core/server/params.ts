/**
 * MAIL FROM / RCPT TO parameters, server side: which ones this server accepts (only those of
 * extensions it advertised), their values checked, and the reply for anything else.
 *
 * RFC 5321 section 4.1.1.11: an unknown or unadvertised parameter gets 555; a malformed value
 * of a known one gets 501. RFC 1870 section 6.1: a declared SIZE above our limit gets 552 5.3.4.
 */
import type { SmtpReply } from '../status.ts';
import type { Connection } from './connection.ts';
import { decodeXtext, splitEsmtpParams } from './esmtp-params.ts';
import { r } from './replies.ts';
import type { MailParams, RcptParams } from './types.ts';

const syntax = (what: string): SmtpReply => r(501, '5.5.4', `Syntax error in parameter ${what}`);
const unsupported = (keyword: string): SmtpReply => r(555, '5.5.4', `Unsupported parameter ${keyword}`);

/** Parse and check the MAIL parameters; returns the reply to send when they are not acceptable. */
export function parseMailParams(conn: Connection, text: string): MailParams | SmtpReply {
  const list = splitEsmtpParams(text);
  if (list === null) return r(501, '5.5.4', 'Syntax error in parameters');
  const o = conn.options;
  const e = o.extensions;
  const params: MailParams = { other: {} };
  const seen = new Set<string>();
  for (const { keyword, value } of list) {
    if (seen.has(keyword)) return r(501, '5.5.4', `Duplicate parameter ${keyword}`);
    seen.add(keyword);
    switch (keyword) {
      case 'SIZE': {
        // RFC 1870 section 6: size-value ::= 1*20DIGIT.
        if (value === undefined || !/^[0-9]{1,20}$/.test(value)) return syntax('SIZE');
        const size = Number(value);
        if (o.maxMessageBytes > 0 && size > o.maxMessageBytes) {
          return r(552, '5.3.4', 'Message size exceeds fixed maximum message size');
        }
        params.size = size;
        break;
      }
      case 'BODY': {
        // RFC 6152 section 2 and RFC 3030 section 3: BODY=7BIT / 8BITMIME / BINARYMIME.
        const v = value?.toUpperCase();
        if (v === '7BIT' || (v === '8BITMIME' && e.eightBitMime) || (v === 'BINARYMIME' && e.binaryMime)) {
          params.body = v;
        } else if (v === '8BITMIME' || v === 'BINARYMIME') {
          return unsupported(`BODY=${v}`);
        } else {
          return syntax('BODY');
        }
        break;
      }
      case 'SMTPUTF8':
        // RFC 6531 section 3.4: no value.
        if (!e.smtputf8) return unsupported(keyword);
        if (value !== undefined) return syntax('SMTPUTF8');
        params.smtputf8 = true;
        break;
      case 'RET': {
        // RFC 3461 section 4.3.
        if (!e.dsn) return unsupported(keyword);
        const v = value?.toUpperCase();
        if (v !== 'FULL' && v !== 'HDRS') return syntax('RET');
        params.ret = v;
        break;
      }
      case 'ENVID': {
        // RFC 3461 section 4.4: xtext, at most 100 characters.
        if (!e.dsn) return unsupported(keyword);
        const v = value === undefined ? null : decodeXtext(value);
        if (v === null || value === undefined || value.length > 100) return syntax('ENVID');
        params.envid = v;
        break;
      }
      case 'AUTH': {
        // RFC 4954 section 5: AUTH=xtext or AUTH=<>; accepted whenever AUTH is implemented.
        if (conn.handler.auth === undefined) return unsupported(keyword);
        const v = value === undefined ? null : value === '<>' ? '<>' : decodeXtext(value);
        if (v === null) return syntax('AUTH');
        params.auth = v;
        break;
      }
      case 'REQUIRETLS':
        // RFC 8689 section 4.1: only over TLS, and only when advertised.
        if (!e.requireTls || !conn.session.secure) return unsupported(keyword);
        if (value !== undefined) return syntax('REQUIRETLS');
        params.requiretls = true;
        break;
      default:
        return unsupported(keyword);
    }
  }
  return params;
}

const NOTIFY_VALUES = new Set(['SUCCESS', 'FAILURE', 'DELAY']);

/** Parse and check the RCPT parameters (RFC 3461 section 4.1, 4.2). */
export function parseRcptParams(conn: Connection, text: string): RcptParams | SmtpReply {
  const list = splitEsmtpParams(text);
  if (list === null) return r(501, '5.5.4', 'Syntax error in parameters');
  const e = conn.options.extensions;
  const params: RcptParams = { other: {} };
  const seen = new Set<string>();
  for (const { keyword, value } of list) {
    if (seen.has(keyword)) return r(501, '5.5.4', `Duplicate parameter ${keyword}`);
    seen.add(keyword);
    switch (keyword) {
      case 'NOTIFY': {
        // RFC 3461 section 4.1: "NEVER" alone, or a comma list of SUCCESS, FAILURE, DELAY.
        if (!e.dsn) return unsupported(keyword);
        const items = value?.toUpperCase().split(',') ?? [];
        if (items.length === 1 && items[0] === 'NEVER') {
          params.notify = 'NEVER';
          break;
        }
        if (
          items.length === 0 ||
          items.some((i) => !NOTIFY_VALUES.has(i)) ||
          new Set(items).size !== items.length
        ) {
          return syntax('NOTIFY');
        }
        params.notify = items as Array<'SUCCESS' | 'FAILURE' | 'DELAY'>;
        break;
      }
      case 'ORCPT': {
        // RFC 3461 section 4.2: ORCPT=addr-type ";" xtext, at most 500 characters.
        if (!e.dsn) return unsupported(keyword);
        const semi = value?.indexOf(';') ?? -1;
        if (value === undefined || semi <= 0 || value.length > 500) return syntax('ORCPT');
        const type = value.slice(0, semi);
        const address = decodeXtext(value.slice(semi + 1));
        if (!/^[A-Za-z0-9-]+$/.test(type) || address === null || address === '') return syntax('ORCPT');
        params.orcpt = { type: type.toLowerCase() === 'rfc822' ? 'rfc822' : type, address };
        break;
      }
      default:
        return unsupported(keyword);
    }
  }
  return params;
}
