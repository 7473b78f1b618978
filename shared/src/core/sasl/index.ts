export * from './client.ts';
export * from './mechanisms.ts';
export * from './server.ts';
