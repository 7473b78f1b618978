/**
 * One message over one connection: the shape both adapters' `sendMail` share.
 */
import { validateEnvelope } from './envelope.ts';
import type { MessageBody, SendEnvelope, SendResult, SmtpClientOptions } from './options.ts';
import type { SmtpClientSession } from './session.ts';

/**
 * Check the envelope (before any connection is opened), connect with `connect`, send, and
 * QUIT whatever happens. The send error, if any, is what is thrown; QUIT never masks it.
 */
export async function sendOnce(
  connect: (options: SmtpClientOptions) => Promise<SmtpClientSession>,
  options: SmtpClientOptions,
  envelope: SendEnvelope,
  body: MessageBody,
): Promise<SendResult> {
  validateEnvelope(envelope);
  const session = await connect(options);
  try {
    return await session.send(envelope, body);
  } finally {
    await session.quit();
  }
}
