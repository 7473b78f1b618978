/**
 * `SmtpClientSession`: one SMTP client connection, driven over a `Transport`.
 *
 * The session is a small state machine:
 *
 *   new --greet()--> ready --send()/reset()/noop()--> ready --quit()--> closed
 *
 * Any failure that leaves the connection in an unknown state (timeout, abort, reset, garbled
 * reply, TLS failure, a 421, an error in the middle of the message data) closes the transport
 * and moves to `closed`; a refused MAIL, RCPT, DATA or BDAT leaves the session `ready` (the
 * next transaction starts with RSET). A transaction that completed (the server answered the end
 * of the message data) needs no RSET before the next one. Operations are serialized: a second
 * `send()` waits for the first, though with PIPELINING its envelope leaves with the first one's
 * end of data (`#nextEnvelope`).
 *
 * The steps live in their own modules: `setup.ts` (EHLO, STARTTLS, AUTH), `envelope.ts` (what
 * MAIL and RCPT say), `envelope-exchange.ts` (MAIL/RCPT on the wire, pipelined or stepwise),
 * `data.ts` (DATA), `bdat.ts` (BDAT), `body-encoder.ts` (the body on its way out), all talking
 * through one `CommandChannel` (channel.ts).
 *
 * RFC 5321 section 3.3 (mail transaction), section 4.5.3.2 (timeouts), RFC 2920 (pipelining),
 * RFC 3030 (CHUNKING/BINARYMIME), RFC 3207 (STARTTLS), RFC 4954 (AUTH).
 */
import { SmtpConnectionError, SmtpMessageError, SmtpProtocolError, SmtpReplyError } from '../errors.ts';
import type { SmtpReply } from '../status.ts';
import type { Transport } from '../transport.ts';
import { sendBdat } from './bdat.ts';
import { type BodyFacts, inspectBody } from './body.ts';
import { CommandChannel } from './channel.ts';
import { sendData } from './data.ts';
import { anySignal, settleWithin } from './deadline.ts';
import { defaultHeloName, validateHeloName } from './ehlo.ts';
import { planTransaction, type TransactionPlan } from './envelope.ts';
import {
  type EnvelopeOutcome,
  envelopeGroupLines,
  exchangeEnvelope,
  readEnvelopeGroup,
} from './envelope-exchange.ts';
import {
  type MessageBody,
  type ResolvedClientOptions,
  resolveClientOptions,
  type SendEnvelope,
  type SendResult,
  type SmtpClientOptions,
} from './options.ts';
import { type Capabilities, ehlo, logIn, startTls } from './setup.ts';

export type SessionState = 'new' | 'ready' | 'closed';

/** An early envelope's write: it went out with the previous message's data, which completed. */
const WRITTEN: Promise<void> = Promise.resolve();

/** A `send()` that has been called and not yet started (operations run one at a time). */
interface QueuedSend {
  /** Its place in the operation queue. */
  readonly ticket: number;
  readonly envelope: SendEnvelope;
  readonly body: MessageBody;
  readonly signal: AbortSignal | undefined;
  /**
   * Its envelope, already written by the send before it in the same write as that one's end of
   * data (when that send completes, the write succeeded; when the write fails, the session closes).
   */
  early: { facts: BodyFacts; plan: TransactionPlan } | null;
}

export class SmtpClientSession {
  readonly #transport: Transport;
  readonly #options: ResolvedClientOptions;
  readonly #channel: CommandChannel;
  #caps: Capabilities = new Map();
  #state: SessionState = 'new';
  #greeted = false;
  /**
   * A transaction was started and did not complete: the next one begins with RSET. After the
   * reply to the end of the message data the server has cleared its buffers, accepted or not
   * (RFC 5321 sections 3.3 and 4.1.1.4), and after a 250 to RSET there is nothing to clear; a
   * refused MAIL, RCPT, DATA or BDAT, or a DATA abandoned in a pipelined group, leaves state
   * that only RSET clears (RFC 5321 section 4.1.1.5; RFC 3030 section 2 after a failed BDAT).
   */
  #needsReset = false;
  #busy = false;
  #queue: Promise<unknown> = Promise.resolve();
  /** Tickets of the operation queue: the next one to hand out, and the one running. */
  #tickets = 0;
  #running = -1;
  /** Sends waiting in the queue, so the one running can write the next one's envelope early. */
  #queuedSends: QueuedSend[] = [];
  #heloName: string;
  #greeting: SmtpReply | null = null;
  #authenticated: string | null = null;

