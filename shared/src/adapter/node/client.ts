/**
 * The Node adapter for the SMTP client: `net`/`tls` sockets under `NodeSocketTransport`.
 *
 * `connectSmtp` opens TCP (or implicit TLS, RFC 8314 section 3.3) with a bounded connect time,
 * then greets. Certificates are verified by default (system roots, or `tls.ca`); the EHLO
 * name defaults to the host name when it is fully qualified, else the local address literal.
 */
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { usableHostname } from '../../core/client/ehlo.ts';
import type { MessageBody, SendEnvelope, SendResult, SmtpClientOptions } from '../../core/client/options.ts';
import { type ResolvedClientOptions, resolveClientOptions } from '../../core/client/options.ts';
import { sendOnce } from '../../core/client/send-mail.ts';
import { SmtpClientSession } from '../../core/client/session.ts';
import {
  SmtpAbortError,
  SmtpConnectionError,
  type SmtpError,
  SmtpTimeoutError,
  SmtpTlsError,
} from '../../core/errors.ts';
import { NodeSocketTransport, type NodeTlsOptions } from './transport.ts';

/** OpenSSL/Node error codes that mean "the certificate was not acceptable". */
const CERT_ERRORS =
  /^(?:ERR_TLS_CERT_ALTNAME_INVALID|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|CERT_REVOKED|CERT_UNTRUSTED|CERT_REJECTED|HOSTNAME_MISMATCH|ERR_SSL_.*)$/;

function isIp(host: string): boolean {
  return net.isIP(host) !== 0;
}

function tlsOptionsFor(options: SmtpClientOptions, resolved: ResolvedClientOptions): NodeTlsOptions {
  return {
    rejectUnauthorized: options.tls?.rejectUnauthorized ?? true,
    servername: resolved.servername,
    ...(options.tls?.ca === undefined ? {} : { ca: options.tls.ca }),
  };
}

/** A readable message for a socket error during connect. */
export function describeConnectError(
  err: NodeJS.ErrnoException,
  host: string,
  port: number,
  tlsStarted: boolean,
): SmtpError {
  const where = `${host}:${port}`;
  const code = err.code ?? '';
  if (tlsStarted || CERT_ERRORS.test(code)) {
    const why =
      code === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? `the certificate is not issued for ${host}`
        : /SELF_SIGNED|UNABLE_TO|UNTRUSTED/.test(code)
          ? 'the certificate is not signed by a trusted CA (pass tls.ca for a private CA)'
          : /EXPIRED|NOT_YET_VALID/.test(code)
            ? 'the certificate is expired or not yet valid'
            : 'the TLS handshake failed';
    return new SmtpTlsError(`TLS with ${where} failed: ${why} (${code || err.message})`, { cause: err });
  }
  const text: Record<string, string> = {
    ECONNREFUSED: `${where} refused the connection: is the SMTP server running on that port?`,
    ENOTFOUND: `the host name ${host} does not resolve`,
    EAI_AGAIN: `the host name ${host} could not be resolved right now (DNS)`,
    ETIMEDOUT: `connecting to ${where} timed out`,
    EHOSTUNREACH: `${host} is unreachable`,
    ENETUNREACH: `the network of ${host} is unreachable`,
    ECONNRESET: `${where} reset the connection`,
  };
  return new SmtpConnectionError(text[code] ?? `cannot connect to ${where}: ${code || err.message}`, {
    cause: err,
  });
}

function openSocket(options: SmtpClientOptions, resolved: ResolvedClientOptions): Promise<net.Socket> {
  const { host, port } = resolved;
  return new Promise<net.Socket>((resolve, reject) => {
    const signal = resolved.signal;
    if (signal?.aborted) {
      reject(new SmtpAbortError(signal.reason));
      return;
    }
    let tcpUp = false;
    let socket: net.Socket;
    if (resolved.security === 'tls') {
      socket = tls.connect({
        host,
        port,
        minVersion: 'TLSv1.2',
        ...(isIp(resolved.servername) ? {} : { servername: resolved.servername }),
        rejectUnauthorized: options.tls?.rejectUnauthorized ?? true,
        ...(options.tls?.ca === undefined ? {} : { ca: options.tls.ca }),
        checkServerIdentity: (h, cert) => tls.checkServerIdentity(resolved.servername || h, cert),
      });
      socket.once('connect', () => {
        tcpUp = true;
      });
    } else {
      socket = net.connect({ host, port });
    }
    const timer = setTimeout(() => {
      fail(new SmtpTimeoutError('connect', resolved.timeouts.connectMs));
    }, resolved.timeouts.connectMs);
    const onAbort = (): void => fail(new SmtpAbortError(signal?.reason));
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off(ready, onReady);
    };
    const fail = (err: SmtpError): void => {
      cleanup();
      socket.on('error', () => {});
      socket.destroy();
      reject(err);
    };
    const onError = (err: NodeJS.ErrnoException): void => fail(describeConnectError(err, host, port, tcpUp));
    const ready = resolved.security === 'tls' ? 'secureConnect' : 'connect';
    const onReady = (): void => {
      cleanup();
      resolve(socket);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once(ready, onReady);
  });
}

/** Connect, read the greeting, EHLO, STARTTLS and AUTH as configured. */
export async function connectSmtp(options: SmtpClientOptions): Promise<SmtpClientSession> {
  const resolved = resolveClientOptions(options);
  const socket = await openSocket(options, resolved);
  const transport = new NodeSocketTransport(socket, {
    role: 'client',
    tls: tlsOptionsFor(options, resolved),
  });
  let session: SmtpClientSession;
  try {
    const helo = options.helo ?? usableHostname(os.hostname()) ?? undefined;
    session = new SmtpClientSession(transport, helo === undefined ? options : { ...options, helo });
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
