export * from './bdat.ts';
export * from './command.ts';
export * from './dot-reader.ts';
export * from './dot-writer.ts';
export * from './input.ts';
export * from './params.ts';
export * from './proxy.ts';
export * from './reply.ts';
