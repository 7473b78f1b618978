/**
 * Client-specific error: every recipient of a transaction was refused. It is an
 * `SmtpReplyError` (kind `reply`, command `RCPT`) so generic handling keeps working, and it
 * carries each recipient's reply.
 */
import { SmtpReplyError } from '../errors.ts';
import { isTransient, type SmtpReply } from '../status.ts';
import type { RecipientResult } from './options.ts';

export class SmtpRecipientsRejectedError extends SmtpReplyError {
  override name = 'SmtpRecipientsRejectedError';
  /** One entry per recipient, in envelope order. */
  readonly rejected: RecipientResult[];

  constructor(rejected: RecipientResult[], replies: SmtpReply[]) {
    // `temporary` follows a transient reply when there is one: retrying later may then succeed
    // for that recipient (RFC 5321 section 4.2.1).
    const representative = replies.find((r) => isTransient(r.code)) ?? replies[0]!;
    super(representative, { command: 'RCPT' });
    this.message = `RCPT: every recipient was refused (${rejected
      .map((r) =>
        `${r.recipient}: ${r.code}${r.enhancedCode ? ` ${r.enhancedCode}` : ''} ${r.message}`.trim(),
      )
      .join('; ')})`;
    this.rejected = rejected;
  }
}
