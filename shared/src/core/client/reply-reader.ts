/**
 * Reads whole replies from a Transport: bytes into an `InputBuffer`, CRLF lines out of it,
 * lines into a `ReplyParser`. Memory is bounded by the line limit times the line-count limit
 * (plus one received chunk): a peer that sends an endless reply gets an `SmtpProtocolError`.
 */
import { SmtpConnectionError, SmtpProtocolError } from '../errors.ts';
import type { SmtpReply } from '../status.ts';
import type { Transport } from '../transport.ts';
import { InputBuffer } from '../wire/input.ts';
import { ReplyParser } from '../wire/reply.ts';

/** Longest reply line we accept, CRLF included. RFC 5321 section 4.5.3.1.5 says 512; real servers exceed it a little. */
export const MAX_CLIENT_REPLY_LINE = 4096;
/** Most lines in one reply (an EHLO reply lists one extension per line). */
export const MAX_CLIENT_REPLY_LINES = 500;

const decoder = new TextDecoder();

export class ReplyReader {
  #transport: Transport;
  readonly #input = new InputBuffer();
  readonly #parser = new ReplyParser({
    maxLines: MAX_CLIENT_REPLY_LINES,
    maxLineLength: MAX_CLIENT_REPLY_LINE,
  });
  /** EHLO and greeting replies carry no enhanced code (RFC 2034 section 3). */
  readonly #plainParser = new ReplyParser({
    maxLines: MAX_CLIENT_REPLY_LINES,
    maxLineLength: MAX_CLIENT_REPLY_LINE,
    enhanced: false,
  });

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** Octets received but not yet consumed as replies. */
  get buffered(): number {
    return this.#input.length;
  }

  /**
   * Drop everything received and not yet read, and any partial reply. Called right after the
   * 220 to STARTTLS: those octets arrived in clear text and must never be taken as replies
   * sent over TLS (RFC 3207 section 4.2, response injection). Returns how many were dropped.
   */
  discard(): number {
    this.#parser.reset();
    this.#plainParser.reset();
    return this.#input.clear();
  }

  /** The next complete reply. `command` names what it answers, for error messages. */
  async read(command: string, options: { enhanced?: boolean } = {}): Promise<SmtpReply> {
    const parser = options.enhanced === false ? this.#plainParser : this.#parser;
    for (;;) {
      for (;;) {
        const r = this.#input.readLine(MAX_CLIENT_REPLY_LINE);
        if (r === null) break;
        if (r.kind === 'too-long') {
          throw new SmtpProtocolError(
            `the server sent a reply line longer than ${MAX_CLIENT_REPLY_LINE} octets to ${command}`,
            { command },
          );
        }
        let reply: SmtpReply | null;
        try {
          reply = parser.pushLine(decoder.decode(r.line));
        } catch (err) {
          if (err instanceof SmtpProtocolError) {
            throw new SmtpProtocolError(`invalid reply to ${command}: ${err.message}`, {
              command,
              cause: err,
            });
          }
          throw err;
        }
        if (reply !== null) return reply;
      }
      const bytes = await this.#transport.read();
      if (bytes === null) {
        throw new SmtpConnectionError(
          `the server closed the connection while we waited for the reply to ${command}`,
          {
            command,
          },
        );
      }
      this.#input.push(bytes);
    }
  }
}
