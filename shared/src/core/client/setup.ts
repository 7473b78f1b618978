/**
 * Connection setup, after the greeting and before the first transaction: EHLO (HELO when EHLO
 * is refused), STARTTLS with the configured policy, and AUTH. Each step returns what the session
 * keeps (the capabilities, the authenticated name); none keeps state of its own.
 *
 * RFC 5321 sections 3.2 and 4.1.1.1 (EHLO/HELO), RFC 3207 (STARTTLS), RFC 4954 (AUTH).
 */
import { SmtpAuthError, SmtpError, SmtpReplyError, SmtpTlsError } from '../errors.ts';
import { parseEhloKeywords } from '../wire/reply.ts';
import { type AuthExchange, authenticate } from './auth.ts';
import type { CommandChannel } from './channel.ts';
import { bounded } from './deadline.ts';
import type { ResolvedClientOptions } from './options.ts';

/** EHLO keywords (upper case) and their parameters. */
export type Capabilities = Map<string, string[]>;

/**
 * EHLO, and HELO when the server does not know EHLO. Returns the EHLO keywords (empty after
 * HELO). RFC 5321 section 3.2 / 4.1.4: a server that does not know EHLO answers 500, 502 (or
 * 504/550); the client then falls back to HELO. A 4xx (such as 421) is not a refusal of EHLO itself.
 */
export async function ehlo(
  channel: CommandChannel,
  heloName: string,
  signal: AbortSignal | undefined,
): Promise<Capabilities> {
  await channel.write([`EHLO ${heloName}`], 'EHLO', signal);
  const reply = await channel.readPlain('EHLO', {
    stage: 'EHLO',
    ms: channel.timeouts.commandMs,
    command: 'EHLO',
    signal,
  });
  if (reply.code === 250) return parseEhloKeywords(reply);
  if (reply.code >= 500) {
    await channel.expect(`HELO ${heloName}`, 'HELO', signal, [250]);
    return new Map();
  }
  throw new SmtpReplyError(reply, { command: 'EHLO' });
}

/**
 * STARTTLS (RFC 3207) when offered, and the handshake. Returns true when the connection is now
 * encrypted (the caller then forgets the capabilities and says EHLO again, section 4.2), false
 * when TLS was skipped under the `opportunistic` policy. Under `required` a missing or refused
 * STARTTLS is an `SmtpTlsError`.
 */
export async function startTls(
  channel: CommandChannel,
  options: ResolvedClientOptions,
  caps: Capabilities,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const required = options.starttlsPolicy === 'required';
  if (!caps.has('STARTTLS')) {
    if (required) {
      throw new SmtpTlsError(
        `${options.host}:${options.port} does not offer STARTTLS and TLS is required` +
          (options.auth ? ' (credentials are never sent in clear text)' : '') +
          '; refusing to continue without encryption',
        { command: 'STARTTLS' },
      );
    }
    return false;
  }
  await channel.write(['STARTTLS'], 'STARTTLS', signal);
  const reply = await channel.read('STARTTLS', signal);
  if (reply.code !== 220) {
    if (reply.code === 421) throw new SmtpReplyError(reply, { command: 'STARTTLS' });
    if (required) {
      throw new SmtpTlsError(
        `the server refused STARTTLS (${reply.code} ${reply.lines.join(' ')}) and TLS is required`,
        { command: 'STARTTLS', cause: new SmtpReplyError(reply, { command: 'STARTTLS' }) },
      );
    }
    return false;
  }
  // RFC 3207 section 4.2: anything received after the 220 and before the handshake was not
  // protected by TLS: drop it so it can never be read as a reply (response injection). The
  // transport drops what it buffered itself.
  channel.discardUnread();
  try {
    await bounded(channel.transport.startTls({ servername: options.servername }), {
      stage: 'TLS handshake',
      ms: options.timeouts.commandMs,
      command: 'STARTTLS',
      signal,
    });
  } catch (err) {
    if (err instanceof SmtpError && err.kind !== 'connection') throw err;
    throw new SmtpTlsError(
      `TLS handshake with ${options.servername} failed after STARTTLS: ${err instanceof Error ? err.message : String(err)}`,
      { command: 'STARTTLS', cause: err },
    );
  }
  channel.renewReader();
  return true;
}

/**
 * AUTH (RFC 4954) with the configured credentials; never over clear text unless
 * `allowInsecureAuth`. Returns the user name authenticated as.
 */
export async function logIn(
  channel: CommandChannel,
  options: ResolvedClientOptions,
  caps: Capabilities,
  signal: AbortSignal | undefined,
): Promise<string> {
  const auth = options.auth!;
  const secure = channel.transport.tls !== null;
  if (!secure && !options.allowInsecureAuth) {
    throw new SmtpAuthError(
      'refusing to send credentials over a connection without TLS; use security "starttls" or "tls" ' +
        '(or set allowInsecureAuth for a trusted test server)',
    );
  }
  const exchange: AuthExchange = {
    send: (line) => channel.write([line], 'AUTH', signal),
    read: () => channel.read('AUTH', signal),
  };
  await authenticate(exchange, caps.get('AUTH'), auth, secure);
  return auth.username;
}
