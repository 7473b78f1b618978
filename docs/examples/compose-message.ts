// Compose a message with the protocol library's composer: no I/O, runs on Node and in Workers.
import { composeMessage } from '@smtp-edge/protocol';

const message = composeMessage({
  from: { name: 'Zoë Martin', address: 'zoe@example.org' },
  to: 'zoe@example.org',
  bcc: ['ops@example.org'],
  subject: 'Quarterly report ✔',
  text: 'Hello,\n\nthe report is attached.\n',
  attachments: [{ filename: 'report.csv', content: new TextEncoder().encode('month,total\n10,42\n') }],
});

// The envelope holds every recipient, Bcc included; the headers never show the Bcc.
console.log(`Message-ID: ${message.messageId}`);
console.log(`envelope.from: ${message.envelope.from}`);
console.log(`envelope.to: ${message.envelope.to.join(', ')}`);
console.log(`${message.bytes.length} octets, SMTPUTF8 needed: ${message.smtputf8}`);
console.log(new TextDecoder().decode(message.bytes).split('\r\n\r\n')[0]);
