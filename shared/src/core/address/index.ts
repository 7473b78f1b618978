export * from './errors.ts';
export * from './path.ts';
export * from './syntax.ts';
