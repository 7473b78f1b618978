/**
 * The comparison Worker for the Worker benchmark: what a user of the `worker-mailer` package
 * would write for the same `POST /send` (Bearer key, JSON in, one SMTP connection with STARTTLS
 * per send, JSON out). Runs under the same local workerd (wrangler dev) as our Worker.
 */
import { WorkerMailer } from 'worker-mailer';

interface Env {
  API_KEYS: string;
  SMTP_HOST: string;
  SMTP_PORT: string;
}

interface SendBody {
  from: string;
  to: string | string[];
  subject: string;
  text?: string;
  html?: string;
  attachments?: { filename: string; content: string; contentType?: string }[];
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (request.method !== 'POST' || url.pathname !== '/send')
      return new Response('not found', { status: 404 });
    if (request.headers.get('authorization') !== `Bearer ${env.API_KEYS}`) {
      return Response.json({ ok: false, error: 'unauthorized' }, { status: 401 });
    }
    const body = (await request.json()) as SendBody;
    if (typeof body.from !== 'string' || typeof body.subject !== 'string') {
      return Response.json({ ok: false, error: 'invalid_request' }, { status: 400 });
    }
    try {
      await WorkerMailer.send(
        { host: env.SMTP_HOST, port: Number(env.SMTP_PORT), secure: false, startTls: true },
        {
          from: body.from,
          to: body.to,
          subject: body.subject,
          ...(body.text === undefined ? {} : { text: body.text }),
          ...(body.html === undefined ? {} : { html: body.html }),
          ...(body.attachments === undefined
            ? {}
            : {
                attachments: body.attachments.map((a) => ({
                  filename: a.filename,
                  content: a.content,
                  ...(a.contentType === undefined ? {} : { mimeType: a.contentType }),
                })),
              }),
        },
      );
      return Response.json({ ok: true, accepted: Array.isArray(body.to) ? body.to : [body.to] });
    } catch (err) {
      return Response.json({ ok: false, error: String(err) }, { status: 502 });
    }
  },
};
