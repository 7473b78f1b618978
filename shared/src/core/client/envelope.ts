/**
 * Planning a mail transaction: the exact MAIL FROM and RCPT TO lines, with only the ESMTP
 * parameters the server advertised, decided before anything is sent. Every refusal here is an
 * `SmtpMessageError` naming the field, thrown while the connection is still untouched.
 *
 * - SIZE (RFC 1870 section 6): declared when known; a message over the server's limit is refused.
 * - BODY (RFC 6152 for 8BITMIME, RFC 3030 section 3 for BINARYMIME): from what the body holds.
 * - SMTPUTF8 (RFC 6531 section 3.4): set when an address or a header needs it.
 * - DSN (RFC 3461 section 4): RET, ENVID, NOTIFY, ORCPT, xtext-encoded (ORCPT of a non-ASCII
 *   recipient as RFC 6533 `utf-8;` utf-8-addr-xtext); dropped or refused when the server lacks
 *   DSN, as configured.
 * - REQUIRETLS (RFC 8689 section 4.1): only over TLS and when offered.
 */
import { AddressError } from '../address/errors.ts';
import { formatPath, type Mailbox, parseMailbox } from '../address/path.ts';
import { needsSmtpUtf8 } from '../address/syntax.ts';
import { SmtpMessageError } from '../errors.ts';
import { formatDsnMailParams, formatDsnRcptParams } from '../wire/params.ts';
import type { BodyFacts } from './body.ts';
import type { ResolvedClientOptions, SendEnvelope } from './options.ts';

export type BodyType = '7BIT' | '8BITMIME' | 'BINARYMIME';

export interface TransactionPlan {
  /** `MAIL FROM:<…> [params]` */
  readonly mail: string;
  readonly rcpts: readonly { recipient: string; line: string }[];
  /** The BODY= declared, or null when none is (7-bit content, or a server without 8BITMIME). */
  readonly bodyType: BodyType | null;
  readonly smtpUtf8: boolean;
  /** Send the data with BDAT (CHUNKING offered and enabled, or BINARYMIME). */
  readonly useBdat: boolean;
}

/** Checks that need no server capabilities: run before connecting. */
export function validateEnvelope(envelope: SendEnvelope): void {
  if (typeof envelope !== 'object' || envelope === null)
    throw new SmtpMessageError('the envelope is missing', 'envelope');
  if (typeof envelope.from !== 'string')
    throw new SmtpMessageError('envelope.from must be a string ("" for <>)', 'from');
  if (!Array.isArray(envelope.to) || envelope.to.length === 0) {
    throw new SmtpMessageError('envelope.to must list at least one recipient', 'to');
  }
  const utf8 = true; // syntax only; whether SMTPUTF8 is available is checked against the server later
  if (envelope.from !== '') mailbox(envelope.from, 'from', utf8);
  envelope.to.forEach((to, i) => {
    if (typeof to !== 'string') throw new SmtpMessageError(`to[${i}] must be a string`, `to[${i}]`);
    mailbox(to, `to[${i}]`, utf8);
  });
  if (envelope.size !== undefined && (!Number.isSafeInteger(envelope.size) || envelope.size < 0)) {
    throw new SmtpMessageError('envelope.size must be a non-negative integer', 'size');
  }
}

function mailbox(address: string, field: string, smtputf8: boolean): Mailbox {
  try {
    return parseMailbox(address, { smtputf8 });
  } catch (err) {
    if (err instanceof AddressError) {
      throw new SmtpMessageError(`${field} ${JSON.stringify(address)}: ${err.message}`, field, {
        cause: err,
      });
    }
    throw err;
  }
}

function missing(field: string, what: string): never {
  throw new SmtpMessageError(what, field);
}

