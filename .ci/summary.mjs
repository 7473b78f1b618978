// Reads vitest JSON reports and prints the closing line CI reads: `N passed, N failed, N skipped`.
// Extra checks (lint, typecheck) count as one test each: `--extra name=exitcode`.
import { existsSync, readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--extra') {
    const [name, code] = args[++i].split('=');
    if (code === '0') passed++;
    else {
      failed++;
      console.log(`FAILED check: ${name}`);
    }
    continue;
  }
  if (!existsSync(arg)) {
    console.log(`missing report ${arg}: counted as one failure`);
    failed++;
    continue;
  }
  const report = JSON.parse(readFileSync(arg, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  // A file that failed to load (syntax error, failing beforeAll) has no test results: count it.
  for (const file of report.testResults ?? []) {
    if (file.status === 'failed' && (file.assertionResults ?? []).every((t) => t.status !== 'failed')) {
      console.log(`FAILED file: ${file.name}: ${String(file.message ?? '').split('\n')[0]}`);
      failed++;
    }
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
