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
 * `send()` waits for the first.
 *
 * RFC 5321 section 3.3 (mail transaction), section 4.5.3.2 (timeouts), RFC 2920 (pipelining),
 * RFC 3030 (CHUNKING/BINARYMIME), RFC 3207 (STARTTLS), RFC 4954 (AUTH).
 */
import {
  SmtpAbortError,
  SmtpAuthError,
  SmtpConnectionError,
  SmtpError,
  SmtpMessageError,
  SmtpProtocolError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpTlsError,
} from '../errors.ts';
import { isPositive, type SmtpReply } from '../status.ts';
import type { Transport } from '../transport.ts';
import { DotWriter } from '../wire/dot-writer.ts';
import { parseEhloKeywords } from '../wire/reply.ts';
import { type AuthExchange, authenticate } from './auth.ts';
import { type BodyFacts, bodyChunks, inspectBody } from './body.ts';
import { anySignal, bounded, settleWithin } from './deadline.ts';
import { defaultHeloName, validateHeloName } from './ehlo.ts';
import { planTransaction, type TransactionPlan } from './envelope.ts';
import { SmtpRecipientsRejectedError } from './errors.ts';
import {
  type MessageBody,
  type RecipientResult,
  type ResolvedClientOptions,
  resolveClientOptions,
  type SendEnvelope,
  type SendResult,
  type SmtpClientOptions,
} from './options.ts';
import { ReplyReader } from './reply-reader.ts';

const encoder = new TextEncoder();
/** RFC 5321 section 4.1.1.4: the end of mail data after a body whose last line is complete. */
const DATA_END = Uint8Array.of(0x2e, 0x0d, 0x0a);
/** Coalesce small body pieces into writes of about this size. */
const WRITE_BATCH = 32 * 1024;
/** At most this many BDAT replies outstanding when pipelining (RFC 3030 section 4.2 allows pipelined BDAT). */
const BDAT_WINDOW = 8;
/**
 * After a pipelined write fails, how long a reply already on its way may still be read. A
 * transport returns what it received before the failure at once; this only bounds one that
 * does not.
 */
const WRITE_FAILURE_GRACE_MS = 1_000;

export type SessionState = 'new' | 'ready' | 'closed';

export class SmtpClientSession {
  readonly #transport: Transport;
  readonly #options: ResolvedClientOptions;
  #reader: ReplyReader;
  #caps: Map<string, string[]> = new Map();
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
  #heloName: string;
  #greeting: SmtpReply | null = null;
  #authenticated: string | null = null;

