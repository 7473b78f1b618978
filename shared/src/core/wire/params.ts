/**
 * ESMTP parameters of MAIL and RCPT (RFC 5321 section 4.1.2):
 *
 *   esmtp-param   = esmtp-keyword ["=" esmtp-value]
 *   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *   esmtp-value   = 1*(%d33-60 / %d62-126)      ; =/ UTF8-non-ascii (RFC 6531 section 3.3)
 *
 * plus xtext (RFC 3461 section 4), the `utf-8` address type of ORCPT (RFC 6533 section 3) and
 * the value rules of each parameter this package knows: SIZE (RFC 1870), BODY (RFC 6152,
 * RFC 3030), SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT (RFC 3461, RFC 6533), AUTH (RFC 4954
 * section 5), REQUIRETLS (RFC 8689).
 */
import { parseMailbox } from '../address/path.ts';
import { isAscii, isValidUtf8, utf8Decode, utf8Encode } from '../encoding/bytes.ts';
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
// The `utf-8` address type, RFC 6533 section 3:
//
//   utf-8-type-addr     = "utf-8;" utf-8-enc-addr
//   utf-8-enc-addr      = utf-8-addr-xtext / utf-8-addr-unitext / utf-8-address
//   utf-8-addr-xtext    = 1*(QCHAR / EmbeddedUnicodeChar)     ; 7-bit, usable in any ORCPT
//   utf-8-addr-unitext  = 1*(QUCHAR / EmbeddedUnicodeChar)    ; raw UTF-8, only with SMTPUTF8
//   QCHAR               = %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e  ; printable ASCII but + = \
//   QUCHAR              = QCHAR / UTF8-2 / UTF8-3 / UTF8-4
//   EmbeddedUnicodeChar = "\x{" HEXPOINT "}"                  ; 2 to 6 hex digits, no surrogates

function isQchar(code: number): boolean {
  return code >= 0x21 && code <= 0x7e && code !== 0x2b && code !== 0x3d && code !== 0x5c;
}

/**
 * Encode an address as RFC 6533 utf-8-addr-xtext: QCHARs as themselves, every other code point
 * (`+`, `=`, `\`, space, controls, anything beyond ASCII) as `\x{HEX}` with upper-case digits,
 * at least two. The result is printable US-ASCII, valid in an ORCPT with or without SMTPUTF8.
 */
export function utf8AddrXtextEncode(address: string): string {
  let out = '';
  for (const ch of address) {
    const cp = ch.codePointAt(0)!;
    out += isQchar(cp) ? ch : `\\x{${cp.toString(16).toUpperCase().padStart(2, '0')}}`;
  }
  return out;
}

const EMBEDDED_UNICODE_CHAR = /\\x\{([0-9A-Fa-f]{2,6})\}/y;

/**
 * Decode the text after `utf-8;` (RFC 6533 section 3): utf-8-addr-xtext, utf-8-addr-unitext or
 * a plain utf-8-address. Each `\x{HEX}` becomes its code point; every other character stands for
 * itself (a literal `+` is allowed, as in the utf-8-address form). Hex digits are accepted in
 * either case (ABNF literals are case-insensitive). Throws `EsmtpParamError('invalid-value')` for
 * a backslash that does not start a well-formed `\x{HEX}`, a code point beyond U+10FFFF or in
 * the surrogate range, or a space or control character written as itself.
 */
export function utf8AddrDecode(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 0x5c) {
      EMBEDDED_UNICODE_CHAR.lastIndex = i;
      const m = EMBEDDED_UNICODE_CHAR.exec(text);
      const cp = m === null ? -1 : Number.parseInt(m[1]!, 16);
      if (m === null || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        throw new EsmtpParamError('invalid-value', 'Malformed utf-8-addr-xtext');
      }
      out += String.fromCodePoint(cp);
      i += m[0].length;
    } else if (code <= 0x20 || code === 0x7f) {
      throw new EsmtpParamError('invalid-value', 'Malformed utf-8-addr-xtext');
    } else {
      out += text.charAt(i);
      i++;
    }
  }
  return out;
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
  /**
   * The address type as sent, e.g. `rfc822` (RFC 3461 section 4.2: an IANA-registered atom) or
   * `utf-8` (RFC 6533 section 3). Compare it case-insensitively.
   */
  type: string;
  /**
   * The original recipient address, decoded: from xtext for `rfc822` and other types (the octets
   * may be UTF-8, as Postfix sends for a non-ASCII recipient), from `\x{HEX}` escapes for `utf-8`.
   */
  address: string;
}

export interface DsnRcptParams {
  /** NOTIFY= (section 4.1). */
  notify?: DsnNotify;
  /** ORCPT= (section 4.2). */
  orcpt?: DsnOrcpt;
}

