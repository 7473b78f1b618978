/**
 * One message over one connection: the shape both adapters' `sendMail` share.
 */
import { validateEnvelope } from './envelope.ts';
import type { MessageBody, SendEnvelope, SendResult, SmtpClientOptions } from './options.ts';
import type { SmtpClientSession } from './session.ts';

export interface SendOnceOptions {
  /**
   * Take the QUIT off the caller's path: when given, `sendOnce` settles as soon as the send has
   * (with the server's final reply, or its error) and hands the promise of the QUIT and close
   * to this function instead of awaiting it, e.g. `(p) => ctx.waitUntil(p)` in a Worker. That
   * promise never rejects and is bounded by `timeouts.quitMs` twice (the 221, then the close).
   */
  background?: (quit: Promise<void>) => void;
}

/**
 * Check the envelope (before any connection is opened), connect with `connect`, send, and
 * QUIT whatever happens. The send error, if any, is what is thrown; QUIT never masks it.
 * Without `background` the QUIT is awaited before settling; with it, it runs after.
 */
export async function sendOnce(
  connect: (options: SmtpClientOptions) => Promise<SmtpClientSession>,
  options: SmtpClientOptions,
  envelope: SendEnvelope,
  body: MessageBody,
  extra: SendOnceOptions = {},
): Promise<SendResult> {
  validateEnvelope(envelope);
  const session = await connect(options);
  try {
    return await session.send(envelope, body);
  } finally {
    const quit = session.quit();
    let handedOver = false;
    if (extra.background !== undefined) {
      try {
        extra.background(quit);
        handedOver = true;
      } catch {
        // A background that refuses the work (no request context) gets none: QUIT inline.
      }
    }
    if (!handedOver) await quit;
  }
}