  constructor(transport: Transport, options: SmtpClientOptions) {
    this.#transport = transport;
    this.#options = resolveClientOptions(options);
    this.#heloName = this.#options.helo ?? defaultHeloName(transport.local?.address);
    validateHeloName(this.#heloName);
    this.#channel = new CommandChannel(transport, this.#options.timeouts, () => this.close());
  }

  /** EHLO keywords (upper case) and their parameters, from the latest EHLO reply. Empty after HELO. */
  get capabilities(): ReadonlyMap<string, string[]> {
    return this.#caps;
  }

  /** The connection is encrypted (implicit TLS or after STARTTLS). */
  get secure(): boolean {
    return this.#transport.tls !== null;
  }

  get state(): SessionState {
    return this.#state;
  }

  /** The server's 220 greeting, once read. */
  get greeting(): SmtpReply | null {
    return this.#greeting;
  }

  /** The user name we authenticated as, or null. */
  get authenticatedAs(): string | null {
    return this.#authenticated;
  }

  get transport(): Transport {
    return this.#transport;
  }

  /**
   * Read the greeting, EHLO (HELO when EHLO is refused), STARTTLS per the policy and EHLO
   * again, then AUTH when credentials are configured. On any failure the connection is closed.
   */
  greet(signal?: AbortSignal): Promise<void> {
    return this.#op(signal, async (sig) => {
      if (this.#greeted) throw new SmtpProtocolError('greet() was already called on this session');
      this.#greeted = true;
      const t = this.#options.timeouts;
      const greeting = await this.#channel.readPlain('the greeting', {
        stage: 'greeting',
        ms: t.greetingMs,
        signal: sig,
      });
      this.#greeting = greeting;
      if (greeting.code !== 220) {
        // RFC 5321 section 3.1: 554 instead of 220 means "no service here"; the client SHOULD
        // send QUIT (and wait a little for the 221) before closing.
        await this.#channel.quit(true);
        throw new SmtpReplyError(greeting, { command: 'CONNECT' });
      }
      this.#caps = await ehlo(this.#channel, this.#heloName, sig);
      if (this.#options.security === 'starttls' && !this.secure) {
        if (await startTls(this.#channel, this.#options, this.#caps, sig)) {
          // RFC 3207 section 4.2: forget everything learned before TLS and say EHLO again.
          this.#caps = new Map();
          this.#caps = await ehlo(this.#channel, this.#heloName, sig);
        }
      }
      if (this.#options.auth) {
        this.#authenticated = await logIn(this.#channel, this.#options, this.#caps, sig);
      }
      this.#state = 'ready';
    });
  }

  /**
   * Send one message: MAIL FROM, RCPT TO for each recipient, then DATA or BDAT. Resolves when
   * at least one recipient was accepted and the message was accepted for them; throws
   * `SmtpReplyError` (`SmtpRecipientsRejectedError` when every recipient was refused) otherwise.
   */
  send(envelope: SendEnvelope, body: MessageBody, signal?: AbortSignal): Promise<SendResult> {
    const queued: QueuedSend = { ticket: this.#tickets++, envelope, body, signal, early: null };
    this.#queuedSends.push(queued);
    const result = this.#op(
      signal,
      async (sig) => {
        this.#assertReady();
        const pipelining = this.#options.pipelining && this.#caps.has('PIPELINING');
        const early = queued.early;
        let facts: BodyFacts;
        let plan: TransactionPlan;
        let outcome: EnvelopeOutcome;
        if (early !== null) {
          // Written after the previous message's data, which completed that transaction: no RSET.
          ({ facts, plan } = early);
          this.#needsReset = true;
          outcome = await readEnvelopeGroup(this.#channel, plan, false, WRITTEN, sig);
        } else {
          facts = inspectBody(body);
          plan = planTransaction(envelope, facts, this.#caps, this.#options, this.secure);
          const reset = this.#needsReset;
          this.#needsReset = true;
          outcome = await exchangeEnvelope(this.#channel, plan, { reset, pipelining }, sig);
        }
        const { accepted, rejected, dataReply } = outcome;

        let response: SmtpReply;
        if (plan.useBdat) {
          response = await sendBdat(
            this.#channel,
            plan,
            facts,
            body,
            { chunkSize: this.#options.chunkSize, pipelining, caps: this.#caps },
            sig,
          );
          // Every chunk got its 250, so the transaction completed; after a failed BDAT the state
          // is indeterminate and RSET stays due (RFC 3030 section 2).
          this.#needsReset = false;
        } else {
          // dataReply is the 354 (checked by the envelope exchange).
          if (dataReply === null || dataReply.code !== 354)
            throw new SmtpProtocolError('internal: DATA not started');
          response = await sendData(this.#channel, plan, facts, body, this.#caps, sig, () =>
            this.#nextEnvelope(pipelining),
          );
          // RFC 5321 section 4.1.1.4: the end of data completes the transaction whatever the reply
          // (a 421 closes the connection anyway).
          this.#needsReset = false;
          if (response.code !== 250) throw new SmtpReplyError(response, { command: 'DATA' });
        }
        return { accepted, rejected, response, envelope: { from: envelope.from, to: [...envelope.to] } };
      },
      queued.ticket,
    );
    const done = (): void => {
      this.#queuedSends.splice(this.#queuedSends.indexOf(queued), 1);
    };
    result.then(done, done);
    return result;
  }

  /**
   * RFC 2920 section 3.1 lets message content open a group: the envelope of the send queued
   * right behind this one (MAIL, RCPT..., DATA) goes out in the same write as this message's end
   * of data, before its reply is read, so a session with sends waiting needs one round trip per
   * message instead of two (and a server that flushes its replies when its input runs dry answers
   * both in one segment). Only with PIPELINING, when the very next operation is that send, and
   * for DATA (BDAT waits for the RCPT replies). No RSET is needed: the end of data completes the
   * transaction whatever its reply (RFC 5321 section 4.1.1.4), and a 421 instead closes the
   * session, so the early commands are never answered and that send fails with the connection.
   * A send whose plan cannot be made here is left to report its own error when it runs.
   */
  #nextEnvelope(pipelining: boolean): Uint8Array | null {
    if (!pipelining || this.#state !== 'ready') return null;
    const next = this.#queuedSends.find((q) => q.ticket === this.#running + 1);
    if (next === undefined || next.early !== null) return null;
    if (this.#options.signal?.aborted || next.signal?.aborted) return null;
    try {
      const facts = inspectBody(next.body);
      const plan = planTransaction(next.envelope, facts, this.#caps, this.#options, this.secure);
      if (plan.useBdat) return null;
      const bytes = this.#channel.encodeCommands(envelopeGroupLines(plan, false));
      next.early = { facts, plan };
      return bytes;
    } catch {
      // The send reports this error itself when it runs.
      return null;
    }
  }

  /** RSET (RFC 5321 section 4.1.1.5): abort any transaction. */
  reset(signal?: AbortSignal): Promise<void> {
    return this.#op(signal, async (sig) => {
      this.#assertReady();
      await this.#channel.expect('RSET', 'RSET', sig, [250]);
      this.#needsReset = false;
    });
  }

  /** NOOP (RFC 5321 section 4.1.1.9): check the connection is alive. */
  noop(signal?: AbortSignal): Promise<void> {
    return this.#op(signal, async (sig) => {
      this.#assertReady();
      await this.#channel.expect('NOOP', 'NOOP', sig, [250]);
    });
  }

  /**
   * QUIT (RFC 5321 section 4.1.1.10) and close. Never rejects and never hangs: the 221 is
   * awaited at most `timeouts.quitMs`, and so is the transport's close. If another operation is
   * still running it is not waited for: the connection is closed under it.
   */
  async quit(): Promise<void> {
    if (this.#state === 'closed') return;
    if (!this.#busy && this.#greeted) {
      this.#busy = true;
      try {
        await this.#channel.quit(false);
      } catch {
        // The server may close first, reset, or never answer: the connection ends either way.
      } finally {
        this.#busy = false;
      }
    }
    await this.close();
  }

  /** Close the connection without QUIT. Bounded by `timeouts.quitMs`; never rejects. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#channel.release();
    await settleWithin((async () => this.#transport.close())(), this.#options.timeouts.quitMs);
  }

  // ---------------------------------------------------------------- operation plumbing

  /**
   * Run one operation: serialized after the previous one, under the combined AbortSignal;
   * closes the connection on any error that leaves it in an unknown state.
   */
  #op<T>(
    signal: AbortSignal | undefined,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    ticket = this.#tickets++,
  ): Promise<T> {
    const run = async (): Promise<T> => {
      this.#running = ticket;
      if (this.#state === 'closed') {
        throw new SmtpConnectionError('the SMTP session is closed');
      }
      const sig = anySignal(this.#options.signal, signal);
      this.#busy = true;
      try {
        return await fn(sig);
      } catch (err) {
        if (this.#isFatal(err)) await this.close();
        throw err;
      } finally {
        this.#busy = false;
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  #isFatal(err: unknown): boolean {
    if (!this.#greeted || this.#state === 'new') return true; // greet() failed: the connection is useless
    if (err instanceof SmtpReplyError) return err.code === 421;
    // An input problem found before anything was sent leaves the session as it was.
    if (err instanceof SmtpMessageError) return err.command === 'DATA' || err.command === 'BDAT';
    return true;
  }

  #assertReady(): void {
    if (this.#state !== 'ready') {
      throw new SmtpProtocolError(`the session is ${this.#state}; call greet() first`);
    }
  }
}
