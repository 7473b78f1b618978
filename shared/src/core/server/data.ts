/**
 * Message intake: DATA (RFC 5321 section 4.1.1.4) and BDAT (RFC 3030 section 2).
 *
 * The command loop is the producer: it reads octets from the connection, runs them through the
 * `DotReader` (DATA) or `BdatChunk` (BDAT), and hands each piece to `MessageIntake`, which
 * enqueues it in the `ReadableStream` the data handler reads, only when the handler asks for
 * more (highWaterMark 0: a piece goes straight into a pending read). So the engine reads from
 * the transport only as fast as the handler consumes: that is the backpressure, and memory
 * stays at one transport chunk. A handler that reads in a loop has its next read pending by the
 * time the next piece arrives, so the producer usually enqueues without waiting.
 *
 * Pieces are views of the octets the transport read (no copy): the DotReader passes unchanged
 * runs through, and a BDAT chunk's octets are passed as they are. Transports hand over each
 * array they return from `read()` and never write into it again (the Node and Workers
 * adapters return a fresh array per read), so a handler may keep the pieces it is given.
 *
 * Whatever happens, the producer reads to the real end of the message (`<CRLF>.<CRLF>`, or the
 * declared BDAT size) so the next command is parsed where the client put it; a message found
 * bad on the way (too big, bare line endings) has its stream errored, and is answered only
 * after its end, with the error: nothing bad is ever acknowledged.
 */
import { SmtpAbortError, SmtpConnectionError, SmtpReplyError, SmtpTimeoutError } from '../errors.ts';
import type { SmtpReply } from '../status.ts';
import { BdatChunk, parseBdatArgs } from '../wire/bdat.ts';
import { DotReader } from '../wire/dot-reader.ts';
import { resetTransaction } from './commands.ts';
import type { Connection } from './connection.ts';
import { fixedReply, r } from './replies.ts';
import type { DataResult, Envelope } from './types.ts';

/** RFC 5321 section 4.1.1.4: the intermediate reply to DATA. */
const GO_AHEAD = fixedReply(354, null, 'End data with <CR><LF>.<CR><LF>');

/** Largest piece read from the input buffer at once (one enqueued stream chunk at most). */
const PIECE = 64 * 1024;

type HandlerOutcome = { ok: true; value: DataResult | undefined } | { ok: false; error: unknown };

/** The stream given to `handler.data`, fed by the command loop, and the handler's outcome. */
export class MessageIntake {
  readonly stream: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  /** 'open' until ended (all data delivered), failed (errored by us) or cancelled (by the handler). */
  #state: 'open' | 'ended' | 'errored' | 'cancelled' = 'open';
  /** The handler has a read pending (the stream called `pull`) that no piece has answered yet. */
  #demand = false;
  /** Wakes the producer waiting for demand. */
  #wake: (() => void) | null = null;
  #outcome: HandlerOutcome | null = null;
  /** The error we put in the stream (so the handler rethrowing it is not reported as a bug). */
  #streamError: unknown = null;
  /** The reply a violation calls for (first one wins). */
  failure: SmtpReply | null = null;
  /** The connection ended inside the message (no reply possible). */
  lost = false;
  /** Handler settled before all data was delivered. */
  settledEarly = false;
  /** Octets delivered to the handler. */
  delivered = 0;
  /** The handler did not ask for the next piece within `dataTerminationMs` (see `deliver`). */
  stalled = false;
  settled: Promise<HandlerOutcome> | null = null;
  #conn: Connection | null = null;

