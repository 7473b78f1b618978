import type { ReceiverConfig } from '../config.ts';
import { FileStore } from './file-store.ts';
import { S3Store, type S3StoreOptions } from './s3-store.ts';
import type { MessageStore } from './types.ts';

export { FileStore } from './file-store.ts';
export { S3Store, type S3StoreOptions } from './s3-store.ts';
export * from './types.ts';

/** The store named by RECEIVER_STORE. */
export function createStore(
  config: Pick<ReceiverConfig, 'store' | 's3'>,
  hooks: Pick<S3StoreOptions, 'onCleanupError'> = {},
): MessageStore {
  if (config.store.kind === 'file') return new FileStore(config.store.directory);
  return new S3Store({
    bucket: config.store.bucket,
    prefix: config.store.prefix,
    forcePathStyle: config.s3.forcePathStyle,
    partSize: config.s3.partSize,
    queueSize: config.s3.queueSize,
    ...hooks,
  });
}
