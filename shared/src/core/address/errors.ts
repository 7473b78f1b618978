import { SmtpMessageError } from '../errors.ts';
import type { SmtpReply } from '../status.ts';

/**
 * Why an address was refused:
 * - `syntax`: not RFC 5321 section 4.1.2 syntax (RFC 6531 section 3.3 with SMTPUTF8);
 * - `local-part-too-long` (> 64 octets), `domain-too-long` (> 255 octets, or a label > 63),
 *   `path-too-long` (> 256 octets): RFC 5321 section 4.5.3.1.1-3;
 * - `non-ascii`: UTF-8 in the address without SMTPUTF8 (RFC 6531 section 3.5);
 * - `control-character`: CR, LF, NUL or another control character (never valid in an address).
 */
export type AddressErrorReason =
  | 'syntax'
  | 'local-part-too-long'
  | 'domain-too-long'
  | 'path-too-long'
  | 'non-ascii'
  | 'control-character';

/** Where the address came from: it picks the reply a server sends. */
export type AddressContext = 'MAIL' | 'RCPT' | 'mailbox';

function replyFor(reason: AddressErrorReason, context: AddressContext, message: string): SmtpReply {
  if (reason === 'non-ascii') {
    // RFC 6531 section 3.5: 550 for MAIL, 553 for RCPT, enhanced code X.6.7 (RFC 5248).
    return {
      code: context === 'MAIL' ? 550 : 553,
      enhancedCode: '5.6.7',
      lines: ['Non-ASCII addresses not permitted for that sender/recipient'],
    };
  }
  // RFC 3463 section 3.2: X.1.7 bad sender's address syntax, X.1.3 bad destination address syntax.
  // RFC 5321 section 4.5.3.1.10: "501 Path too long".
  return { code: 501, enhancedCode: context === 'MAIL' ? '5.1.7' : '5.1.3', lines: [message] };
}

/** An address that cannot be used as given; `reply` is what a server answers. */
export class AddressError extends SmtpMessageError {
  override name = 'AddressError';
  readonly reason: AddressErrorReason;
  readonly reply: SmtpReply;

  constructor(reason: AddressErrorReason, message: string, context: AddressContext, field?: string) {
    super(message, field, context === 'mailbox' ? {} : { command: context });
    this.reason = reason;
    this.reply = replyFor(reason, context, message);
  }
}
