/**
 * `npm run bench`: our SMTP code against named peers, side by side in one run on 127.0.0.1, with
 * ratios (absolute numbers drift on a shared machine; ratios from the same run hold).
 *
 *   npm run bench                         every scenario (about 8 minutes on 2 cores)
 *   npm run bench -- --quick              shorter runs, one round (a smoke test, about 2 minutes)
 *   npm run bench -- --only=engine,client run some scenarios (ids below)
 *   npm run bench -- --no-write           print only; keep bench/results/ as it is
 *   npm run bench -- --no-install         do not apt-get install missing Debian peers (postfix, time, openssl)
 *
 * Scenario ids: engine, s3, client, worker, memory, scaling.
 * Results: bench/results/results.json, results.md and scaling.svg. See docs/explanation/benchmarks.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { preflight } from './lib/preflight.ts';
import { BENCH_DIR, REPO_DIR, stopAll } from './lib/proc.ts';
import { renderMarkdown, renderScalingSvg } from './lib/report.ts';
import type { BenchContext, BenchResults, ScenarioResult } from './lib/types.ts';
import { clientScenario } from './scenarios/client.ts';
import { engineScenario, scalingScenario } from './scenarios/engine.ts';
import { memoryScenario } from './scenarios/memory.ts';
import { s3Scenario } from './scenarios/s3.ts';
import { workerScenario } from './scenarios/worker.ts';

const SCENARIOS: Record<string, (ctx: BenchContext) => Promise<ScenarioResult>> = {
  engine: engineScenario,
  s3: s3Scenario,
  client: clientScenario,
  worker: workerScenario,
  memory: memoryScenario,
  scaling: scalingScenario,
};

function parseArgs(argv: string[]): {
  quick: boolean;
  only: string[] | null;
  write: boolean;
  install: boolean;
  out: string;
} {
  let quick = false;
  let install = true;
  let only: string[] | null = null;
  let write = true;
  let out = join(BENCH_DIR, 'results');
  for (const a of argv) {
    if (a === '--quick') quick = true;
    else if (a === '--no-write') write = false;
    else if (a === '--no-install') install = false;
    else if (a.startsWith('--only=')) only = a.slice(7).split(',').filter(Boolean);
    else if (a.startsWith('--out=')) out = a.slice(6);
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: npm run bench -- [--quick] [--only=engine,s3,client,worker,memory,scaling] [--no-write] [--no-install] [--out=DIR]\n',
      );
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  for (const id of only ?? []) {
    if (!(id in SCENARIOS)) {
      process.stderr.write(`bench: unknown scenario ${id} (known: ${Object.keys(SCENARIOS).join(', ')})\n`);
      process.exit(2);
    }
  }
  return { quick, only, write, install, out };
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR, encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  try {
    preflight({ install: args.install, log: (t) => process.stdout.write(`${t}\n`) });
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 1;
  }
  const workDir = join(BENCH_DIR, 'work', String(process.pid));
  mkdirSync(workDir, { recursive: true });
  const ctx: BenchContext = {
    quick: args.quick,
    targetSeconds: args.quick ? 0.6 : 1.5,
    warmupSeconds: args.quick ? 0.5 : 2,
    rounds: args.quick ? 1 : 3,
    workDir,
    log: (t) => process.stdout.write(`${t}\n`),
  };
  const onSignal = (): void => {
    void stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results: BenchResults = {
    meta: {
      startedAt: new Date().toISOString(),
      finishedAt: '',
      quick: args.quick,
      only: args.only,
      node: process.version,
      cpus: os.cpus()[0]?.model ?? 'unknown',
      cores: os.availableParallelism(),
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      loadAvgStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
      loadAvgEnd: [],
      commit: gitCommit(),
    },
    scenarios: [],
  };
  const ids = args.only ?? Object.keys(SCENARIOS);
  try {
    for (const id of ids) {
      const scenario = SCENARIOS[id]!;
      ctx.log(`\n== ${id}`);
      const t0 = performance.now();
      try {
        results.scenarios.push({
          ...(await scenario(ctx)),
          ranAt: results.meta.startedAt,
          commit: results.meta.commit,
        });
      } catch (e) {
        const err = e as Error;
        ctx.log(`  FAILED: ${err.stack ?? err.message}`);
        results.scenarios.push({
          id,
          title: id,
          method: '',
          rows: [],
          error: err.message,
          durationMs: Math.round(performance.now() - t0),
          ranAt: results.meta.startedAt,
          commit: results.meta.commit,
        });
      } finally {
        await stopAll();
      }
    }
  } finally {
    await stopAll();
    rmSync(workDir, { recursive: true, force: true });
  }
  results.meta.finishedAt = new Date().toISOString();
  results.meta.loadAvgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);

  // The committed run before this one: its target values become the "previous run" column, and
  // a partial (--only) run keeps the scenarios it did not run.
  const previousPath = join(args.out, 'results.json');
  let previous: BenchResults | null = null;
  if (existsSync(previousPath)) {
    try {
      previous = JSON.parse(readFileSync(previousPath, 'utf8')) as BenchResults;
    } catch {
      previous = null;
    }
  }
  if (args.only !== null && previous !== null) {
    const fresh = new Map(results.scenarios.map((s) => [s.id, s]));
    const merged = Object.keys(SCENARIOS)
      .map((id) => fresh.get(id) ?? previous?.scenarios.find((s) => s.id === id))
      .filter((s): s is ScenarioResult => s !== undefined)
      .map((s) =>
        fresh.has(s.id)
          ? s
          : { ...s, ranAt: s.ranAt ?? previous?.meta.startedAt, commit: s.commit ?? previous?.meta.commit },
      );
    results.scenarios = merged as ScenarioResult[];
  }

  const md = renderMarkdown(results, previous);
  process.stdout.write(`\n${md}\n`);
  if (args.write) {
    mkdirSync(args.out, { recursive: true });
    writeFileSync(join(args.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(args.out, 'results.md'), md);
    const svg = renderScalingSvg(results);
    if (svg !== null) writeFileSync(join(args.out, 'scaling.svg'), svg);
    process.stdout.write(`results written to ${args.out}\n`);
  }
  const failed = results.scenarios.filter((s) => s.error !== undefined).length;
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
