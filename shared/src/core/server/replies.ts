/**
 * Building server replies: `reject()` for handlers, and the wire encoding with enhanced status
 * codes (RFC 2034) that never lets a handler's text inject a line break.
 */
import { SmtpConfigError, SmtpReplyError } from '../errors.ts';
import { type EnhancedCode, isEnhancedCode, type SmtpReply } from '../status.ts';
import { formatReply, MAX_REPLY_LINE } from '../wire/reply.ts';

/**
 * The error a handler throws to answer with a specific reply, e.g.
 * `throw reject(550, '5.7.1', 'Relaying denied')`. Multi-line text may be separated with `\n`.
 * The code must be 4xx or 5xx and the enhanced code's class must match it (RFC 3463 section 2).
 */
export function reject(code: number, enhancedCode: EnhancedCode, text: string): SmtpReplyError {
  if (!Number.isInteger(code) || code < 400 || code > 599) {
    throw new SmtpConfigError(`reject(): reply code must be 4xx or 5xx, got ${code}`);
  }
  if (!isEnhancedCode(enhancedCode) || enhancedCode[0] !== String(code)[0]) {
    throw new SmtpConfigError(`reject(): enhanced code ${enhancedCode} does not fit reply code ${code}`);
  }
  return new SmtpReplyError({ code, enhancedCode, lines: text.split('\n') });
}

/**
 * The reply carried by an error a handler threw, when it is a `reject()` error. Checked by shape
 * (`kind: 'reply'` and a well-formed reply), not only `instanceof`, so an error from a second
 * copy of this package (or one that crossed a structured clone) still counts.
 */
export function replyOfError(error: unknown): SmtpReply | null {
  if (error instanceof SmtpReplyError) return error.reply;
  if (typeof error !== 'object' || error === null) return null;
  const e = error as { kind?: unknown; reply?: unknown };
  if (e.kind !== 'reply' || typeof e.reply !== 'object' || e.reply === null) return null;
  const reply = e.reply as { code?: unknown; enhancedCode?: unknown; lines?: unknown };
  if (typeof reply.code !== 'number' || reply.code < 400 || reply.code > 599) return null;
  if (
    reply.enhancedCode !== null &&
    (typeof reply.enhancedCode !== 'string' || !isEnhancedCode(reply.enhancedCode))
  ) {
    return null;
  }
  if (!Array.isArray(reply.lines) || !reply.lines.every((l) => typeof l === 'string')) return null;
  return {
    code: reply.code,
    enhancedCode: reply.enhancedCode as EnhancedCode | null,
    lines: reply.lines as string[],
  };
}

/** A reply value: `text` may hold several lines separated by `\n`. */
export function r(code: number, enhancedCode: EnhancedCode | null, text: string): SmtpReply {
  return { code, enhancedCode, lines: text.split('\n') };
}

const encoder = new TextEncoder();
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/g;

/** Cut `s` so its UTF-8 form fits `max` octets, without splitting a character. */
function fitUtf8(s: string, max: number): string {
  // A UTF-16 code unit is at most 3 UTF-8 octets: short text needs no measuring.
  if (s.length * 3 <= max || encoder.encode(s).length <= max) return s;
  let out = '';
  let used = 0;
  for (const ch of s) {
    const n = encoder.encode(ch).length;
    if (used + n > max) break;
    out += ch;
    used += n;
  }
  return out;
}

/**
 * Replies whose text never changes, built once at module load with `fixedReply`, and their
 * encodings (with and without the enhanced code), made on first use.
 */
const fixedEncodings = new WeakMap<SmtpReply, { enhanced: Uint8Array | null; plain: Uint8Array | null }>();

/**
 * A reply that is the same for every connection ("250 2.1.0 Sender OK"): its octets are
 * encoded once and reused, instead of formatted and encoded for every command. Treat it as
 * immutable.
 */
export function fixedReply(code: number, enhancedCode: EnhancedCode | null, text: string): SmtpReply {
  const reply = Object.freeze({ code, enhancedCode, lines: Object.freeze(text.split('\n')) as string[] });
  fixedEncodings.set(reply, { enhanced: null, plain: null });
  return reply;
}

/**
 * The octets of a reply. `enhanced: false` drops the enhanced code (extension disabled, or
 * RFC 2034 section 3: greeting, HELO/EHLO and 3xx replies carry none). Control characters in
 * the text become spaces and over-long lines are cut, so any text a handler supplies is safe.
 */
export function encodeReply(reply: SmtpReply, enhanced: boolean): Uint8Array {
  const fixed = fixedEncodings.get(reply);
  if (fixed !== undefined) {
    if (enhanced) {
      fixed.enhanced ??= encodeNow(reply, true);
      return fixed.enhanced;
    }
    fixed.plain ??= encodeNow(reply, false);
    return fixed.plain;
  }
  return encodeNow(reply, enhanced);
}

function encodeNow(reply: SmtpReply, enhanced: boolean): Uint8Array {
  const code = reply.code;
  const enhancedCode = enhanced && code >= 200 && (code < 300 || code >= 400) ? reply.enhancedCode : null;
  const prefix = 4 + (enhancedCode === null ? 0 : enhancedCode.length + 1) + 2;
  const lines = (reply.lines.length === 0 ? [''] : reply.lines).map((line) =>
    fitUtf8(line.replace(CONTROL, ' '), MAX_REPLY_LINE - prefix),
  );
  return encodeText(formatReply({ code, enhancedCode, lines }));
}

/** UTF-8 octets of `text`; ASCII (nearly every reply) without a TextEncoder call. */
function encodeText(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return encoder.encode(text);
    out[i] = c;
  }
  return out;
}
