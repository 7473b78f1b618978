export * from './base64.ts';
export * from './bytes.ts';
export * from './md5.ts';
