// Bound what one client, and all clients together, can use; then shut down without losing a
// message. Run it: npx node docs/examples/limits-and-shutdown.ts
import { composeMessage, type SmtpServerHandler } from '@smtp-edge/protocol';
import { createSmtpServer, sendMail } from '@smtp-edge/protocol/node';

const handler: SmtpServerHandler = {
  async data(_session, _envelope, message) {
    await new Response(message).arrayBuffer();
  },
};

// #region limits
const server = createSmtpServer(handler, {
  hostname: 'mx.example.org',
  maxConnections: 500, // all listeners together; more get 421 4.7.0
  maxConnectionsPerIp: 10, // per remote address; more get 421 4.7.0
  maxMessageBytes: 10 * 1024 * 1024, // advertised as SIZE; larger gets 552 5.3.4
  maxRecipients: 2, // per message (default 100); more get 452 4.5.3
  maxBadCommands: 10, // unknown or malformed commands, then 421 and close
  maxAuthFailures: 3, // failed AUTH attempts, then 421 and close
  timeouts: {
    commandMs: 60_000, // waiting for the next command (RFC 5321 default: 5 minutes)
    dataBlockMs: 60_000, // silence in the middle of a message (default: 3 minutes)
  },
});
// #endregion limits
const { port } = await server.listen({ port: 0, host: '127.0.0.1' });

// Three recipients against maxRecipients 2: the third is refused, the message goes to two.
const message = composeMessage({
  from: 'app@example.org',
  to: ['a@example.org', 'b@example.org', 'c@example.org'],
  subject: 'Limits',
  text: 'Hello',
});
const result = await sendMail({ host: '127.0.0.1', port, security: 'none' }, message.envelope, message.bytes);
console.log(`client: accepted ${result.accepted.join(', ')}`);
for (const r of result.rejected)
  console.log(`client: rejected ${r.recipient}: ${r.code} ${r.enhancedCode} ${r.message}`);

// #region shutdown
async function shutdown(): Promise<void> {
  // Stop accepting, answer 421 4.3.2 to idle sessions, let messages being received finish for up
  // to 30 s, then close whatever is left.
  await server.close({ deadlineMs: 30_000 });
}
process.once('SIGTERM', () => void shutdown().then(() => process.exit(0)));
process.once('SIGINT', () => void shutdown().then(() => process.exit(0)));
// #endregion shutdown

await shutdown();
console.log(`server: closed, ${server.connections} connections left`);
