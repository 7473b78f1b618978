/**
 * Prometheus metrics (prom-client, own registry). Names and labels are documented in
 * docs/reference/metrics.md; keep the two in step.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export type ListenerName = 'mx' | 'submission' | 'submissions';

/** Why a message (transaction or recipient) was refused; the `reason` label. */
export type RejectReason =
  | 'relay_denied'
  | 'rate_limited'
  | 'draining'
  | 'store_failed'
  | 'store_timeout'
  | 'client_aborted'
  | 'message_invalid'
  | 'internal';

export class Metrics {
  readonly registry = new Registry();
  readonly connectionsTotal: Counter<'listener'>;
  readonly connectionsCurrent: Gauge<'listener'>;
  readonly connectionsRefused: Counter<'listener' | 'reason'>;
  readonly connectionsClosed: Counter<'listener' | 'reason'>;
  readonly messagesAccepted: Counter<'listener'>;
  readonly messagesRejected: Counter<'listener' | 'reason'>;
  readonly recipientsRejected: Counter<'listener' | 'reason'>;
  readonly bytesReceived: Counter<'listener'>;
  readonly storeDuration: Histogram<'store' | 'result'>;
  readonly authFailures: Counter<'listener' | 'reason'>;
  readonly storeCleanupsPending: Gauge;
  readonly draining: Gauge;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.connectionsTotal = new Counter({
      name: 'receiver_smtp_connections_total',
      help: 'SMTP connections accepted by a listener',
      labelNames: ['listener'],
      registers,
    });
    this.connectionsCurrent = new Gauge({
      name: 'receiver_smtp_connections',
      help: 'SMTP connections open now',
      labelNames: ['listener'],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'receiver_smtp_connections_refused_total',
      help: 'SMTP connections closed before the greeting (PROXY protocol errors) or refused by a limit',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.connectionsClosed = new Counter({
      name: 'receiver_smtp_connections_closed_total',
      help: 'SMTP sessions ended, by the reason the server engine gives (quit, eof, timeout, http-request, ...)',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.messagesAccepted = new Counter({
      name: 'receiver_messages_accepted_total',
      help: 'Messages stored and acknowledged with 250',
      labelNames: ['listener'],
      registers,
    });
    this.messagesRejected = new Counter({
      name: 'receiver_messages_rejected_total',
      help: 'Transactions refused at MAIL or at the end of data, by reason',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.recipientsRejected = new Counter({
      name: 'receiver_recipients_rejected_total',
      help: 'RCPT TO commands refused by the receiver policy, by reason',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.bytesReceived = new Counter({
      name: 'receiver_message_bytes_received_total',
      help: 'Message bytes received from clients (before our Received header), accepted or not',
      labelNames: ['listener'],
      registers,
    });
    this.storeDuration = new Histogram({
      name: 'receiver_store_duration_seconds',
      help: 'Time from the end of the message data to the store reporting it durable (or failing)',
      labelNames: ['store', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.authFailures = new Counter({
      name: 'receiver_auth_failures_total',
      help: 'Failed AUTH attempts: bad_credentials or locked_out',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.storeCleanupsPending = new Gauge({
      name: 'receiver_store_cleanups_pending',
      help: 'Failed S3 puts whose objects are still being deleted in the background (shutdown waits for them)',
      registers,
    });
    this.draining = new Gauge({
      name: 'receiver_draining',
      help: '1 while the receiver is shutting down',
      registers,
    });
  }

  /** Text for `/metrics`. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
