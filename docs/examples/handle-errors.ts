// Tell the client's failures apart and act on each: retry later, fix the input, or give up.
// Run it: npx node docs/examples/handle-errors.ts
import { composeMessage, reject, SmtpError, type SmtpServerHandler } from '@smtp-edge/protocol';
import { createSmtpServer, sendMail } from '@smtp-edge/protocol/node';

// A server that is "busy": it accepts the envelope, then refuses the message temporarily.
const handler: SmtpServerHandler = {
  async data(_session, _envelope, message) {
    await new Response(message).arrayBuffer();
    throw reject(451, '4.3.0', 'Storage busy, try again later');
  },
};
const server = createSmtpServer(handler, { hostname: 'mx.example.org' });
const { port } = await server.listen({ port: 0, host: '127.0.0.1' });

// #region handle
type Outcome =
  | { status: 'sent'; refused: string[] }
  | { status: 'retry'; reason: string }
  | { status: 'failed'; reason: string };

async function deliver(host: string, port: number, raw: Uint8Array, to: string[]): Promise<Outcome> {
  try {
    const result = await sendMail({ host, port, security: 'none' }, { from: 'app@example.org', to }, raw);
    // Sent, but some recipients may have been refused: result.rejected has their codes.
    return { status: 'sent', refused: result.rejected.map((r) => r.recipient) };
  } catch (err) {
    if (!(err instanceof SmtpError)) throw err; // a bug, not a mail failure
    switch (err.kind) {
      case 'reply': // the server answered 4xx or 5xx (err.code, err.enhancedCode, err.command)
      case 'connection': // refused, reset, closed early
      case 'timeout': // a stage took too long (err.stage)
        // `temporary` follows RFC 5321: 4xx replies, lost connections and timeouts may succeed later.
        return err.temporary
          ? { status: 'retry', reason: err.message }
          : { status: 'failed', reason: err.message };
      case 'auth': // wrong credentials, or AUTH impossible (no TLS, no common mechanism)
      case 'tls': // handshake or certificate failure, or STARTTLS required but not offered
      case 'config': // impossible options (port 25 on Workers, ...)
      case 'message': // the message or an address cannot be sent as given (err.field)
        return { status: 'failed', reason: `${err.kind}: ${err.message}` };
      default: // 'protocol' (the server broke SMTP), 'aborted' (your AbortSignal)
        return { status: 'failed', reason: `${err.kind}: ${err.message}` };
    }
  }
}
// #endregion handle

const message = composeMessage({
  from: 'app@example.org',
  to: 'zoe@example.org',
  subject: 'Hi',
  text: 'Hello',
});
console.log('busy server:', await deliver('127.0.0.1', port, message.bytes, message.envelope.to));
await server.close({ deadlineMs: 1_000 });
console.log('server gone:', await deliver('127.0.0.1', port, message.bytes, message.envelope.to));
console.log(
  'bad address:',
  await deliver('127.0.0.1', port, message.bytes, ['zoe@example.org\r\nRCPT TO:<x@y>']),
);
