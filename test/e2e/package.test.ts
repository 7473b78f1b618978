/**
 * @smtp-edge/protocol as npm users get it: built (shared/scripts/build.ts) into a temporary
 * directory, packed with `npm pack`, installed from the tarball into a fresh project with
 * `npm install --offline`, then used from node_modules with this Node 22 (`process.execPath`),
 * where Node refuses to strip TypeScript types. Checks: the tarball's contents and manifest,
 * imports and a real SMTP round trip through the installed package, the core entry's import graph
 * (no `node:*`, no `cloudflare:*`), the declarations under a NodeNext consumer with
 * `skipLibCheck: false`, and the installed `smtp-edge-send` bin (--help, and a real send).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compiledBin,
  compiledExports,
  publishedManifest,
  rewriteDeclarationSpecifiers,
} from '../../shared/scripts/build.ts';
import { createSmtpServer, type NodeSmtpServer } from '../../shared/src/adapter/node/index.ts';
import type { SmtpServerHandler } from '../../shared/src/index.ts';

const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const buildScript = join(repoDir, 'shared/scripts/build.ts');
const require = createRequire(import.meta.url);
const tscBin = require.resolve('typescript/bin/tsc');
const wranglerBin = join(dirname(require.resolve('wrangler/package.json')), 'bin/wrangler.js');

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment for child processes: Node 22 first on PATH (npm's and the bin's `#!/usr/bin/env
 * node` then run on it), and no `npm_*` variables from an enclosing `npm test` (an inherited
 * workspace or prefix setting would redirect the nested npm commands into the repository).
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith('npm_')) env[key] = value;
  }
  env.PATH = [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter);
  env.npm_config_update_notifier = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_audit = 'false';
  env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
  env.WRANGLER_SEND_METRICS = 'false';
  return env;
}

/** Runs a command without blocking this process (the bin test talks to a server in it). */
function run(command: string, args: string[], cwd: string): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

async function mustRun(command: string, args: string[], cwd: string): Promise<RunResult> {
  const result = await run(command, args, cwd);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

function filesUnder(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path, base) : [path.slice(base.length + 1)];
  });
}

/** Module specifiers of static imports/re-exports and dynamic `import('…')` in compiled JS. */
function specifiers(js: string): string[] {
  const code = js.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\b[^'";]*?\bfrom\s*(['"])([^'"]+)\1/g,
    /\bimport\s*(['"])([^'"]+)\1/g,
    /\bimport\s*\(\s*(['"])([^'"]+)\1\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) found.push(match[2]!);
  }
  return found;
}

/** Every non-relative specifier reachable from `entry` through relative imports. */
function externalImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const external = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('./') || spec.startsWith('../')) queue.push(resolve(dirname(file), spec));
      else external.add(spec);
    }
  }
  return external;
}

const EXPECTED_EXPORTS = {
  '.': { types: './src/index.d.ts', default: './src/index.js' },
  './node': { types: './src/adapter/node/index.d.ts', default: './src/adapter/node/index.js' },
  './workers': { types: './src/adapter/workers/index.d.ts', default: './src/adapter/workers/index.js' },
};

