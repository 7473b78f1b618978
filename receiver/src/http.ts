/**
 * The operations endpoint on RECEIVER_HTTP_PORT (plain HTTP, no authentication), bound to
 * RECEIVER_HTTP_BIND (loopback by default; deployments whose probes come from outside the
 * container open it on purpose):
 * - `GET /healthz`: 200 while the process runs (liveness).
 * - `GET /readyz`: 200 `ready` when start-up has finished, the store answered its check recently
 *   and the receiver is not draining; else 503 with one short reason code (`starting`, `draining`,
 *   `store_unavailable`, `store_timeout`): never the store's own error text, which can name
 *   buckets, endpoints and paths. The detail goes to `onStoreStatus` (the service logs it).
 * - `GET /metrics`: Prometheus text format.
 * Store checks are coalesced and cached for `checkCacheMs`, so probes cannot hammer S3, and each is
 * bounded by `checkTimeoutMs` even when the store ignores its abort signal (a hung disk).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';
import type { MessageStore } from './store/types.ts';

/** Why `/readyz` answers 503: the body of that answer. */
export type NotReadyReason = 'starting' | 'draining' | 'store_unavailable' | 'store_timeout';

/** A failed store check: the short reason for `/readyz`, the detail for the log only. */
export interface StoreCheckFailure {
  readonly reason: 'store_unavailable' | 'store_timeout';
  readonly detail: string;
}

export interface OpsServerOptions {
  store: Pick<MessageStore, 'check'>;
  metrics: Metrics;
  isDraining: () => boolean;
  /** False until start-up has finished (every listener bound): `/readyz` answers 503 `starting`. */
  isStarted?: () => boolean;
  /**
   * Called when a store check's outcome differs from the previous one (failing, failing with
   * another reason or detail, ready again), not on every probe: log it here.
   */
  onStoreStatus?: (failure: StoreCheckFailure | null, previous: StoreCheckFailure | null) => void;
  checkTimeoutMs?: number;
  checkCacheMs?: number;
}

const sameFailure = (a: StoreCheckFailure | null, b: StoreCheckFailure | null) =>
  a === b || (a !== null && b !== null && a.reason === b.reason && a.detail === b.detail);

export class OpsServer {
  private readonly o: Required<OpsServerOptions>;
  private readonly server: Server;
  private lastCheck: { at: number; failure: StoreCheckFailure | null } | null = null;
  private reported: StoreCheckFailure | null = null;
  private pending: Promise<StoreCheckFailure | null> | null = null;

  constructor(options: OpsServerOptions) {
    this.o = {
      checkTimeoutMs: 2000,
      checkCacheMs: 2000,
      isStarted: () => true,
      onStoreStatus: () => {},
      ...options,
    };
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    this.server.keepAliveTimeout = 5000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 10_000;
  }

  /** Run (or join) a store check; null when the store is usable, else why not. */
  storeStatus(): Promise<StoreCheckFailure | null> {
    const now = Date.now();
    if (this.lastCheck && now - this.lastCheck.at < this.o.checkCacheMs)
      return Promise.resolve(this.lastCheck.failure);
    if (this.pending) return this.pending;
    this.pending = this.runCheck().then((failure) => {
      this.lastCheck = { at: Date.now(), failure };
      this.pending = null;
      if (!sameFailure(failure, this.reported)) {
        const previous = this.reported;
        this.reported = failure;
        this.o.onStoreStatus(failure, previous);
      }
      return failure;
    });
    return this.pending;
  }

  /** One check, settled within `checkTimeoutMs` whether or not the store honours the signal. */
  private runCheck(): Promise<StoreCheckFailure | null> {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<StoreCheckFailure>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new Error(`store check timed out after ${this.o.checkTimeoutMs} ms`));
        resolve({ reason: 'store_timeout', detail: `no answer within ${this.o.checkTimeoutMs} ms` });
      }, this.o.checkTimeoutMs);
    });
    let check: Promise<void>;
    try {
      check = this.o.store.check(controller.signal);
    } catch (e) {
      check = Promise.reject(e);
    }
    const checked = check.then(
      (): StoreCheckFailure | null => null,
      (e: unknown): StoreCheckFailure => ({
        reason: controller.signal.aborted ? 'store_timeout' : 'store_unavailable',
        detail: e instanceof Error ? e.message : String(e),
      }),
    );
    return Promise.race([checked, timedOut]).finally(() => clearTimeout(timer));
  }

  private notReady(res: ServerResponse, reason: NotReadyReason): void {
    res.writeHead(503, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(`${reason}\n`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      if (this.o.isDraining()) return this.notReady(res, 'draining');
      if (!this.o.isStarted()) return this.notReady(res, 'starting');
      const failure = await this.storeStatus();
      if (failure !== null) return this.notReady(res, failure.reason);
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('ready\n');
      return;
    }
    if (path === '/metrics') {
      const { contentType, body } = await this.o.metrics.render();
      res.writeHead(200, { 'content-type': contentType }).end(body);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  async listen(port: number, host: string): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
