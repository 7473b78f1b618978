import type { ReceiverConfig } from '../config.ts';
import { FileStore } from './file-store.ts';
import type { S3StoreOptions } from './s3-store.ts';
import type { MessageStore } from './types.ts';

export { FileStore } from './file-store.ts';
export type { S3Store, S3StoreOptions } from './s3-store.ts';
export * from './types.ts';

/** The store named by RECEIVER_STORE. The AWS SDK is loaded only when the store is S3. */
export async function createStore(
  config: Pick<ReceiverConfig, 'store' | 's3' | 'storeTimeoutMs'>,
  hooks: Pick<S3StoreOptions, 'onCleanupError' | 'onCleanupsPending'> = {},
): Promise<MessageStore> {
  if (config.store.kind === 'file') return new FileStore(config.store.directory);
  const { S3Store } = await import('./s3-store.ts');
  return new S3Store({
    bucket: config.store.bucket,
    prefix: config.store.prefix,
    forcePathStyle: config.s3.forcePathStyle,
    partSize: config.s3.partSize,
    queueSize: config.s3.queueSize,
    // The clean-up of a failed put repeats its deletes once the store time-out has passed again.
    requestTimeoutMs: config.storeTimeoutMs,
    ...hooks,
  });
}