let work: string;
let app: string;
let installed: string;
let packedFiles: { path: string; mode: number }[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'smtp-edge-package-'));
  const pkgDir = join(work, 'package');
  await mustRun(process.execPath, [buildScript, '--out-dir', pkgDir], repoDir);

  const packed = await mustRun('npm', ['pack', pkgDir, '--pack-destination', work, '--json'], work);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string; mode: number }[] }[];
  packedFiles = info!.files;

  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await mustRun(
    'npm',
    ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', join(work, info!.filename)],
    app,
  );
  installed = join(app, 'node_modules/@smtp-edge/protocol');
}, 120_000);

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('the build script', () => {
  it('maps exports and bin from .ts sources to compiled files, and refuses shapes it cannot map', () => {
    expect(compiledExports({ '.': './src/index.ts', './node': './src/adapter/node/index.ts' })).toEqual({
      '.': { types: './src/index.d.ts', default: './src/index.js' },
      './node': { types: './src/adapter/node/index.d.ts', default: './src/adapter/node/index.js' },
    });
    expect(compiledExports('./src/index.ts')).toEqual({
      '.': { types: './src/index.d.ts', default: './src/index.js' },
    });
    expect(() => compiledExports({ '.': { import: './src/index.ts' } })).toThrow(/only string targets/);
    expect(() => compiledExports({ '.': './src/index.js' })).toThrow(/expected a relative \.ts path/);
    expect(() => compiledExports({ '.': 'src/index.ts' })).toThrow(/expected a relative \.ts path/);
    expect(compiledBin('./bin/tool.ts', '@scope/tool')).toEqual({ tool: './bin/tool.js' });
    expect(compiledBin({ a: './bin/a.ts' }, 'x')).toEqual({ a: './bin/a.js' });
  });

  it('drops workspace-only fields and copies the rest', () => {
    const manifest = publishedManifest({
      name: '@smtp-edge/protocol',
      version: '1.2.3',
      private: true,
      scripts: { prepack: 'x' },
      devDependencies: { a: '1' },
      dependencies: { b: '2' },
      exports: { '.': './src/index.ts' },
    });
    expect(manifest).toEqual({
      name: '@smtp-edge/protocol',
      version: '1.2.3',
      dependencies: { b: '2' },
      exports: { '.': { types: './src/index.d.ts', default: './src/index.js' } },
    });
  });

  it('rewrites relative .ts specifiers in declarations, and nothing else', () => {
    const before = [
      "export * from './core/status.ts';",
      'import type { A } from "../x/y.ts";',
      "export type B = import('./b.ts').B;",
      "import './side.ts';",
      "import type { Socket } from 'node:net';",
      "import type { T } from 'some-pkg/types.ts';",
      '/** see ./notes.ts */',
    ].join('\n');
    expect(rewriteDeclarationSpecifiers(before)).toBe(
      [
        "export * from './core/status.js';",
        'import type { A } from "../x/y.js";',
        "export type B = import('./b.js').B;",
        "import './side.js';",
        "import type { Socket } from 'node:net';",
        "import type { T } from 'some-pkg/types.ts';",
        '/** see ./notes.ts */',
      ].join('\n'),
    );
  });
});

