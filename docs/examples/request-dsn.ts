// Ask for delivery status notifications (RFC 3461) when sending, and read the DSN parameters on
// the receiving side. Run it: npx node docs/examples/request-dsn.ts
import { composeMessage, type SmtpServerHandler } from '@smtp-edge/protocol';
import { createSmtpServer, sendMail } from '@smtp-edge/protocol/node';

// #region server
const handler: SmtpServerHandler = {
  async data(_session, envelope, message) {
    await new Response(message).arrayBuffer();
    // The parameters arrive parsed and validated (xtext already decoded).
    const { ret, envid } = envelope.mailFrom.params;
    console.log(`server: RET=${ret} ENVID=${envid}`);
    for (const rcpt of envelope.rcptTo) {
      const notify = rcpt.params.notify;
      const orcpt = rcpt.params.orcpt;
      console.log(`server: ${rcpt.address} NOTIFY=${notify} ORCPT=${orcpt?.type};${orcpt?.address}`);
    }
  },
};
// #endregion server

const server = createSmtpServer(handler, { hostname: 'mx.example.org' }); // DSN is advertised by default
const { port } = await server.listen({ port: 0, host: '127.0.0.1' });

// #region client
const message = composeMessage({
  from: 'app@example.org',
  to: 'zoe@example.org',
  subject: 'Invoice',
  text: 'Attached.',
});
const result = await sendMail(
  {
    host: '127.0.0.1',
    port,
    security: 'none',
    dsnUnsupported: 'error', // the default: fail rather than silently send without DSN
  },
  {
    ...message.envelope,
    dsn: {
      ret: 'HDRS', // a failure report carries only the headers
      envid: 'invoice-2026-0042', // your id, echoed in every report
      notify: ['FAILURE', 'DELAY'], // report failures and delays, not successes
      orcpt: true, // send ORCPT=rfc822;<recipient>
    },
  },
  message.bytes,
);
// #endregion client
console.log(`client: ${result.response.code} ${result.response.enhancedCode}`);

await server.close({ deadlineMs: 1_000 });
