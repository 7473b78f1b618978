// A complete SMTP round trip with @smtp-edge/protocol on Node: a server that receives messages
// with a data handler, and the client sending one message to it.
// Run it: npx node docs/examples/library-round-trip.ts
import { composeMessage, reject, type SmtpServerHandler } from '@smtp-edge/protocol';
import { createSmtpServer, sendMail } from '@smtp-edge/protocol/node';

// #region handler
const handler: SmtpServerHandler = {
  // Each RCPT TO: refuse what you will not take before the client sends the message.
  rcptTo(_session, rcpt) {
    if (!rcpt.address.toLowerCase().endsWith('@example.org')) {
      throw reject(550, '5.7.1', 'Relaying denied');
    }
  },
  // Each message: a stream of its exact bytes. The client gets 250 only after this resolves,
  // so store the message before returning.
  async data(session, envelope, message) {
    const bytes = new Uint8Array(await new Response(message).arrayBuffer());
    const to = envelope.rcptTo.map((r) => r.address).join(', ');
    console.log(`server: ${bytes.length} octets from <${envelope.mailFrom.address}> to ${to}`);
    return { message: `Ok: queued as ${session.id}` };
  },
};
// #endregion handler

// #region listen
const server = createSmtpServer(handler, { hostname: 'mx.example.org' });
const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
// #endregion listen

// #region send
const message = composeMessage({
  from: 'app@example.org',
  to: ['zoe@example.org', 'eve@elsewhere.example'],
  subject: 'Hello from the library',
  text: 'Hi Zoë,\n\nthis went over a real socket.\n',
});
const result = await sendMail({ host: '127.0.0.1', port, security: 'none' }, message.envelope, message.bytes);
console.log(`client: accepted ${result.accepted.join(', ')}`);
for (const r of result.rejected)
  console.log(`client: rejected ${r.recipient}: ${r.code} ${r.enhancedCode} ${r.message}`);
console.log(
  `client: final reply ${result.response.code} ${result.response.enhancedCode} ${result.response.lines.join(' ')}`,
);
// #endregion send

await server.close({ deadlineMs: 1_000 });
