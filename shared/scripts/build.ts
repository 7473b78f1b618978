/**
 * Builds the publishable @smtp-edge/protocol into a directory of its own (default `shared/dist`):
 *
 *   npm run build                              # at the repository root
 *   npx node shared/scripts/build.ts --out-dir /tmp/protocol
 *   npm pack ./shared/dist   |   npm publish ./shared/dist
 *
 * Why a separate package directory: in this repository every consumer (vitest, wrangler's esbuild,
 * `node receiver/src/main.ts`, the docs examples, `npx smtp-edge-send`) runs the TypeScript sources
 * with no build step, so `shared/package.json` exports `.ts` files. Node refuses to strip types under
 * `node_modules`, so an installed package must point at JavaScript instead. npm cannot swap `exports`
 * at publish time (`publishConfig` only overrides npm config), and a custom export condition would
 * have to be passed by every in-repo tool. So the build writes a second, generated `package.json`
 * next to the compiled files, derived mechanically from `shared/package.json`: each exported
 * `./x.ts` becomes `{ types: ./x.d.ts, default: ./x.js }` and each bin `./x.ts` becomes `./x.js`.
 *
 * Steps: empty the output directory; `tsc -p shared/tsconfig.build.json` (JS with relative `.ts`
 * imports rewritten to `.js`, `.d.ts`, source maps with the sources inlined); rewrite the relative
 * `.ts` specifiers that tsc leaves in `.d.ts` files (microsoft/TypeScript#61037) to `.js`; write the
 * package.json, README.md and LICENSE (shared/'s own, else the repository's, when present); make the bins executable; check
 * that every exports and bin target exists.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const sharedDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoDir = resolve(sharedDir, '..');

/** A condition object in the generated exports: types first, as TypeScript requires. */
interface CompiledEntry {
  types: string;
  default: string;
}

type SourceManifest = Record<string, unknown> & {
  exports?: unknown;
  bin?: unknown;
};

/** Fields of shared/package.json that describe the repository workspace, not the published package. */
const WORKSPACE_ONLY_FIELDS = ['scripts', 'devDependencies', 'files', 'private'] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `./src/x.ts` -> `./src/x` (only relative `.ts` paths are accepted). */
function stem(path: string, where: string): string {
  if (!path.startsWith('./') || !path.endsWith('.ts') || path.endsWith('.d.ts')) {
    throw new Error(`${where}: expected a relative .ts path, got ${JSON.stringify(path)}`);
  }
  return path.slice(0, -'.ts'.length);
}

/** Maps `exports` (a string or a subpath map of strings) from sources to compiled files. */
export function compiledExports(exports: unknown): Record<string, CompiledEntry> {
  const map = typeof exports === 'string' ? { '.': exports } : exports;
  if (!isRecord(map)) {
    throw new Error('package.json exports: expected a string or a subpath map');
  }
  const out: Record<string, CompiledEntry> = {};
  for (const [subpath, target] of Object.entries(map)) {
    if (typeof target !== 'string') {
      // Condition objects would need their own mapping rules; fail rather than publish a guess.
      throw new Error(`package.json exports[${JSON.stringify(subpath)}]: only string targets are supported`);
    }
    const base = stem(target, `exports[${JSON.stringify(subpath)}]`);
    out[subpath] = { types: `${base}.d.ts`, default: `${base}.js` };
  }
  return out;
}

/** Maps `bin` (a string or a name map) from sources to compiled files. */
export function compiledBin(bin: unknown, name: string): Record<string, string> {
  const map = typeof bin === 'string' ? { [name.replace(/^@[^/]+\//, '')]: bin } : bin;
  if (!isRecord(map)) {
    throw new Error('package.json bin: expected a string or a name map');
  }
  const out: Record<string, string> = {};
  for (const [command, target] of Object.entries(map)) {
    if (typeof target !== 'string') throw new Error(`package.json bin[${command}]: expected a path`);
    out[command] = `${stem(target, `bin[${command}]`)}.js`;
  }
  return out;
}

/** The published manifest: shared/package.json minus workspace-only fields, pointing at JS. */
export function publishedManifest(source: SourceManifest): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(source)) {
    if ((WORKSPACE_ONLY_FIELDS as readonly string[]).includes(key)) continue;
    if (key === 'exports') out[key] = compiledExports(value);
    else if (key === 'bin') out[key] = compiledBin(value, String(source.name));
    else out[key] = value;
  }
  return out;
}

/**
 * Relative module specifiers ending in `.ts` in declaration text -> `.js`: `from './x.ts'`,
 * `import './x.ts'`, `import('./x.ts')`. Non-relative specifiers are left alone.
 */
export function rewriteDeclarationSpecifiers(text: string): string {
  return text.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"\n]*?)\.ts\2/g,
    (_m, lead: string, quote: string, path: string) => `${lead}${quote}${path}.js${quote}`,
  );
}

function* filesUnder(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(path);
    else yield path;
  }
}

export function build(outDir: string): void {
  if (resolve(outDir) === sharedDir || resolve(outDir) === repoDir) {
    throw new Error(`refusing to build into ${outDir}: it would be emptied first`);
  }
  rmSync(outDir, { recursive: true, force: true });

  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const compiled = spawnSync(
    process.execPath,
    [tsc, '-p', join(sharedDir, 'tsconfig.build.json'), '--outDir', outDir],
    { stdio: 'inherit' },
  );
  if (compiled.status !== 0) throw new Error(`tsc failed (exit ${compiled.status ?? compiled.signal})`);

  for (const file of filesUnder(outDir)) {
    if (!file.endsWith('.d.ts')) continue;
    const text = readFileSync(file, 'utf8');
    const rewritten = rewriteDeclarationSpecifiers(text);
    if (rewritten !== text) writeFileSync(file, rewritten);
  }

  const source = JSON.parse(readFileSync(join(sharedDir, 'package.json'), 'utf8')) as SourceManifest;
  const manifest = publishedManifest(source);
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  // The package's own README/LICENSE when shared/ has them, else the repository's.
  for (const doc of ['README.md', 'LICENSE']) {
    const from = [join(sharedDir, doc), join(repoDir, doc)].find((path) => existsSync(path));
    if (from !== undefined) copyFileSync(from, join(outDir, doc));
  }

  const targets: string[] = [];
  for (const entry of Object.values(manifest.exports as Record<string, CompiledEntry>)) {
    targets.push(entry.types, entry.default);
  }
  const bins = Object.values((manifest.bin ?? {}) as Record<string, string>);
  for (const target of [...targets, ...bins]) {
    if (!existsSync(join(outDir, target))) throw new Error(`package.json points at ${target}, not built`);
  }
  for (const bin of bins) chmodSync(join(outDir, bin), 0o755);
}

function main(): void {
  const { values } = parseArgs({ options: { 'out-dir': { type: 'string' } } });
  const outDir = resolve(values['out-dir'] ?? join(sharedDir, 'dist'));
  build(outDir);
  console.log(
    `built ${String(JSON.parse(readFileSync(join(outDir, 'package.json'), 'utf8')).name)} into ${outDir}`,
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
