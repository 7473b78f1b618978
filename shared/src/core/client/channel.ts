/**
 * `CommandChannel`: how every part of the client session talks to the server. It writes command
 * lines and message data, reads replies, and bounds each of those waits by the timeout RFC 5321
 * section 4.5.3.2 gives that stage and by the caller's AbortSignal. It holds no protocol state
 * besides the reply reader, which is replaced after STARTTLS (RFC 3207 section 4.2).
 */
import { SmtpMessageError, SmtpReplyError } from '../errors.ts';
import type { SmtpReply } from '../status.ts';
import type { Transport } from '../transport.ts';
import { BoundGroup, bounded, settleWithin } from './deadline.ts';
import type { SmtpClientTimeouts } from './options.ts';
import { ReplyReader } from './reply-reader.ts';

const encoder = new TextEncoder();

export class CommandChannel {
  readonly transport: Transport;
  readonly timeouts: Readonly<Required<SmtpClientTimeouts>>;
  /** Closes the session (and the transport); for flows that must close before reporting. */
  readonly close: () => Promise<void>;
  #reader: ReplyReader;
  /** One timer and one abort listener per signal for all of this connection's command, reply and data waits. */
  readonly #bounds = new BoundGroup();

  constructor(
    transport: Transport,
    timeouts: Readonly<Required<SmtpClientTimeouts>>,
    close: () => Promise<void>,
  ) {
    this.transport = transport;
    this.timeouts = timeouts;
    this.close = close;
    this.#reader = new ReplyReader(transport);
  }

  /**
   * Write command lines in one write. CR, LF and NUL can never reach the wire inside a command:
   * the check throws synchronously, before anything is written.
   */
  write(lines: string[], stage: string, signal: AbortSignal | undefined): Promise<void> {
    return this.#bounds.bound(this.transport.write(this.encodeCommands(lines)), {
      stage,
      ms: this.timeouts.commandMs,
      command: stage,
      signal,
    });
  }

  /**
   * Command lines as the octets to write, each ended by CRLF. Throws `SmtpMessageError` for a line
   * with CR, LF or NUL, so none can reach the wire inside a command.
   */
  encodeCommands(lines: string[]): Uint8Array {
    for (const line of lines) {
      if (/[\r\n\0]/.test(line)) {
        throw new SmtpMessageError('a command would contain CR, LF or NUL; refusing to send it', undefined, {
          command: line.split(' ')[0] ?? '',
        });
      }
    }
    return encoder.encode(`${lines.join('\r\n')}\r\n`);
  }

  /** The next reply, answering `command`, within `ms` (default: the command timeout). */
  read(command: string, signal: AbortSignal | undefined, ms = this.timeouts.commandMs): Promise<SmtpReply> {
    return this.#bounds.bound(this.#reader.read(command), { stage: command, ms, command, signal });
  }

  /**
   * The next reply read without enhanced status codes: the greeting and the EHLO reply carry
   * none (RFC 2034 section 3).
   */
  readPlain(
    what: string,
    bound: { stage: string; ms: number; command?: string; signal: AbortSignal | undefined },
  ): Promise<SmtpReply> {
    return this.#bounds.bound(this.#reader.read(what, { enhanced: false }), bound);
  }

  /** Send a command and require one of `codes` (else `SmtpReplyError`). */
  async expect(
    line: string,
    command: string,
    signal: AbortSignal | undefined,
    codes: number[],
  ): Promise<SmtpReply> {
    await this.write([line], command, signal);
    const reply = await this.read(command, signal);
    if (!codes.includes(reply.code)) throw new SmtpReplyError(reply, { command });
    return reply;
  }

  /** Write message data (DATA body, BDAT frames), bounded by the data timeout. */
  async writeData(bytes: Uint8Array, command: string, signal: AbortSignal | undefined): Promise<void> {
    await this.#bounds.bound(this.transport.write(bytes), {
      stage: 'data',
      ms: this.timeouts.dataMs,
      command,
      signal,
    });
  }

  /**
   * QUIT (RFC 5321 section 4.1.1.10) and wait for the 221, at most `timeouts.quitMs`. With
   * `settle` the wait never rejects; otherwise a time-out rejects with `SmtpTimeoutError`.
   */
  quit(settle: boolean): Promise<unknown> {
    const exchange = (async () => {
      await this.transport.write(encoder.encode('QUIT\r\n'));
      await this.#reader.read('QUIT');
    })();
    if (settle) return settleWithin(exchange, this.timeouts.quitMs);
    return bounded(exchange, { stage: 'QUIT', ms: this.timeouts.quitMs, command: 'QUIT' });
  }

  /**
   * Drop everything received and not yet read: called right after the 220 to STARTTLS, as
   * those octets were not protected by TLS (RFC 3207 section 4.2, response injection).
   */
  discardUnread(): void {
    this.#reader.discard();
  }

  /** The connection is closed: the shared timer and listeners go once no wait is left. */
  release(): void {
    this.#bounds.release();
  }

  /** A fresh reader after the TLS handshake. */
  renewReader(): void {
    this.#reader = new ReplyReader(this.transport);
  }
}
