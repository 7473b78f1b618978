export * from './input.ts';
export * from './params.ts';
export * from './reply.ts';
