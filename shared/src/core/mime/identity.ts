/**
 * The identity fields of a message: Date (RFC 5322 section 3.3 / 3.6.1) and Message-ID,
 * In-Reply-To, References (RFC 5322 section 3.6.4), plus the random tokens they and MIME
 * boundaries use (Web Crypto `getRandomValues`, available in Workers and Node).
 */
import { hex } from '../encoding/index.ts';
import { SmtpMessageError } from '../errors.ts';
import { assertHeaderText } from './text.ts';

/** `n` random octets as lower-case hex. */
export function randomHex(n: number): string {
  return hex(crypto.getRandomValues(new Uint8Array(n)));
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(n: number): string {
  return n.toString().padStart(2, '0');
}

/**
 * RFC 5322 section 3.3 date-time in UTC: `Thu, 28 Nov 2026 09:05:03 +0000`. UTC is the one zone
 * known in every runtime (Workers have no local zone); `+0000` means UTC, not "unknown" (`-0000`).
 */
export function formatDate(date: Date, field = 'date'): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new SmtpMessageError(`${field} must be a valid Date`, field);
  }
  const year = date.getUTCFullYear();
  if (year < 1900 || year > 9999)
    throw new SmtpMessageError(`${field}: year ${year} is outside 1900..9999`, field);
  return (
    `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${year} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}

// RFC 5322 section 3.3, without the obsolete forms and comments: [day ","] d month yyyy hh:mm[:ss] zone
const DATE_TIME =
  /^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} (?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60))? [+-](?:[01]\d|2[0-3])[0-5]\d$/;

/** Validate a caller-supplied Date header value (RFC 5322 section 3.3 syntax). */
export function checkDateText(value: string, field: string): string {
  assertHeaderText(value, field);
  const text = value.trim();
  if (!DATE_TIME.test(text)) {
    throw new SmtpMessageError(`${field}: "${value}" is not an RFC 5322 section 3.3 date-time`, field);
  }
  return text;
}

// RFC 5322 section 3.6.4: msg-id = "<" id-left "@" id-right ">", id-left = dot-atom-text,
// id-right = dot-atom-text / no-fold-literal.
const ATEXT = "[A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~]";
const DOT_ATOM_TEXT = `${ATEXT}+(?:\\.${ATEXT}+)*`;
const NO_FOLD_LITERAL = '\\[[\\x21-\\x5a\\x5e-\\x7e]*\\]';
const MSG_ID = new RegExp(`^<${DOT_ATOM_TEXT}@(?:${DOT_ATOM_TEXT}|${NO_FOLD_LITERAL})>$`);
// References and In-Reply-To copy other agents' ids, which are not always strictly formed:
// accept any `<…>` of printable ASCII without spaces and angle brackets.
const LOOSE_MSG_ID = /^<[\x21-\x3b\x3d\x3f-\x7e]+>$/;
const MAX_MSG_ID = 250;

/**
 * A Message-ID for this message: the caller's (with or without angle brackets, checked against
 * RFC 5322 section 3.6.4) or a fresh `<hex.hex@domain>` with 128 random bits and the time.
 */
export function messageIdFor(given: string | undefined, domain: string, field = 'messageId'): string {
  if (given === undefined) return `<${Date.now().toString(16)}.${randomHex(16)}@${domain}>`;
  assertHeaderText(given, field);
  const t = given.trim();
  const id = t.startsWith('<') ? t : `<${t}>`;
  if (!MSG_ID.test(id) || id.length > MAX_MSG_ID) {
    throw new SmtpMessageError(`${field}: "${given}" is not a valid msg-id (RFC 5322 section 3.6.4)`, field);
  }
  return id;
}

/** A list of msg-ids (In-Reply-To, References): an array, or ids separated by whitespace. */
export function msgIdList(value: string | readonly string[], field: string): string[] {
  const items = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(items))
    throw new SmtpMessageError(`${field} must be a string or an array of strings`, field);
  const ids: string[] = [];
  items.forEach((item, i) => {
    const f = typeof value === 'string' ? field : `${field}[${i}]`;
    assertHeaderText(item, f);
    for (const part of item.split(/[ \t]+/)) {
      if (part === '') continue;
      const id = part.startsWith('<') ? part : `<${part}>`;
      if (!LOOSE_MSG_ID.test(id) || id.length > MAX_MSG_ID) {
        throw new SmtpMessageError(`${f}: "${part}" is not a msg-id (RFC 5322 section 3.6.4)`, f);
      }
      ids.push(id);
    }
  });
  return ids;
}
