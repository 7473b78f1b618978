/**
 * Reply codec, both directions: `formatReply` for servers, `ReplyParser` for clients, and
 * `parseEhloKeywords` for the EHLO reply's extension list.
 *
 * RFC 5321 section 4.2:
 *   Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
 *   Reply-code = %x32-35 %x30-35 %x30-39
 * RFC 2034 section 4 / RFC 3463 section 2: with ENHANCEDSTATUSCODES, each line's text starts
 * with `class.subject.detail` and a space; the class equals the reply code's first digit.
 */
import { SmtpConfigError, SmtpProtocolError } from '../errors.ts';
import { type EnhancedCode, isEnhancedCode, type SmtpReply } from '../status.ts';

/** RFC 5321 section 4.5.3.1.5: a reply line is at most 512 octets, code and CRLF included. */
export const MAX_REPLY_LINE = 512;

export interface FormatReplyOptions {
  /** Longest line allowed, in UTF-8 octets including the CRLF. Default 512 (RFC 5321 section 4.5.3.1.5). */
  maxLineLength?: number;
}

const utf8 = new TextEncoder();

function isReplyCode(code: number): boolean {
  // %x32-35 %x30-35 %x30-39 (RFC 5321 section 4.2).
  return Number.isInteger(code) && code >= 200 && code <= 599 && Math.floor(code / 10) % 10 <= 5;
}

/**
 * The wire text of a reply, every line ending in CRLF: `code-` on all lines but the last,
 * `code ` on the last, the enhanced code repeated on every line (RFC 2034 section 4).
 *
 * Throws `SmtpConfigError` (the caller built an impossible reply) for a code outside the RFC
 * 5321 grammar, an enhanced code whose class differs from the code's first digit, a control
 * character (CR, LF, NUL, ...: reply injection) in the text, or a line over the limit. Text
 * is written as given; encode the result with `utf8Encode` (RFC 6531 allows UTF-8 text).
 */
export function formatReply(reply: SmtpReply, options: FormatReplyOptions = {}): string {
  const max = options.maxLineLength ?? MAX_REPLY_LINE;
  const { code, enhancedCode } = reply;
  if (!isReplyCode(code)) throw new SmtpConfigError(`invalid reply code ${code}`);
  if (enhancedCode !== null) {
    if (!isEnhancedCode(enhancedCode))
      throw new SmtpConfigError(`invalid enhanced status code ${enhancedCode}`);
    if (enhancedCode.charCodeAt(0) !== String(code).charCodeAt(0)) {
      throw new SmtpConfigError(`enhanced status code ${enhancedCode} does not match reply code ${code}`);
    }
  }
  const lines = reply.lines.length === 0 ? [''] : reply.lines;
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    // RFC 5321 section 4.2: textstring = 1*(%d09 / %d32-126); UTF-8 is allowed (RFC 6531), controls are not.
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(text)) {
      throw new SmtpConfigError(`reply text contains a control character: ${JSON.stringify(text)}`);
    }
    const last = i === lines.length - 1;
    const body = enhancedCode === null ? text : text === '' ? enhancedCode : `${enhancedCode} ${text}`;
    // An empty last line is the bare code (RFC 5321 section 4.2), except the empty AUTH
    // challenge, which RFC 4954 section 4 spells "334 " with its space.
    const line =
      body === ''
        ? last
          ? code === 334
            ? '334 '
            : String(code)
          : `${code}-`
        : `${code}${last ? ' ' : '-'}${body}`;
    // A UTF-16 code unit is at most 3 UTF-8 octets: short lines need no measuring.
    if (line.length * 3 + 2 > max && utf8.encode(line).length + 2 > max) {
      throw new SmtpConfigError(`reply line longer than ${max} octets`);
    }
    out += `${line}\r\n`;
  }
  return out;
}

export interface ReplyParserOptions {
  /** Most lines in one reply. Default 100. */
  maxLines?: number;
  /** Longest line, in chars without the CRLF. Default 4096. */
  maxLineLength?: number;
  /**
   * Split an enhanced status code off the text when a line starts with one (RFC 2034 section
   * 4). Default true; set false for replies that never carry one (the EHLO reply, RFC 2034
   * section 3) so text that merely looks like a code stays text.
   */
  enhanced?: boolean;
}

