/**
 * The operations endpoint on RECEIVER_HTTP_PORT (plain HTTP, meant for the cluster network):
 * - `GET /healthz`: 200 while the process runs (liveness).
 * - `GET /readyz`: 200 when start-up has finished, the store answered its check recently and the
 *   receiver is not draining,
 *   else 503 with the reason (readiness: take this instance out of the load balancer).
 * - `GET /metrics`: Prometheus text format.
 * Store checks are coalesced and cached for `checkCacheMs`, so probes cannot hammer S3.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';
import type { MessageStore } from './store/types.ts';

export interface OpsServerOptions {
  store: Pick<MessageStore, 'check'>;
  metrics: Metrics;
  isDraining: () => boolean;
  /** False until start-up has finished (every listener bound): `/readyz` answers 503 `starting`. */
  isStarted?: () => boolean;
  checkTimeoutMs?: number;
  checkCacheMs?: number;
}

export class OpsServer {
  private readonly o: Required<OpsServerOptions>;
  private readonly server: Server;
  private lastCheck: { at: number; error: string | null } | null = null;
  private pending: Promise<string | null> | null = null;

  constructor(options: OpsServerOptions) {
    this.o = { checkTimeoutMs: 2000, checkCacheMs: 2000, isStarted: () => true, ...options };
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

  /** Run (or join) a store check; returns null when the store is usable, else the reason. */
  storeStatus(): Promise<string | null> {
    const now = Date.now();
    if (this.lastCheck && now - this.lastCheck.at < this.o.checkCacheMs)
      return Promise.resolve(this.lastCheck.error);
    if (this.pending) return this.pending;
    this.pending = this.o.store
      .check(AbortSignal.timeout(this.o.checkTimeoutMs))
      .then(
        () => null,
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      )
      .then((error) => {
        this.lastCheck = { at: Date.now(), error };
        this.pending = null;
        return error;
      });
    return this.pending;
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
      if (this.o.isDraining()) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('draining\n');
        return;
      }
      if (!this.o.isStarted()) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('starting\n');
        return;
      }
      const error = await this.storeStatus();
      if (error === null) res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
      else res.writeHead(503, { 'content-type': 'text/plain' }).end(`store not ready: ${error}\n`);
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
