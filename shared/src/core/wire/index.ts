export * from './input.ts';
export * from './reply.ts';