const LINE = /^([2-5][0-5][0-9])(?:([ -])([\s\S]*))?$/;
const ENHANCED_PREFIX = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/;

/**
 * Assembles replies from lines (without CRLF), as a client reads them. Feed each line to
 * `pushLine`; it returns the reply when its last line arrives. Throws `SmtpProtocolError` on a
 * garbled line, and starts afresh after throwing.
 */
export class ReplyParser {
  readonly #maxLines: number;
  readonly #maxLineLength: number;
  readonly #enhanced: boolean;
  #code = 0;
  #enhancedCode: EnhancedCode | null = null;
  #lines: string[] = [];

  constructor(options: ReplyParserOptions = {}) {
    this.#maxLines = options.maxLines ?? 100;
    this.#maxLineLength = options.maxLineLength ?? 4096;
    this.#enhanced = options.enhanced ?? true;
  }

  /** True while a multi-line reply is incomplete. */
  get pending(): boolean {
    return this.#lines.length > 0;
  }

  /** Forget a partial reply. */
  reset(): void {
    this.#code = 0;
    this.#enhancedCode = null;
    this.#lines = [];
  }

  pushLine(line: string): SmtpReply | null {
    try {
      return this.#push(line);
    } catch (e) {
      this.reset();
      throw e;
    }
  }

  #push(line: string): SmtpReply | null {
    if (line.length > this.#maxLineLength) {
      throw new SmtpProtocolError(`reply line longer than ${this.#maxLineLength} characters`);
    }
    const m = LINE.exec(line);
    if (m === null) throw new SmtpProtocolError(`garbled reply line: ${JSON.stringify(line.slice(0, 80))}`);
    const code = Number(m[1]);
    const last = m[2] !== '-';
    let text = m[3] ?? '';
    if (/[\r\n\0]/.test(text)) throw new SmtpProtocolError('reply line contains CR, LF or NUL');
    const first = this.#lines.length === 0;
    if (first) {
      this.#code = code;
    } else if (code !== this.#code) {
      throw new SmtpProtocolError(`reply line with code ${code} inside a ${this.#code} reply`);
    }
    if (this.#lines.length >= this.#maxLines) {
      throw new SmtpProtocolError(`reply longer than ${this.#maxLines} lines`);
    }
    if (this.#enhanced) {
      const e = ENHANCED_PREFIX.exec(text);
      if (
        e !== null &&
        e[1]!.charCodeAt(0) === m[1]!.charCodeAt(0) &&
        (first || this.#enhancedCode !== null)
      ) {
        if (first) this.#enhancedCode = e[1] as EnhancedCode;
        text = text.slice(e[0].length);
      }
    }
    this.#lines.push(text);
    if (!last) return null;
    const reply: SmtpReply = { code: this.#code, enhancedCode: this.#enhancedCode, lines: this.#lines };
    this.#lines = [];
    this.#enhancedCode = null;
    this.#code = 0;
    return reply;
  }
}

/** An EHLO keyword: `(ALPHA / DIGIT) *(ALPHA / DIGIT / "-")` (RFC 5321 section 4.1.1.1). */
const EHLO_KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

/**
 * The extensions a server lists in its EHLO reply (RFC 5321 section 4.1.1.1:
 * `ehlo-line = ehlo-keyword *( SP ehlo-param )`), keyword upper-cased to its parameters. The
 * first line (the server's name and greeting) is skipped; a line whose keyword is not valid
 * syntax (such as the old `AUTH=LOGIN` form) is ignored; parameters of a repeated keyword are
 * merged.
 */
export function parseEhloKeywords(reply: SmtpReply): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 1; i < reply.lines.length; i++) {
    const words = reply.lines[i]!.split(' ').filter((w) => w !== '');
    const keyword = words[0];
    if (keyword === undefined || !EHLO_KEYWORD.test(keyword)) continue;
    const key = keyword.toUpperCase();
    const params = words.slice(1);
    const seen = out.get(key);
    if (seen === undefined) out.set(key, params);
    else for (const p of params) if (!seen.includes(p)) seen.push(p);
  }
  return out;
}
