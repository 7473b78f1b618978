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
import { SmtpTimeoutError } from '../errors.ts';
import type { SmtpReply } from '../status.ts';
import type { Transport } from '../transport.ts';
import { InputBuffer, type LineResult } from '../wire/input.ts';
import { Alarm } from './alarm.ts';
import { dispatch } from './commands.ts';
import type { BdatState, MessageIntake } from './data.ts';
import { limitReached } from './limits.ts';
import type { ResolvedServerOptions } from './options.ts';
import { encodeReply, r, replyOfError } from './replies.ts';
import { ServerSession } from './session.ts';
import type { SmtpServerHandler } from './types.ts';

/** What waiting for client input produced. */
export type InputEvent = 'data' | 'eof' | 'timeout' | 'shutdown';

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
  /** The DATA message being read, if any (BDAT keeps its own in `bdat`). */
  intake: MessageIntake | null = null;
  /**
   * The client sent a command while replies to earlier ones were still unsent, on a session that
   * did not negotiate PIPELINING (RFC 2920 section 3.1; RFC 5321 section 4.1.1 lock-step):
   * refused at DATA/BDAT (see data.ts). Cleared whenever the session returns to "no
   * transaction" (end of a message, RSET, HELO/EHLO, STARTTLS: `resetTransaction`), so only
   * commands of the current transaction (MAIL, RCPT, DATA/BDAT) sent blind count.
   */
  pipelinedAhead = false;
  /** RCPTs answered 452 (too many recipients) in the current transaction. */
  rcptOvershoot = 0;

  #out: Uint8Array[] = [];
  #outBytes = 0;
  #writeFailed = false;
  #shutdownRequested = false;
  #commandsSeen = 0;
  /** Cut by `abort()`: every wait ends at once, nothing more is written. */
  #aborted = false;
  /** Ends the `within` wait in progress with 'stalled' (see `abort`). */
  #stallWake: (() => void) | null = null;

  // Waiting on the client. One wait at a time (the loop is sequential); a read, once started,
  // stays in flight until the transport answers, even if the wait for it ended (timeout).
  /** Resolves the wait in progress. */
  #wake: ((event: InputEvent) => void) | null = null;
  /** The wait in progress may be ended by a graceful shutdown. */
  #interruptible = false;
  /** The wait in progress set the input alarm for itself only (not a line deadline). */
  #waitOwnsAlarm = false;
  /** The caller's deadline the wait in progress listens to, if any. */
  #waitDeadline: Deadline | null = null;
  #reading = false;
  /** What a read brought while nobody waited: 'data' (already in `input`) or 'eof'. */
  #arrived: 'data' | 'eof' | null = null;
  /** The input alarm rang while no wait was in progress (a line deadline ran out). */
  #expired = false;
  /** A line deadline is set on the input alarm (see `readLineWithin`). */
  #lineDeadline = false;
  /** Times waits for input: per wait, or for a whole command line. */
  #inputAlarm: Alarm | null = null;
  /** Times writes of replies and the data handler's verdict (`within`). */
  #stallAlarm: Alarm | null = null;

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
    return this.#wake !== null && this.#interruptible;
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
    let outcome: 'ok' | 'failed' | 'stalled';
    try {
      outcome = await this.within(
        this.transport.write(bytes).then(() => 'ok' as const),
        this.options.timeouts.dataTerminationMs,
      );
    } catch {
      outcome = 'failed';
    }
    if (outcome !== 'ok') this.#failWrite();
  }

  /**
   * `promise`, or 'stalled' when it has not settled within `ms` (a write the client does not
   * read, a data handler that never answers). Uses the connection's second alarm, not a timer
   * of its own; not for waits on client input (see `waitInput`).
   */
  within<T>(promise: Promise<T>, ms: number): Promise<T | 'stalled'> {
    if (this.#aborted) return Promise.resolve('stalled');
    this.#stallAlarm ??= this.#newAlarm();
    const alarm = this.#stallAlarm;
    return new Promise<T | 'stalled'>((resolve, reject) => {
      const stalled = (): void => {
        if (this.#stallWake === stalled) this.#stallWake = null;
        alarm.clear(token);
        resolve('stalled');
      };
      const token = alarm.set(ms, stalled);
      this.#stallWake = stalled;
      promise.then(
        (value) => {
          if (this.#stallWake === stalled) this.#stallWake = null;
          alarm.clear(token);
          resolve(value);
        },
        (error: unknown) => {
          if (this.#stallWake === stalled) this.#stallWake = null;
          alarm.clear(token);
          reject(error);
        },
      );
    });
  }

  /**
   * Call a handler hook (`connect`, `auth`, `mailFrom`, `rcptTo`) and wait for it at most
   * `commandMs`: an application that never answers (a hung database) must not hold the
   * session, nor the graceful shutdown, forever. 'stalled' (reported to `onError`) when it did
   * not settle in time, or when the connection was cut meanwhile; the hook keeps running and
   * its late outcome is ignored. A hook that answers synchronously costs no timer. A hook that
   * throws (synchronously or not) rejects, as before.
   */
  async callHook<T>(name: string, call: () => T | PromiseLike<T>): Promise<Awaited<T> | 'stalled'> {
    const result = call();
    if (!isThenable(result)) return result as Awaited<T>;
    const ms = this.options.timeouts.commandMs;
    const outcome = await this.within(Promise.resolve(result) as Promise<Awaited<T>>, ms);
    if (outcome === 'stalled' && !this.#aborted) {
      this.reportError(new SmtpTimeoutError(`handler.${name}`, ms));
    }
    return outcome;
  }

  /** Wait `ms` (a delay the server imposes), ended early by `abort()`. */
  async sleep(ms: number): Promise<void> {
    await this.within(new Promise<never>(() => {}), ms);
  }

  /** The connection was cut by `abort()` (shutdown deadline). */
  get aborted(): boolean {
    return this.#aborted;
  }

  /**
   * Cut the connection now (the shutdown deadline): abort the message in transfer (its stream
   * errors), end every wait (on the client, on a hook, on the data handler, on a write) at
   * once, write nothing more, and close the transport. `run()` then unwinds promptly even when
   * a handler never settles.
   */
  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#shutdownRequested = true;
    this.closeReason ??= 'shutdown';
    this.#writeFailed = true;
    this.intake?.abort('connection closed');
    const bdat = this.bdat?.intake;
    if (bdat && !bdat.handlerDone) bdat.abort('connection closed');
    this.#stallWake?.();
    this.#arrive('eof');
    this.transport.close().catch(() => {});
  }

  #newAlarm(): Alarm {
    const t = this.options.timeouts;
    // The shortest timeout any wait uses: a later wait never needs the timer rescheduled.
    const period = Math.min(t.greetingMs, t.commandMs, t.dataInitMs, t.dataBlockMs, t.dataTerminationMs);
    return new Alarm(this.options.timers, period);
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

  /**
   * Wait for more octets from the client (pushed into `input`), at most `timeoutMs`, or until
   * `deadline` (a timeout shared by several waits) expires. `interruptible`: a graceful shutdown
   * may end the wait (only between commands).
   *
   * One promise per wait: the transport's read, the alarm and a shutdown request each settle
   * the same wait (no `Promise.race`, no timer of its own unless the timers have no clock).
   */
  waitInput(timeoutMs: number, interruptible: boolean, deadline?: Deadline): Promise<InputEvent> {
    if (deadline !== undefined) return this.#wait(interruptible, false, deadline, timeoutMs);
    return this.#wait(interruptible, true, null, timeoutMs);
  }

  #wait(
    interruptible: boolean,
    ownAlarm: boolean,
    deadline: Deadline | null,
    timeoutMs = 0,
  ): Promise<InputEvent> {
    if (interruptible && this.#shutdownRequested) return Promise.resolve('shutdown');
    if (this.#expired || deadline?.expired === true) return Promise.resolve('timeout');
    const arrived = this.#arrived;
    if (arrived !== null) {
      if (arrived === 'data') this.#arrived = null; // the end of the stream stays
      return Promise.resolve(arrived);
    }
    if (!this.#reading) {
      this.#reading = true;
      this.transport.read().then(this.#onRead, this.#onReadError);
    }
    return new Promise<InputEvent>((resolve) => {
      this.#wake = resolve;
      this.#interruptible = interruptible;
      this.#waitOwnsAlarm = ownAlarm;
      this.#waitDeadline = deadline;
      if (ownAlarm) this.#setInputAlarm(timeoutMs);
      deadline?.onExpire(this.#onTimeout);
    });
  }

  #setInputAlarm(ms: number): void {
    this.#inputAlarm ??= this.#newAlarm();
    this.#expired = false;
    this.#inputAlarm.set(ms, this.#onTimeout);
  }

  /** End the wait in progress with `event`. */
  #settle(event: InputEvent): void {
    const wake = this.#wake;
    if (wake === null) return;
    this.#wake = null;
    this.#interruptible = false;
    if (this.#waitOwnsAlarm) this.#inputAlarm?.clear();
    this.#waitOwnsAlarm = false;
    this.#waitDeadline?.unlisten();
    this.#waitDeadline = null;
    wake(event);
  }

  #onRead = (bytes: Uint8Array | null): void => {
    this.#reading = false;
    if (bytes === null) {
      this.#arrive('eof');
      return;
    }
    this.input.push(bytes);
    this.#arrive('data');
  };

  #onReadError = (): void => {
    // A reset or another read error ends the session like the end of the stream.
    this.#reading = false;
    this.#arrive('eof');
  };

  #arrive(event: 'data' | 'eof'): void {
    if (this.#wake !== null) this.#settle(event);
    else if (this.#arrived !== 'eof') this.#arrived = event;
  }

  #onTimeout = (): void => {
    if (this.#wake === null) this.#expired = true;
    else this.#settle('timeout');
  };

  /**
   * The next command line (or `too-long`), or null when the connection ends first (end of
   * stream, timeout, shutdown; the matching 421 is queued). Queued replies are written before
   * waiting: this is the batching point of RFC 2920 section 3.1.
   */
  async nextCommandLine(): Promise<LineResult | null> {
    const timeout =
      this.#commandsSeen === 0 ? this.options.timeouts.greetingMs : this.options.timeouts.commandMs;
    return this.readLineWithin(this.options.maxCommandLineBytes, timeout, 'command');
  }

  /**
   * Read one line of at most `maxLength` octets (a command, or an AUTH response) within
   * `timeoutMs`, or null when the connection ends first (the matching 421 is queued).
   *
   * The timeout bounds the whole line, not each read: a client dripping one octet just inside
   * the timeout must not hold the session forever (slowloris). RFC 5321 section 4.5.3.2.7 sets
   * the time for a command; it does not restart for each TCP segment of it. The input alarm is
   * set at the first wait of the line and cleared when the line is complete.
   */
  async readLineWithin(
    maxLength: number,
    timeoutMs: number,
    what: 'command' | 'auth',
  ): Promise<LineResult | null> {
    try {
      for (;;) {
        if (what === 'command') {
          if (this.closing) return null;
          if (this.#shutdownRequested) return this.#shuttingDown();
        }
        const line = this.input.readLine(maxLength);
        if (line !== null) {
          // Replies still queued: this command was sent before the client could read them.
          if (what === 'command' && this.#out.length > 0 && !this.pipeliningNegotiated) {
            this.pipelinedAhead = true;
          }
          return line;
        }
        await this.flush();
        if (this.closing) return null;
        if (!this.#lineDeadline) {
          this.#setInputAlarm(timeoutMs);
          this.#lineDeadline = true;
        }
        const event = await this.#wait(true, false, null);
        if (event === 'data') continue;
        if (event === 'eof') {
          this.closeReason ??= 'eof';
          return null;
        }
        if (event === 'timeout') {
          this.send(r(421, '4.4.2', `${this.options.hostname} Timeout, closing connection`));
          this.closeReason = 'timeout';
          return null;
        }
        return this.#shuttingDown();
      }
    } finally {
      if (this.#lineDeadline) {
        this.#lineDeadline = false;
        this.#expired = false;
        this.#inputAlarm?.clear();
      }
    }
  }

  #shuttingDown(): null {
    this.send(r(421, '4.3.2', `${this.options.hostname} Service shutting down, closing connection`));
    this.closeReason = 'shutdown';
    return null;
  }

  /** PIPELINING was advertised and the client said EHLO (RFC 2920 section 3.1). */
  get pipeliningNegotiated(): boolean {
    return this.options.extensions.pipelining && this.session.helo?.verb === 'EHLO';
  }

  /** Ask the connection to end at its next command boundary (graceful shutdown). */
  requestShutdown(): void {
    this.#shutdownRequested = true;
    if (this.#interruptible) this.#settle('shutdown');
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
      this.#inputAlarm?.stop();
      this.#stallAlarm?.stop();
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
      const outcome = await this.callHook('connect', () => this.handler.connect?.(this.session));
      if (outcome === 'stalled') {
        // RFC 5321 section 3.1 / 4.2.2: 421 may replace the greeting; try again later.
        this.send(r(421, '4.3.0', `${o.hostname} Service not available, closing connection`));
        this.closeReason ??= 'refused';
        return false;
      }
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

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * One timer for a whole exchange (a command line, an AUTH line), for callers of `waitInput`
 * that span several waits. Waits subscribe one listener at a time and unsubscribe after: a
 * long-lived promise raced against every read would keep every read's outcome (its octets)
 * reachable until the deadline (the Promise.race leak). The engine itself uses
 * `Connection.readLineWithin`, which needs no timer of its own.
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
      this.onExpire(() => resolve('timeout'));
    });
  }

  /** Call `fn` when the deadline expires (at once if it has); call `unlisten()` when the wait is over. */
  onExpire(fn: () => void): void {
    if (this.expired) fn();
    else this.#listener = fn;
  }

  unlisten(): void {
    this.#listener = null;
  }

  cancel(): void {
    this.#listener = null;
    this.#timers.clearTimeout(this.#handle);
  }
}
