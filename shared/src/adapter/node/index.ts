export * from './client.ts';
export * from './server.ts';
export * from './transport.ts';
