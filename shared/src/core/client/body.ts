/**
 * Message body sources. A body is a string (sent as UTF-8), bytes, a Web `ReadableStream`
 * or any async iterable of bytes. In-memory bodies are encoded before the transaction starts,
 * so every problem with them (long line, NUL, 8-bit data the server cannot take) is reported
 * before a single command is sent; streams are encoded as they are sent.
 */
import { SmtpMessageError } from '../errors.ts';
import { DotWriter } from '../wire/dot-writer.ts';
import type { MessageBody } from './options.ts';

const encoder = new TextEncoder();

/** What we know about a body before sending it. */
export interface BodyFacts {
  /** Bytes as given (strings UTF-8 encoded), or null for a stream. */
  readonly bytes: Uint8Array | null;
  /** Some octet above 127 (null: unknown, a stream). */
  readonly eightBit: boolean | null;
  /** Some octet above 127 in the header section (RFC 6532 headers need SMTPUTF8). */
  readonly headerEightBit: boolean | null;
  /** NUL or a line over 998 octets: only BODY=BINARYMIME can carry it (RFC 3030 section 3). */
  readonly binary: boolean | null;
  /** Size after CRLF normalization, without dot-stuffing (the RFC 1870 message size); null for a stream. */
  readonly size: number | null;
  /** The reason the body is not text, for error messages. */
  readonly binaryReason: string | null;
  /**
   * The bytes are already what DATA and BDAT carry: CRLF line ends only, the last line
   * complete, no line starting with `.`. They can then be sent as they are, without a second
   * pass through `DotWriter` (DATA adds only its `.<CRLF>`). False for a stream.
   */
  readonly clean: boolean;
}

export function isInMemory(body: MessageBody): body is string | Uint8Array {
  return typeof body === 'string' || body instanceof Uint8Array;
}

/** Inspect an in-memory body (one pass, bytes not kept) or describe a stream as unknown. */
export function inspectBody(body: MessageBody): BodyFacts {
  if (!isInMemory(body)) {
    if (!isStream(body) && !isAsyncIterable(body)) {
      throw new SmtpMessageError(
        'the message body must be a string, a Uint8Array, a ReadableStream or an async iterable',
        'body',
      );
    }
    return {
      bytes: null,
      eightBit: null,
      headerEightBit: null,
      binary: null,
      size: null,
      binaryReason: null,
      clean: false,
    };
  }
  const bytes = typeof body === 'string' ? encoder.encode(body) : body;
  const w = new DotWriter({ dotStuff: false });
  let clean: boolean;
  try {
    // DotWriter returns its input itself when normalization changes nothing.
    const unchanged = w.write(bytes) === bytes;
    const lastLineComplete = w.end().length === 0;
    clean = unchanged && lastLineComplete && w.dotLines === 0;
  } catch (err) {
    if (!(err instanceof SmtpMessageError)) throw err;
    let eightBit = false;
    for (const b of bytes) {
      if (b > 127) {
        eightBit = true;
        break;
      }
    }
    return {
      bytes,
      eightBit,
      headerEightBit: eightBit && headerHasEightBit(bytes),
      binary: true,
      size: bytes.length,
      binaryReason: err.message,
      clean: false,
    };
  }
  return {
    bytes,
    eightBit: w.eightBit,
    headerEightBit: w.headerEightBit,
    binary: false,
    size: w.bytesOut,
    binaryReason: null,
    clean,
  };
}

function headerHasEightBit(bytes: Uint8Array): boolean {
  let prevLf = true;
  for (const b of bytes) {
    if (b > 127) return true;
    if (b === 0x0a && prevLf) return false;
    if (b === 0x0a) prevLf = true;
    else if (b !== 0x0d) prevLf = false;
  }
  return false;
}

function isStream(body: unknown): body is ReadableStream<Uint8Array> {
  return (
    typeof body === 'object' && body !== null && typeof (body as ReadableStream).getReader === 'function'
  );
}

function isAsyncIterable(body: unknown): body is AsyncIterable<Uint8Array> {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function'
  );
}

/**
 * The body as a sequence of byte chunks. A `ReadableStream` is read with a reader (not its
 * async iterator, which Workers streams lack in older compatibility dates) and cancelled when
 * the consumer stops early. Non-`Uint8Array` chunks are refused.
 */
export async function* bodyChunks(body: MessageBody): AsyncGenerator<Uint8Array, void, undefined> {
  if (typeof body === 'string') {
    yield encoder.encode(body);
    return;
  }
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  if (isStream(body)) {
    const reader = body.getReader();
    let done = false;
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) {
          done = true;
          return;
        }
        yield checkChunk(r.value);
      }
    } finally {
      if (!done) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }
  for await (const chunk of body) yield checkChunk(chunk);
}

function checkChunk(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  throw new SmtpMessageError('a message body stream yielded something other than a Uint8Array', 'body');
}
