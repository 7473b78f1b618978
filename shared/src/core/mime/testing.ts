/**
 * Test-only decoders, written independently of the encoders they check (and strict where the
 * RFCs are): unfolding (RFC 5322 section 2.2.3), encoded-words (RFC 2047), quoted-printable
 * (RFC 2045 section 6.7). Not exported from the package.
 */
const fatal = new TextDecoder('utf-8', { fatal: true });

/** Unfold a field ("Name: value" CRLF) and return the raw value after "Name:" and one space. */
export function fieldValue(field: string, name: string): string {
  if (!field.endsWith('\r\n')) throw new Error('field does not end with CRLF');
  const unfolded = field.slice(0, -2).replace(/\r\n(?=[ \t])/g, '');
  if (/[\r\n]/.test(unfolded)) throw new Error('bare CR or LF in field');
  if (!unfolded.startsWith(`${name}:`)) throw new Error(`not a ${name} field`);
  const rest = unfolded.slice(name.length + 1);
  return rest.startsWith(' ') ? rest.slice(1) : rest;
}

const WORD = /^=\?([^?*]+)(?:\*[^?]*)?\?([bBqQ])\?([^?\s]*)\?=$/;

function decodeOne(encoding: string, text: string): Uint8Array {
  if (encoding.toUpperCase() === 'B') {
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text))
      throw new Error(`bad B text ${text}`);
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '_') out.push(0x20);
    else if (c === '=') {
      const h = text.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(h)) throw new Error(`bad Q escape in ${text}`);
      out.push(Number.parseInt(h, 16));
      i += 2;
    } else if (/^[A-Za-z0-9!*+\-/]$/.test(c)) out.push(c.charCodeAt(0));
    else throw new Error(`character ${c} not allowed in a phrase-safe Q word`);
  }
  return Uint8Array.from(out);
}

/**
 * Decode unstructured text with encoded-words (RFC 2047 sections 6.1-6.2): whitespace between
 * two adjacent encoded-words is dropped, every other character is kept. Each encoded-word must
 * be at most 75 characters and decode to complete UTF-8 on its own (no split sequences).
 */
export function decodeUnstructured(value: string): string {
  const tokens = value.split(/([ \t]+)/);
  let out = '';
  let pendingSpace = '';
  let prevEncoded = false;
  for (const t of tokens) {
    if (t === '') continue;
    if (/^[ \t]+$/.test(t)) {
      pendingSpace += t;
      continue;
    }
    const m = WORD.exec(t);
    if (m !== null) {
      if (t.length > 75) throw new Error(`encoded-word longer than 75: ${t}`);
      if (m[1]!.toLowerCase() !== 'utf-8') throw new Error(`charset ${m[1]}`);
      const text = fatal.decode(decodeOne(m[2]!, m[3]!));
      out += (prevEncoded ? '' : pendingSpace) + text;
      prevEncoded = true;
    } else {
      out += pendingSpace + t;
      prevEncoded = false;
    }
    pendingSpace = '';
  }
  return out + pendingSpace;
}

/** Strict quoted-printable decoding (RFC 2045 section 6.7) to bytes. */
export function qpDecode(encoded: string): Uint8Array {
  const out: number[] = [];
  const lines = encoded.split('\r\n');
  lines.forEach((line, li) => {
    if (line.length > 76) throw new Error(`QP line longer than 76: ${line}`);
    if (/[ \t]$/.test(line)) throw new Error('QP line ends in whitespace');
    let soft = false;
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      if (c === 0x3d) {
        if (i === line.length - 1) {
          soft = true;
          break;
        }
        const h = line.slice(i + 1, i + 3);
        if (!/^[0-9A-F]{2}$/.test(h)) throw new Error(`bad QP escape: ${line}`);
        out.push(Number.parseInt(h, 16));
        i += 2;
      } else if ((c >= 0x21 && c <= 0x7e) || c === 0x20 || c === 0x09) {
        out.push(c);
      } else throw new Error(`raw octet ${c} in QP`);
    }
    if (!soft && li < lines.length - 1) out.push(0x0d, 0x0a);
  });
  return Uint8Array.from(out);
}

/** Every line of `text` (split at CRLF) with its length; throws on a bare CR or LF. */
export function crlfLines(text: string): string[] {
  const lines = text.split('\r\n');
  for (const l of lines) if (/[\r\n]/.test(l)) throw new Error('bare CR or LF');
  return lines;
}