  constructor(transport: Transport, options: SmtpClientOptions) {
    this.#transport = transport;
    this.#options = resolveClientOptions(options);
    this.#heloName = this.#options.helo ?? defaultHeloName(transport.local?.address);
    validateHeloName(this.#heloName);
    this.#reader = new ReplyReader(transport);
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
      const greeting = await bounded(this.#reader.read('the greeting', { enhanced: false }), {
        stage: 'greeting',
        ms: t.greetingMs,
        signal: sig,
      });
      this.#greeting = greeting;
      if (greeting.code !== 220) {
        // RFC 5321 section 3.1: 554 instead of 220 means "no service here"; the client SHOULD
        // send QUIT (and wait a little for the 221) before closing.
        await settleWithin(
          (async () => {
            await this.#transport.write(encoder.encode('QUIT\r\n'));
            await this.#reader.read('QUIT');
          })(),
          this.#options.timeouts.quitMs,
        );
        throw new SmtpReplyError(greeting, { command: 'CONNECT' });
      }
      await this.#ehlo(sig);
      if (this.#options.security === 'starttls' && !this.secure) await this.#starttls(sig);
      if (this.#options.auth) {
        await this.#authenticate(sig);
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
    return this.#op(signal, async (sig) => {
      this.#assertReady();
      const facts = inspectBody(body);
      const plan = planTransaction(envelope, facts, this.#caps, this.#options, this.secure);
      const reset = this.#needsReset;
      this.#needsReset = true;
      const pipelining = this.#options.pipelining && this.#caps.has('PIPELINING');
      const { accepted, rejected, dataReply } = pipelining
        ? await this.#envelopePipelined(plan, reset, sig)
        : await this.#envelopeStepwise(plan, reset, sig);

      let response: SmtpReply;
      if (plan.useBdat) {
        response = await this.#bdat(plan, facts, body, sig);
      } else {
        // dataReply is the 354 (checked by the envelope step).
        if (dataReply === null || dataReply.code !== 354)
          throw new SmtpProtocolError('internal: DATA not started');
        response = await this.#data(plan, facts, body, sig);
      }
      return { accepted, rejected, response, envelope: { from: envelope.from, to: [...envelope.to] } };
    });
  }

  /** RSET (RFC 5321 section 4.1.1.5): abort any transaction. */
  reset(signal?: AbortSignal): Promise<void> {
    return this.#op(signal, async (sig) => {
      this.#assertReady();
      await this.#expect('RSET', 'RSET', sig, [250]);
      this.#needsReset = false;
    });
  }

  /** NOOP (RFC 5321 section 4.1.1.9): check the connection is alive. */
  noop(signal?: AbortSignal): Promise<void> {
    return this.#op(signal, async (sig) => {
      this.#assertReady();
      await this.#expect('NOOP', 'NOOP', sig, [250]);
    });
  }

  /**
   * QUIT (RFC 5321 section 4.1.1.10) and close. Never rejects and never hangs: the 221 is
   * awaited at most `timeouts.quitMs`, and so is the transport's close. If another operation is
   * still running it is not waited for: the connection is closed under it.
   */
  async quit(): Promise<void> {
    if (this.#state === 'closed') return;
    const ms = this.#options.timeouts.quitMs;
    if (!this.#busy && this.#greeted) {
      this.#busy = true;
      try {
        await bounded(
          (async () => {
            await this.#transport.write(encoder.encode('QUIT\r\n'));
            await this.#reader.read('QUIT');
          })(),
          { stage: 'QUIT', ms, command: 'QUIT' },
        );
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
    await settleWithin((async () => this.#transport.close())(), this.#options.timeouts.quitMs);
  }

  // ---------------------------------------------------------------- operation plumbing

  /**
   * Run one operation: serialized after the previous one, under the combined AbortSignal;
   * closes the connection on any error that leaves it in an unknown state.
   */
  #op<T>(signal: AbortSignal | undefined, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
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

  /**
   * Write command lines. CR, LF and NUL can never reach the wire inside a command: the check
   * throws synchronously, before anything is written.
   */
  #write(lines: string[], stage: string, signal: AbortSignal | undefined): Promise<void> {
    for (const line of lines) {
      if (/[\r\n\0]/.test(line)) {
        throw new SmtpMessageError('a command would contain CR, LF or NUL; refusing to send it', undefined, {
          command: line.split(' ')[0] ?? '',
        });
      }
    }
    return bounded(this.#transport.write(encoder.encode(`${lines.join('\r\n')}\r\n`)), {
      stage,
      ms: this.#options.timeouts.commandMs,
      command: stage,
      signal,
    });
  }

  #read(
    command: string,
    signal: AbortSignal | undefined,
    ms = this.#options.timeouts.commandMs,
  ): Promise<SmtpReply> {
    return bounded(this.#reader.read(command), { stage: command, ms, command, signal });
  }

  /** Send a command and require one of `codes` (else `SmtpReplyError`). */
  async #expect(
    line: string,
    command: string,
    signal: AbortSignal | undefined,
    codes: number[],
  ): Promise<SmtpReply> {
    await this.#write([line], command, signal);
    const reply = await this.#read(command, signal);
    if (!codes.includes(reply.code)) throw new SmtpReplyError(reply, { command });
    return reply;
  }

  // ---------------------------------------------------------------- connection setup

  async #ehlo(signal: AbortSignal | undefined): Promise<void> {
    await this.#write([`EHLO ${this.#heloName}`], 'EHLO', signal);
    const reply = await bounded(this.#reader.read('EHLO', { enhanced: false }), {
      stage: 'EHLO',
      ms: this.#options.timeouts.commandMs,
      command: 'EHLO',
      signal,
    });
    if (reply.code === 250) {
      this.#caps = parseEhloKeywords(reply);
      return;
    }
    // RFC 5321 section 3.2 / 4.1.4: a server that does not know EHLO answers 500, 502 (or 504/550);
    // the client then falls back to HELO. A 4xx (such as 421) is not a refusal of EHLO itself.
    if (reply.code >= 500) {
      this.#caps = new Map();
      await this.#expect(`HELO ${this.#heloName}`, 'HELO', signal, [250]);
      return;
    }
    throw new SmtpReplyError(reply, { command: 'EHLO' });
  }

  async #starttls(signal: AbortSignal | undefined): Promise<void> {
    const required = this.#options.starttlsPolicy === 'required';
    if (!this.#caps.has('STARTTLS')) {
      if (required) {
        throw new SmtpTlsError(
          `${this.#options.host}:${this.#options.port} does not offer STARTTLS and TLS is required` +
            (this.#options.auth ? ' (credentials are never sent in clear text)' : '') +
            '; refusing to continue without encryption',
          { command: 'STARTTLS' },
        );
      }
      return;
    }
    await this.#write(['STARTTLS'], 'STARTTLS', signal);
    const reply = await this.#read('STARTTLS', signal);
    if (reply.code !== 220) {
      if (reply.code === 421) throw new SmtpReplyError(reply, { command: 'STARTTLS' });
      if (required) {
        throw new SmtpTlsError(
          `the server refused STARTTLS (${reply.code} ${reply.lines.join(' ')}) and TLS is required`,
          { command: 'STARTTLS', cause: new SmtpReplyError(reply, { command: 'STARTTLS' }) },
        );
      }
      return;
    }
    // RFC 3207 section 4.2: anything received after the 220 and before the handshake was not
    // protected by TLS: drop it so it can never be read as a reply (response injection). The
    // transport drops what it buffered itself.
    this.#reader.discard();
    try {
      await bounded(this.#transport.startTls({ servername: this.#options.servername }), {
        stage: 'TLS handshake',
        ms: this.#options.timeouts.commandMs,
        command: 'STARTTLS',
        signal,
      });
    } catch (err) {
      if (err instanceof SmtpError && err.kind !== 'connection') throw err;
      throw new SmtpTlsError(
        `TLS handshake with ${this.#options.servername} failed after STARTTLS: ${err instanceof Error ? err.message : String(err)}`,
        { command: 'STARTTLS', cause: err },
      );
    }
    this.#reader = new ReplyReader(this.#transport);
    // RFC 3207 section 4.2: forget everything learned before TLS and say EHLO again.
    this.#caps = new Map();
    await this.#ehlo(signal);
  }

  async #authenticate(signal: AbortSignal | undefined): Promise<void> {
    const auth = this.#options.auth!;
    if (!this.secure && !this.#options.allowInsecureAuth) {
      throw new SmtpAuthError(
        'refusing to send credentials over a connection without TLS; use security "starttls" or "tls" ' +
          '(or set allowInsecureAuth for a trusted test server)',
      );
    }
    const exchange: AuthExchange = {
      send: (line) => this.#write([line], 'AUTH', signal),
      read: () => this.#read('AUTH', signal),
    };
    await authenticate(exchange, this.#caps.get('AUTH'), auth, this.secure);
    this.#authenticated = auth.username;
  }

  // ---------------------------------------------------------------- the mail transaction

  async #envelopePipelined(
    plan: TransactionPlan,
    reset: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Envelope> {
    // RFC 2920 section 3.1: RSET, MAIL and RCPT may be anywhere in a group; DATA must be last.
    // BDAT waits for the RCPT replies, so no data goes out when every recipient is refused.
    const lines = [...(reset ? ['RSET'] : []), plan.mail, ...plan.rcpts.map((r) => r.line)];
    if (!plan.useBdat) lines.push('DATA');
    // Read replies while the batch is written, so a large batch cannot deadlock against a
    // server whose own replies fill the socket buffers.
    const written = this.#write(lines, 'MAIL', signal);
    written.catch(() => {});
    // A failed write must not leave us waiting for replies to commands never sent.
    let writeFailedAlready = false;
    const writeFailed = written.then(
      () => new Promise<never>(() => {}),
      (error: unknown) => {
        writeFailedAlready = true;
        return Promise.reject(error);
      },
    );
    writeFailed.catch(() => {});
    // The first reply that explains why the transaction cannot go on. When the server then
    // closes the connection (or the write fails because it did), that reply is what the caller
    // gets, not the end of stream that followed it.
    let explained: SmtpReplyError | null = null;
    const read = async (command: string): Promise<SmtpReply> => {
      const reply = this.#read(command, signal);
      reply.catch(() => {});
      try {
        return await Promise.race([reply, writeFailed]);
      } catch (err) {
        // The caller's own abort stays an abort; anything else that follows the explaining reply
        // (end of stream, reset, time-out, a garbled line) is its consequence.
        if (explained !== null && !(err instanceof SmtpAbortError)) {
          await this.close();
          throw explained;
        }
        if (!writeFailedAlready) throw err;
        // The write failed, typically because the server answered and closed (a 421 after
        // MAIL): a reply that already arrived still says more than the broken pipe.
        try {
          return await bounded(reply, { stage: command, ms: WRITE_FAILURE_GRACE_MS, command, signal });
        } catch (readErr) {
          throw readErr instanceof SmtpTimeoutError ? err : readErr;
        }
      }
    };
    // RFC 5321 section 3.8: after 421 the server closes the connection; no further replies come.
    const check = (reply: SmtpReply, command: string): SmtpReply => {
      if (reply.code === 421) throw new SmtpReplyError(reply, { command });
      return reply;
    };
    let resetReply: SmtpReply | null = null;
    if (reset) {
      resetReply = check(await read('RSET'), 'RSET');
      if (resetReply.code !== 250) explained = new SmtpReplyError(resetReply, { command: 'RSET' });
    }
    const mailReply = check(await read('MAIL'), 'MAIL');
    if (mailReply.code !== 250) explained ??= new SmtpReplyError(mailReply, { command: 'MAIL' });
    const rcptReplies: SmtpReply[] = [];
    for (let i = 0; i < plan.rcpts.length; i++) rcptReplies.push(check(await read('RCPT'), 'RCPT'));
    if (explained === null && !rcptReplies.some((r) => r.code >= 200 && r.code < 300)) {
      explained = new SmtpRecipientsRejectedError(
        this.#collect(plan, rcptReplies, null).rejected,
        rcptReplies,
      );
    }
    const dataReply = plan.useBdat ? null : check(await read('DATA'), 'DATA');
    try {
      await written;
    } catch (err) {
      if (explained === null) throw err;
    }
    const result = this.#collect(plan, rcptReplies, dataReply);
    if (explained !== null) {
      try {
        await this.#abandonData(dataReply, signal);
      } catch (err) {
        if (err instanceof SmtpAbortError) throw err;
        await this.close();
      }
      throw explained;
    }
    if (dataReply !== null && dataReply.code !== 354)
      throw new SmtpReplyError(dataReply, { command: 'DATA' });
    return result;
  }

  async #envelopeStepwise(
    plan: TransactionPlan,
    reset: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Envelope> {
    if (reset) await this.#expect('RSET', 'RSET', signal, [250]);
    await this.#expect(plan.mail, 'MAIL', signal, [250]);
    const rcptReplies: SmtpReply[] = [];
    for (const r of plan.rcpts) {
      await this.#write([r.line], 'RCPT', signal);
      const reply = await this.#read('RCPT', signal);
      // RFC 5321 section 3.8: the server closes after 421; report it rather than the failed next write.
      if (reply.code === 421) throw new SmtpReplyError(reply, { command: 'RCPT' });
      rcptReplies.push(reply);
    }
    const partial = this.#collect(plan, rcptReplies, null);
    if (partial.accepted.length === 0) throw new SmtpRecipientsRejectedError(partial.rejected, rcptReplies);
    if (plan.useBdat) return partial;
    const dataReply = await this.#expect('DATA', 'DATA', signal, [354]);
    return { ...partial, dataReply };
  }

  #collect(plan: TransactionPlan, rcptReplies: SmtpReply[], dataReply: SmtpReply | null): Envelope {
    const accepted: string[] = [];
    const rejected: RecipientResult[] = [];
    plan.rcpts.forEach((r, i) => {
      const reply = rcptReplies[i]!;
      // RFC 5321 section 4.2.2: 250 and 251 accept a recipient (252 is not a RCPT reply, but positive).
      if (isPositive(reply.code) && reply.code < 300) accepted.push(r.recipient);
      else
        rejected.push({
          recipient: r.recipient,
          code: reply.code,
          enhancedCode: reply.enhancedCode,
          message: reply.lines.join(' '),
        });
    });
    return { accepted, rejected, rcptReplies, dataReply };
  }

  /**
   * DATA got 354 although the transaction cannot go on (MAIL or every RCPT refused in a
   * pipelined group): send an empty message end so the server leaves DATA mode, and ignore its
   * reply (RFC 2920 section 3.1). The next transaction starts with RSET.
   */
  async #abandonData(dataReply: SmtpReply | null, signal: AbortSignal | undefined): Promise<void> {
    if (dataReply === null || dataReply.code !== 354) return;
    await bounded(this.#transport.write(encoder.encode('.\r\n')), {
      stage: 'data',
      ms: this.#options.timeouts.dataMs,
      command: 'DATA',
      signal,
    });
    await this.#read('DATA', signal, this.#options.timeouts.dataMs);
  }

  /** Send the body after 354 and read the final reply (RFC 5321 section 4.1.1.4). */
  async #data(plan: TransactionPlan, facts: BodyFacts, body: MessageBody, signal: AbortSignal | undefined) {
    const out = new BatchWriter((bytes) => this.#writeData(bytes, 'DATA', signal));
    const pieces = this.#boundedPieces(this.#bodyPieces(facts, body, 'DATA'), 'DATA', signal);
    if (facts.clean) {
      // inspectBody found CRLF lines only, the last one complete, and no line starting with
      // "." (RFC 5321 section 4.5.2 has nothing to stuff): the bytes go out as they are.
      this.#checkDeclared(facts.eightBit === true, facts.headerEightBit === true, plan, 'DATA');
      for await (const piece of pieces) await out.push(piece);
      await out.push(DATA_END);
    } else {
      const writer = new DotWriter();
      for await (const piece of pieces) await out.push(this.#encode(writer, piece, plan, 'DATA'));
      await out.push(this.#encode(writer, null, plan, 'DATA'));
    }
    await out.flush();
    const reply = await this.#read('DATA', signal, this.#options.timeouts.dataMs);
    // RFC 5321 section 4.1.1.4: the end of data completes the transaction whatever the reply
    // (a 421 closes the connection anyway).
    this.#needsReset = false;
    if (reply.code !== 250) throw new SmtpReplyError(reply, { command: 'DATA' });
    return reply;
  }

  /**
   * BDAT (RFC 3030 section 2): the message in chunks of `chunkSize` octets, the last one marked
   * LAST. With PIPELINING up to BDAT_WINDOW chunk replies may be outstanding; without it each
   * chunk waits for its 250. A refused chunk ends the transaction (section 2: no more chunks).
   */
  async #bdat(plan: TransactionPlan, facts: BodyFacts, body: MessageBody, signal: AbortSignal | undefined) {
    const size = this.#options.chunkSize;
    const window = this.#options.pipelining && this.#caps.has('PIPELINING') ? BDAT_WINDOW : 1;
    // A clean in-memory body (see BodyFacts.clean) needs no BDAT normalization: pass it through.
    const passThrough = plan.bodyType === 'BINARYMIME' || facts.clean;
    if (facts.clean && plan.bodyType !== 'BINARYMIME') {
      this.#checkDeclared(facts.eightBit === true, facts.headerEightBit === true, plan, 'BDAT');
    }
    const writer = new DotWriter(passThrough ? { mode: 'binary' } : { dotStuff: false, terminator: false });
    // Replies are read in order, one read at a time, by this same flow (never concurrently).
    let outstanding = 0;
    let failure: SmtpReplyError | null = null;
    let lastReply: SmtpReply | null = null;
    const settleOne = async (): Promise<void> => {
      const reply = await this.#read('BDAT', signal, this.#options.timeouts.dataMs);
      outstanding--;
      lastReply = reply;
      if (reply.code !== 250 && failure === null) failure = new SmtpReplyError(reply, { command: 'BDAT' });
    };
    const sendChunk = async (data: Uint8Array, last: boolean): Promise<void> => {
      const head = encoder.encode(`BDAT ${data.length}${last ? ' LAST' : ''}\r\n`);
      const frame = new Uint8Array(head.length + data.length);
      frame.set(head, 0);
      frame.set(data, head.length);
      await this.#writeData(frame, 'BDAT', signal);
      outstanding++;
      while (outstanding >= window || (last && outstanding > 0)) await settleOne();
    };
    const chunker = new Chunker(size);
    for await (const piece of this.#boundedPieces(this.#bodyPieces(facts, body, 'BDAT'), 'BDAT', signal)) {
      for (const chunk of chunker.push(this.#encode(writer, piece, plan, 'BDAT'))) {
        await sendChunk(chunk, false);
        if (failure !== null) break;
      }
      if (failure !== null) break;
    }
    if (failure === null) {
      chunker.push(this.#encode(writer, null, plan, 'BDAT'));
      await sendChunk(chunker.rest(), true);
    }
    while (outstanding > 0) await settleOne();
    if (failure !== null) throw failure;
    // Replies come in order: the last one answers BDAT LAST. Every chunk got its 250, so the
    // transaction completed; after a failed BDAT the state is indeterminate and RSET stays due
    // (RFC 3030 section 2).
    this.#needsReset = false;
    return lastReply!;
  }

  /**
   * Pull from the body source under `dataMs` and the AbortSignal: a stalled producer cannot hold
   * the connection (and the caller) forever. The source is closed when we stop early.
   */
  async *#boundedPieces(
    pieces: AsyncGenerator<Uint8Array>,
    command: string,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const next = await bounded(pieces.next(), {
          stage: 'reading the message body',
          ms: this.#options.timeouts.dataMs,
          command,
          signal,
        });
        if (next.done) return;
        yield next.value;
      }
    } finally {
      void pieces.return(undefined).catch(() => {});
    }
  }

  async *#bodyPieces(facts: BodyFacts, body: MessageBody, command: string): AsyncGenerator<Uint8Array> {
    if (facts.bytes !== null) {
      // Slices keep each write (and its timeout) to a bounded size.
      for (let i = 0; i < facts.bytes.length; i += WRITE_BATCH * 4)
        yield facts.bytes.subarray(i, i + WRITE_BATCH * 4);
      return;
    }
    try {
      yield* bodyChunks(body);
    } catch (err) {
      if (err instanceof SmtpError) throw withCommand(err, command);
      throw new SmtpMessageError(
        `reading the message body failed: ${err instanceof Error ? err.message : String(err)}`,
        'body',
        { command, cause: err },
      );
    }
  }

  /**
   * Encode a piece of body (or finish with null) and enforce what was declared in MAIL FROM:
   * 8-bit data needs BODY=8BITMIME or BINARYMIME (RFC 6152 section 3), UTF-8 headers need
   * SMTPUTF8 (RFC 6531 section 3.4). For a streamed body these are only known now, so a
   * violation aborts the connection (the message is never completed, so never delivered).
   */
  #encode(writer: DotWriter, piece: Uint8Array | null, plan: TransactionPlan, command: string): Uint8Array {
    let out: Uint8Array;
    try {
      out = piece === null ? writer.end() : writer.write(piece);
    } catch (err) {
      if (err instanceof SmtpError) throw withCommand(err, command);
      throw err;
    }
    if (plan.bodyType === 'BINARYMIME') return out;
    this.#checkDeclared(writer.eightBit, writer.headerEightBit, plan, command);
    return out;
  }

  /**
   * What the body holds must match what MAIL FROM declared: 8-bit data needs BODY=8BITMIME
   * (RFC 6152 section 3), UTF-8 headers need SMTPUTF8 (RFC 6531 section 3.4).
   */
  #checkDeclared(eightBit: boolean, headerEightBit: boolean, plan: TransactionPlan, command: string): void {
    if (eightBit && plan.bodyType !== '8BITMIME') {
      throw new SmtpMessageError(
        'the message contains 8-bit data but was not declared BODY=8BITMIME' +
          (this.#caps.has('8BITMIME') ? '' : ' (the server does not offer 8BITMIME)') +
          '; encode it as quoted-printable or base64',
        'body',
        { command },
      );
    }
    if (headerEightBit && !plan.smtpUtf8) {
      throw new SmtpMessageError(
        'the message header contains non-ASCII octets, which need SMTPUTF8' +
          (this.#caps.has('SMTPUTF8')
            ? ' (pass envelope.smtpUtf8: true for a streamed body)'
            : ' (the server does not offer it); encode the headers with RFC 2047'),
        'body',
        { command },
      );
    }
  }

  async #writeData(bytes: Uint8Array, command: string, signal: AbortSignal | undefined): Promise<void> {
    await bounded(this.#transport.write(bytes), {
      stage: 'data',
      ms: this.#options.timeouts.dataMs,
      command,
      signal,
    });
  }
}

interface Envelope {
  accepted: string[];
  rejected: RecipientResult[];
  rcptReplies: SmtpReply[];
  dataReply: SmtpReply | null;
}

function withCommand(err: SmtpError, command: string): SmtpError {
  if (err.command !== undefined) return err;
  if (err instanceof SmtpMessageError) {
    return new SmtpMessageError(err.message, err.field, { command, cause: err.cause });
  }
  return err;
}

/** Coalesces small pieces into writes of about WRITE_BATCH octets. */
class BatchWriter {
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

/**
 * Cuts a byte stream into BDAT chunks of exactly `size` octets. It always keeps at least one
 * octet back until the end (unless the message is empty), so the final chunk is sent as
 * `BDAT n LAST` rather than a separate `BDAT 0 LAST`.
 */
class Chunker {
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
