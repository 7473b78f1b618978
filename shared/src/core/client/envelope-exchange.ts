/**
 * The envelope part of a mail transaction on the wire: RSET when due, MAIL FROM, one RCPT TO per
 * recipient and, for DATA, the DATA command up to its 354. Two ways, same outcome:
 *
 * - pipelined (RFC 2920): every command in one write, replies read in order as they come;
 * - stepwise: one command, one reply.
 *
 * BDAT waits for the RCPT replies, so no message data goes out when every recipient is refused.
 * The commands themselves come from `planTransaction` (envelope.ts).
 *
 * RFC 5321 sections 3.3 (mail transaction), 3.8 (421 closes), 4.1.1.2-4.1.1.5; RFC 2920
 * section 3.1 (what may be pipelined, a 354 after a failed group).
 */
import { SmtpAbortError, SmtpReplyError, SmtpTimeoutError } from '../errors.ts';
import { isPositive, type SmtpReply } from '../status.ts';
import type { CommandChannel } from './channel.ts';
import { bounded } from './deadline.ts';
import type { TransactionPlan } from './envelope.ts';
import { SmtpRecipientsRejectedError } from './errors.ts';
import type { RecipientResult } from './options.ts';

const encoder = new TextEncoder();

/**
 * After a pipelined write fails, how long a reply already on its way may still be read. A
 * transport returns what it received before the failure at once; this only bounds one that
 * does not.
 */
const WRITE_FAILURE_GRACE_MS = 1_000;

/** What the envelope exchange learned: who was accepted, and DATA's 354 (null for BDAT). */
export interface EnvelopeOutcome {
  accepted: string[];
  rejected: RecipientResult[];
  rcptReplies: SmtpReply[];
  dataReply: SmtpReply | null;
}

/**
 * Run the envelope exchange, pipelined when `pipelining` (the server offers it and it is
 * enabled). Resolves when at least one recipient was accepted and, for DATA, the 354 came;
 * throws `SmtpReplyError` (`SmtpRecipientsRejectedError` when every recipient was refused).
 */
export function exchangeEnvelope(
  channel: CommandChannel,
  plan: TransactionPlan,
  options: { reset: boolean; pipelining: boolean },
  signal: AbortSignal | undefined,
): Promise<EnvelopeOutcome> {
  return options.pipelining
    ? envelopePipelined(channel, plan, options.reset, signal)
    : envelopeStepwise(channel, plan, options.reset, signal);
}

async function envelopePipelined(
  channel: CommandChannel,
  plan: TransactionPlan,
  reset: boolean,
  signal: AbortSignal | undefined,
): Promise<EnvelopeOutcome> {
  // Read replies while the batch is written, so a large batch cannot deadlock against a
  // server whose own replies fill the socket buffers.
  return readEnvelopeGroup(channel, plan, reset, writeEnvelopeGroup(channel, plan, reset, signal), signal);
}

/**
 * The envelope as one pipelined group (RFC 2920 section 3.1: RSET, MAIL and RCPT may be anywhere
 * in a group; DATA must be last; BDAT waits for the RCPT replies, so no data goes out when every
 * recipient is refused).
 */
export function envelopeGroupLines(plan: TransactionPlan, reset: boolean): string[] {
  const lines = [...(reset ? ['RSET'] : []), plan.mail, ...plan.rcpts.map((r) => r.line)];
  if (!plan.useBdat) lines.push('DATA');
  return lines;
}

/** Write the group in one write; the returned promise never goes unhandled. */
function writeEnvelopeGroup(
  channel: CommandChannel,
  plan: TransactionPlan,
  reset: boolean,
  signal: AbortSignal | undefined,
): Promise<void> {
  const written = channel.write(envelopeGroupLines(plan, reset), 'MAIL', signal);
  written.catch(() => {});
  return written;
}

/**
 * Read the replies to an envelope group (`envelopeGroupLines`) in order; `written` settles with
 * its write. Resolves when at least
 * one recipient was accepted and, for DATA, the 354 came; otherwise throws (after leaving DATA
 * mode when a 354 came anyway).
 */
