/**
 * The SMTP handler for one listener: policy at RCPT, limits at MAIL and AUTH, and at the end of
 * the data the store, whose success alone produces the `250` (RFC 5321 section 6.1).
 *
 * Replies the receiver itself gives (the engine gives the protocol ones):
 * - RCPT on the MX listener for a domain not in RECEIVER_DOMAINS: `550 5.7.1 Relaying denied`.
 * - MAIL over the per-address rate: `451 4.7.1`.
 * - AUTH while the client's address, or this user name from this address, is locked out (`limits.ts`
 *   `AuthLockout`; never the user name alone): `454 4.7.0` (RFC 4954 section 6, temporary failure).
 * - Store failure or store time-out: `451 4.3.0` after the whole message was read.
 */
import {
  type Envelope,
  reject,
  type SaslCredentials,
  type SmtpServerHandler,
  type SmtpSession,
} from '@smtp-edge/protocol';
import { canonicalIp } from './cidr.ts';
import type { ReceiverConfig } from './config.ts';
import { newMessageId } from './ids.ts';
import type { AuthLockout, MessageRate } from './limits.ts';
import type { Logger } from './log.ts';
import type { ListenerName, Metrics, RejectReason } from './metrics.ts';
import { acceptsRecipient } from './policy.ts';
import { receivedHeader } from './received.ts';
import {
  abortReason,
  type EnvelopeMeta,
  type JsonValue,
  type MessageStore,
  StoreError,
} from './store/types.ts';
import { StoreFeed } from './store-feed.ts';
import type { UserDb } from './users.ts';

export interface HandlerDeps {
  listener: ListenerName;
  config: Pick<ReceiverConfig, 'hostname' | 'domains' | 'storeTimeoutMs'>;
  store: MessageStore;
  users: UserDb | null;
  lockout: AuthLockout;
  rate: MessageRate;
  metrics: Metrics;
  log: Logger;
  /** Where a connection came from when a trusted PROXY header replaced its address (else absent). */
  proxiedBy?: (session: SmtpSession) => string | null;
}

interface ConnState {
  startedAt: number;
  messages: number;
  rejected: number;
}

const encoder = new TextEncoder();

function state(s: SmtpSession): ConnState {
  let st = s.data['receiver'] as ConnState | undefined;
  if (st === undefined) {
    st = { startedAt: Date.now(), messages: 0, rejected: 0 };
    s.data['receiver'] = st;
  }
  return st;
}

function clientAddress(s: SmtpSession): string {
  return s.remote ? canonicalIp(s.remote.address) : 'unknown';
}

/** ESMTP parameters as plain JSON (drops undefined, keeps `other`). */
function paramsJson(p: object): { [key: string]: JsonValue } {
  return JSON.parse(JSON.stringify(p)) as { [key: string]: JsonValue };
}

const STORE_FAILED = 'Temporary storage failure, please try again later';

