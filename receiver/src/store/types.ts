/**
 * The message store contract. One accepted message is two objects side by side:
 * `<key>.eml` (our `Received:` header + the exact bytes received) and `<key>.json` (the envelope).
 * `put()` resolves only when both are durable; the SMTP `250` waits for it (RFC 5321 section 6.1:
 * once the server has accepted responsibility for a message it must not lose it).
 */

/** ESMTP parameters as given by the client, as JSON. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The `.json` envelope record (see docs/reference/receiver-env.md, "Stored objects"). */
export interface EnvelopeRecord {
  /** Transaction id; also in our `Received:` header (`id …`) and the object names. */
  readonly id: string;
  /** Reverse-path; `''` for the null sender `<>`. */
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly params: {
    /** MAIL FROM parameters (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH, REQUIRETLS, others). */
    readonly mail: { readonly [key: string]: JsonValue };
    /** RCPT TO parameters, one entry per recipient in `rcptTo` order (NOTIFY, ORCPT, others). */
    readonly rcpt: readonly { readonly [key: string]: JsonValue }[];
  };
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The address the TCP connection came from when a PROXY header replaced it, else null. */
  readonly proxiedBy: string | null;
  readonly localPort: number;
  /** `mx`, `submission` or `submissions`. */
  readonly listener: string;
  readonly helo: { readonly verb: string; readonly name: string } | null;
  readonly tls: { readonly protocol: string | null; readonly cipher: string | null } | null;
  readonly authUser: string | null;
  /** RFC 3339 time the message data began (the same instant as the date in our `Received:` header). */
  readonly receivedAt: string;
  /** Bytes of the stored `.eml` object (our `Received:` header included). */
  readonly size: number;
  /** Bytes of the message as received from the client (the `.eml` without our header). */
  readonly messageSize: number;
}

/** What the caller knows before the body has been read; the store adds the sizes. */
export type EnvelopeMeta = Omit<EnvelopeRecord, 'size' | 'messageSize'>;

export interface StoredRef {
  /** Where the `.eml` went: a file path or `s3://bucket/key`. */
  readonly eml: string;
  readonly json: string;
  readonly record: EnvelopeRecord;
}

export interface PutInput {
  readonly meta: EnvelopeMeta;
  /** Bytes written before the body (our `Received:` header). Counted in `size`, not in `messageSize`. */
  readonly head: Uint8Array;
  /** The message; the store reads it to the end, or cancels it when it gives up. */
  readonly body: ReadableStream<Uint8Array>;
  /** Aborted on store time-out or when the client went away: the store must leave nothing behind. */
  readonly signal: AbortSignal;
}

export interface MessageStore {
  /** `file` or `s3`, for logs and metrics labels. */
  readonly kind: 'file' | 's3';
  /** A human-readable location (`file:///data`, `s3://bucket/prefix`). */
  readonly location: string;
  /** Store one message. Rejects with `StoreError` (and leaves no object) on any failure or abort. */
  put(input: PutInput): Promise<StoredRef>;
  /** Resolve when the store is usable right now (readiness probe). */
  check(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export type StoreFailure = 'aborted' | 'timeout' | 'unavailable' | 'io' | 'input';

export class StoreError extends Error {
  override name = 'StoreError';
  readonly reason: StoreFailure;
  constructor(reason: StoreFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/** `<yyyy>/<mm>/<dd>/<id>` in UTC, from the record's `receivedAt`. */
export function objectBaseName(id: string, receivedAt: string): string {
  const at = new Date(receivedAt);
  if (Number.isNaN(at.getTime()))
    throw new StoreError('input', `bad receivedAt ${JSON.stringify(receivedAt)}`);
  const y = String(at.getUTCFullYear()).padStart(4, '0');
  const m = String(at.getUTCMonth() + 1).padStart(2, '0');
  const d = String(at.getUTCDate()).padStart(2, '0');
  return `${y}/${m}/${d}/${id}`;
}

/** Transaction ids become file and object names: keep them to a safe alphabet. */
export function assertSafeId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id) || id.includes('..')) {
    throw new StoreError('input', `unsafe message id ${JSON.stringify(id)}`);
  }
}

/** Reason an abort signal fired: `timeout` when the reason says so, else `aborted`. */
export function abortReason(signal: AbortSignal): StoreFailure {
  const r: unknown = signal.reason;
  return r instanceof Error && (r.name === 'TimeoutError' || (r as { reason?: string }).reason === 'timeout')
    ? 'timeout'
    : 'aborted';
}
