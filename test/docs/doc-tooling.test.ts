/**
 * The tools that keep the docs honest must themselves be able to fail: block extraction, include
 * syncing, and snippet compilation (complete programs and reference fragments).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exampleText, fencedBlocks, syncIncludes } from '../../scripts/lib/doc-examples.ts';
import { checkSnippets } from './support/typecheck.ts';

const REPO = resolve(import.meta.dirname, '../..');
const TSCONFIG = join(REPO, 'docs/examples/tsconfig.json');
const dir = mkdtempSync(join(tmpdir(), 'smtp-edge-doc-tooling-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fencedBlocks and includes', () => {
  const example = join(dir, 'ex.ts');
  writeFileSync(
    example,
    'const a = 1;\n// #region part\n  const b = a + 1;\n  console.log(b);\n// #endregion part\n',
  );
  const page = join(dir, 'page.md');

  it('finds blocks, their language, flags and include markers', () => {
    const md =
      'Text\n\n<!-- example: ex.ts#part -->\n```ts\nold\n```\n\n```ts fragment\nx;\n```\n\n~~~sh\nls\n~~~\n';
    const blocks = fencedBlocks(md);
    expect(blocks.map((b) => [b.lang, b.flags, b.code, b.line, b.include])).toEqual([
      ['ts', [], 'old\n', 4, { file: 'ex.ts', region: 'part' }],
      ['ts', ['fragment'], 'x;\n', 8, null],
      ['sh', [], 'ls\n', 12, null],
    ]);
  });

  it('copies a region, dedented, into the page, and leaves the rest of the page alone', () => {
    const md = 'A\n<!-- example: ex.ts#part -->\n```ts\nstale\n```\nB\n<!-- example: ex.ts -->\n```ts\n```\n';
    expect(exampleText(example, 'part')).toBe('const b = a + 1;\nconsole.log(b);\n');
    const synced = syncIncludes(page, md);
    expect(synced).toBe(
      'A\n<!-- example: ex.ts#part -->\n```ts\nconst b = a + 1;\nconsole.log(b);\n```\nB\n<!-- example: ex.ts -->\n```ts\n' +
        'const a = 1;\n// #region part\n  const b = a + 1;\n  console.log(b);\n// #endregion part\n```\n',
    );
    expect(syncIncludes(page, synced)).toBe(synced);
  });

  it('names a missing region', () => {
    expect(() => exampleText(example, 'nope')).toThrow(/no "\/\/ #region nope"/);
  });
});

describe('checkSnippets', () => {
  const snippet = (code: string, fragment = false) => ({
    // Virtual files inside the repository, so that package imports resolve as they do for pages.
    path: join(REPO, 'test/docs', `snippet-${Math.random().toString(16).slice(2)}.ts`),
    code,
    origin: 'test.md:1',
    fragment,
    preludeModules: ['@smtp-edge/protocol', '@smtp-edge/protocol/node'],
  });

  it('accepts a correct complete program', () => {
    const code =
      "import { composeMessage } from '@smtp-edge/protocol';\ncomposeMessage({ from: 'a@example.org' });\n";
    expect(checkSnippets(TSCONFIG, [snippet(code)])).toEqual([]);
  });

  it('rejects a complete program with a wrong field', () => {
    const code =
      "import { composeMessage } from '@smtp-edge/protocol';\ncomposeMessage({ form: 'a@example.org' });\n";
    const errors = checkSnippets(TSCONFIG, [snippet(code)]);
    expect(errors.join('\n')).toMatch(/test\.md:1 \(snippet line 2\): .*'form'/);
  });

  it('lets a fragment use exports without imports and placeholders without declarations', () => {
    // `readLine` is two edits from the export `Deadline`: a placeholder, not a misspelling.
    const code = "const r = formatReply(reply(250, '2.0.0', 'Ok'));\nhandle(r, readLine(bytesFromSocket));\n";
    expect(checkSnippets(TSCONFIG, [snippet(code, true)])).toEqual([]);
  });

  it('still catches a misspelt export and a wrong argument in a fragment', () => {
    const misspelt = {
      ...snippet("formatReplly(reply(250, '2.0.0', 'Ok'));\n", true),
      origin: 'misspelt.md:1',
    };
    const wrongType = {
      ...snippet("formatReply(reply('250', '2.0.0', 'Ok'));\n", true),
      origin: 'wrong.md:1',
    };
    const errors = checkSnippets(TSCONFIG, [misspelt, wrongType]).join('\n');
    expect(errors).toMatch(
      /misspelt\.md:1 \(snippet line 1\): Cannot find name 'formatReplly'\. Did you mean 'formatReply'/,
    );
    expect(errors).toMatch(
      /wrong\.md:1 \(snippet line 1\): .*'string' is not assignable to parameter of type 'number'/,
    );
  });
});
