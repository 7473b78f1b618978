/**
 * Input checks shared by every field of the composer. Header injection is impossible because
 * every string that can reach a header passes `assertHeaderText` first: CR, LF and NUL (and the
 * other C0 controls and DEL, which RFC 5322 section 3.2.3 no longer allows in `ctext`/`qtext`/
 * unstructured text outside `obs-` forms) are refused with the field name, never emitted.
 */
import { SmtpMessageError } from '../errors.ts';

// U+0000..U+0008, U+000A..U+001F, U+007F: every C0 control except HTAB, plus DEL.
const HEADER_CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
// A lone surrogate has no UTF-8 form (RFC 3629 section 3); with the `u` flag a valid pair is
// one astral code point and does not match \p{Cs}.
const LONE_SURROGATE = /\p{Cs}/u;

function describe(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  if (code === 0x0d) return 'CR';
  if (code === 0x0a) return 'LF';
  if (code === 0x00) return 'NUL';
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Throw unless `value` is a string of well-formed Unicode. */
export function assertString(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string') throw new SmtpMessageError(`${field} must be a string`, field);
  if (LONE_SURROGATE.test(value)) {
    throw new SmtpMessageError(`${field} contains a lone UTF-16 surrogate (not encodable as UTF-8)`, field);
  }
}

/**
 * Throw unless `value` may be carried in a header field: a well-formed string with no CR, LF,
 * NUL or other control character (HTAB allowed). This is the header-injection guard.
 */
export function assertHeaderText(value: unknown, field: string): asserts value is string {
  assertString(value, field);
  const bad = HEADER_CONTROL.exec(value);
  if (bad !== null) {
    throw new SmtpMessageError(
      `${field} contains the control character ${describe(bad[0])}, which is not allowed in a header`,
      field,
    );
  }
}

/** True when every char is printable US-ASCII (U+0021..U+007E) or SP. */
export function isPrintableAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** Line breaks of any convention (CRLF, bare LF, bare CR) become CRLF (RFC 5322 section 2.3). */
export function normalizeLineBreaks(s: string): string {
  return s.replace(/\r\n|\r|\n/g, '\r\n');
}
