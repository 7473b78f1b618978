export * from './connection.ts';
export * from './engine.ts';
export * from './limits.ts';
export * from './options.ts';
export { reject } from './replies.ts';
export * from './session.ts';
export type * from './types.ts';
