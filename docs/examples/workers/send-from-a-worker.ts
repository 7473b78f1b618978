// A Worker that sends mail with the protocol library itself: the composer builds the message, the
// Workers adapter sends it over a `connect()` socket with STARTTLS and AUTH.
// (The smtp-edge Worker in workers/ does this too, with validation, limits and an API key.)
// Run it: npx wrangler dev docs/examples/workers/send-from-a-worker.ts --compatibility-date 2025-11-17 \
//   --var SMTP_HOST:smtp.example.com --var SMTP_PORT:587 --var SMTP_USERNAME:me@example.com \
//   --var SMTP_PASSWORD:secret --var MAIL_FROM:me@example.com
import { composeMessage, SmtpError } from '@smtp-edge/protocol';
import { sendMail } from '@smtp-edge/protocol/workers';

interface Env {
  SMTP_HOST: string;
  SMTP_PORT: string;
  SMTP_USERNAME: string;
  SMTP_PASSWORD: string; // in production a secret: npx wrangler secret put SMTP_PASSWORD
  MAIL_FROM: string;
}

export default {
  async fetch(request, env): Promise<Response> {
    if (request.method !== 'POST')
      return new Response('POST {"to", "subject", "text"} as JSON\n', { status: 405 });
    const input = await request.json<{ to: string; subject: string; text: string }>();

    // #region send
    try {
      const message = composeMessage({
        from: env.MAIL_FROM,
        to: input.to,
        subject: input.subject,
        text: input.text,
      });
      // One connection per request, opened here and closed by sendMail (never in global scope).
      const result = await sendMail(
        {
          host: env.SMTP_HOST,
          port: Number(env.SMTP_PORT), // 587 (STARTTLS) or 465 (security: 'tls'); never 25 on Workers
          security: 'starttls',
          auth: { username: env.SMTP_USERNAME, password: env.SMTP_PASSWORD },
        },
        message.envelope,
        message.bytes,
      );
      return Response.json({
        messageId: message.messageId,
        accepted: result.accepted,
        rejected: result.rejected,
      });
    } catch (err) {
      if (!(err instanceof SmtpError)) throw err;
      // kind: reply, auth, tls, connection, timeout, config, message, …; temporary: worth retrying.
      const status = err.kind === 'message' ? 400 : err.temporary ? 503 : 502;
      return Response.json({ error: err.kind, message: err.message }, { status });
    }
    // #endregion send
  },
} satisfies ExportedHandler<Env>;
