/**
 * BDAT (RFC 3030 section 2): the message in chunks of `chunkSize` octets, the last one marked
 * LAST. With PIPELINING up to `BDAT_WINDOW` chunk replies may be outstanding (section 4.2
 * allows pipelined BDAT); without it each chunk waits for its 250. A refused chunk ends the
 * transaction (section 2: no more chunks are sent).
 *
 * What goes into the chunks: BODY=BINARYMIME octets as they are (section 3); otherwise the text
 * with CRLF line ends and no dot-stuffing (BDAT counts octets, it needs no terminator).
 */
import { SmtpReplyError } from '../errors.ts';
import type { SmtpReply } from '../status.ts';
import { DotWriter } from '../wire/dot-writer.ts';
import type { BodyFacts } from './body.ts';
import { boundedBodyPieces, checkDeclared, encodePiece } from './body-encoder.ts';
import type { CommandChannel } from './channel.ts';
import type { TransactionPlan } from './envelope.ts';
import type { MessageBody } from './options.ts';

const encoder = new TextEncoder();
/** At most this many BDAT replies outstanding when pipelining. */
export const BDAT_WINDOW = 8;

/**
 * Send the message with BDAT and read every chunk's reply. Resolves with the reply to BDAT LAST
 * when every chunk got its 250; throws the first refusal as `SmtpReplyError` otherwise (the
 * transaction's state is then indeterminate, RFC 3030 section 2: RSET is due).
 */
export async function sendBdat(
  channel: CommandChannel,
  plan: TransactionPlan,
  facts: BodyFacts,
  body: MessageBody,
  options: { chunkSize: number; pipelining: boolean; caps: ReadonlyMap<string, string[]> },
  signal: AbortSignal | undefined,
): Promise<SmtpReply> {
  const { caps } = options;
  const ms = channel.timeouts.dataMs;
  const window = options.pipelining ? BDAT_WINDOW : 1;
  // A clean in-memory body (see BodyFacts.clean) needs no BDAT normalization: pass it through.
  const passThrough = plan.bodyType === 'BINARYMIME' || facts.clean;
  if (facts.clean && plan.bodyType !== 'BINARYMIME') {
    checkDeclared(facts.eightBit === true, facts.headerEightBit === true, plan, caps, 'BDAT');
  }
  const writer = new DotWriter(passThrough ? { mode: 'binary' } : { dotStuff: false, terminator: false });
  // Replies are read in order, one read at a time, by this same flow (never concurrently).
  let outstanding = 0;
  let failure: SmtpReplyError | null = null;
  let lastReply: SmtpReply | null = null;
  const settleOne = async (): Promise<void> => {
    const reply = await channel.read('BDAT', signal, ms);
    outstanding--;
    lastReply = reply;
    if (reply.code !== 250 && failure === null) failure = new SmtpReplyError(reply, { command: 'BDAT' });
  };
  const sendChunk = async (data: Uint8Array, last: boolean): Promise<void> => {
    const head = encoder.encode(`BDAT ${data.length}${last ? ' LAST' : ''}\r\n`);
    const frame = new Uint8Array(head.length + data.length);
    frame.set(head, 0);
    frame.set(data, head.length);
    await channel.writeData(frame, 'BDAT', signal);
    outstanding++;
    while (outstanding >= window || (last && outstanding > 0)) await settleOne();
  };
  if (passThrough && facts.bytes !== null) {
    // In memory and sent as it is: each frame is its BDAT line and a slice of the body (one copy,
    // not two through the Chunker). Same cut: full chunks, the rest (or all of an exact multiple's
    // last chunk, or nothing for an empty body) as BDAT n LAST.
    const bytes = facts.bytes;
    let at = 0;
    do {
      const end = Math.min(at + options.chunkSize, bytes.length);
      await sendChunk(bytes.subarray(at, end), end === bytes.length);
      at = end;
    } while (at < bytes.length && failure === null);
  } else {
    const chunker = new Chunker(options.chunkSize);
    for await (const piece of boundedBodyPieces(facts, body, 'BDAT', ms, signal)) {
      for (const chunk of chunker.push(encodePiece(writer, piece, plan, caps, 'BDAT'))) {
        await sendChunk(chunk, false);
        if (failure !== null) break;
      }
      if (failure !== null) break;
    }
    if (failure === null) {
      chunker.push(encodePiece(writer, null, plan, caps, 'BDAT'));
      await sendChunk(chunker.rest(), true);
    }
  }
  while (outstanding > 0) await settleOne();
  if (failure !== null) throw failure;
  // Replies come in order: the last one answers BDAT LAST.
  return lastReply!;
}

/**
 * Cuts a byte stream into BDAT chunks of exactly `size` octets. It always keeps at least one
 * octet back until the end (unless the message is empty), so the final chunk is sent as
 * `BDAT n LAST` rather than a separate `BDAT 0 LAST`. Input is copied into the chunks, so the
 * caller may reuse it once `push` returns.
 */
export class Chunker {
  readonly #size: number;
  #buf: Uint8Array;
  #len = 0;

  constructor(size: number) {
    this.#size = size;
    this.#buf = new Uint8Array(size);
  }

  /** Chunks that are complete and known not to be the last one. */
  push(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < bytes.length) {
      if (this.#len === this.#size) {
        out.push(this.#buf);
        this.#buf = new Uint8Array(this.#size);
        this.#len = 0;
      }
      const n = Math.min(this.#size - this.#len, bytes.length - i);
      this.#buf.set(bytes.subarray(i, i + n), this.#len);
      this.#len += n;
      i += n;
    }
    return out;
  }

  rest(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}