export function planTransaction(
  envelope: SendEnvelope,
  body: BodyFacts,
  caps: ReadonlyMap<string, string[]>,
  options: Pick<ResolvedClientOptions, 'chunkSize' | 'dsnUnsupported'>,
  secure: boolean,
): TransactionPlan {
  validateEnvelope(envelope);
  const chunking = options.chunkSize > 0 && caps.has('CHUNKING');

  // SMTPUTF8: an address or a header that needs it (RFC 6531 section 3.4, RFC 6532 section 3).
  let utf8Field: string | null = null;
  if (envelope.smtpUtf8 === true) utf8Field = 'smtpUtf8';
  else if (needsSmtpUtf8(envelope.from)) utf8Field = 'from';
  else {
    const i = envelope.to.findIndex((t) => needsSmtpUtf8(t));
    if (i >= 0) utf8Field = `to[${i}]`;
    else if (body.headerEightBit === true) utf8Field = 'body';
  }
  const smtpUtf8 = utf8Field !== null;
  if (smtpUtf8 && !caps.has('SMTPUTF8')) {
    missing(
      utf8Field!,
      utf8Field === 'body'
        ? 'the message headers contain UTF-8, which needs SMTPUTF8, and the server does not offer it; encode them with RFC 2047'
        : `${utf8Field} needs SMTPUTF8 (non-ASCII address) and the server does not offer it`,
    );
  }

  // BODY= (RFC 6152, RFC 3030 section 3).
  let bodyType: BodyType | null;
  const has8bit = caps.has('8BITMIME');
  const hasBinary = caps.has('BINARYMIME') && chunking;
  if (envelope.body !== undefined) {
    bodyType = envelope.body;
    if (bodyType === '8BITMIME' && !has8bit)
      missing('body', 'BODY=8BITMIME was requested but the server does not offer 8BITMIME');
    if (bodyType === 'BINARYMIME' && !hasBinary) {
      missing(
        'body',
        'BODY=BINARYMIME was requested but the server does not offer BINARYMIME with CHUNKING (or chunking is off)',
      );
    }
    if (bodyType === '7BIT' && body.eightBit === true)
      missing('body', 'BODY=7BIT was requested but the message has 8-bit data');
  } else if (body.binary === true) {
    if (!hasBinary) {
      missing(
        'body',
        `${body.binaryReason ?? 'the message is not line-oriented text'} (the server does not offer BINARYMIME with CHUNKING)`,
      );
    }
    bodyType = 'BINARYMIME';
  } else if (body.eightBit === true || smtpUtf8) {
    if (!has8bit && body.eightBit === true) {
      missing(
        'body',
        'the message contains 8-bit data and the server does not offer 8BITMIME; encode it as quoted-printable or base64',
      );
    }
    bodyType = has8bit ? '8BITMIME' : null;
  } else if (body.eightBit === null) {
    // A stream: declare 8-bit when we may, so 8-bit content met on the way is legal.
    bodyType = has8bit ? '8BITMIME' : null;
  } else {
    bodyType = null;
  }

  // SIZE (RFC 1870 section 6).
  const params: string[] = [];
  const size = body.size ?? envelope.size;
  const sizeCap = caps.get('SIZE');
  if (sizeCap !== undefined) {
    const max = Number(sizeCap[0] ?? '0');
    if (size !== undefined) {
      if (Number.isFinite(max) && max > 0 && size > max) {
        missing(
          'size',
          `the message is ${size} octets and the server accepts at most ${max} (SIZE, RFC 1870)`,
        );
      }
      params.push(`SIZE=${size}`);
    }
  }
  if (bodyType !== null && bodyType !== '7BIT') params.push(`BODY=${bodyType}`);
  else if (bodyType === '7BIT' && has8bit) params.push('BODY=7BIT');
  if (smtpUtf8) params.push('SMTPUTF8');

  // REQUIRETLS (RFC 8689 section 4.1).
  if (envelope.requireTls === true) {
    if (!secure) missing('requireTls', 'REQUIRETLS needs a TLS connection and this one is not encrypted');
    if (!caps.has('REQUIRETLS'))
      missing('requireTls', 'REQUIRETLS was requested and the server does not offer it');
    params.push('REQUIRETLS');
  }

  // DSN (RFC 3461).
  const dsn = envelope.dsn;
  const wantsDsn =
    dsn !== undefined &&
    (dsn.ret !== undefined || dsn.envid !== undefined || dsn.notify !== undefined || dsn.orcpt === true);
  const useDsn = wantsDsn && caps.has('DSN');
  if (wantsDsn && !useDsn && options.dsnUnsupported === 'error') {
    missing(
      'dsn',
      'delivery status notifications were requested and the server does not offer DSN (set dsnUnsupported: "drop" to send without)',
    );
  }
  const dsnMail = useDsn ? formatDsnMailParams(definedOnly({ ret: dsn!.ret, envid: dsn!.envid })).trim() : '';
  if (dsnMail !== '') params.push(dsnMail);

  const from = envelope.from === '' ? null : mailbox(envelope.from, 'from', smtpUtf8);
  const mail = [`MAIL FROM:${formatPath(from)}`, ...params].join(' ');
  const rcpts = envelope.to.map((to, i) => {
    const box = mailbox(to, `to[${i}]`, smtpUtf8);
    // ORCPT (RFC 3461 section 4.2): rfc822;xtext for an ASCII address; a non-ASCII one (which
    // got here only because the server offers SMTPUTF8) as utf-8;utf-8-addr-xtext (RFC 6533 section 3).
    const rcptParams = useDsn
      ? formatDsnRcptParams(
          definedOnly({ notify: dsn!.notify, orcpt: dsn!.orcpt === true ? box.address : undefined }),
        ).trim()
      : '';
    return {
      recipient: to,
      line: rcptParams === '' ? `RCPT TO:${formatPath(box)}` : `RCPT TO:${formatPath(box)} ${rcptParams}`,
    };
  });
  return { mail, rcpts, bodyType, smtpUtf8, useBdat: chunking || bodyType === 'BINARYMIME' };
}

/** Drop undefined members (exactOptionalPropertyTypes-safe argument objects). */
function definedOnly<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
