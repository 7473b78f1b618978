// Send a message with BDAT (RFC 3030 CHUNKING) instead of DATA, including a binary body
// (BINARYMIME), and receive it. Run it: npx node docs/examples/transfer-with-bdat.ts
import type { SmtpServerHandler } from '@smtp-edge/protocol';
import { createSmtpServer, sendMail } from '@smtp-edge/protocol/node';

const handler: SmtpServerHandler = {
  // #region handler
  async data(_session, envelope, message) {
    // The same stream whether the client used DATA or BDAT: all chunks, in order, exact octets.
    const bytes = new Uint8Array(await new Response(message).arrayBuffer());
    console.log(`server: ${bytes.length} octets, BODY=${envelope.mailFrom.params.body ?? '(not declared)'}`);
  },
  // #endregion handler
};

// #region server
const server = createSmtpServer(handler, {
  hostname: 'mx.example.org',
  // Both default to true: CHUNKING is advertised, and BINARYMIME with it.
  extensions: { chunking: true, binaryMime: true },
});
// #endregion server
const { port } = await server.listen({ port: 0, host: '127.0.0.1' });

// #region client
// A MIME message whose attachment is raw binary (Content-Transfer-Encoding: binary): it may hold
// any octet, bare CR and LF included, so it can only travel with BDAT and BODY=BINARYMIME.
const binary = new Uint8Array(4096).map((_, i) => i % 256);
const head = new TextEncoder().encode(
  'From: app@example.org\r\nTo: zoe@example.org\r\nSubject: Raw bytes\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n',
);
const body = new Uint8Array([...head, ...binary]);

const result = await sendMail(
  {
    host: '127.0.0.1',
    port,
    security: 'none',
    chunking: { chunkSize: 1024 }, // BDAT whenever the server offers CHUNKING; default 64 KiB chunks
  },
  { from: 'app@example.org', to: ['zoe@example.org'], body: 'BINARYMIME' },
  body,
);
// #endregion client
console.log(
  `client: ${result.response.code} ${result.response.enhancedCode} ${result.response.lines.join(' ')}`,
);

await server.close({ deadlineMs: 1_000 });
