/**
 * One SMTP connection, server side: the loop that reads command lines from a `Transport`,
 * dispatches them, and writes the replies.
 *
 * I/O rules:
 * - Commands are processed strictly in the order received, one at a time (RFC 2920 section 3.2).
 * - Replies are queued and written in batches: whenever no complete command line is buffered
 *   (the client is waiting for us), before a command that needs an answer first (354, 334, the
 *   STARTTLS 220), and whenever the queue exceeds `maxPendingReplyBytes`. No reply is reordered.
 * - Every wait on the client has a timeout (RFC 5321 section 4.5.3.2): 421 4.4.2 and close.
 * - Memory per connection is bounded: the command line by `maxCommandLineBytes`, the reply queue
 *   by `maxPendingReplyBytes` plus one reply, message data by one transport chunk at a time.
 */
import type { SmtpReply } from '../status.ts';
import type { Transport } from '../transport.ts';
import { InputBuffer, type LineResult } from '../wire/input.ts';
import { dispatch } from './commands.ts';
import type { BdatState } from './data.ts';
import { limitReached } from './limits.ts';
import type { ResolvedServerOptions } from './options.ts';
import { encodeReply, r, replyOfError } from './replies.ts';
import { ServerSession } from './session.ts';
import type { SmtpServerHandler } from './types.ts';

/** What waiting for client input produced. */
export type InputEvent = 'data' | 'eof' | 'timeout' | 'shutdown';

type ReadOutcome = { kind: 'data'; bytes: Uint8Array } | { kind: 'eof' } | { kind: 'error'; error: unknown };

/** Why the connection is ending (for logs and tests). */
export type CloseReason =
  | 'quit'
  | 'eof'
  | 'timeout'
  | 'shutdown'
  | 'too-many-errors'
  | 'too-many-auth-failures'
  | 'early-talker'
  | 'refused'
  | 'write-failed'
  | 'tls-failed'
  | 'internal-error'
  /** An HTTP request line arrived on the SMTP port (a browser, a proxy probe, a cross-protocol attack). */
  | 'http-request'
  /** Commands sent ahead of their replies on a connection that did not negotiate PIPELINING. */
  | 'improper-pipelining';

export class Connection {
  readonly session: ServerSession;
  readonly input = new InputBuffer();
  readonly transport: Transport;
  readonly options: ResolvedServerOptions;
  readonly handler: SmtpServerHandler;

  /** Set once the connection must end after the queued replies are written. */
  closeReason: CloseReason | null = null;
  /** Unrecognized or invalid commands so far (RFC 5321 section 4.1.4 leaves the limit to us). */
  badCommands = 0;
  /** Failed AUTH attempts so far. */
  authFailures = 0;
  /** The greeting was 554 (RFC 5321 section 3.1): only QUIT is served. */
  refused = false;
  /** The BDAT transaction in progress, if any (see data.ts). */
  bdat: BdatState | null = null;
  /** A DATA/BDAT message is being read: shutdown waits for it. */
  inMessage = false;
  /**
   * The client sent a command while replies to earlier ones were still unsent, on a session that
   * did not negotiate PIPELINING (RFC 2920 section 3.1; RFC 5321 section 4.1.1 lock-step):
   * refused at DATA/BDAT (see data.ts).
   */
  pipelinedAhead = false;
  /** RCPTs answered 452 (too many recipients) on this connection. */
  rcptOvershoot = 0;

  #out: Uint8Array[] = [];
  #outBytes = 0;
  #pendingRead: Promise<ReadOutcome> | null = null;
  #writeFailed = false;
  #shutdownRequested = false;
  #shutdownWake: (() => void) | null = null;
  #commandsSeen = 0;

  constructor(transport: Transport, handler: SmtpServerHandler, options: ResolvedServerOptions, id?: string) {
    this.transport = transport;
    this.handler = handler;
    this.options = options;
    this.session = new ServerSession(transport, id);
  }

  get closing(): boolean {
    return this.closeReason !== null;
  }

  /** True while waiting for the next command with nothing buffered (an idle session). */
  get idle(): boolean {
    return this.#shutdownWake !== null;
  }

  // ---- replies ----------------------------------------------------------------------------

  /** Queue a reply (with its enhanced code unless the extension is off). */
  send(reply: SmtpReply): void {
    this.#queue(encodeReply(reply, this.options.extensions.enhancedStatusCodes));
  }

  /** Queue a reply that never carries an enhanced code (greeting, HELO/EHLO: RFC 2034 section 3). */
  sendPlain(reply: SmtpReply): void {
    this.#queue(encodeReply(reply, false));
  }

