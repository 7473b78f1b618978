/**
 * The documentation's code cannot drift from the code:
 *  - every page that includes an example file (`<!-- example: … -->`) shows it byte for byte;
 *  - the example files type-check (Node examples and Workers examples, each with their types);
 *  - every other TypeScript block in docs/ and the README compiles on its own;
 *  - the runnable examples run and print what the pages say they print.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDevState } from '../../scripts/lib/dev-state.ts';
import {
  documentationPages,
  fencedBlocks,
  isTypeScript,
  syncIncludes,
} from '../../scripts/lib/doc-examples.ts';
import { checkProject, checkSnippets, readProject, type Snippet } from './support/typecheck.ts';

const REPO = resolve(import.meta.dirname, '../..');
const EXAMPLES = join(REPO, 'docs/examples');
const rel = (p: string) => relative(REPO, p);
const pages = documentationPages(REPO);

describe('documentation examples', () => {
  it('pages show their included example files exactly (fix: npx node scripts/docs-examples.ts --write)', () => {
    const drifted = pages.filter((page) => {
      const text = readFileSync(page, 'utf8');
      return syncIncludes(page, text) !== text;
    });
    expect(drifted.map(rel)).toEqual([]);
  });

  it('every include marker points at an example that exists and is type-checked', () => {
    // The files each project compiles (the next two tests compile them).
    const node = new Set(readProject(join(EXAMPLES, 'tsconfig.json')).fileNames.map((f) => resolve(f)));
    const workers = new Set(
      readProject(join(EXAMPLES, 'workers/tsconfig.json')).fileNames.map((f) => resolve(f)),
    );
    const unchecked: string[] = [];
    for (const page of pages) {
      for (const block of fencedBlocks(readFileSync(page, 'utf8'))) {
        if (!block.include) continue;
        const file = resolve(dirname(page), block.include.file);
        if (isTypeScript(block) && !node.has(file) && !workers.has(file))
          unchecked.push(`${rel(page)}:${block.line} -> ${rel(file)}`);
      }
    }
    expect(unchecked).toEqual([]);
  });

  it('Node examples type-check (docs/examples/tsconfig.json)', { timeout: 60_000 }, () => {
    const { files, errors } = checkProject(join(EXAMPLES, 'tsconfig.json'));
    expect(files.length).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  });

  const workersExamples = readProject(join(EXAMPLES, 'workers/tsconfig.json')).fileNames;
  it.skipIf(workersExamples.length === 0)(
    'Workers examples type-check (docs/examples/workers/tsconfig.json)',
    {
      timeout: 60_000,
    },
    () => {
      const { errors } = checkProject(join(EXAMPLES, 'workers/tsconfig.json'));
      expect(errors).toEqual([]);
    },
  );

  it('every inline TypeScript block in docs/ and the README compiles', { timeout: 60_000 }, () => {
    const node: Snippet[] = [];
    const workers: Snippet[] = [];
    for (const page of pages) {
      for (const block of fencedBlocks(readFileSync(page, 'utf8'))) {
        if (!isTypeScript(block) || block.include) continue;
        const signature = block.flags.includes('signature');
        const forWorkers =
          block.flags.includes('workers') ||
          /from ['"]cloudflare:|@smtp-edge\/protocol\/workers|WorkerEntrypoint|ExportedHandler|\bService<|\bFetcher\b|\bExecutionContext\b/.test(
            block.code,
          );
        // Reference pages list APIs with short fragments; elsewhere a block is a complete program
        // unless marked ```ts fragment.
        const fragment = block.flags.includes('fragment') || rel(page).startsWith('docs/reference/');
        const snippet: Snippet = {
          path: join(
            dirname(page),
            `${basename(page, '.md')}.md-line${block.line}${signature ? '.d.ts' : '.ts'}`,
          ),
          code: block.code,
          origin: `${rel(page)}:${block.line}`,
          fragment: fragment && !signature,
          preludeModules: forWorkers
            ? ['@smtp-edge/protocol', '@smtp-edge/protocol/workers']
            : ['@smtp-edge/protocol', '@smtp-edge/protocol/node'],
        };
        (forWorkers ? workers : node).push(snippet);
      }
    }
    const errors = [
      ...checkSnippets(join(EXAMPLES, 'tsconfig.json'), node),
      ...checkSnippets(join(EXAMPLES, 'workers/tsconfig.json'), workers),
    ];
    expect(errors).toEqual([]);
  });
});

/** Examples that run on Node as they are, and lines each must print. */
const RUNNABLE: { file: string; prints: RegExp[] }[] = [
  {
    file: 'compose-message.ts',
    prints: [
      /^Message-ID: <[0-9a-f.]+@example\.org>$/m,
      /^envelope\.to: zoe@example\.org, ops@example\.org$/m,
    ],
  },
  {
    file: 'library-round-trip.ts',
    prints: [
      /^server: \d+ octets from <app@example\.org> to zoe@example\.org$/m,
      /^client: accepted zoe@example\.org$/m,
      /^client: rejected eve@elsewhere\.example: 550 5\.7\.1 Relaying denied$/m,
      /^client: final reply 250 2\.0\.0 Ok: queued as \S+$/m,
    ],
  },
  {
    file: 'tls-and-submission.ts',
    prints: [
      /^server: \d+ octets for bob@example\.net \(TLSv1\.[23], user alice\)$/m,
      /^client: STARTTLS 250, implicit TLS 250$/m,
    ],
  },
  {
    file: 'validate-recipients.ts',
    prints: [
      /^server: message for zoe@example\.org$/m,
      /^client: rejected nobody@example\.org: 550 5\.1\.1 No such user here$/m,
      /^client: rejected someone@elsewhere\.example: 550 5\.7\.1 Relaying denied$/m,
    ],
  },
  {
    file: 'limits-and-shutdown.ts',
    prints: [
      /^client: accepted a@example\.org, b@example\.org$/m,
      /^client: rejected c@example\.org: 452 4\.5\.3 /m,
      /^server: closed, 0 connections left$/m,
    ],
  },
  {
    file: 'request-dsn.ts',
    prints: [
      /^server: RET=HDRS ENVID=invoice-2026-0042$/m,
      /^server: zoe@example\.org NOTIFY=FAILURE,DELAY ORCPT=rfc822;zoe@example\.org$/m,
    ],
  },
  {
    file: 'transfer-with-bdat.ts',
    prints: [/^server: 4256 octets, BODY=BINARYMIME$/m, /^client: 250 2\.0\.0 /m],
  },
  {
    file: 'handle-errors.ts',
    prints: [
      /^busy server: \{\s+status: 'retry',\s+reason: '\w+: 451 4\.3\.0 Storage busy, try again later'\s+\}$/m,
      /^server gone: \{\s+status: 'retry',/m,
      /^bad address: \{\s+status: 'failed',\s+reason: 'message: /m,
    ],
  },
];

/** Examples that need more around them, and the test that runs them. */
const RUN_ELSEWHERE: Record<string, string> = {
  'read-from-s3.ts': 'test/docs/receiver-tutorial.test.ts (with s3rver and the receiver)',
};

describe('runnable examples', () => {
  // The TLS examples use npm start's development certificate; give them a fresh one.
  const stateDir = mkdtempSync(join(tmpdir(), 'smtp-edge-examples-'));
  ensureDevState(stateDir, { host: 'localhost', port: 2587 });
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  for (const example of RUNNABLE) {
    it(`docs/examples/${example.file} runs`, { timeout: 60_000 }, () => {
      const r = spawnSync(process.execPath, [join(EXAMPLES, example.file)], {
        cwd: REPO,
        env: { ...process.env, SMTP_EDGE_STATE_DIR: stateDir },
        encoding: 'utf8',
        timeout: 50_000,
      });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
      for (const pattern of example.prints) expect(r.stdout).toMatch(pattern);
    });
  }

  it('every Node example is run by a test', () => {
    const files = readProject(join(EXAMPLES, 'tsconfig.json')).fileNames.map((f) => basename(f));
    expect(files.sort()).toEqual([...RUNNABLE.map((e) => e.file), ...Object.keys(RUN_ELSEWHERE)].sort());
  });
});
