/**
 * The message after DATA's 354 (RFC 5321 section 4.1.1.4): the body dot-stuffed (section 4.5.2)
 * with CRLF line ends, `.<CRLF>` at the end, written in batches of about `WRITE_BATCH` octets,
 * then the final reply.
 */
import type { SmtpReply } from '../status.ts';
import { DotWriter } from '../wire/dot-writer.ts';
import type { BodyFacts } from './body.ts';
import { boundedBodyPieces, checkDeclared, encodePiece, WRITE_BATCH } from './body-encoder.ts';
import type { CommandChannel } from './channel.ts';
import type { TransactionPlan } from './envelope.ts';
import type { MessageBody } from './options.ts';

/** RFC 5321 section 4.1.1.4: the end of mail data after a body whose last line is complete. */
const DATA_END = Uint8Array.of(0x2e, 0x0d, 0x0a);

/**
 * Send the body and read the reply to its end. Resolves with that reply whatever its code: the
 * end of the data completes the transaction either way (the caller decides what a non-250 means).
 * `trailer` is asked once the end of the data is queued: octets it returns go out in the same
 * write, before the reply is read (the session puts the next transaction's commands there, RFC
 * 2920 section 3.1).
 */
export async function sendData(
  channel: CommandChannel,
  plan: TransactionPlan,
  facts: BodyFacts,
  body: MessageBody,
  caps: ReadonlyMap<string, string[]>,
  signal: AbortSignal | undefined,
  trailer?: () => Uint8Array | null,
): Promise<SmtpReply> {
  const ms = channel.timeouts.dataMs;
  const out = new BatchWriter((bytes) => channel.writeData(bytes, 'DATA', signal));
  const pieces = boundedBodyPieces(facts, body, 'DATA', ms, signal);
  if (facts.clean) {
    // inspectBody found CRLF lines only, the last one complete, and no line starting with
    // "." (RFC 5321 section 4.5.2 has nothing to stuff): the bytes go out as they are.
    checkDeclared(facts.eightBit === true, facts.headerEightBit === true, plan, caps, 'DATA');
    for await (const piece of pieces) await out.push(piece);
    await out.push(DATA_END);
  } else {
    const writer = new DotWriter();
    for await (const piece of pieces) await out.push(encodePiece(writer, piece, plan, caps, 'DATA'));
    await out.push(encodePiece(writer, null, plan, caps, 'DATA'));
  }
  const next = trailer?.();
  if (next) await out.push(next);
  await out.flush();
  return channel.read('DATA', signal, ms);
}

/**
 * Coalesces small pieces into writes of about `WRITE_BATCH` octets. A piece that is kept for
 * later is copied (it may be a view of the caller's bytes, see `DotWriter.write`); a large one
 * met with nothing pending is written as it is.
 */
export class BatchWriter {
  readonly #sink: (bytes: Uint8Array) => Promise<void>;
  #parts: Uint8Array[] = [];
  #size = 0;

  constructor(sink: (bytes: Uint8Array) => Promise<void>) {
    this.#sink = sink;
  }

  async push(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    if (bytes.length >= WRITE_BATCH && this.#size === 0) {
      await this.#sink(bytes);
      return;
    }
    this.#parts.push(bytes.slice());
    this.#size += bytes.length;
    if (this.#size >= WRITE_BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#size === 0) return;
    const all = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      all.set(p, at);
      at += p.length;
    }
    this.#parts = [];
    this.#size = 0;
    await this.#sink(all);
  }
}
