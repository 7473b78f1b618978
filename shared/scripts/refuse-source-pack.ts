/**
 * `prepack` of shared/package.json: stops `npm pack -w shared` and `npm publish -w shared`, which
 * would ship the TypeScript sources that Node cannot run from node_modules. The publishable package
 * is the generated directory (see build.ts): `npm run build`, then `npm pack ./shared/dist` or
 * `npm publish ./shared/dist`.
 */
console.error(
  [
    'error: shared/ is the source workspace of @smtp-edge/protocol; its exports are .ts files that Node',
    'cannot run from node_modules. Build and pack the compiled package instead:',
    '  npm run build && npm pack ./shared/dist      (or: npm publish ./shared/dist)',
    'See docs/how-to/use-the-package-from-npm.md.',
  ].join('\n'),
);
process.exitCode = 1;
