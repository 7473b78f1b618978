// Another Worker that sends mail through the smtp-edge Worker's `Mailer` entrypoint, over a
// service binding (no API key, no public HTTP). In this Worker's wrangler.toml:
//
//   [[services]]
//   binding = "MAILER"
//   service = "smtp-edge-mailer"
//   entrypoint = "Mailer"
//
// The types come from the smtp-edge Worker (`@smtp-edge/workers` inside this repository: the
// `Mailer` class for the binding, `SendRequest` and friends from workers/src/types.ts).
import type { Mailer, SendRequest } from '@smtp-edge/workers';

interface Env {
  MAILER: Service<Mailer>;
}

export default {
  async fetch(request, env): Promise<Response> {
    const { email } = await request.json<{ email: string }>();
    // #region send
    const message: SendRequest = {
      from: { name: 'Example App', address: 'app@example.org' },
      to: email,
      subject: 'Your sign-in link',
      text: 'Open https://app.example.org/sign-in/… to sign in.',
      dsn: { notify: ['FAILURE'] },
    };
    const result = await env.MAILER.send(message);
    if (result.ok) {
      return Response.json({ sent: result.messageId, refused: result.rejected });
    }
    // Failures are values, not exceptions: RPC would strip a thrown error's details.
    const { status, code, message: reason, retryAfterSeconds } = result.error;
    const headers: HeadersInit = retryAfterSeconds ? { 'Retry-After': String(retryAfterSeconds) } : {};
    return Response.json({ error: code, reason }, { status, headers });
    // #endregion send
  },
} satisfies ExportedHandler<Env>;