  constructor() {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        // With highWaterMark 0 the stream calls this when the handler's read finds nothing queued.
        pull: () => {
          this.#demand = true;
          this.#wakeProducer();
        },
        cancel: () => {
          if (this.#state === 'open') this.#state = 'cancelled';
          this.#wakeProducer();
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** Call the data handler with the stream (once). */
  start(conn: Connection, envelope: Envelope): void {
    this.#conn = conn;
    this.settled = Promise.resolve()
      .then(() => conn.handler.data(conn.session, envelope, this.stream))
      .then(
        (value): HandlerOutcome => ({ ok: true, value: value ?? undefined }),
        (error: unknown): HandlerOutcome => ({ ok: false, error }),
      )
      .then((outcome) => {
        this.#outcome = outcome;
        if (this.#state === 'open') this.settledEarly = true;
        this.#wakeProducer();
        return outcome;
      });
  }

  get handlerDone(): boolean {
    return this.#outcome !== null;
  }

  /** True while pieces are still wanted (not failed, not cancelled, handler still running). */
  get accepting(): boolean {
    return this.#state === 'open' && this.#outcome === null;
  }

  /**
   * Hand one piece to the handler, waiting until it asks for it (at once when its read is
   * already pending: no promise then). Dropped when no longer accepting.
   *
   * The wait is bounded by `dataTerminationMs`: a handler that does not ask for more in that
   * time (stuck before reading, or a store that stopped answering) fails the message with
   * 451 4.3.0 and is reported to `onError`. The producer then keeps reading and discarding the
   * data to its real end, so the reply comes in its place and the next command is parsed where
   * the client put it. Without this bound the engine would stop reading the socket (that is
   * the backpressure) and no client timeout could ever fire.
   */
  async deliver(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    while (this.accepting && !this.#demand) {
      const conn = this.#conn;
      const wait = new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      if (conn === null) {
        await wait;
        continue;
      }
      const ms = conn.options.timeouts.dataTerminationMs;
      if ((await conn.within(wait, ms)) === 'stalled') {
        if (conn.aborted || !this.accepting) return;
        this.stalled = true;
        conn.reportError(new SmtpTimeoutError('data handler', ms));
        this.fail(r(451, '4.3.0', 'Timeout while storing the message, try again later'));
        return;
      }
    }
    if (!this.accepting) return;
    this.#demand = false;
    this.#controller.enqueue(bytes);
    this.delivered += bytes.length;
  }

  /** All data delivered: close the stream (the handler still reads what is queued). */
  end(): void {
    if (this.#state !== 'open') return;
    this.#state = 'ended';
    this.#controller.close();
  }

  /** The message is bad: error the stream (the handler must abort) and remember the reply. */
  fail(reply: SmtpReply): void {
    this.failure ??= reply;
    this.#error(new SmtpReplyError(reply, { command: 'DATA' }));
  }

  /** The connection ended or the transaction was reset inside the message. */
  abort(why: 'connection closed' | 'timeout' | 'transaction reset'): void {
    if (why !== 'transaction reset') this.lost = true;
    this.#error(
      why === 'timeout'
        ? new SmtpTimeoutError('message data', 0)
        : why === 'connection closed'
          ? new SmtpConnectionError('the client connection ended inside the message')
          : new SmtpAbortError(why),
    );
  }

  #error(error: unknown): void {
    if (this.#state !== 'open') return;
    this.#state = 'errored';
    this.#streamError = error;
    this.#controller.error(error);
    this.#wakeProducer();
  }

  #wakeProducer(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Wait (bounded by `dataTerminationMs`) for the handler to settle; null on timeout. */
  async waitSettled(conn: Connection): Promise<HandlerOutcome | null> {
    if (this.#outcome !== null) return this.#outcome;
    if (this.settled === null) return null;
    const outcome = await conn.within(this.settled, conn.options.timeouts.dataTerminationMs);
    return outcome === 'stalled' ? null : outcome;
  }

  /**
   * The final reply once the data has ended and the handler settled (RFC 5321 section 4.1.1.4:
   * the reply to the end of data is the acceptance or refusal of the whole message).
   */
  async finalReply(conn: Connection): Promise<SmtpReply> {
    const o = conn.options;
    // A handler that already stalled (see `deliver`) is not waited for a second time.
    const outcome = this.stalled ? null : await this.waitSettled(conn);
    if (this.failure !== null) return this.failure;
    if (outcome === null) {
      conn.reportError(new SmtpTimeoutError('data handler', o.timeouts.dataTerminationMs));
      return r(451, '4.3.0', 'Timeout while storing the message, try again later');
    }
    if (!outcome.ok) {
      if (outcome.error === this.#streamError) return r(451, '4.3.0', 'Message aborted');
      return conn.replyForError(
        outcome.error,
        r(451, '4.3.0', 'Temporary failure storing the message, try again later'),
      );
    }
    if (this.settledEarly) {
      // The handler returned before reading the whole message: it cannot have stored it.
      conn.reportError(new Error('the data handler resolved before reading the whole message'));
      return r(451, '4.3.0', 'Message not stored, try again later');
    }
    const text = outcome.value?.message ?? 'OK: message accepted';
    return r(250, '2.0.0', text);
  }
}

// ---- DATA -------------------------------------------------------------------------------

export async function handleData(conn: Connection, args: string): Promise<void> {
  const { session, options: o } = conn;
  const tx = session.transaction;
  if (args !== '') {
    conn.badCommand(r(501, '5.5.4', 'Syntax: DATA (no parameters allowed)'));
    return;
  }
  if (tx === null) {
    conn.badCommand(r(503, '5.5.1', 'Need MAIL command first'));
    return;
  }
  if (conn.bdat !== null) {
    // RFC 3030 section 2: DATA and BDAT cannot be mixed in one transaction.
    conn.badCommand(r(503, '5.5.1', 'DATA not allowed after BDAT'));
    return;
  }
  if (tx.mailFrom.params.body === 'BINARYMIME') {
    // RFC 3030 section 3: BINARYMIME cannot be used with DATA.
    conn.badCommand(r(503, '5.5.1', 'BODY=BINARYMIME requires BDAT'));
    return;
  }
  if (improperPipelining(conn)) return;
  if (tx.rcptTo.length === 0) {
    // RFC 5321 section 3.3: "no valid recipients".
    conn.send(r(554, '5.5.1', 'No valid recipients'));
    return;
  }
  conn.send(GO_AHEAD);
  await conn.flush();
  if (conn.closing) return;

  const intake = new MessageIntake();
  const reader = new DotReader({ bareLineEndings: o.bareLineEndings === 'normalize' ? 'normalize' : 'keep' });
  conn.inMessage = true;
  conn.intake = intake;
  intake.start(conn, snapshot(tx));
  let first = true;
  try {
    for (;;) {
      if (conn.input.length === 0) {
        const event = await conn.waitInput(first ? o.timeouts.dataInitMs : o.timeouts.dataBlockMs, false);
        if (event !== 'data') {
          intake.abort(event === 'timeout' ? 'timeout' : 'connection closed');
          lose(conn, event);
          await intake.waitSettled(conn);
          return;
        }
        first = false;
        continue;
      }
      // A view of the first buffered chunk: no copy here, and none in the reader for plain text.
      const piece = conn.input.peekBytes(PIECE)!;
      const res = reader.push(piece);
      conn.input.skip(res.consumed);
      if (intake.failure === null) {
        // RFC 1870 section 6.3: the real size is enforced whatever SIZE declared.
        if (o.maxMessageBytes > 0 && reader.bytes > o.maxMessageBytes) {
          intake.fail(r(552, '5.3.4', 'Message size exceeds fixed maximum message size'));
        } else if (o.bareLineEndings === 'reject' && (reader.bareCr || reader.bareLf)) {
          // RFC 5321 section 2.3.8: CR and LF only as CRLF. 5.6.0: "other media error" (RFC 3463).
          intake.fail(
            r(550, '5.6.0', 'Message contains bare CR or LF characters (see RFC 5321 section 2.3.8)'),
          );
        } else if (reader.bareDotLine) {
          // Normalize mode: a lone "." line at a bare line ending would be stored as an
          // end-of-data sequence (or lose its dot): the SMTP smuggling pattern, refused, not
          // rewritten. 5.6.0 as for other bare line endings.
          intake.fail(
            r(550, '5.6.0', 'Message has a lone "." line at a bare CR or LF (see RFC 5321 section 2.3.8)'),
          );
        } else if (o.longLines === 'reject' && reader.longestLine > o.maxTextLineBytes) {
          // RFC 5321 section 4.5.3.1.6 / RFC 5322 section 2.1.1.
          intake.fail(r(550, '5.6.0', `Message has a line longer than ${o.maxTextLineBytes} octets`));
        } else {
          await intake.deliver(res.data);
        }
      }
      if (res.done) break;
    }
    intake.end();
    const reply = await intake.finalReply(conn);
    conn.send(reply);
  } finally {
    conn.inMessage = false;
    conn.intake = null;
  }
  endTransaction(conn);
}

/**
 * A client that sent commands ahead of our replies without having negotiated PIPELINING (it
 * said HELO, or we did not advertise it) is not a conforming SMTP client (RFC 2920 section 3.1,
 * RFC 5321 section 4.1.1): typically spamware or a cross-protocol attack that blasts a whole
 * transaction blind. Its message is refused at DATA/BDAT with 421 and the connection closed
 * (Postfix's reject_unauth_pipelining does the same at DATA). The replies before it were correct
 * and in order; nothing of the transaction is acknowledged.
 */
function improperPipelining(conn: Connection): boolean {
  if (!conn.pipelinedAhead) return false;
  conn.send(
    r(421, '4.5.0', `${conn.options.hostname} Improper use of SMTP command pipelining, closing connection`),
  );
  conn.closeReason = 'improper-pipelining';
  return true;
}

/** The envelope as handed to `data`: a copy, so later commands cannot change it under the handler. */
function snapshot(tx: Envelope): Envelope {
  return { mailFrom: tx.mailFrom, rcptTo: [...tx.rcptTo] };
}

/** The connection ended (or timed out) inside a message: no reply to the message is possible. */
function lose(conn: Connection, event: 'eof' | 'timeout' | 'shutdown'): void {
  if (event === 'timeout') {
    conn.send(r(421, '4.4.2', `${conn.options.hostname} Timeout, closing connection`));
    conn.closeReason = 'timeout';
  } else {
    conn.closeReason ??= 'eof';
  }
}

/** After the final reply to a message, the transaction is over (RFC 5321 section 4.1.1.4). */
function endTransaction(conn: Connection): void {
  conn.bdat = null;
  resetTransaction(conn);
}

// ---- BDAT -------------------------------------------------------------------------------

/** The BDAT transfer of the current transaction (RFC 3030 section 2). */
export interface BdatState {
  intake: MessageIntake | null;
  /** Octets received in earlier chunks. */
  total: bigint;
  /** A chunk was refused: further chunks are discarded with 503 until RSET. */
  failed: boolean;
}

/** Abort any message being transferred (RSET, EHLO, STARTTLS, connection end). */
export function abortTransaction(conn: Connection, why: 'transaction reset'): void {
  const b = conn.bdat;
  conn.bdat = null;
  if (b?.intake && !b.intake.handlerDone) b.intake.abort(why);
}

/**
 * Read and drop exactly `chunk` octets (a refused chunk: RFC 3030 section 2 "MUST accept and
 * discard the associated message data"). Returns false when the connection ended first.
 */
async function discard(conn: Connection, chunk: BdatChunk): Promise<boolean> {
  while (!chunk.done) {
    if (conn.input.length === 0) {
      const event = await conn.waitInput(conn.options.timeouts.dataBlockMs, false);
      if (event !== 'data') {
        lose(conn, event);
        return false;
      }
      continue;
    }
    const bytes = conn.input.readBytes(chunk.want(PIECE));
    if (bytes !== null) chunk.take(bytes);
  }
  return true;
}

export async function handleBdat(conn: Connection, args: string): Promise<void> {
  const { session, options: o } = conn;
  const parsed = parseBdatArgs(args);
  if (parsed.kind === 'error') {
    // Without a size nothing can be discarded: the following octets will be read as commands
    // and refused (RFC 3030 section 2 expects parsers to survive that).
    conn.badCommand(r(501, '5.5.4', 'Syntax: BDAT chunk-size [LAST]'));
    return;
  }
  if (improperPipelining(conn)) return;
  const chunk = new BdatChunk(parsed.size, parsed.last);
  const refuse = async (reply: SmtpReply, bad: boolean): Promise<void> => {
    if (!(await discard(conn, chunk))) return;
    if (bad) conn.badCommand(reply);
    else conn.send(reply);
  };
  if (!o.extensions.chunking || session.helo?.verb === 'HELO') {
    // Not offered (RFC 3030 section 2), or the client said HELO and was offered no extension
    // (RFC 5321 section 4.1.1.1). The declared octets are still read and dropped.
    await refuse(r(502, '5.5.1', 'Command not implemented'), true);
    return;
  }
  const tx = session.transaction;
  if (tx === null) {
    // Also any BDAT after BDAT LAST (RFC 3030 section 2: 503).
    await refuse(r(503, '5.5.1', 'Need MAIL command first'), true);
    return;
  }
  if (tx.rcptTo.length === 0) {
    await refuse(r(554, '5.5.1', 'No valid recipients'), false);
    return;
  }
  conn.bdat ??= { intake: null, total: 0n, failed: false };
  const state = conn.bdat;
  if (state.failed) {
    // RFC 3030 section 2: chunks already in the pipeline after a failed one are discarded.
    await refuse(r(503, '5.5.1', 'Previous BDAT failed, send RSET'), false);
    return;
  }
  const total = state.total + chunk.size;
  if (o.maxMessageBytes > 0 && total > BigInt(o.maxMessageBytes)) {
    // RFC 1870 section 6.3 and RFC 3030 section 2: refuse after reading the chunk.
    const reply = r(552, '5.3.4', 'Message size exceeds fixed maximum message size');
    state.failed = true;
    state.intake?.fail(reply);
    await refuse(reply, false);
    return;
  }
  if (state.intake === null) {
    state.intake = new MessageIntake();
    state.intake.start(conn, snapshot(tx));
  }
  const intake = state.intake;
  conn.inMessage = true;
  try {
    while (!chunk.done) {
      if (conn.input.length === 0) {
        const event = await conn.waitInput(o.timeouts.dataBlockMs, false);
        if (event !== 'data') {
          intake.abort(event === 'timeout' ? 'timeout' : 'connection closed');
          lose(conn, event);
          await intake.waitSettled(conn);
          return;
        }
        continue;
      }
      const bytes = conn.input.readBytes(chunk.want(PIECE));
      if (bytes === null) continue;
      const { data } = chunk.take(bytes);
      // A view, not a copy: the transport never reuses what it read into (see the top of this file).
      if (intake.accepting) await intake.deliver(data);
    }
  } finally {
    conn.inMessage = false;
  }
  state.total = total;
  if (!chunk.last) {
    if (intake.failure !== null) {
      // The handler stalled on this chunk (see `MessageIntake.deliver`): the chunk fails, and
      // the chunks after it get 503 until RSET (RFC 3030 section 2).
      state.failed = true;
      conn.send(intake.failure);
      return;
    }
    if (intake.handlerDone) {
      const outcome = await intake.settled;
      if (outcome && !outcome.ok) {
        // The handler refused the message mid-transfer: this chunk fails (RFC 3030 section 2).
        state.failed = true;
        conn.send(await intake.finalReply(conn));
        return;
      }
    }
    conn.send(r(250, '2.0.0', `${chunk.size} octets received`));
    return;
  }
  intake.end();
  conn.send(await intake.finalReply(conn));
  endTransaction(conn);
}
