/**
 * S3 store: `<prefix>/<yyyy>/<mm>/<dd>/<id>.eml` then `<prefix>/<yyyy>/<mm>/<dd>/<id>.json`.
 *
 * - The `.eml` is streamed with `@aws-sdk/lib-storage` `Upload`: a message smaller than one part is
 *   one PutObject, a larger one a multipart upload. Memory per message is bounded by
 *   (queueSize + 1) x partSize whatever the message size.
 * - The `.json` is a PutObject after the `.eml` succeeded: it is the commit marker.
 * - On failure, abort or time-out: every HTTP request of this message still in flight is cancelled
 *   (lib-storage does not pass an abort signal to the SDK, so the requests run inside an
 *   AsyncLocalStorage context that a wrapped request handler reads), the multipart upload is
 *   aborted (by lib-storage) and both keys are deleted, in case a PutObject had already reached S3.
 * - `requestChecksumCalculation: 'WHEN_REQUIRED'`: with the SDK default, a streamed body is sent with
 *   aws-chunked framing that some S3-compatible servers store verbatim (toolchain note).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  DeleteObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  abortReason,
  assertSafeId,
  type EnvelopeRecord,
  type MessageStore,
  objectBaseName,
  type PutInput,
  type StoredRef,
  StoreError,
} from './types.ts';

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix without leading or trailing `/`; may be empty. */
  prefix: string;
  forcePathStyle: boolean;
  partSize: number;
  queueSize: number;
  /** Extra client settings (tests pass endpoint and credentials; production uses the AWS_* variables). */
  client?: S3ClientConfig;
  /** Called when the clean-up after a failed put could not delete an object. */
  onCleanupError?: (key: string, err: unknown) => void;
}

interface RequestContext {
  readonly signal: AbortSignal;
}

interface HandlerOptions {
  abortSignal?: unknown;
  [key: string]: unknown;
}

interface WrappableHandler {
  handle(request: { method: string }, options?: HandlerOptions): Promise<unknown>;
}

const requests = new AsyncLocalStorage<RequestContext>();

function isWrappable(h: unknown): h is WrappableHandler {
  return typeof h === 'object' && h !== null && typeof (h as WrappableHandler).handle === 'function';
}

/**
 * Build an S3Client whose HTTP handler cancels the current message's requests when its signal
 * fires. DELETE requests (AbortMultipartUpload, DeleteObject: the clean-up itself) are never cancelled.
 */
function cancellableClient(config: S3ClientConfig): S3Client {
  const probe = new S3Client(config);
  const inner: unknown = probe.config.requestHandler;
  if (!isWrappable(inner)) return probe;
  const wrapped = Object.create(inner) as WrappableHandler;
  wrapped.handle = (request, options = {}) => {
    const ctx = requests.getStore();
    if (ctx === undefined || request.method === 'DELETE') return inner.handle(request, options);
    const own = options.abortSignal;
    const signal = own instanceof AbortSignal ? AbortSignal.any([own, ctx.signal]) : ctx.signal;
    return inner.handle(request, { ...options, abortSignal: signal });
  };
  return new S3Client({ ...config, requestHandler: wrapped as S3ClientConfig['requestHandler'] });
}

export class S3Store implements MessageStore {
  readonly kind = 's3' as const;
  readonly location: string;
  readonly client: S3Client;
  private readonly opts: S3StoreOptions;

  constructor(options: S3StoreOptions) {
    this.opts = options;
    this.location = `s3://${options.bucket}/${options.prefix}`;
    this.client = cancellableClient({
      forcePathStyle: options.forcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...options.client,
    });
  }

  key(id: string, receivedAt: string, ext: 'eml' | 'json'): string {
    const base = `${objectBaseName(id, receivedAt)}.${ext}`;
    return this.opts.prefix === '' ? base : `${this.opts.prefix}/${base}`;
  }

  async put(input: PutInput): Promise<StoredRef> {
    const { meta, head, body, signal } = input;
    assertSafeId(meta.id);
    const emlKey = this.key(meta.id, meta.receivedAt, 'eml');
    const jsonKey = this.key(meta.id, meta.receivedAt, 'json');
    const bucket = this.opts.bucket;
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });

    let messageSize = 0;
    let bodyError: unknown;
    const reader = body.getReader();
    let headSent = false;
    // Head + body as one stream; pull-based, so lib-storage's part buffer is the only buffer.
    const eml = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          if (!headSent) {
            headSent = true;
            c.enqueue(head);
            return;
          }
          try {
            const r = await reader.read();
            if (r.done) c.close();
            else {
              messageSize += r.value.byteLength;
              c.enqueue(r.value);
            }
          } catch (e) {
            bodyError = e;
            controller.abort(e);
            c.error(e);
          }
        },
        cancel(reason) {
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );

    let uploadStarted = false;
    try {
      if (controller.signal.aborted) throw new Error('aborted before start');
      await requests.run({ signal: controller.signal }, async () => {
        const upload = new Upload({
          client: this.client,
          params: { Bucket: bucket, Key: emlKey, Body: eml, ContentType: 'message/rfc822' },
          partSize: this.opts.partSize,
          queueSize: this.opts.queueSize,
          leavePartsOnError: false,
          abortController: controller,
        });
        uploadStarted = true;
        await upload.done();
        if (controller.signal.aborted) throw new Error('aborted');
        const record: EnvelopeRecord = { ...meta, size: head.byteLength + messageSize, messageSize };
        await this.client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: jsonKey,
            Body: `${JSON.stringify(record, null, 2)}\n`,
            ContentType: 'application/json',
          }),
          { abortSignal: controller.signal },
        );
      });
      const record: EnvelopeRecord = { ...meta, size: head.byteLength + messageSize, messageSize };
      return { eml: `s3://${bucket}/${emlKey}`, json: `s3://${bucket}/${jsonKey}`, record };
    } catch (err) {
      if (!controller.signal.aborted) controller.abort(err);
      reader.cancel(err).catch(() => {});
      if (uploadStarted) void this.cleanUp([jsonKey, emlKey]);
      if (bodyError !== undefined)
        throw new StoreError('input', 'the message stream failed', { cause: bodyError });
      if (signal.aborted) throw new StoreError(abortReason(signal), 'store aborted', { cause: err });
      throw new StoreError('unavailable', `S3 put failed: ${describe(err)}`, { cause: err });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Delete keys a failed put may have created; retried a few times, in the background. */
  private async cleanUp(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      for (let attempt = 0; attempt < 4; attempt++) {
        try {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: key }));
          break;
        } catch (e) {
          if (attempt === 3) this.opts.onCleanupError?.(key, e);
          else await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        }
      }
    }
  }

  async check(signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(
        new HeadBucketCommand({ Bucket: this.opts.bucket }),
        signal === undefined ? {} : { abortSignal: signal },
      );
    } catch (e) {
      throw new StoreError('unavailable', `bucket ${this.opts.bucket} is not reachable: ${describe(e)}`, {
        cause: e,
      });
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { Code?: string; code?: string }).Code ?? (err as { code?: string }).code;
    return code !== undefined && !err.message.includes(code)
      ? `${code} ${err.message}`
      : err.message || err.name;
  }
  return String(err);
}
