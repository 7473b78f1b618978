/**
 * ESMTP parameters of MAIL and RCPT (RFC 5321 section 4.1.2):
 *
 *   esmtp-param   = esmtp-keyword ["=" esmtp-value]
 *   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *   esmtp-value   = 1*(%d33-60 / %d62-126)      ; =/ UTF8-non-ascii (RFC 6531 section 3.3)
 *
 * plus xtext (RFC 3461 section 4) and the value rules of each parameter this package knows:
 * SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT
 * (RFC 3461), AUTH (RFC 4954 section 5), REQUIRETLS (RFC 8689).
 */
import { parseMailbox } from '../address/path.ts';
import { isValidUtf8, utf8Decode, utf8Encode } from '../encoding/bytes.ts';
import { SmtpMessageError, SmtpProtocolError } from '../errors.ts';
import type { EnhancedCode, SmtpReply } from '../status.ts';

/**
 * - `syntax`: not `keyword[=value]` syntax (501 5.5.4);
 * - `duplicate`: a keyword given twice (501 5.5.4);
 * - `invalid-value`: a known parameter with a value it does not allow (501 5.5.4);
 * - `unrecognized`: a keyword the server does not implement (555 5.5.4, RFC 5321 section 4.1.1.11).
 */
export type EsmtpParamErrorReason = 'syntax' | 'duplicate' | 'invalid-value' | 'unrecognized';

/** A MAIL / RCPT parameter the server must refuse; `reply` is the answer to send. */
export class EsmtpParamError extends SmtpProtocolError {
  override name = 'EsmtpParamError';
  readonly reason: EsmtpParamErrorReason;
  /** The keyword at fault (upper-cased), when known. */
  readonly keyword: string | undefined;
  readonly code: number;
  readonly enhancedCode: EnhancedCode;
  readonly reply: SmtpReply;

  constructor(reason: EsmtpParamErrorReason, message: string, keyword?: string) {
    super(message);
    this.reason = reason;
    this.keyword = keyword;
    this.code = reason === 'unrecognized' ? 555 : 501;
    this.enhancedCode = '5.5.4';
    this.reply = { code: this.code, enhancedCode: this.enhancedCode, lines: [message] };
  }
}

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
// %d33-60 / %d62-126, and UTF-8 (any char above U+007F) per RFC 6531 section 3.3.
const VALUE = /^[\x21-\x3c\x3e-\x7e\u0080-\uffff]+$/;

/**
 * Split `keyword[=value] *(SP keyword[=value])` into a map keyed by the upper-cased keyword;
 * a parameter without a value maps to `true`. Runs of spaces between parameters are
 * tolerated. Throws `EsmtpParamError` on bad syntax or a repeated keyword.
 */
export function parseEsmtpParams(text: string): { params: Map<string, string | true> } {
  const params = new Map<string, string | true>();
  for (const item of text.split(' ')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const keyword = eq < 0 ? item : item.slice(0, eq);
    if (!KEYWORD.test(keyword)) throw new EsmtpParamError('syntax', 'Invalid parameter syntax');
    const key = keyword.toUpperCase();
    let value: string | true = true;
    if (eq >= 0) {
      value = item.slice(eq + 1);
      if (!VALUE.test(value)) throw new EsmtpParamError('syntax', `Invalid ${key} parameter value`, key);
    }
    if (params.has(key)) throw new EsmtpParamError('duplicate', `Duplicate ${key} parameter`, key);
    params.set(key, value);
  }
  return { params };
}

/**
 * Throw `EsmtpParamError('unrecognized')` (555 5.5.4) for the first keyword not in `known`.
 * RFC 5321 section 4.1.1.11.
 */
export function assertKnownParams(params: ReadonlyMap<string, string | true>, known: Iterable<string>): void {
  const allowed = new Set([...known].map((k) => k.toUpperCase()));
  for (const key of params.keys()) {
    if (!allowed.has(key)) throw new EsmtpParamError('unrecognized', `${key} parameter not recognized`, key);
  }
}

