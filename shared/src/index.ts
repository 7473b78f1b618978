/**
 * @smtp-edge/protocol: an SMTP client and server library with a sans-I/O core.
 *
 * This entry point is runtime-neutral: it imports nothing from `node:*` or `cloudflare:*`.
 * Runtime adapters live at `@smtp-edge/protocol/node` and `@smtp-edge/protocol/workers`.
 */
export * from './core/address/index.ts';
export * from './core/client/index.ts';
export * from './core/encoding/index.ts';
export * from './core/errors.ts';
export * from './core/mime/index.ts';
export * from './core/sasl/index.ts';
export * from './core/server/index.ts';
export * from './core/status.ts';
export type * from './core/transport.ts';
export * from './core/wire/index.ts';