  #queue(bytes: Uint8Array): void {
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
  }

  /** True when the reply queue is over its bound and must be written now. */
  get mustFlush(): boolean {
    return this.#outBytes >= this.options.maxPendingReplyBytes;
  }

  /** Write every queued reply. A write that fails or blocks too long ends the connection. */
  async flush(): Promise<void> {
    if (this.#out.length === 0) return;
    const parts = this.#out;
    const total = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    if (this.#writeFailed) return;
    let bytes: Uint8Array;
    if (parts.length === 1) {
      bytes = parts[0]!;
    } else {
      bytes = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
    }
    const { timers, timeouts } = this.options;
    let timer: unknown;
    const blocked = new Promise<'blocked'>((resolve) => {
      timer = timers.setTimeout(() => resolve('blocked'), timeouts.dataTerminationMs);
    });
    try {
      const outcome = await Promise.race([this.transport.write(bytes).then(() => 'ok' as const), blocked]);
      if (outcome === 'blocked') this.#failWrite();
    } catch {
      this.#failWrite();
    } finally {
      timers.clearTimeout(timer);
    }
  }

  #failWrite(): void {
    this.#writeFailed = true;
    this.closeReason ??= 'write-failed';
  }

  /** Reply to an invalid command, or end the connection once there were too many (RFC 5321 section 4.1.4). */
  badCommand(reply: SmtpReply): void {
    this.badCommands++;
    if (limitReached(this.badCommands, this.options.maxBadCommands)) {
      this.send(r(421, '4.7.0', `${this.options.hostname} Too many errors, closing connection`));
      this.closeReason = 'too-many-errors';
      return;
    }
    this.send(reply);
  }

  /**
   * The reply for an exception thrown by a handler hook: a `reject()` error becomes its own
   * reply; anything else is reported to `onError` and answered with `fallback`.
   */
  replyForError(error: unknown, fallback: SmtpReply): SmtpReply {
    const reply = replyOfError(error);
    if (reply !== null) return reply;
    this.reportError(error);
    return fallback;
  }

  reportError(error: unknown): void {
    try {
      this.options.onError?.(this.session, error);
    } catch {
      // A failing logger must not take the connection down.
    }
  }

  // ---- input ------------------------------------------------------------------------------

  #read(): Promise<ReadOutcome> {
    this.#pendingRead ??= this.transport.read().then(
      (bytes): ReadOutcome => (bytes === null ? { kind: 'eof' } : { kind: 'data', bytes }),
      (error: unknown): ReadOutcome => ({ kind: 'error', error }),
    );
    return this.#pendingRead;
  }

  /**
   * Wait for more octets from the client (pushed into `input`), at most `timeoutMs`.
   * `interruptible`: a graceful shutdown may end the wait (only between commands).
   */
  async waitInput(timeoutMs: number, interruptible: boolean, deadline?: Deadline): Promise<InputEvent> {
    if (interruptible && this.#shutdownRequested) return 'shutdown';
    if (deadline?.expired) return 'timeout';
    const read = this.#read();
    const { timers } = this.options;
    let timer: unknown;
    const waits: Promise<ReadOutcome | 'timeout' | 'shutdown'>[] = [
      read,
      new Promise<'timeout'>((resolve) => {
        timer = timers.setTimeout(() => resolve('timeout'), timeoutMs);
      }),
    ];
    if (deadline) waits.push(deadline.listen());
    if (interruptible) {
      waits.push(
        new Promise<'shutdown'>((resolve) => {
          this.#shutdownWake = () => resolve('shutdown');
        }),
      );
    }
    const outcome = await Promise.race(waits);
    timers.clearTimeout(timer);
    deadline?.unlisten();
    this.#shutdownWake = null;
    if (outcome === 'timeout' || outcome === 'shutdown') return outcome;
    this.#pendingRead = null;
    if (outcome.kind === 'data') {
      this.input.push(outcome.bytes);
      return 'data';
    }
    return 'eof';
  }

  /**
   * The next command line (or `too-long`), or null when the connection ends first (end of
   * stream, timeout, shutdown; the matching 421 is queued). Queued replies are written before
   * waiting: this is the batching point of RFC 2920 section 3.1.
   */
  async nextCommandLine(): Promise<LineResult | null> {
    // The timeout bounds the whole line, not each read: a client dripping one octet just inside
    // the timeout must not hold the session forever (slowloris). RFC 5321 section 4.5.3.2.7 sets
    // the time for a command; it does not restart for each TCP segment of it.
    const timeout =
      this.#commandsSeen === 0 ? this.options.timeouts.greetingMs : this.options.timeouts.commandMs;
    let deadline: Deadline | null = null;
    try {
      return await this.#nextCommandLine(timeout, () => {
        deadline ??= new Deadline(this.options.timers, timeout);
        return deadline;
      });
    } finally {
      (deadline as Deadline | null)?.cancel();
    }
  }

  async #nextCommandLine(timeout: number, deadline: () => Deadline): Promise<LineResult | null> {
    for (;;) {
      if (this.closing) return null;
      if (this.#shutdownRequested) {
        this.send(r(421, '4.3.2', `${this.options.hostname} Service shutting down, closing connection`));
        this.closeReason = 'shutdown';
        return null;
      }
      const line = this.input.readLine(this.options.maxCommandLineBytes);
      if (line !== null) {
        // Replies still queued: this command was sent before the client could read them.
        if (this.#out.length > 0 && !this.pipeliningNegotiated) this.pipelinedAhead = true;
        return line;
      }
      await this.flush();
      if (this.closing) return null;
      const event = await this.waitInput(timeout, true, deadline());
      if (event === 'data') continue;
      if (event === 'eof') {
        this.closeReason = 'eof';
        return null;
      }
      if (event === 'timeout') {
        this.send(r(421, '4.4.2', `${this.options.hostname} Timeout, closing connection`));
        this.closeReason = 'timeout';
        return null;
      }
      // shutdown: loop once more to queue the 421.
    }
  }

  /** PIPELINING was advertised and the client said EHLO (RFC 2920 section 3.1). */
  get pipeliningNegotiated(): boolean {
    return this.options.extensions.pipelining && this.session.helo?.verb === 'EHLO';
  }

  /** Ask the connection to end at its next command boundary (graceful shutdown). */
  requestShutdown(): void {
    this.#shutdownRequested = true;
    this.#shutdownWake?.();
  }

  get shutdownRequested(): boolean {
    return this.#shutdownRequested;
  }

  // ---- the loop ---------------------------------------------------------------------------

  /** Serve the connection until it ends. Never rejects. */
  async run(): Promise<CloseReason> {
    try {
      if (await this.#open()) {
        for (;;) {
          const line = await this.nextCommandLine();
          if (line === null) break;
          this.#commandsSeen++;
          await dispatch(this, line);
          if (this.closing) break;
          if (this.mustFlush) await this.flush();
        }
      }
    } catch (error) {
      // A bug in the engine itself: answer what we can and close.
      this.reportError(error);
      this.send(r(421, '4.3.0', `${this.options.hostname} Internal error, closing connection`));
      this.closeReason ??= 'internal-error';
    } finally {
      await this.flush().catch(() => {});
      this.bdat?.intake?.abort('connection closed');
      await this.transport.close().catch(() => {});
      this.session.closeReason = this.closeReason ?? 'eof';
      try {
        this.handler.close?.(this.session);
      } catch (error) {
        this.reportError(error);
      }
    }
    return this.closeReason ?? 'eof';
  }

  /** Connect hook, early-talker check and greeting (RFC 5321 section 3.1, section 4.3.1). */
  async #open(): Promise<boolean> {
    const o = this.options;
    try {
      await this.handler.connect?.(this.session);
    } catch (error) {
      // RFC 5321 section 3.1: 554 in place of the greeting; then only QUIT is served.
      const reply = this.replyForError(error, r(554, '5.7.1', `${o.hostname} Connection refused`));
      this.sendPlain({ ...reply, lines: [`${o.hostname} ${reply.lines.join(' ')}`] });
      this.refused = true;
      if (reply.code === 421) {
        this.closeReason = 'refused';
        return false;
      }
      return true;
    }
    if (o.earlyTalkerDelayMs > 0) {
      const event = await this.waitInput(o.earlyTalkerDelayMs, true);
      if (event === 'data') {
        // RFC 5321 section 4.3.1 / RFC 2920 section 3.1: the client may not send before the greeting.
        this.send(
          r(554, '5.5.0', `${o.hostname} SMTP protocol synchronization error (talked before the greeting)`),
        );
        this.closeReason = 'early-talker';
        return false;
      }
      if (event === 'eof') {
        this.closeReason = 'eof';
        return false;
      }
    }
    if (this.#shutdownRequested) {
      this.send(r(421, '4.3.2', `${o.hostname} Service shutting down, closing connection`));
      this.closeReason = 'shutdown';
      return false;
    }
    this.sendPlain(r(220, null, `${o.hostname} ESMTP ${o.banner}`));
    return true;
  }
}

/**
 * One timer for a whole exchange (a command line, an AUTH line). Waits subscribe one listener
 * at a time and unsubscribe after: a long-lived promise raced against every read would keep
 * every read's outcome (its octets) reachable until the deadline (the Promise.race leak).
 */
export class Deadline {
  expired = false;
  readonly #timers: ResolvedServerOptions['timers'];
  readonly #handle: unknown;
  #listener: (() => void) | null = null;

  constructor(timers: ResolvedServerOptions['timers'], ms: number) {
    this.#timers = timers;
    this.#handle = timers.setTimeout(() => {
      this.expired = true;
      this.#listener?.();
    }, ms);
  }

  /** A promise for this wait only; call `unlisten()` when the wait is over. */
  listen(): Promise<'timeout'> {
    return new Promise<'timeout'>((resolve) => {
      if (this.expired) resolve('timeout');
      else this.#listener = () => resolve('timeout');
    });
  }

  unlisten(): void {
    this.#listener = null;
  }

  cancel(): void {
    this.#listener = null;
    this.#timers.clearTimeout(this.#handle);
  }
}
