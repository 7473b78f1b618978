/**
 * The per-connection session state and its transitions (RFC 5321 section 4.1.4 "Order of
 * Commands", RFC 3207 section 4.2, RFC 4954 section 4).
 *
 *   connected --greeting--> greeted --HELO/EHLO--> ready --MAIL--> mail --RCPT--> rcpt
 *       rcpt --DATA/BDAT LAST--> ready        (message accepted or refused: transaction ends)
 *       any  --RSET, HELO/EHLO--> ready       (transaction cleared; HELO/EHLO re-identifies)
 *       any  --STARTTLS--> greeted            (everything forgotten: HELO, AUTH, transaction)
 *       any  --QUIT / limit / timeout--> closed
 *
 * The phase is derived from the fields (helo, transaction), so it cannot drift from them.
 */
import type { Endpoint, TlsInfo, Transport } from '../transport.ts';
import type { CloseReason } from './connection.ts';
import type { Envelope, SmtpSession } from './types.ts';

let prefix: string | null = null;
let counter = 0;

/**
 * A unique, log-friendly connection id: 12 random hex digits drawn once per process (so ids
 * from different processes and restarts differ) and a process-wide counter. Ids are for logs
 * and tracing, not secrets: the random part is not drawn again per connection, which cost a
 * `crypto.getRandomValues` call for every connection.
 */
export function newSessionId(): string {
  if (prefix === null) {
    const random = crypto.getRandomValues(new Uint8Array(6));
    prefix = '';
    for (const b of random) prefix += b.toString(16).padStart(2, '0');
  }
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${prefix}-${counter}`;
}

export class ServerSession implements SmtpSession {
  readonly id: string;
  readonly #transport: Transport;
  helo: { verb: 'HELO' | 'EHLO'; name: string } | null = null;
  user: string | null = null;
  transaction: Envelope | null = null;
  data: Record<string, unknown> = {};
  /** Set by the connection just before `handler.close` (see `SmtpSession.closeReason`). */
  closeReason: CloseReason | null = null;

  constructor(transport: Transport, id: string = newSessionId()) {
    this.#transport = transport;
    this.id = id;
  }

  get local(): Endpoint | null {
    return this.#transport.local;
  }
  get remote(): Endpoint | null {
    return this.#transport.remote;
  }
  get tls(): TlsInfo | null {
    return this.#transport.tls;
  }
  get secure(): boolean {
    return this.#transport.tls !== null;
  }

  /** RSET, a new HELO/EHLO, or the end of a message: the envelope is dropped (RFC 5321 section 4.1.1.5). */
  clearTransaction(): void {
    this.transaction = null;
  }

  /** STARTTLS: forget everything learnt before the handshake (RFC 3207 section 4.2). */
  forgetAll(): void {
    this.helo = null;
    this.user = null;
    this.transaction = null;
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      local: this.local,
      remote: this.remote,
      tls: this.tls,
      helo: this.helo,
      user: this.user,
      transaction: this.transaction,
    };
  }
}
