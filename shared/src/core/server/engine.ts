/**
 * The server engine: serves connections handed to it by an adapter, one `Connection` each, and
 * shuts them all down gracefully. It never accepts sockets itself (that is the adapter's job).
 */
import type { SmtpReply } from '../status.ts';
import type { Transport } from '../transport.ts';
import { type CloseReason, Connection } from './connection.ts';
import { type ResolvedServerOptions, resolveOptions } from './options.ts';
import { encodeReply, r } from './replies.ts';
import type { SmtpServerHandler, SmtpServerOptions } from './types.ts';

export interface CloseOptions {
  /**
   * How long sessions inside DATA/BDAT may take to finish before their connections are cut.
   * Default 30 s. Idle sessions get 421 4.3.2 at once; busy ones at their next command boundary.
   */
  deadlineMs?: number;
}

export class SmtpServerEngine {
  readonly handler: SmtpServerHandler;
  readonly baseOptions: SmtpServerOptions;
  readonly options: ResolvedServerOptions;
  readonly #connections = new Set<Connection>();
  readonly #running = new Set<Promise<CloseReason>>();
  #closing = false;

  constructor(handler: SmtpServerHandler, options: SmtpServerOptions) {
    this.handler = handler;
    this.baseOptions = options;
    this.options = resolveOptions(options);
  }

  /**
   * Options for one listener: the engine's options with `overrides` applied (`extensions` and
   * `timeouts` merged key by key). Resolve once per listener, pass to `handle`.
   */
  resolve(overrides: Partial<SmtpServerOptions> = {}): ResolvedServerOptions {
    const base = this.baseOptions;
    return resolveOptions({
      ...base,
      ...overrides,
      extensions: { ...base.extensions, ...overrides.extensions },
      timeouts: { ...base.timeouts, ...overrides.timeouts },
    });
  }

  /** Open connections. */
  get connections(): number {
    return this.#connections.size;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** Serve one connection to its end. Resolves with why it ended; never rejects. */
  handle(transport: Transport, options: ResolvedServerOptions = this.options): Promise<CloseReason> {
    if (this.#closing) {
      return this.refuse(transport, r(421, '4.3.2', `${options.hostname} Service shutting down`)).then(
        () => 'shutdown',
      );
    }
    const conn = new Connection(transport, this.handler, options);
    this.#connections.add(conn);
    const run = conn.run().finally(() => {
      this.#connections.delete(conn);
      this.#running.delete(run);
    });
    this.#running.add(run);
    return run;
  }

  /**
   * Turn a connection away before the session starts (connection limits): write the reply in
   * place of the greeting (RFC 5321 section 3.1 allows 421 / 554 there) and close.
   */
  async refuse(
    transport: Transport,
    reply: SmtpReply = r(421, '4.7.0', `${this.options.hostname} Too many connections, try again later`),
  ): Promise<void> {
    try {
      await transport.write(encodeReply(reply, this.options.extensions.enhancedStatusCodes));
    } catch {
      // The client is gone already.
    }
    await transport.close().catch(() => {});
  }

  /**
   * Graceful shutdown: refuse new connections, send 421 4.3.2 to sessions waiting for a command
   * (at once) and to busy ones (at their next command boundary), let messages in transfer finish
   * until `deadlineMs`, then cut what is left. Resolves when every connection has ended.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    this.#closing = true;
    for (const conn of this.#connections) conn.requestShutdown();
    const deadlineMs = options.deadlineMs ?? 30_000;
    const all = Promise.allSettled([...this.#running]);
    let timer: unknown;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = this.options.timers.setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const outcome = await Promise.race([all.then(() => 'done' as const), deadline]);
    this.options.timers.clearTimeout(timer);
    if (outcome === 'deadline') {
      // Cut what is left, all at once: abort() also ends waits on handler hooks and data
      // handlers that never settle, so this resolves even when the application is stuck.
      for (const conn of this.#connections) conn.abort();
      await Promise.allSettled([...this.#running]);
    }
  }
}
