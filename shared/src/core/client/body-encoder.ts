/**
 * The message body on its way out, shared by DATA (data.ts) and BDAT (bdat.ts): the pieces of
 * the body source, each read within the data timeout, and the check that what the body holds
 * matches what MAIL FROM declared (BODY=, SMTPUTF8).
 */
import { SmtpError, SmtpMessageError } from '../errors.ts';
import type { DotWriter } from '../wire/dot-writer.ts';
import { type BodyFacts, bodyChunks } from './body.ts';
import { bounded } from './deadline.ts';
import type { TransactionPlan } from './envelope.ts';
import type { MessageBody } from './options.ts';

/** Coalesce small body pieces into writes of about this size (see `BatchWriter`, data.ts). */
export const WRITE_BATCH = 32 * 1024;
/** An in-memory body goes out in slices of this size, so each write (and its timeout) is bounded. */
const SLICE = WRITE_BATCH * 4;

/**
 * The body as pieces, each pulled from the source under `dataMs` and the AbortSignal: a
 * stalled producer cannot hold the connection (and the caller) forever. The source is closed
 * when the consumer stops early. An in-memory body is sliced without a timer per slice: nothing
 * can stall there, and each slice's write is bounded (and sees the AbortSignal) anyway.
 */
export async function* boundedBodyPieces(
  facts: BodyFacts,
  body: MessageBody,
  command: string,
  ms: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  if (facts.bytes !== null) {
    yield* memoryPieces(facts.bytes);
    return;
  }
  const pieces = bodyPieces(body, command);
  try {
    for (;;) {
      const next = await bounded(pieces.next(), {
        stage: 'reading the message body',
        ms,
        command,
        signal,
      });
      if (next.done) return;
      yield next.value;
    }
  } finally {
    void pieces.return(undefined).catch(() => {});
  }
}

function* memoryPieces(bytes: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += SLICE) yield bytes.subarray(i, i + SLICE);
}

/** A streamed body's chunks, with its errors named after the command. */
async function* bodyPieces(body: MessageBody, command: string): AsyncGenerator<Uint8Array> {
  try {
    yield* bodyChunks(body);
  } catch (err) {
    if (err instanceof SmtpError) throw withCommand(err, command);
    throw new SmtpMessageError(
      `reading the message body failed: ${err instanceof Error ? err.message : String(err)}`,
      'body',
      { command, cause: err },
    );
  }
}

/**
 * Encode a piece of body (or finish with null) and enforce what was declared in MAIL FROM:
 * 8-bit data needs BODY=8BITMIME or BINARYMIME (RFC 6152 section 3), UTF-8 headers need
 * SMTPUTF8 (RFC 6531 section 3.4). For a streamed body these are only known now, so a
 * violation aborts the connection (the message is never completed, so never delivered).
 *
 * The result may be a view of `piece` itself (see `DotWriter.write`): it must be written
 * before `piece` changes.
 */
export function encodePiece(
  writer: DotWriter,
  piece: Uint8Array | null,
  plan: TransactionPlan,
  caps: ReadonlyMap<string, string[]>,
  command: string,
): Uint8Array {
  let out: Uint8Array;
  try {
    out = piece === null ? writer.end() : writer.write(piece);
  } catch (err) {
    if (err instanceof SmtpError) throw withCommand(err, command);
    throw err;
  }
  if (plan.bodyType === 'BINARYMIME') return out;
  checkDeclared(writer.eightBit, writer.headerEightBit, plan, caps, command);
  return out;
}

/**
 * What the body holds must match what MAIL FROM declared: 8-bit data needs BODY=8BITMIME
 * (RFC 6152 section 3), UTF-8 headers need SMTPUTF8 (RFC 6531 section 3.4).
 */
export function checkDeclared(
  eightBit: boolean,
  headerEightBit: boolean,
  plan: TransactionPlan,
  caps: ReadonlyMap<string, string[]>,
  command: string,
): void {
  if (eightBit && plan.bodyType !== '8BITMIME') {
    throw new SmtpMessageError(
      'the message contains 8-bit data but was not declared BODY=8BITMIME' +
        (caps.has('8BITMIME') ? '' : ' (the server does not offer 8BITMIME)') +
        '; encode it as quoted-printable or base64',
      'body',
      { command },
    );
  }
  if (headerEightBit && !plan.smtpUtf8) {
    throw new SmtpMessageError(
      'the message header contains non-ASCII octets, which need SMTPUTF8' +
        (caps.has('SMTPUTF8')
          ? ' (pass envelope.smtpUtf8: true for a streamed body)'
          : ' (the server does not offer it); encode the headers with RFC 2047'),
      'body',
      { command },
    );
  }
}

function withCommand(err: SmtpError, command: string): SmtpError {
  if (err.command !== undefined) return err;
  if (err instanceof SmtpMessageError) {
    return new SmtpMessageError(err.message, err.field, { command, cause: err.cause });
  }
  return err;
}
