/**
 * Code examples in the documentation, kept honest.
 *
 * A TypeScript block in a Markdown page is either
 *  - an *included* example: the line before the fence is `<!-- example: examples/name.ts -->`
 *    (a path relative to the page, optionally `#region`), and the block must equal that file (or the
 *    lines between `// #region name` and `// #endregion name`). The files are type-checked, and the
 *    runnable ones are run, by test/docs/examples.test.ts. `scripts/docs-examples.ts --write`
 *    copies the files into the pages; or
 *  - an *inline* block: compiled on its own, in memory, as a module next to the page (```ts), or as
 *    a declaration file for API signatures (```ts signature).
 * Either way, no TypeScript in the docs escapes the compiler.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export interface FencedBlock {
  /** The info string's first word (`ts`, `sh`, …) and the rest (`signature`, …). */
  lang: string;
  flags: string[];
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** Offsets of the code inside the page (for rewriting). */
  codeStart: number;
  codeEnd: number;
  include: { file: string; region: string | null } | null;
}

const TS_LANGS = new Set(['ts', 'typescript', 'tsx']);
export const isTypeScript = (b: FencedBlock) => TS_LANGS.has(b.lang);

const MARKER = /^<!--\s*example:\s*(\S+?)(?:#([\w-]+))?\s*-->$/;

/** Fenced code blocks of a Markdown text (``` or ~~~ fences, no indentation handling beyond 3 spaces). */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  const lines = markdown.split('\n');
  let offset = 0;
  let lastNonEmpty: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const open = /^ {0,3}(`{3,}|~{3,})\s*([\w-]*)\s*(.*)$/.exec(line);
    if (!open) {
      if (line.trim() !== '') lastNonEmpty = line.trim();
      offset += line.length + 1;
      continue;
    }
    const fence = open[1] as string;
    const marker = lastNonEmpty === null ? null : MARKER.exec(lastNonEmpty);
    const codeStart = offset + line.length + 1;
    let j = i + 1;
    let cursor = codeStart;
    while (
      j < lines.length &&
      !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[j] as string)
    ) {
      cursor += (lines[j] as string).length + 1;
      j++;
    }
    blocks.push({
      lang: (open[2] ?? '').toLowerCase(),
      flags: (open[3] ?? '').split(/\s+/).filter(Boolean),
      code: markdown.slice(codeStart, cursor),
      line: i + 1,
      codeStart,
      codeEnd: cursor,
      include: marker ? { file: marker[1] as string, region: marker[2] ?? null } : null,
    });
    // Skip past the closing fence.
    offset = cursor + (j < lines.length ? (lines[j] as string).length + 1 : 0);
    i = j;
    lastNonEmpty = null;
  }
  return blocks;
}

/** The text an include marker refers to: the whole file, or one `// #region` of it. */
export function exampleText(file: string, region: string | null): string {
  const text = readFileSync(file, 'utf8');
  if (region === null) return text;
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `// #region ${region}`);
  const end = lines.findIndex((l, i) => i > start && l.trim() === `// #endregion ${region}`);
  if (start < 0 || end < 0) throw new Error(`${file}: no "// #region ${region}" … "// #endregion ${region}"`);
  const body = lines.slice(start + 1, end);
  // Remove the common indentation so a region inside a function reads naturally.
  const indent = Math.min(
    ...body.filter((l) => l.trim() !== '').map((l) => (/^ */.exec(l) as RegExpExecArray)[0].length),
  );
  return `${body.map((l) => l.slice(Number.isFinite(indent) ? indent : 0)).join('\n')}\n`;
}

/** The page with every included block replaced by the current file contents. */
export function syncIncludes(pagePath: string, markdown: string): string {
  let out = '';
  let last = 0;
  for (const block of fencedBlocks(markdown)) {
    if (!block.include) continue;
    const source = resolve(dirname(pagePath), block.include.file);
    out += markdown.slice(last, block.codeStart) + exampleText(source, block.include.region);
    last = block.codeEnd;
  }
  return out + markdown.slice(last);
}

/** Every Markdown page whose code the tests check: `docs/**` and the README. */
export function documentationPages(repo: string): string[] {
  const pages: string[] = [join(repo, 'README.md'), join(repo, 'shared/README.md')];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules') walk(path);
      else if (entry.isFile() && entry.name.endsWith('.md')) pages.push(path);
    }
  };
  walk(join(repo, 'docs'));
  return pages.sort();
}

export const relativeTo = (repo: string, path: string) => relative(repo, path);
