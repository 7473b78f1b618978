export * from './client.ts';
export * from './proxy-protocol.ts';
export * from './server.ts';
export * from './transport.ts';
