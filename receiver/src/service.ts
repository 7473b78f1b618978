/**
 * The receiver service: store, credentials, limits, SMTP listeners and the ops HTTP endpoint,
 * assembled from a validated `ReceiverConfig`; and its graceful stop.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import type { SaslMechanismName, SmtpServerHandler, SmtpServerOptions } from '@smtp-edge/protocol';
import type { ReceiverConfig } from './config.ts';
import { createHandler } from './handler.ts';
import { OpsServer } from './http.ts';
import { AuthLockout, MessageRate } from './limits.ts';
import { Listeners, proxiedBy } from './listener.ts';
import type { Logger } from './log.ts';
import { type ListenerName, Metrics } from './metrics.ts';
import { createStore } from './store/index.ts';
import type { MessageStore } from './store/types.ts';
import { UserDb, UsersFileError } from './users.ts';

/** A start-up failure that names the variable to fix. */
export class StartupError extends Error {
  override name = 'StartupError';
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.variable = variable;
  }
}

export interface ReceiverService {
  readonly addresses: Partial<Record<ListenerName | 'http', AddressInfo>>;
  readonly store: MessageStore;
  readonly metrics: Metrics;
  readonly draining: boolean;
  /** Graceful stop: readiness false, listeners closed, transactions finish until the drain deadline. */
  stop(): Promise<void>;
}

/** Certificate and key (PEM), checked to form a usable pair; null when TLS is off. */
async function loadTls(config: ReceiverConfig): Promise<{ cert: Buffer; key: Buffer } | null> {
  if (config.tls === null) return null;
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = await readFile(config.tls.certPath);
  } catch (e) {
    throw new StartupError(
      'RECEIVER_TLS_CERT',
      `cannot read ${config.tls.certPath}: ${(e as NodeJS.ErrnoException).code ?? e}`,
    );
  }
  try {
    key = await readFile(config.tls.keyPath);
  } catch (e) {
    throw new StartupError(
      'RECEIVER_TLS_KEY',
      `cannot read ${config.tls.keyPath}: ${(e as NodeJS.ErrnoException).code ?? e}`,
    );
  }
  try {
    tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (e) {
    throw new StartupError(
      'RECEIVER_TLS_CERT',
      `certificate and key do not form a usable pair: ${(e as Error).message}`,
    );
  }
  return { cert, key };
}

async function loadUsers(config: ReceiverConfig): Promise<UserDb | null> {
  if (config.usersFile === null) return null;
  try {
    return await UserDb.load(config.usersFile);
  } catch (e) {
    if (e instanceof UsersFileError)
      throw new StartupError('RECEIVER_USERS_FILE', `${config.usersFile}: ${e.message}`);
    throw e;
  }
}

const PORT_VARIABLE: Record<ListenerName | 'http', string> = {
  mx: 'RECEIVER_MX_PORT',
  submission: 'RECEIVER_SUBMISSION_PORT',
  submissions: 'RECEIVER_SUBMISSIONS_PORT',
  http: 'RECEIVER_HTTP_PORT',
};

function listenError(which: ListenerName | 'http', port: number, host: string, e: unknown): StartupError {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'EADDRINUSE'
      ? 'is already in use'
      : code === 'EACCES'
        ? 'needs privileges (use a port above 1023 and map it)'
        : code === 'EADDRNOTAVAIL'
          ? `cannot bind ${host} (${which === 'http' ? 'RECEIVER_HTTP_BIND' : 'RECEIVER_BIND'}): no such local address`
          : `cannot be opened: ${code ?? (e as Error).message}`;
  return new StartupError(PORT_VARIABLE[which], `port ${port} on ${host} ${why}`);
}

