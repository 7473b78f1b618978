/**
 * Replies and enhanced status codes.
 *
 * RFC 5321 section 4.2: a reply is a three-digit code followed by text; a multi-line reply
 * repeats the code with `-` on every line but the last. RFC 3463 / RFC 2034: with
 * ENHANCEDSTATUSCODES every reply text (except the greeting and EHLO replies, RFC 2034 section 3)
 * starts with `class.subject.detail`.
 */

/** An enhanced status code as written on the wire, e.g. `"5.7.1"` (RFC 3463 section 2). */
export type EnhancedCode = `${2 | 4 | 5}.${number}.${number}`;

/** One SMTP reply, client or server side. `lines` carry neither the code nor the enhanced code. */
export interface SmtpReply {
  /** The three-digit reply code (RFC 5321 section 4.2.1). */
  readonly code: number;
  /** The RFC 3463 code, or null when the reply has none (greeting, EHLO, a server without the extension). */
  readonly enhancedCode: EnhancedCode | null;
  /** Text of each line, without code, separator and enhanced code. At least one (possibly empty) line. */
  readonly lines: readonly string[];
}

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})$/;

/** True when `text` is a syntactically valid enhanced status code (RFC 3463 section 2). */
export function isEnhancedCode(text: string): text is EnhancedCode {
  return ENHANCED.test(text);
}

/** `2xx` and `3xx` are positive; RFC 5321 section 4.2.1. */
export function isPositive(code: number): boolean {
  return code >= 200 && code < 400;
}

/** `4xx`: the same command may succeed later (RFC 5321 section 4.2.1, "Transient Negative"). */
export function isTransient(code: number): boolean {
  return code >= 400 && code < 500;
}

/** `5xx`: do not repeat the same request (RFC 5321 section 4.2.1, "Permanent Negative"). */
export function isPermanent(code: number): boolean {
  return code >= 500 && code < 600;
}

/** Build a reply value; `text` may hold several lines separated by `\n`. */
export function reply(
  code: number,
  enhancedCode: EnhancedCode | null,
  text: string | readonly string[],
): SmtpReply {
  const lines = typeof text === 'string' ? text.split('\n') : [...text];
  return { code, enhancedCode, lines: lines.length === 0 ? [''] : lines };
}

/** One-line human form, e.g. `550 5.1.1 No such user` (multi-line text joined with spaces). */
export function replyToString(r: SmtpReply): string {
  const text = r.lines.join(' ');
  return [String(r.code), r.enhancedCode, text].filter((part) => part !== null && part !== '').join(' ');
}