/** Rejects with a `StoreError` when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, rejectPromise) => {
    const fail = () => rejectPromise(new StoreError(abortReason(signal), 'store time-out'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

export function createHandler(d: HandlerDeps): SmtpServerHandler {
  const L = { listener: d.listener };
  const rejectMessage = (reason: RejectReason) => d.metrics.messagesRejected.inc({ ...L, reason });

  const handler: SmtpServerHandler = {
    connect(s) {
      state(s);
      d.metrics.connectionsTotal.inc(L);
      d.metrics.connectionsCurrent.inc(L);
    },

    close(s) {
      const st = state(s);
      // Set by the engine before close (quit, eof, timeout, too-many-errors, http-request…).
      const reason = s.closeReason ?? 'unknown';
      d.metrics.connectionsCurrent.dec(L);
      d.metrics.connectionsClosed.inc({ ...L, reason });
      d.log.info(
        {
          event: 'connection',
          session: s.id,
          listener: d.listener,
          client: clientAddress(s),
          clientPort: s.remote?.port ?? null,
          proxiedBy: d.proxiedBy?.(s) ?? null,
          helo: s.helo?.name ?? null,
          tls: s.tls?.protocol ?? null,
          user: s.user,
          messages: st.messages,
          rejected: st.rejected,
          durationMs: Date.now() - st.startedAt,
          reason,
        },
        'connection closed',
      );
    },

    async auth(s, creds: SaslCredentials) {
      const ip = clientAddress(s);
      const name = creds.username;
      const lock = d.lockout.locked(ip, name);
      if (lock !== null) {
        d.metrics.authFailures.inc({ ...L, reason: 'locked_out' });
        d.log.warn(
          { event: 'auth', session: s.id, client: ip, user: name, result: 'locked_out', lock },
          'AUTH refused: locked out',
        );
        throw reject(454, '4.7.0', 'Too many failed authentication attempts, try again later');
      }
      let ok = false;
      if (d.users !== null && (creds.authzid === undefined || creds.authzid === name)) {
        if (creds.password !== undefined) ok = await d.users.verify(name, creds.password);
        else if (creds.verify !== undefined) {
          const secret = d.users.plainSecret(name);
          ok = secret !== null && creds.verify(secret);
        }
      }
      if (ok) {
        d.lockout.success(ip, name);
        d.log.info(
          { event: 'auth', session: s.id, client: ip, user: name, mechanism: creds.mechanism, result: 'ok' },
          'AUTH ok',
        );
        return { user: name };
      }
      d.lockout.failure(ip, name);
      d.metrics.authFailures.inc({ ...L, reason: 'bad_credentials' });
      d.log.warn(
        {
          event: 'auth',
          session: s.id,
          client: ip,
          user: name,
          mechanism: creds.mechanism,
          result: 'failed',
        },
        'AUTH failed',
      );
      return null;
    },

    mailFrom(s, from) {
      if (!d.rate.take(clientAddress(s))) {
        rejectMessage('rate_limited');
        state(s).rejected++;
        d.log.info(
          {
            event: 'message',
            id: null,
            session: s.id,
            listener: d.listener,
            client: clientAddress(s),
            tls: s.tls?.protocol ?? null,
            user: s.user,
            sender: from.address,
            recipients: 0,
            size: 0,
            result: 451,
            reason: 'rate_limited',
            durationMs: 0,
          },
          'transaction refused: rate limit',
        );
        throw reject(451, '4.7.1', 'Too many messages from your address, try again later');
      }
    },

    rcptTo(_s, rcpt) {
      if (d.listener === 'mx' && !acceptsRecipient(rcpt.address, d.config.domains)) {
        d.metrics.recipientsRejected.inc({ ...L, reason: 'relay_denied' });
        throw reject(550, '5.7.1', 'Relaying denied');
      }
    },

    async data(s: SmtpSession, envelope: Envelope, message: ReadableStream<Uint8Array>) {
      const st = state(s);
      const started = Date.now();
      const id = newMessageId(started);
      const date = new Date(started);
      const ip = clientAddress(s);
      const tls = s.tls ? { protocol: s.tls.protocol, cipher: s.tls.cipher } : null;
      const rcptTo = envelope.rcptTo.map((r) => r.address);
      const head = encoder.encode(
        receivedHeader({
          helo: s.helo,
          remoteAddress: ip,
          hostname: d.config.hostname,
          tls,
          authenticated: s.user !== null,
          smtputf8: envelope.mailFrom.params.smtputf8 === true,
          id,
          rcptTo,
          date,
        }),
      );
      const meta: EnvelopeMeta = {
        id,
        mailFrom: envelope.mailFrom.address,
        rcptTo,
        params: {
          mail: paramsJson(envelope.mailFrom.params),
          rcpt: envelope.rcptTo.map((r) => paramsJson(r.params)),
        },
        remoteAddress: ip,
        remotePort: s.remote?.port ?? 0,
        proxiedBy: d.proxiedBy?.(s) ?? null,
        localPort: s.local?.port ?? 0,
        listener: d.listener,
        helo: s.helo ? { verb: s.helo.verb, name: s.helo.name } : null,
        tls,
        authUser: s.user,
        receivedAt: date.toISOString(),
      };
      const feed = new StoreFeed(message, d.config.storeTimeoutMs);
      const logBase = {
        event: 'message',
        id,
        session: s.id,
        listener: d.listener,
        client: ip,
        tls: tls?.protocol ?? null,
        user: s.user,
        sender: envelope.mailFrom.address,
        recipients: rcptTo.length,
      };
      // Store latency: from the client's end of data to the store's answer.
      const storeSeconds = () => (Date.now() - (feed.endedAt ?? Date.now())) / 1000;
      try {
        const put = d.store
          .put({ meta, head, body: feed.stream, signal: feed.signal })
          .finally(() => feed.settle());
        put.catch(() => {}); // handled through the race below; this keeps a late rejection quiet
        // A store stuck in a call it cannot interrupt (a hung disk or NFS server) must not hold
        // the reply: on time-out answer at once; the store still cleans up when its call returns.
        const ref = await Promise.race([put, aborted(feed.signal)]);
        d.metrics.storeDuration.observe({ store: d.store.kind, result: 'ok' }, storeSeconds());
        d.metrics.messagesAccepted.inc(L);
        d.metrics.bytesReceived.inc(L, feed.bytes);
        st.messages++;
        d.log.info(
          {
            ...logBase,
            size: ref.record.size,
            result: 250,
            durationMs: Date.now() - started,
            object: ref.eml,
          },
          'message stored',
        );
        return { message: `Ok: queued as ${id}` };
      } catch (err) {
        st.rejected++;
        d.metrics.bytesReceived.inc(L, feed.bytes);
        const reason = err instanceof StoreError ? err.reason : 'io';
        if (reason === 'input' || feed.sourceError !== undefined) {
          // The message itself failed (client gone, too big, bare line endings): the engine
          // decides the reply, if any. Nothing was stored.
          rejectMessage(feed.sourceError !== undefined ? 'client_aborted' : 'message_invalid');
          d.log.info(
            {
              ...logBase,
              size: feed.bytes,
              result: 'aborted',
              durationMs: Date.now() - started,
              error: String(feed.sourceError ?? err),
            },
            'message not stored: the message stream failed',
          );
          throw feed.sourceError ?? err;
        }
        const timeout = reason === 'timeout';
        d.metrics.storeDuration.observe(
          { store: d.store.kind, result: timeout ? 'timeout' : 'error' },
          storeSeconds(),
        );
        rejectMessage(timeout ? 'store_timeout' : 'store_failed');
        feed.abandon(err);
        d.log.warn(
          {
            ...logBase,
            size: feed.bytes,
            result: 451,
            durationMs: Date.now() - started,
            error: err instanceof Error ? err.message : String(err),
            reason,
          },
          'message not stored: store failed',
        );
        throw reject(451, '4.3.0', STORE_FAILED);
      }
    },
  };
  return handler;
}
