/**
 * Punycode (RFC 3492) encoder and IDNA ToASCII for domain names, so that an address with an
 * ASCII local part and an internationalized domain can travel without SMTPUTF8: each U-label
 * becomes an A-label `xn--…` (RFC 5890 section 2.3.2.1). Only encoding is needed here.
 */
import { SmtpMessageError } from '../errors.ts';

// RFC 3492 section 5: parameter values for Punycode.
const BASE = 36;
const T_MIN = 1;
const T_MAX = 26;
const SKEW = 38;
const DAMP = 700;
const INITIAL_BIAS = 72;
const INITIAL_N = 0x80;
const MAX_INT = 0x7fffffff;

function digit(d: number): string {
  // 0..25 -> a..z, 26..35 -> 0..9 (RFC 3492 section 5)
  return String.fromCharCode(d < 26 ? 0x61 + d : 0x30 + d - 26);
}

// RFC 3492 section 6.1: bias adaptation.
function adapt(delta: number, numPoints: number, firstTime: boolean): number {
  let d = firstTime ? Math.floor(delta / DAMP) : delta >> 1;
  d += Math.floor(d / numPoints);
  let k = 0;
  while (d > ((BASE - T_MIN) * T_MAX) >> 1) {
    d = Math.floor(d / (BASE - T_MIN));
    k += BASE;
  }
  return k + Math.floor(((BASE - T_MIN + 1) * d) / (d + SKEW));
}

/** RFC 3492 section 6.3: encode a string of code points as Punycode (without the `xn--` prefix). */
export function punycodeEncode(input: string): string {
  const points = Array.from(input, (c) => c.codePointAt(0)!);
  let output = '';
  for (const p of points) if (p < 0x80) output += String.fromCharCode(p);
  const basic = output.length;
  let handled = basic;
  if (basic > 0) output += '-';
  let n = INITIAL_N;
  let delta = 0;
  let bias = INITIAL_BIAS;
  while (handled < points.length) {
    let m = MAX_INT;
    for (const p of points) if (p >= n && p < m) m = p;
    if ((m - n) * (handled + 1) > MAX_INT - delta) throw new RangeError('punycode overflow');
    delta += (m - n) * (handled + 1);
    n = m;
    for (const p of points) {
      if (p < n) {
        delta++;
        if (delta > MAX_INT) throw new RangeError('punycode overflow');
      }
      if (p === n) {
        let q = delta;
        for (let k = BASE; ; k += BASE) {
          const t = k <= bias ? T_MIN : k >= bias + T_MAX ? T_MAX : k - bias;
          if (q < t) break;
          output += digit(t + ((q - t) % (BASE - t)));
          q = Math.floor((q - t) / (BASE - t));
        }
        output += digit(q);
        bias = adapt(delta, handled + 1, handled === basic);
        delta = 0;
        handled++;
      }
    }
    delta++;
    n++;
  }
  return output;
}

// LDH label (RFC 5890 section 2.3.1; RFC 5321 section 4.1.2 `sub-domain`).
const LDH_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * ToASCII for a dot-separated domain: ASCII labels are kept as they are, labels with non-ASCII
 * characters are NFC-normalized, lower-cased and encoded as `xn--` A-labels. The result is
 * checked against the LDH rules and the 255-octet limit (RFC 5321 section 4.5.3.1.2).
 * Throws `SmtpMessageError` (with `field`) when the domain cannot be represented.
 */
export function domainToAscii(domain: string, field: string): string {
  const labels = domain.split('.').map((label) => {
    if (/^[\x00-\x7f]*$/.test(label)) return label;
    const u = label.normalize('NFC').toLowerCase();
    if (/[\x00-\x2c\x2e\x2f\x3a-\x40\x5b-\x60\x7b-\x7f\s]/.test(u)) {
      throw new SmtpMessageError(
        `${field}: the domain label "${label}" holds characters not allowed in a domain`,
        field,
      );
    }
    return `xn--${punycodeEncode(u)}`;
  });
  for (const label of labels) {
    if (!LDH_LABEL.test(label)) {
      throw new SmtpMessageError(`${field}: "${domain}" is not a valid domain name`, field);
    }
  }
  const ascii = labels.join('.');
  if (ascii.length > 255) throw new SmtpMessageError(`${field}: the domain is longer than 255 octets`, field);
  return ascii;
}
