/**
 * rfcs/README.md shows the conformance matrix's current status (scripts/rfc-status.ts), and the
 * row parser reads tables the way the files write them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRows, summary, withSummary } from '../../scripts/rfc-status.ts';

const REPO = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'smtp-edge-rfc-status-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('rfcs/README.md status', () => {
  it('is up to date with rfcs/conformance (fix: npx node scripts/rfc-status.ts --write)', () => {
    const readme = readFileSync(join(REPO, 'rfcs/README.md'), 'utf8');
    const current = summary(readRows(join(REPO, 'rfcs/conformance')));
    expect(withSummary(readme, current)).toBe(readme);
  });

  it('every row of the matrix has a status it recognises', () => {
    const rows = readRows(join(REPO, 'rfcs/conformance'));
    expect(rows.length).toBeGreaterThan(100);
    expect(
      rows.filter((r) => r.status === 'other').map((r) => `${r.file}: ${r.requirement} -> ${r.detail}`),
    ).toEqual([]);
  });
});

describe('readRows', () => {
  it('reads status tables only, with escaped pipes and statuses that carry a reason', () => {
    writeFileSync(
      join(dir, 'a.md'),
      [
        '# A',
        '',
        '| not | a status table |',
        '| --- | --- |',
        '| x | y |',
        '',
        '| requirement | RFC section | where | test | status |',
        '| --- | --- | --- | --- | --- |',
        '| MUST do `a \\| b` | RFC 1 section 2 | x.ts | t | done |',
        '| SHOULD do c | RFC 1 | — | — | gap: not yet |',
        '| MAY do d | RFC 1 | y.ts | — | **partial** (no test) |',
        '',
      ].join('\n'),
    );
    const rows = readRows(dir);
    expect(rows.map((r) => [r.requirement, r.status, r.detail])).toEqual([
      ['MUST do `a \\| b`', 'done', 'done'],
      ['SHOULD do c', 'gap', 'gap: not yet'],
      ['MAY do d', 'partial', '**partial** (no test)'],
    ]);
    const text = summary(rows);
    expect(text).toContain('| [`conformance/a.md`](conformance/a.md) | 3 | 1 | 1 | 1 | 0 |');
    expect(text).toContain('- `a.md`: SHOULD do c (gap: not yet)');
  });
});
