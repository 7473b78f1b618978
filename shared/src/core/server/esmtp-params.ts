/**
 * Temporary bridge to the shared ESMTP parameter codec (`core/wire/params.ts`, written by the
 * codec owner). Kept minimal; replaced by re-exports once that module lands.
 *
 * RFC 5321 section 4.1.2: esmtp-param = esmtp-keyword ["=" esmtp-value];
 * esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value = 1*(%d33-60 / %d62-126)
 * (RFC 6531 section 3.3 adds UTF-8).
 */

export interface EsmtpParam {
  keyword: string;
  value: string | undefined;
}

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const VALUE = /^[\x21-\x3c\x3e-\x7e\u0080-\uffff]+$/u;

export function splitEsmtpParams(text: string): EsmtpParam[] | null {
  const out: EsmtpParam[] = [];
  for (const word of text.split(/[ \t]+/)) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    const keyword = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    if (!KEYWORD.test(keyword)) return null;
    if (value !== undefined && !VALUE.test(value)) return null;
    out.push({ keyword: keyword.toUpperCase(), value });
  }
  return out;
}

/** RFC 3461 section 4: xtext = *( xchar / hexchar ); hexchar = "+" 2HEXDIG (upper case). */
export function decodeXtext(text: string): string | null {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2b) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return null;
      out += String.fromCharCode(Number.parseInt(hex, 16));
      i += 2;
    } else if (c >= 0x21 && c <= 0x7e && c !== 0x3d) {
      out += text[i];
    } else if (c >= 0x80) {
      out += text[i];
    } else {
      return null;
    }
  }
  return out;
}
