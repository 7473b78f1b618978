#!/usr/bin/env node
/**
 * Copy the example files into the documentation pages that include them
 * (`<!-- example: examples/x.ts -->` before a fenced block), or check that they agree.
 *
 *   npx node scripts/docs-examples.ts          # check: exit 1 and list the pages that drifted
 *   npx node scripts/docs-examples.ts --write  # rewrite the pages from the example files
 *
 * test/docs/examples.test.ts runs the same check, and type-checks and runs the examples.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { documentationPages, syncIncludes } from './lib/doc-examples.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const write = process.argv.includes('--write');
let drifted = 0;
for (const page of documentationPages(repo)) {
  const text = readFileSync(page, 'utf8');
  const synced = syncIncludes(page, text);
  if (synced === text) continue;
  drifted++;
  if (write) {
    writeFileSync(page, synced);
    process.stdout.write(`updated ${relative(repo, page)}\n`);
  } else {
    process.stdout.write(`out of date: ${relative(repo, page)}\n`);
  }
}
if (!write && drifted > 0) {
  process.stdout.write(
    'Run `npx node scripts/docs-examples.ts --write` to copy the examples into the pages.\n',
  );
  process.exit(1);
}
