// One server, three listeners: an MX port with STARTTLS, a submission port (RFC 6409) where AUTH
// is required after STARTTLS, and an implicit-TLS submission port (RFC 8314). Then the client
// sends through both submission ports.
//
// It uses the development certificate that `npm start` creates in .smtp-edge/ (run `npm start`
// once, or point SMTP_EDGE_STATE_DIR at another directory with server.key, server.crt, ca.crt).
// Run it: npx node docs/examples/tls-and-submission.ts
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { composeMessage, type SaslCredentials, type SmtpServerHandler } from '@smtp-edge/protocol';
import { createSmtpServer, sendMail } from '@smtp-edge/protocol/node';

const state = process.env['SMTP_EDGE_STATE_DIR'] ?? '.smtp-edge';
const pem = (name: string) => readFileSync(join(state, name), 'utf8');

// #region auth
// Users and their secrets. Keep real ones hashed (the receiver's users file does); a clear-text
// secret is what CRAM-MD5 needs, so this example keeps one.
const users = new Map([['alice', 'correct horse battery staple']]);

const digest = (text: string) => createHash('sha256').update(text).digest();

function checkPassword(credentials: SaslCredentials): boolean {
  const secret = users.get(credentials.username);
  if (secret === undefined) return false;
  // CRAM-MD5 never sends the password: the library checks the client's digest against it.
  if (credentials.verify) return credentials.verify(secret);
  // PLAIN and LOGIN carry the password: compare in constant time.
  return credentials.password !== undefined && timingSafeEqual(digest(credentials.password), digest(secret));
}
// #endregion auth

const handler: SmtpServerHandler = {
  // #region auth-hook
  auth(_session, credentials) {
    // Return the identity to accept (235 2.7.0), or null to refuse (535 5.7.8).
    return checkPassword(credentials) ? { user: credentials.username } : null;
  },
  // #endregion auth-hook
  async data(session, envelope, message) {
    const size = (await new Response(message).arrayBuffer()).byteLength;
    const how = `${session.tls?.protocol ?? 'clear text'}, user ${session.user ?? '(none)'}`;
    console.log(`server: ${size} octets for ${envelope.rcptTo.map((r) => r.address).join(', ')} (${how})`);
  },
};

// #region server
const server = createSmtpServer(handler, {
  hostname: 'mail.example.org',
  tls: { key: pem('server.key'), cert: pem('server.crt') }, // TLS 1.2 at least, by default
  authMechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
});

// Port 25 in production (2525 here): STARTTLS offered, no AUTH needed to deliver.
const mx = await server.listen({ port: 0, host: '127.0.0.1', startTls: true });
// Port 587 in production: STARTTLS, then AUTH before MAIL (530 5.7.0 otherwise).
const submission = await server.listen({ port: 0, host: '127.0.0.1', startTls: true, submission: true });
// Port 465 in production: TLS from the first byte, then AUTH.
const submissions = await server.listen({ port: 0, host: '127.0.0.1', implicitTls: true, submission: true });
// #endregion server
console.log(`server: MX ${mx.port}, submission ${submission.port}, implicit TLS ${submissions.port}`);

const message = composeMessage({
  from: 'alice@example.org',
  to: 'bob@example.net',
  subject: 'Hi',
  text: 'Hello Bob',
});

// #region client
const common = {
  host: 'localhost', // the name in the server's certificate
  auth: { username: 'alice', password: 'correct horse battery staple' },
  tls: { ca: pem('ca.crt') }, // only for a private CA; public certificates need nothing
} as const;

// STARTTLS: the client refuses to continue in clear text when credentials are set.
const viaStartTls = await sendMail(
  { ...common, port: submission.port, security: 'starttls' },
  message.envelope,
  message.bytes,
);
// Implicit TLS.
const viaTls = await sendMail(
  { ...common, port: submissions.port, security: 'tls' },
  message.envelope,
  message.bytes,
);
// #endregion client
console.log(`client: STARTTLS ${viaStartTls.response.code}, implicit TLS ${viaTls.response.code}`);

await server.close({ deadlineMs: 1_000 });