describe('the packed tarball', () => {
  it('holds compiled JS, declarations and source maps, with no TypeScript source and no tests', () => {
    const paths = packedFiles.map((f) => f.path).sort();
    for (const path of ['package.json', 'README.md', 'src/index.js', 'src/index.d.ts', 'src/index.js.map']) {
      expect(paths).toContain(path);
    }
    expect(paths).toContain('bin/smtp-edge-send.js');
    const unexpected = paths.filter(
      (p) => !/\.(js|d\.ts|js\.map)$/.test(p) && !['package.json', 'README.md', 'LICENSE'].includes(p),
    );
    expect(unexpected).toEqual([]);
    expect(paths.filter((p) => /\.test\.|(^|\/)test\//.test(p))).toEqual([]);
    // The bin is executable in the tarball itself.
    expect(packedFiles.find((f) => f.path === 'bin/smtp-edge-send.js')!.mode & 0o111).toBe(0o111);
  });

  it('has a manifest whose exports and bin point at the compiled files only', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(manifest.name).toBe('@smtp-edge/protocol');
    expect(manifest.type).toBe('module');
    expect(manifest.exports).toEqual(EXPECTED_EXPORTS);
    expect(Object.keys(manifest.exports as object)).toEqual(['.', './node', './workers']);
    // `types` first in each condition object, as TypeScript requires.
    for (const entry of Object.values(manifest.exports as Record<string, object>)) {
      expect(Object.keys(entry)).toEqual(['types', 'default']);
    }
    expect(manifest.bin).toEqual({ 'smtp-edge-send': './bin/smtp-edge-send.js' });
    expect(manifest.scripts).toBeUndefined();
    expect(manifest.devDependencies).toBeUndefined();
    const source = JSON.parse(readFileSync(join(repoDir, 'shared/package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(manifest.version).toBe(source.version);
    expect(manifest.engines).toEqual(source.engines);
  });

  it('leaves no relative .ts specifier in any .js or .d.ts file', () => {
    const offenders: string[] = [];
    for (const file of filesUnder(installed)) {
      if (!file.endsWith('.js') && !file.endsWith('.d.ts')) continue;
      const text = readFileSync(join(installed, file), 'utf8');
      if (/(['"])\.{1,2}\/[^'"\n]*\.ts\1/.test(text)) offenders.push(file);
    }
    expect(offenders).toEqual([]);
  });
});

describe('imports from node_modules', () => {
  it('resolve to compiled JS and carry a real SMTP round trip', async () => {
    const script = `
      import { composeMessage, reject, SmtpError } from '@smtp-edge/protocol';
      import { createSmtpServer, sendMail } from '@smtp-edge/protocol/node';
      const resolved = ['@smtp-edge/protocol', '@smtp-edge/protocol/node', '@smtp-edge/protocol/workers']
        .map((s) => import.meta.resolve(s));
      const message = composeMessage({
        from: 'app@example.org', to: ['zoe@example.org', 'eve@elsewhere.example'],
        subject: 'From node_modules', text: 'Hello.\\n',
      });
      let received;
      const server = createSmtpServer({
        rcptTo(_session, rcpt) {
          if (!rcpt.address.endsWith('@example.org')) throw reject(550, '5.7.1', 'Relaying denied');
        },
        async data(_session, _envelope, stream) {
          received = new Uint8Array(await new Response(stream).arrayBuffer());
          return { message: 'Ok: stored' };
        },
      }, { hostname: 'mx.example.org' });
      const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
      const result = await sendMail({ host: '127.0.0.1', port, security: 'none', helo: 'app.example.org' },
        message.envelope, message.bytes);
      await server.close({ deadlineMs: 1000 });
      console.log(JSON.stringify({
        resolved, result, smtpErrorIsClass: typeof SmtpError === 'function',
        sameBytes: received !== undefined && Buffer.compare(Buffer.from(received), Buffer.from(message.bytes)) === 0,
      }));
    `;
    writeFileSync(join(app, 'round-trip.mjs'), script);
    const { stdout } = await mustRun(process.execPath, ['round-trip.mjs'], app);
    const out = JSON.parse(stdout) as {
      resolved: string[];
      result: {
        accepted: string[];
        rejected: { recipient: string; code: number; enhancedCode: string }[];
        response: { code: number; enhancedCode: string; lines: string[] };
      };
      smtpErrorIsClass: boolean;
      sameBytes: boolean;
    };
    const base = `file://${installed}/`;
    expect(out.resolved).toEqual([
      `${base}src/index.js`,
      `${base}src/adapter/node/index.js`,
      `${base}src/adapter/workers/index.js`,
    ]);
    expect(out.result.accepted).toEqual(['zoe@example.org']);
    expect(out.result.rejected).toMatchObject([
      { recipient: 'eve@elsewhere.example', code: 550, enhancedCode: '5.7.1' },
    ]);
    expect(out.result.response).toMatchObject({ code: 250, enhancedCode: '2.0.0', lines: ['Ok: stored'] });
    expect(out.smtpErrorIsClass).toBe(true);
    expect(out.sameBytes).toBe(true);
  });

  it('keep the core entry free of node:* and cloudflare:* imports; the adapters use theirs', () => {
    expect([...externalImports(join(installed, 'src/index.js'))]).toEqual([]);
    // The same walk finds the runtime modules where they belong, so it can fail.
    const node = externalImports(join(installed, 'src/adapter/node/index.js'));
    expect([...node].sort()).toEqual(['node:net', 'node:os', 'node:tls']);
    const workers = externalImports(join(installed, 'src/adapter/workers/index.js'));
    expect([...workers]).toEqual(['cloudflare:sockets']);
  });

  it('type-check for a NodeNext consumer, declarations included (skipLibCheck: false)', async () => {
    // The consumer lives in the app, beside the node_modules its imports resolve from.
    writeFileSync(
      join(app, 'consumer.ts'),
      `import { composeMessage, reject, type SmtpReply, type SmtpServerHandler } from '@smtp-edge/protocol';
import { createSmtpServer, type NodeSmtpServer, sendMail } from '@smtp-edge/protocol/node';
import { connectSmtp as connectFromWorker } from '@smtp-edge/protocol/workers';

const handler: SmtpServerHandler = {
  rcptTo(_session, rcpt) {
    if (rcpt.address.length > 254) throw reject(550, '5.1.3', 'Too long');
  },
  async data() {
    return { message: 'Ok' };
  },
};
export const server: NodeSmtpServer = createSmtpServer(handler, { hostname: 'mx.example.org' });
const message = composeMessage({ from: 'a@example.org', to: 'b@example.org', subject: 's', text: 't' });
export const reply: Promise<SmtpReply> = sendMail({ host: 'localhost', port: 587, security: 'starttls' }, message.envelope, message.bytes)
  .then((result) => result.response);
export const fromWorker: typeof connectFromWorker = connectFromWorker;
// Real types, not any: a wrong option type is an error.
// @ts-expect-error hostname is a string
createSmtpServer(handler, { hostname: 42 });
`,
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(repoDir, 'node_modules/@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    const result = await run(process.execPath, [tscBin, '-p', join(app, 'tsconfig.json')], app);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
  it('bundle for Workers from node_modules (wrangler deploy --dry-run)', async () => {
    mkdirSync(join(app, 'worker'));
    writeFileSync(
      join(app, 'worker/index.js'),
      `import { composeMessage } from '@smtp-edge/protocol';
import { sendMail } from '@smtp-edge/protocol/workers';
export default {
  async fetch() {
    const m = composeMessage({ from: 'a@example.org', to: 'b@example.org', subject: 's', text: 't' });
    return Response.json(await sendMail({ host: 'smtp.example.org', port: 587, security: 'starttls' }, m.envelope, m.bytes));
  },
};
`,
    );
    writeFileSync(
      join(app, 'wrangler.toml'),
      'name = "package-test"\nmain = "worker/index.js"\ncompatibility_date = "2025-11-17"\n',
    );
    const outdir = join(work, 'worker-bundle');
    await mustRun(process.execPath, [wranglerBin, 'deploy', '--dry-run', '--outdir', outdir], app);
    const bundle = readFileSync(join(outdir, 'index.js'), 'utf8');
    // esbuild's path comments: the compiled files from node_modules, and the runtime module kept external.
    expect(bundle).toContain('// node_modules/@smtp-edge/protocol/src/adapter/workers/index.js');
    expect(bundle).toContain('// node_modules/@smtp-edge/protocol/src/core/mime/compose.js');
    expect(bundle).toMatch(/from\s*"cloudflare:sockets"/);
  });
});

describe('the installed smtp-edge-send bin', () => {
  let server: NodeSmtpServer;
  let port: number;
  const received: { from: string; to: string[]; bytes: Uint8Array }[] = [];

  beforeAll(async () => {
    const handler: SmtpServerHandler = {
      async data(_session, envelope, message) {
        received.push({
          from: envelope.mailFrom.address,
          to: envelope.rcptTo.map((r) => r.address),
          bytes: new Uint8Array(await new Response(message).arrayBuffer()),
        });
        return { message: 'Ok: queued' };
      },
    };
    server = createSmtpServer(handler, { hostname: 'mx.example.org' });
    port = (await server.listen({ port: 0, host: '127.0.0.1' })).port;
  });

  afterAll(async () => {
    await server?.close({ deadlineMs: 1_000 });
  });

  it('is linked into node_modules/.bin and answers --help with exit 0', async () => {
    const bin = join(app, 'node_modules/.bin/smtp-edge-send');
    expect(statSync(bin).mode & 0o111).toBe(0o111);
    const result = await run(bin, ['--help'], app);
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith('Usage: smtp-edge-send [options] [FILE|-]\n')).toBe(true);
  });

  it('sends a composed message and prints the one-line JSON result', async () => {
    const bin = join(app, 'node_modules/.bin/smtp-edge-send');
    const args = ['--host', '127.0.0.1', '--port', String(port), '--security', 'none'];
    args.push('--helo', 'cli.example.org', '--from', 'ann@example.org', '--to', 'bob@example.net');
    args.push('--subject', 'From the installed bin', '--text', 'Hello from node_modules.');
    const result = await run(bin, args, app);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.endsWith('\n')).toBe(true);
    expect(result.stdout.trimEnd().includes('\n')).toBe(false);
    expect(JSON.parse(result.stdout)).toMatchObject({
      accepted: ['bob@example.net'],
      rejected: [],
      response: '250 2.0.0 Ok: queued',
    });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ from: 'ann@example.org', to: ['bob@example.net'] });
    const text = new TextDecoder().decode(received[0]!.bytes);
    expect(text).toContain('\r\nSubject: From the installed bin\r\n');
    expect(text.endsWith('Hello from node_modules.\r\n')).toBe(true);
  });
});
