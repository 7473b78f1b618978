/**
 * The Workers adapter: SMTP over `connect()` from `cloudflare:sockets`.
 *
 * `connectSmtp` opens the socket (`secureTransport: 'on'` for implicit TLS, `'starttls'` for
 * STARTTLS so it can be upgraded later, `'off'` otherwise; `allowHalfOpen: false`), then greets.
 * Production limits worth knowing: outbound port 25 is blocked (refused here with a clear
 * error), private/Cloudflare addresses are refused by the runtime, and an invocation may hold
 * at most 6 open connections.
 */
import { connect } from 'cloudflare:sockets';
import { bounded, settleWithin } from '../../core/client/deadline.ts';
import type { MessageBody, SendEnvelope, SendResult, SmtpClientOptions } from '../../core/client/options.ts';
import { type ResolvedClientOptions, resolveClientOptions } from '../../core/client/options.ts';
import { sendOnce } from '../../core/client/send-mail.ts';
import { SmtpClientSession } from '../../core/client/session.ts';
import { SmtpConfigError } from '../../core/errors.ts';
import { implicitTlsFailure, mapWorkersError } from './errors.ts';
import { type WorkersSocket, WorkersSocketTransport } from './transport.ts';

export {
  implicitTlsFailure,
  mapWorkersError,
  type WorkersErrorContext,
  type WorkersSocketPhase,
} from './errors.ts';
export {
  type WorkersSocket,
  WorkersSocketTransport,
  type WorkersSocketTransportOptions,
} from './transport.ts';

/** Options the Workers runtime cannot honour are refused rather than silently ignored. */
function checkWorkersOptions(options: SmtpClientOptions): void {
  if (options.port === 25) {
    throw new SmtpConfigError(
      'Cloudflare Workers block outbound port 25; use 587 (STARTTLS) or 465 (implicit TLS) on your relay',
    );
  }
  if (options.tls?.rejectUnauthorized === false) {
    throw new SmtpConfigError(
      'tls.rejectUnauthorized: false is not possible on Workers: the runtime always verifies certificates',
    );
  }
  if (options.tls?.ca !== undefined) {
    throw new SmtpConfigError('tls.ca is not supported on Workers: the runtime trusts only public CAs');
  }
  if (options.tls?.servername !== undefined && options.tls.servername !== options.host) {
    throw new SmtpConfigError(
      'tls.servername is not supported on Workers: the host name given to connect() is the one verified; set host to it',
    );
  }
}

/** Connect, read the greeting, EHLO, STARTTLS and AUTH as configured. */
export async function connectSmtp(options: SmtpClientOptions): Promise<SmtpClientSession> {
  checkWorkersOptions(options);
  const resolved = resolveClientOptions(options);
  const ctx = { host: resolved.host, port: resolved.port, phase: 'connect' as const };
  let socket: WorkersSocket;
  try {
    socket = connect(
      { hostname: resolved.host, port: resolved.port },
      {
        secureTransport:
          resolved.security === 'tls' ? 'on' : resolved.security === 'starttls' ? 'starttls' : 'off',
        allowHalfOpen: false,
      },
    );
  } catch (err) {
    throw mapWorkersError(err, ctx);
  }
  let info: { remoteAddress?: string; localAddress?: string };
  try {
    info = await bounded(socket.opened, {
      stage: 'connect',
      ms: resolved.timeouts.connectMs,
      signal: resolved.signal,
    });
  } catch (err) {
    socket.close().catch(() => {});
    const mapped = mapWorkersError(err, ctx);
    if (resolved.security === 'tls' && mapped.kind === 'connection' && (await acceptsTcp(resolved))) {
      throw implicitTlsFailure(err, ctx);
    }
    throw mapped;
  }
  const transport = new WorkersSocketTransport(socket, {
    host: resolved.host,
    port: resolved.port,
    implicitTls: resolved.security === 'tls',
    local: info.localAddress ? { address: stripPort(info.localAddress), port: 0 } : null,
    remote: {
      address: info.remoteAddress ? stripPort(info.remoteAddress) : resolved.host,
      port: resolved.port,
    },
  });
  let session: SmtpClientSession;
  try {
    session = new SmtpClientSession(transport, options);
  } catch (err) {
    await transport.close();
    throw err;
  }
  await session.greet();
  return session;
}

/** Connect, send one message, QUIT. */
export function sendMail(
  options: SmtpClientOptions,
  envelope: SendEnvelope,
  body: MessageBody,
): Promise<SendResult> {
  return sendOnce(connectSmtp, options, envelope, body);
}

/**
 * workerd reports a failed implicit-TLS handshake exactly like a refused connection. One plain
 * TCP probe tells them apart: if the port accepts TCP, the failure was TLS. Only on failure.
 */
async function acceptsTcp(resolved: ResolvedClientOptions): Promise<boolean> {
  let probe: WorkersSocket | undefined;
  try {
    probe = connect(
      { hostname: resolved.host, port: resolved.port },
      { secureTransport: 'off', allowHalfOpen: false },
    );
    await bounded(probe.opened, { stage: 'connect', ms: Math.min(resolved.timeouts.connectMs, 5_000) });
    return true;
  } catch {
    return false;
  } finally {
    if (probe) void settleWithin(probe.close(), 500);
  }
}

/** `opened` may report `host:port` or `[v6]:port`; keep only the address. */
function stripPort(address: string): string {
  const v6 = /^\[(.*)\](?::\d+)?$/.exec(address);
  if (v6) return v6[1]!;
  const v4 = /^(\d+\.\d+\.\d+\.\d+)(?::\d+)?$/.exec(address);
  if (v4) return v4[1]!;
  return address;
}

export type {
  MessageBody,
  SendEnvelope,
  SendResult,
  SmtpClientOptions,
} from '../../core/client/options.ts';
export { SmtpClientSession } from '../../core/client/session.ts';
