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