/**
 * Write parameters for a MAIL / RCPT command line (client side): ` KEY=value` per entry, each
 * checked against the esmtp-param grammar, so nothing can smuggle a space, CR or LF into the
 * command. Entries whose value is `false` or `undefined` are left out. Returns '' or text
 * starting with a space.
 */
export function formatEsmtpParams(params: Iterable<readonly [string, string | boolean | undefined]>): string {
  let out = '';
  for (const [keyword, value] of params) {
    if (value === false || value === undefined) continue;
    if (!KEYWORD.test(keyword))
      throw new SmtpMessageError(`invalid ESMTP keyword ${JSON.stringify(keyword)}`, keyword);
    if (value !== true && !VALUE.test(value)) {
      throw new SmtpMessageError(`invalid value for ESMTP parameter ${keyword}`, keyword);
    }
    out += value === true ? ` ${keyword}` : ` ${keyword}=${value}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// xtext, RFC 3461 section 4.

const HEX_UPPER = '0123456789ABCDEF';

function isXchar(code: number): boolean {
  return code >= 0x21 && code <= 0x7e && code !== 0x2b && code !== 0x3d;
}

/** Encode as xtext: `!`..`~` except `+` and `=` as themselves, every other octet (UTF-8) as `+XX`. */
export function xtextEncode(s: string): string {
  let out = '';
  for (const byte of utf8Encode(s)) {
    out += isXchar(byte) ? String.fromCharCode(byte) : `+${HEX_UPPER[byte >> 4]}${HEX_UPPER[byte & 15]}`;
  }
  return out;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  return -1;
}

/**
 * Decode xtext. Throws `EsmtpParamError('invalid-value')` for a char outside xchar, a `+` not
 * followed by two upper-case hex digits, or octets that are not UTF-8.
 */
export function xtextDecode(s: string): string {
  const bytes = new Uint8Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code === 0x2b) {
      const hi = hexValue(s.charCodeAt(i + 1));
      const lo = hexValue(s.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) throw new EsmtpParamError('invalid-value', 'Malformed xtext');
      bytes[n++] = hi * 16 + lo;
      i += 2;
    } else if (isXchar(code)) {
      bytes[n++] = code;
    } else {
      throw new EsmtpParamError('invalid-value', 'Malformed xtext');
    }
  }
  const octets = bytes.subarray(0, n);
  if (!isValidUtf8(octets)) throw new EsmtpParamError('invalid-value', 'Malformed xtext');
  return utf8Decode(octets);
}

// ---------------------------------------------------------------------------------------------
// Single parameters. Each takes the map value (`true` when the parameter had no `=value`).

function needValue(value: string | true, key: string): string {
  if (value === true) throw new EsmtpParamError('invalid-value', `${key} needs a value`, key);
  return value;
}

function noValue(value: string | true, key: string): true {
  if (value !== true) throw new EsmtpParamError('invalid-value', `${key} takes no value`, key);
  return true;
}

/**
 * SIZE=<octets> (RFC 1870 section 4: `size-value ::= 1*20DIGIT`). A value beyond
 * `Number.MAX_SAFE_INTEGER` is returned as `Number.MAX_SAFE_INTEGER` (it is larger than any
 * limit, so the server answers 552 5.3.4 as for any too-large message).
 */
export function parseSizeParam(value: string | true): number {
  const v = needValue(value, 'SIZE');
  if (!/^\d{1,20}$/.test(v)) throw new EsmtpParamError('invalid-value', 'Invalid SIZE value', 'SIZE');
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

export type MailBodyType = '7BIT' | '8BITMIME' | 'BINARYMIME';

/** BODY=7BIT|8BITMIME (RFC 6152 section 3) |BINARYMIME (RFC 3030 section 3), any case. */
export function parseBodyParam(value: string | true): MailBodyType {
  const v = needValue(value, 'BODY').toUpperCase();
  if (v === '7BIT' || v === '8BITMIME' || v === 'BINARYMIME') return v;
  throw new EsmtpParamError('invalid-value', 'Invalid BODY value', 'BODY');
}

/** SMTPUTF8, which takes no value (RFC 6531 section 3.4). */
export function parseSmtpUtf8Param(value: string | true): true {
  return noValue(value, 'SMTPUTF8');
}

/** REQUIRETLS, which takes no value (RFC 8689 section 3). */
export function parseRequireTlsParam(value: string | true): true {
  return noValue(value, 'REQUIRETLS');
}

/**
 * AUTH=<xtext mailbox> or AUTH=<> on MAIL (RFC 4954 section 5). Returns the decoded mailbox
 * or the string `<>` (identity unknown or not trusted).
 */
export function parseAuthParam(value: string | true): string {
  const v = needValue(value, 'AUTH');
  if (v === '<>') return '<>';
  const decoded = xtextDecode(v);
  try {
    parseMailbox(decoded, { smtputf8: true });
  } catch {
    throw new EsmtpParamError('invalid-value', 'Invalid AUTH value', 'AUTH');
  }
  return decoded;
}

/** Write the AUTH= value: xtext of the mailbox, or `<>` for null / unknown. */
export function formatAuthParam(mailbox: string | null): string {
  return mailbox === null || mailbox === '<>' ? '<>' : xtextEncode(mailbox);
}

// ---------------------------------------------------------------------------------------------
// DSN, RFC 3461.

export interface DsnMailParams {
  /** RET= (section 4.3). */
  ret?: 'FULL' | 'HDRS';
  /** ENVID=, decoded from xtext (section 4.4). */
  envid?: string;
}

export type DsnNotify = 'NEVER' | Array<'SUCCESS' | 'FAILURE' | 'DELAY'>;

export interface DsnOrcpt {
  /** The address type, e.g. `rfc822` (section 4.2: an IANA-registered atom). */
  type: string;
  /** The original recipient address, decoded from xtext. */
  address: string;
}

export interface DsnRcptParams {
  /** NOTIFY= (section 4.1). */
  notify?: DsnNotify;
  /** ORCPT= (section 4.2). */
  orcpt?: DsnOrcpt;
}

/** ENVID and ORCPT carry printable US-ASCII before xtext encoding (RFC 3461 sections 4.2, 4.4). */
const PRINTABLE = /^[\x20-\x7e]*$/;
/** RFC 3461 section 5.4 sizes, applied to the parameter value as sent. */
export const MAX_ENVID_LENGTH = 100;
export const MAX_ORCPT_LENGTH = 500;
// atom (RFC 5322 section 3.2.3).
const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;

function parseRet(value: string | true): 'FULL' | 'HDRS' {
  const v = needValue(value, 'RET').toUpperCase();
  if (v === 'FULL' || v === 'HDRS') return v;
  throw new EsmtpParamError('invalid-value', 'Invalid RET value', 'RET');
}

function parseEnvid(value: string | true): string {
  const v = needValue(value, 'ENVID');
  if (v.length > MAX_ENVID_LENGTH) throw new EsmtpParamError('invalid-value', 'ENVID too long', 'ENVID');
  const decoded = xtextDecode(v);
  if (!PRINTABLE.test(decoded)) throw new EsmtpParamError('invalid-value', 'Invalid ENVID value', 'ENVID');
  return decoded;
}

/** NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY, any case (RFC 3461 section 4.1). */
export function parseNotifyParam(value: string | true): DsnNotify {
  const items = needValue(value, 'NOTIFY').toUpperCase().split(',');
  if (items.length === 1 && items[0] === 'NEVER') return 'NEVER';
  const out: Array<'SUCCESS' | 'FAILURE' | 'DELAY'> = [];
  for (const item of items) {
    if ((item !== 'SUCCESS' && item !== 'FAILURE' && item !== 'DELAY') || out.includes(item)) {
      throw new EsmtpParamError('invalid-value', 'Invalid NOTIFY value', 'NOTIFY');
    }
    out.push(item);
  }
  return out;
}

/** ORCPT=addr-type;xtext (RFC 3461 section 4.2). */
export function parseOrcptParam(value: string | true): DsnOrcpt {
  const v = needValue(value, 'ORCPT');
  const semi = v.indexOf(';');
  const type = v.slice(0, semi);
  if (semi <= 0 || !ATOM.test(type) || v.length > MAX_ORCPT_LENGTH) {
    throw new EsmtpParamError('invalid-value', 'Invalid ORCPT value', 'ORCPT');
  }
  const address = xtextDecode(v.slice(semi + 1));
  if (address === '' || !PRINTABLE.test(address)) {
    throw new EsmtpParamError('invalid-value', 'Invalid ORCPT value', 'ORCPT');
  }
  return { type, address };
}

/** RET and ENVID from MAIL parameters (other keys are ignored). */
export function parseDsnMailParams(params: ReadonlyMap<string, string | true>): DsnMailParams {
  const out: DsnMailParams = {};
  const ret = params.get('RET');
  if (ret !== undefined) out.ret = parseRet(ret);
  const envid = params.get('ENVID');
  if (envid !== undefined) out.envid = parseEnvid(envid);
  return out;
}

/** NOTIFY and ORCPT from RCPT parameters (other keys are ignored). */
export function parseDsnRcptParams(params: ReadonlyMap<string, string | true>): DsnRcptParams {
  const out: DsnRcptParams = {};
  const notify = params.get('NOTIFY');
  if (notify !== undefined) out.notify = parseNotifyParam(notify);
  const orcpt = params.get('ORCPT');
  if (orcpt !== undefined) out.orcpt = parseOrcptParam(orcpt);
  return out;
}

/**
 * Client side: ` RET=… ENVID=…` for MAIL ('' when neither is set). Throws `SmtpMessageError`
 * for an ENVID that is not printable US-ASCII or is too long once encoded.
 */
export function formatDsnMailParams(dsn: DsnMailParams): string {
  let out = '';
  if (dsn.ret !== undefined) {
    if (dsn.ret !== 'FULL' && dsn.ret !== 'HDRS')
      throw new SmtpMessageError('RET must be FULL or HDRS', 'dsn.ret');
    out += ` RET=${dsn.ret}`;
  }
  if (dsn.envid !== undefined) {
    if (dsn.envid === '' || !PRINTABLE.test(dsn.envid)) {
      throw new SmtpMessageError('ENVID must be printable US-ASCII', 'dsn.envid');
    }
    const encoded = xtextEncode(dsn.envid);
    if (encoded.length > MAX_ENVID_LENGTH) throw new SmtpMessageError('ENVID is too long', 'dsn.envid');
    out += ` ENVID=${encoded}`;
  }
  return out;
}

/**
 * Client side: ` NOTIFY=… ORCPT=…` for RCPT ('' when neither is set). `orcpt` may be a bare
 * address (type `rfc822`). Throws `SmtpMessageError` for NEVER combined with others, an empty
 * list, or an address that is not printable US-ASCII.
 */
export function formatDsnRcptParams(dsn: { notify?: DsnNotify; orcpt?: DsnOrcpt | string }): string {
  let out = '';
  if (dsn.notify !== undefined) {
    const list = dsn.notify === 'NEVER' ? ['NEVER'] : [...new Set(dsn.notify)];
    const ok =
      list.length > 0 &&
      list.every((v) => v === 'SUCCESS' || v === 'FAILURE' || v === 'DELAY' || v === 'NEVER');
    if (!ok || (list.includes('NEVER') && list.length > 1)) {
      throw new SmtpMessageError('NOTIFY is NEVER alone or a list of SUCCESS, FAILURE, DELAY', 'dsn.notify');
    }
    out += ` NOTIFY=${list.join(',')}`;
  }
  if (dsn.orcpt !== undefined) {
    const { type, address } =
      typeof dsn.orcpt === 'string' ? { type: 'rfc822', address: dsn.orcpt } : dsn.orcpt;
    if (!ATOM.test(type)) throw new SmtpMessageError('invalid ORCPT address type', 'dsn.orcpt');
    if (address === '' || !PRINTABLE.test(address)) {
      throw new SmtpMessageError('ORCPT address must be printable US-ASCII', 'dsn.orcpt');
    }
    const value = `${type};${xtextEncode(address)}`;
    if (value.length > MAX_ORCPT_LENGTH) throw new SmtpMessageError('ORCPT is too long', 'dsn.orcpt');
    out += ` ORCPT=${value}`;
  }
  return out;
}
