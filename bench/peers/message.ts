/**
 * A plain RFC 5322 message of about `bytes` octets: a few headers and 76-character ASCII lines
 * (the same bytes for every client, so no client does more composing work than another).
 */
export function rawMessage(bytes: number, id = 'bench'): string {
  const head =
    'From: Bench Sender <sender@bench.test>\r\n' +
    'To: Bench Recipient <rcpt@bench.test>\r\n' +
    `Subject: benchmark message ${id}\r\n` +
    `Message-ID: <${id}@bench.test>\r\n` +
    'Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n' +
    'MIME-Version: 1.0\r\n' +
    'Content-Type: text/plain; charset=us-ascii\r\n' +
    '\r\n';
  const line = `${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3).slice(0, 74)}\r\n`;
  const lines = Math.max(1, Math.ceil((bytes - head.length) / line.length));
  return head + line.repeat(lines);
}