/** ENVID and an rfc822 ORCPT carry printable US-ASCII before xtext encoding (RFC 3461 sections 4.2, 4.4). */
const PRINTABLE = /^[\x20-\x7e]*$/;
/**
 * A decoded ORCPT address: printable ASCII or any Unicode beyond it, never a control character
 * (C0, DEL, C1), so no CR or LF can travel from an ORCPT into a DSN, a log line or a relayed RCPT.
 */
const ORCPT_ADDRESS = /^[^\x00-\x1f\x7f-\x9f]+$/;
const UTF8_ADDR_TYPE = 'utf-8';
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

/**
 * ORCPT=addr-type;value (RFC 3461 section 4.2, RFC 6533 section 3).
 *
 * - `utf-8;…` (any case): utf-8-addr-xtext, utf-8-addr-unitext or utf-8-address, decoded by
 *   `utf8AddrDecode`.
 * - any other atom (`rfc822`, …): xtext whose octets must be UTF-8. RFC 3461 section 4.2 says the
 *   address is "NOT constrained to conform to the syntax rules for that addr-type", so octets
 *   beyond ASCII are accepted: Postfix 3.7 relays a UTF-8 recipient as
 *   `ORCPT=rfc822;b+C3+B8b@example.net`, which decodes to `bøb@example.net`.
 *
 * What cannot be decoded is refused with 501 5.5.4 (RFC 3461 section 5.1 (b): a server SHOULD
 * answer "501 syntax error in parameter" to an invalid value): a missing or non-atom type, more
 * than 500 characters (section 5.4), malformed xtext or `\x{HEX}`, octets that are not UTF-8, an
 * empty address, or a control character in the decoded address.
 */
export function parseOrcptParam(value: string | true): DsnOrcpt {
  const v = needValue(value, 'ORCPT');
  const semi = v.indexOf(';');
  const type = v.slice(0, semi);
  if (semi <= 0 || !ATOM.test(type) || v.length > MAX_ORCPT_LENGTH) throw invalidOrcpt();
  const text = v.slice(semi + 1);
  let address: string;
  try {
    address = type.toLowerCase() === UTF8_ADDR_TYPE ? utf8AddrDecode(text) : xtextDecode(text);
  } catch (err) {
    if (err instanceof EsmtpParamError) throw invalidOrcpt();
    throw err;
  }
  if (!ORCPT_ADDRESS.test(address)) throw invalidOrcpt();
  return { type, address };
}

function invalidOrcpt(): EsmtpParamError {
  return new EsmtpParamError('invalid-value', 'Invalid ORCPT value', 'ORCPT');
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
 * Client side: ` NOTIFY=… ORCPT=…` for RCPT ('' when neither is set).
 *
 * `orcpt` may be a bare address: an ASCII one is sent as `rfc822;<xtext>` (RFC 3461 section 4.2),
 * any other as `utf-8;<utf-8-addr-xtext>` (RFC 6533 section 3). The 7-bit utf-8-addr-xtext form is
 * valid whether or not the server offers SMTPUTF8; a non-ASCII recipient needs SMTPUTF8 anyway.
 * With an explicit `{type, address}`, type `utf-8` (any case) uses utf-8-addr-xtext and any other
 * type xtext, which then needs a printable US-ASCII address.
 *
 * Throws `SmtpMessageError` for NEVER combined with others, an empty list, an empty address or one
 * with a control character, a non-ASCII address with a type other than `utf-8`, or a value longer
 * than 500 characters (RFC 3461 section 5.4).
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
      typeof dsn.orcpt === 'string'
        ? { type: isAscii(dsn.orcpt) ? 'rfc822' : UTF8_ADDR_TYPE, address: dsn.orcpt }
        : dsn.orcpt;
    if (!ATOM.test(type)) throw new SmtpMessageError('invalid ORCPT address type', 'dsn.orcpt');
    if (!ORCPT_ADDRESS.test(address)) {
      throw new SmtpMessageError('ORCPT address must be non-empty, without control characters', 'dsn.orcpt');
    }
    let value: string;
    if (type.toLowerCase() === UTF8_ADDR_TYPE) {
      value = `${type};${utf8AddrXtextEncode(address)}`;
    } else {
      if (!PRINTABLE.test(address)) {
        throw new SmtpMessageError(
          `an ORCPT address of type ${type} must be printable US-ASCII; use type utf-8 (RFC 6533)`,
          'dsn.orcpt',
        );
      }
      value = `${type};${xtextEncode(address)}`;
    }
    if (value.length > MAX_ORCPT_LENGTH) throw new SmtpMessageError('ORCPT is too long', 'dsn.orcpt');
    out += ` ORCPT=${value}`;
  }
  return out;
}
