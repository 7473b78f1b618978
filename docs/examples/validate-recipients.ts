// Refuse unknown recipients at RCPT time, so the sending server bounces them itself, and accept
// the message for the others. Run it: npx node docs/examples/validate-recipients.ts
import { composeMessage, reject, type SmtpServerHandler } from '@smtp-edge/protocol';
import { createSmtpServer, sendMail } from '@smtp-edge/protocol/node';

// #region handler
const domains = new Set(['example.org']);
const mailboxes = new Set(['zoe@example.org', 'postmaster@example.org']);

const handler: SmtpServerHandler = {
  mailFrom(_session, from) {
    // '' is the null reverse-path of bounces (RFC 5321 section 4.5.5): always accept it.
    if (from.address !== '' && !from.address.includes('@')) throw reject(553, '5.1.7', 'Bad sender address');
  },
  rcptTo(_session, rcpt) {
    const address = rcpt.address.toLowerCase();
    // RCPT TO:<Postmaster> without a domain must always be accepted (RFC 5321 section 4.1.1.3).
    if (address === 'postmaster') return;
    const domain = address.slice(address.lastIndexOf('@') + 1);
    // Not our domain: we are not a relay (RFC 5321 section 3.6.2).
    if (!domains.has(domain)) throw reject(550, '5.7.1', 'Relaying denied');
    // Our domain, no such mailbox.
    if (!mailboxes.has(address)) throw reject(550, '5.1.1', `No such user here`);
    // A temporary problem (a directory lookup that timed out, say) would be:
    // throw reject(451, '4.3.0', 'Try again later');
  },
  async data(_session, envelope, message) {
    await new Response(message).arrayBuffer(); // a real server stores the message here
    console.log(`server: message for ${envelope.rcptTo.map((r) => r.address).join(', ')}`);
  },
};
// #endregion handler

const server = createSmtpServer(handler, { hostname: 'mx.example.org' });
const { port } = await server.listen({ port: 0, host: '127.0.0.1' });

// #region client
const message = composeMessage({
  from: 'app@example.net',
  to: ['zoe@example.org', 'nobody@example.org', 'someone@elsewhere.example'],
  subject: 'Three recipients',
  text: 'One of you exists.',
});
const result = await sendMail({ host: '127.0.0.1', port, security: 'none' }, message.envelope, message.bytes);
console.log(`client: accepted ${result.accepted.join(', ')}`);
for (const r of result.rejected)
  console.log(`client: rejected ${r.recipient}: ${r.code} ${r.enhancedCode} ${r.message}`);
// #endregion client

await server.close({ deadlineMs: 1_000 });
