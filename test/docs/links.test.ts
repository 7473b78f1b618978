/**
 * Every relative link in the documentation (docs/**, the README, rfcs/**) points at a file that
 * exists, and every `#anchor` into a Markdown page matches one of its headings.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fencedBlocks } from '../../scripts/lib/doc-examples.ts';

const REPO = resolve(import.meta.dirname, '../..');

function markdownFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.md') && !e.parentPath.includes('node_modules'))
    .map((e) => join(e.parentPath, e.name));
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let text = markdown;
  // Headings inside code blocks are not headings.
  for (const block of fencedBlocks(markdown).reverse())
    text = text.slice(0, block.codeStart) + text.slice(block.codeEnd);
  for (const line of text.split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = (m[1] as string)
      .toLowerCase()
      .replace(/`/g, '')
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Links outside code: `[text](target)`, not images of remote URLs, not mailto. */
function links(markdown: string): string[] {
  let text = markdown;
  for (const block of fencedBlocks(markdown).reverse())
    text = text.slice(0, block.codeStart) + text.slice(block.codeEnd);
  text = text.replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1] as string);
}

const pages = [
  ...markdownFiles(join(REPO, 'docs')),
  ...markdownFiles(join(REPO, 'rfcs')),
  join(REPO, 'README.md'),
];

describe('documentation links', () => {
  it('finds the pages', () => {
    expect(pages.length).toBeGreaterThan(20);
  });

  it('every relative link resolves, anchors included', () => {
    const broken: string[] = [];
    for (const page of pages) {
      for (const target of links(readFileSync(page, 'utf8'))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [path = '', anchor] = target.split('#');
        const file = path === '' ? page : resolve(dirname(page), decodeURIComponent(path));
        if (!existsSync(file)) {
          broken.push(`${relative(REPO, page)}: ${target} (no such file)`);
          continue;
        }
        if (
          anchor &&
          statSync(file).isFile() &&
          file.endsWith('.md') &&
          !anchors(readFileSync(file, 'utf8')).has(anchor)
        ) {
          broken.push(`${relative(REPO, page)}: ${target} (no heading #${anchor})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('the documentation map links every page under docs/', () => {
    const index = readFileSync(join(REPO, 'docs/index.md'), 'utf8');
    const linked = new Set(
      links(index).map((t) => resolve(join(REPO, 'docs'), (t.split('#')[0] ?? '') || 'index.md')),
    );
    const missing = markdownFiles(join(REPO, 'docs'))
      .filter((p) => !p.endsWith('docs/index.md') && !p.includes('/examples/'))
      .filter((p) => !linked.has(p))
      .map((p) => relative(REPO, p));
    expect(missing).toEqual([]);
  });

  it('every repository path named in backticks exists', () => {
    // Files a guide tells the reader to create themselves.
    const created = new Set(['infra/users', 'infra/.env', 'infra/tls']);
    const expand = (p: string): string[] => {
      const m = /\{([^{}]*)\}/.exec(p);
      if (!m) return [p];
      const head = p.slice(0, m.index);
      const tail = p.slice(m.index + m[0].length);
      return (m[1] as string).split(',').flatMap((x) => expand(head + x + tail));
    };
    const missing: string[] = [];
    for (const page of pages) {
      const text = readFileSync(page, 'utf8');
      for (const m of text.matchAll(
        /`((?:shared|receiver|workers|infra|scripts|test|docs|bench|rfcs)\/[\w./{},-]*)`/g,
      )) {
        for (const path of expand(m[1] as string)) {
          if (created.has(path) || existsSync(join(REPO, path))) continue;
          // Build outputs (`shared/dist/`) are git-ignored: named, but absent from a fresh checkout.
          if (spawnSync('git', ['check-ignore', '-q', path], { cwd: REPO }).status === 0) continue;
          missing.push(`${relative(REPO, page)}: ${path}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});