export async function readEnvelopeGroup(
  channel: CommandChannel,
  plan: TransactionPlan,
  reset: boolean,
  written: Promise<void>,
  signal: AbortSignal | undefined,
): Promise<EnvelopeOutcome> {
  // A failed write must not leave us waiting for replies to commands never sent.
  let writeFailedAlready = false;
  const writeFailed = written.then(
    () => new Promise<never>(() => {}),
    (error: unknown) => {
      writeFailedAlready = true;
      return Promise.reject(error);
    },
  );
  writeFailed.catch(() => {});
  // The first reply that explains why the transaction cannot go on. When the server then
  // closes the connection (or the write fails because it did), that reply is what the caller
  // gets, not the end of stream that followed it.
  let explained: SmtpReplyError | null = null;
  const read = async (command: string): Promise<SmtpReply> => {
    const reply = channel.read(command, signal);
    reply.catch(() => {});
    try {
      return await Promise.race([reply, writeFailed]);
    } catch (err) {
      // The caller's own abort stays an abort; anything else that follows the explaining reply
      // (end of stream, reset, time-out, a garbled line) is its consequence.
      if (explained !== null && !(err instanceof SmtpAbortError)) {
        await channel.close();
        throw explained;
      }
      if (!writeFailedAlready) throw err;
      // The write failed, typically because the server answered and closed (a 421 after
      // MAIL): a reply that already arrived still says more than the broken pipe.
      try {
        return await bounded(reply, { stage: command, ms: WRITE_FAILURE_GRACE_MS, command, signal });
      } catch (readErr) {
        throw readErr instanceof SmtpTimeoutError ? err : readErr;
      }
    }
  };
  // RFC 5321 section 3.8: after 421 the server closes the connection; no further replies come.
  const check = (reply: SmtpReply, command: string): SmtpReply => {
    if (reply.code === 421) throw new SmtpReplyError(reply, { command });
    return reply;
  };
  let resetReply: SmtpReply | null = null;
  if (reset) {
    resetReply = check(await read('RSET'), 'RSET');
    if (resetReply.code !== 250) explained = new SmtpReplyError(resetReply, { command: 'RSET' });
  }
  const mailReply = check(await read('MAIL'), 'MAIL');
  if (mailReply.code !== 250) explained ??= new SmtpReplyError(mailReply, { command: 'MAIL' });
  const rcptReplies: SmtpReply[] = [];
  for (let i = 0; i < plan.rcpts.length; i++) rcptReplies.push(check(await read('RCPT'), 'RCPT'));
  if (explained === null && !rcptReplies.some((r) => r.code >= 200 && r.code < 300)) {
    explained = new SmtpRecipientsRejectedError(collect(plan, rcptReplies, null).rejected, rcptReplies);
  }
  const dataReply = plan.useBdat ? null : check(await read('DATA'), 'DATA');
  try {
    await written;
  } catch (err) {
    if (explained === null) throw err;
  }
  const result = collect(plan, rcptReplies, dataReply);
  if (explained !== null) {
    try {
      await abandonData(channel, dataReply, signal);
    } catch (err) {
      if (err instanceof SmtpAbortError) throw err;
      await channel.close();
    }
    throw explained;
  }
  if (dataReply !== null && dataReply.code !== 354) throw new SmtpReplyError(dataReply, { command: 'DATA' });
  return result;
}

async function envelopeStepwise(
  channel: CommandChannel,
  plan: TransactionPlan,
  reset: boolean,
  signal: AbortSignal | undefined,
): Promise<EnvelopeOutcome> {
  if (reset) await channel.expect('RSET', 'RSET', signal, [250]);
  await channel.expect(plan.mail, 'MAIL', signal, [250]);
  const rcptReplies: SmtpReply[] = [];
  for (const r of plan.rcpts) {
    await channel.write([r.line], 'RCPT', signal);
    const reply = await channel.read('RCPT', signal);
    // RFC 5321 section 3.8: the server closes after 421; report it rather than the failed next write.
    if (reply.code === 421) throw new SmtpReplyError(reply, { command: 'RCPT' });
    rcptReplies.push(reply);
  }
  const partial = collect(plan, rcptReplies, null);
  if (partial.accepted.length === 0) throw new SmtpRecipientsRejectedError(partial.rejected, rcptReplies);
  if (plan.useBdat) return partial;
  const dataReply = await channel.expect('DATA', 'DATA', signal, [354]);
  return { ...partial, dataReply };
}

function collect(
  plan: TransactionPlan,
  rcptReplies: SmtpReply[],
  dataReply: SmtpReply | null,
): EnvelopeOutcome {
  const accepted: string[] = [];
  const rejected: RecipientResult[] = [];
  plan.rcpts.forEach((r, i) => {
    const reply = rcptReplies[i]!;
    // RFC 5321 section 4.2.2: 250 and 251 accept a recipient (252 is not a RCPT reply, but positive).
    if (isPositive(reply.code) && reply.code < 300) accepted.push(r.recipient);
    else
      rejected.push({
        recipient: r.recipient,
        code: reply.code,
        enhancedCode: reply.enhancedCode,
        message: reply.lines.join(' '),
      });
  });
  return { accepted, rejected, rcptReplies, dataReply };
}

/**
 * DATA got 354 although the transaction cannot go on (MAIL or every RCPT refused in a
 * pipelined group): send an empty message end so the server leaves DATA mode, and ignore its
 * reply (RFC 2920 section 3.1). The next transaction starts with RSET.
 */
async function abandonData(
  channel: CommandChannel,
  dataReply: SmtpReply | null,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (dataReply === null || dataReply.code !== 354) return;
  await channel.writeData(encoder.encode('.\r\n'), 'DATA', signal);
  await channel.read('DATA', signal, channel.timeouts.dataMs);
}
