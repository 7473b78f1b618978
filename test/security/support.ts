/**
 * Shared pieces of the adversarial suite: the published fake end-of-data sequences (SMTP
 * smuggling), a second transaction to smuggle behind them, and an independent reference of what
 * a correct server stores for a given DATA payload.
 */

/**
 * Fake end-of-data sequences. Sources: the SEC Consult SMTP smuggling research (Timo Longin,
 * December 2023), the Postfix `smtpd_forbid_bare_newline` notes and the follow-up lists of
 * variants (bare LF, bare CR, doubled CR, NUL around the dot). None of them contains the one
 * real terminator `<CRLF>.<CRLF>` (RFC 5321 section 4.1.1.4); `assertFake` checks that.
 */
export const FAKE_ENDS: ReadonlyArray<readonly [name: string, bytes: string]> = [
  ['LF.LF', '\n.\n'],
  ['CR.CR', '\r.\r'],
  ['CR.LF', '\r.\n'],
  ['LF.CR', '\n.\r'],
  ['LF.CRLF', '\n.\r\n'],
  ['CR.CRLF', '\r.\r\n'],
  ['CRLF.LF', '\r\n.\n'],
  ['CRLF.CR', '\r\n.\r'],
  ['LF.LFLF', '\n.\n\n'],
  ['CRLF.CRCRLF', '\r\n.\r\r\n'],
  ['CRCRLF.CRCRLF', '\r\r\n.\r\r\n'],
  ['CRLF.CRCR', '\r\n.\r\r'],
  ['LFCR.LFCR', '\n\r.\n\r'],
  ['CRLF NUL.CRLF', '\r\n\x00.\r\n'],
  ['CRLF.NUL CRLF', '\r\n.\x00\r\n'],
  ['LF NUL.LF', '\n\x00.\n'],
  ['LF.NUL LF', '\n.\x00\n'],
  ['CRLF SP.CRLF', '\r\n .\r\n'],
  ['CRLF.SP CRLF', '\r\n. \r\n'],
  ['CRLF.TAB CRLF', '\r\n.\t\r\n'],
];

/** Throws if `seq` (after the prefix) would contain a real end of data. */
export function assertFake(prefix: string, seq: string): void {
  if (`${prefix}${seq}`.includes('\r\n.\r\n')) throw new Error(`not a fake end: ${JSON.stringify(seq)}`);
}

export const EVIL_FROM = 'spoofed@bank.example';
export const EVIL_RCPT = 'victim@example.org';

/** A complete second transaction, the way a vulnerable receiver would read it after a fake end. */
export function smuggledTransaction(marker: string): string {
  return (
    `MAIL FROM:<${EVIL_FROM}>\r\nRCPT TO:<${EVIL_RCPT}>\r\nDATA\r\n` +
    `From: <${EVIL_FROM}>\r\nSubject: smuggled ${marker}\r\n\r\nsmuggled body ${marker}`
  );
}

/**
 * What a server following RFC 5321 stores for DATA whose octets before the final `.<CRLF>` are
 * `raw` (so `raw` ends with the CRLF that belongs to the last line):
 * - lines are only those ended by a real CRLF; a line starting with `.` loses that dot
 *   (section 4.5.2), whatever follows it;
 * - `normalize`: every bare CR and bare LF becomes CRLF afterwards (section 2.3.8 repair).
 * Written independently of the DotReader on purpose.
 */
export function expectedStored(raw: string, normalize: boolean): string {
  const unstuffed = raw
    .split('\r\n')
    .map((line) => (line.startsWith('.') ? line.slice(1) : line))
    .join('\r\n');
  return normalize ? unstuffed.replace(/\r\n|\r|\n/g, '\r\n') : unstuffed;
}

export const hasBareLineEnding = (s: string): boolean => /\r(?!\n)|(?<!\r)\n/.test(s);

export const latin1Text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` (a state check, never a time assertion) up to `tries` times. */
export async function until(cond: () => boolean, what: string, tries = 400, everyMs = 10): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (cond()) return;
    await sleep(everyMs);
  }
  throw new Error(`never happened: ${what}`);
}

const REPLY_LINE = /^([2-5][0-9][0-9])([ -])(.*)$/s;
const ENHANCED = /^([245])\.[0-9]{1,3}\.[0-9]{1,3}(?: |$)/;

/** Every octet is part of a well-formed reply; returns the reply codes. */
export function checkReplies(text: string): number[] {
  const codes: number[] = [];
  if (text === '') return codes;
  if (!text.endsWith('\r\n'))
    throw new Error(`output does not end with CRLF: ${JSON.stringify(text.slice(-80))}`);
  const lines = text.slice(0, -2).split('\r\n');
  let open: string | null = null;
  for (const line of lines) {
    const m = REPLY_LINE.exec(line);
    if (!m) throw new Error(`not a reply line: ${JSON.stringify(line)}`);
    const [, code, sep, rest] = m as unknown as [string, string, string, string];
    if (line.length + 2 > 512) throw new Error(`reply line over 512 octets (${line.length + 2})`);
    if (/[\x00-\x1f\x7f]/.test(rest)) throw new Error(`control character in ${JSON.stringify(line)}`);
    if (open !== null && open !== code) throw new Error(`multi-line reply changes code: ${open} -> ${code}`);
    if (open === null) {
      const klass = code[0]!;
      const enhanced = ENHANCED.exec(rest);
      if (enhanced && enhanced[1] !== klass) throw new Error(`enhanced code class mismatch: ${line}`);
      if ((klass === '4' || klass === '5') && !enhanced)
        throw new Error(`4xx/5xx without enhanced code: ${line}`);
    }
    open = sep === '-' ? code : null;
    if (open === null) codes.push(Number(code));
  }
  if (open !== null) throw new Error('unterminated multi-line reply');
  return codes;
}