export async function startReceiver(config: ReceiverConfig, log: Logger): Promise<ReceiverService> {
  const metrics = new Metrics();
  const tlsFiles = await loadTls(config);
  const users = await loadUsers(config);
  let cleanupsPending = 0;
  const store = await createStore(config, {
    onCleanupError: (key, err) =>
      log.error({ key, err }, 'could not delete an object left by a failed store'),
    onCleanupsPending: (n) => {
      cleanupsPending = n;
      metrics.storeCleanupsPending.set(n);
    },
  });
  const lockout = new AuthLockout({
    maxFailuresPerIp: config.authMaxFailuresPerIp,
    maxFailuresPerUser: config.authMaxFailuresPerUser,
    lockoutMs: config.authLockoutMs,
  });
  const rate = new MessageRate(config.messagesPerIpPerMinute);
  let draining = false;
  let started = false;

  const baseOptions: SmtpServerOptions = {
    hostname: config.hostname,
    maxMessageBytes: config.maxMessageBytes,
    maxRecipients: config.maxRecipients,
    onError: (session, error) => log.error({ session: session?.id ?? null, err: error }, 'handler error'),
  };
  const listeners = new Listeners({
    base: baseOptions,
    tls: tlsFiles,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    proxyTrusted: config.proxyProtocolTrusted,
    metrics,
    log,
  });

  const mechanisms: SaslMechanismName[] = ['PLAIN', 'LOGIN'];
  if (users?.everyUserHasPlainSecret) mechanisms.push('CRAM-MD5');

  const handlerFor = (name: ListenerName): SmtpServerHandler => {
    const handler = createHandler({
      listener: name,
      config,
      store,
      users,
      lockout,
      rate,
      metrics,
      log,
      proxiedBy: (s) => proxiedBy(s.remote),
    });
    // RFC 6409 section 4.3 is for submission; the MX port takes mail from anyone, without AUTH.
    if (name === 'mx') delete handler.auth;
    return handler;
  };

  const addresses: Partial<Record<ListenerName | 'http', AddressInfo>> = {};
  const ops = new OpsServer({
    store,
    metrics,
    isDraining: () => draining,
    isStarted: () => started,
    // /readyz shows only the reason code; the store's own error text is logged here, once per change.
    onStoreStatus: (failure, previous) => {
      if (failure !== null)
        log.warn(
          { event: 'store_check', store: store.location, reason: failure.reason, error: failure.detail },
          'store check failed: /readyz answers 503',
        );
      else if (previous !== null)
        log.info({ event: 'store_check', store: store.location, reason: null }, 'store check ok again');
    },
  });
  const specs: {
    name: ListenerName;
    port: number | null;
    implicitTls: boolean;
    options: Partial<SmtpServerOptions>;
  }[] = [
    {
      name: 'mx',
      port: config.mxPort,
      implicitTls: false,
      // RFC 5321 section 4.3.1 / RFC 2920 section 3.1: a client must wait for the greeting; an MX
      // may pause before it to catch the ones that do not (earlyTalkerDelayMs: 554 5.5.0, close).
      options: {
        submission: false,
        authMechanisms: [],
        startTls: tlsFiles !== null,
        earlyTalkerDelayMs: config.mxGreetDelayMs,
      },
    },
    {
      name: 'submission',
      port: config.submissionPort,
      implicitTls: false,
      options: { submission: true, authMechanisms: mechanisms, startTls: true },
    },
    {
      name: 'submissions',
      port: config.submissionsPort,
      implicitTls: true,
      options: { submission: true, authMechanisms: mechanisms, startTls: false },
    },
  ];
  try {
    for (const s of specs) {
      if (s.port === null) continue;
      addresses[s.name] = await listeners
        .listen({
          name: s.name,
          handler: handlerFor(s.name),
          options: s.options,
          port: s.port,
          host: config.bind,
          implicitTls: s.implicitTls,
        })
        .catch((e: unknown) => {
          throw listenError(s.name, s.port!, config.bind, e);
        });
    }
    if (config.httpPort !== null) {
      addresses.http = await ops.listen(config.httpPort, config.httpBind).catch((e: unknown) => {
        throw listenError('http', config.httpPort!, config.httpBind, e);
      });
    }
  } catch (e) {
    await listeners.close(0);
    await ops.close();
    await store.close();
    throw e;
  }

  // Not fatal: the receiver starts and reports "not ready" until the store answers (the failure,
  // if any, is logged by onStoreStatus above).
  await ops.storeStatus();

  const ports = Object.fromEntries(Object.entries(addresses).map(([k, a]) => [k, a?.port ?? null]));
  log.info(
    { event: 'listening', bind: config.bind, httpBind: config.httpBind, ports, store: store.location },
    'receiver ready',
  );
  started = true;

  let stopping: Promise<void> | null = null;
  return {
    addresses,
    store,
    metrics,
    get draining() {
      return draining;
    },
    stop() {
      stopping ??= (async () => {
        draining = true;
        metrics.draining.set(1);
        log.info({ deadlineMs: config.drainTimeoutMs, connections: listeners.connections }, 'draining');
        await listeners.close(config.drainTimeoutMs);
        await ops.close();
        if (cleanupsPending > 0)
          log.info(
            { event: 'store_cleanup', pending: cleanupsPending },
            'waiting for the clean-up of failed stores',
          );
        await store.close();
        log.info({}, 'stopped');
      })();
      return stopping;
    },
  };
}
