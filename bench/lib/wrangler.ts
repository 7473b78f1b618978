/**
 * A Worker under the local Workers runtime: `wrangler dev` (workerd) with a generated config in
 * the bench work directory, so no `.dev.vars` or user config is picked up. Run with this
 * script's Node (22) and with metrics and the `Request.cf` download off.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuMs, freePort, REPO_DIR, sleep, stop, track } from './proc.ts';

export interface WranglerWorker {
  url: string;
  pid: number;
  /** The port of wrangler's inspector proxy (Chrome DevTools Protocol; targets at /json). */
  inspectorPort: number;
  /** CPU ms of the workerd processes started by this wrangler. */
  workerdCpuMs(): number;
  /** CPU ms of the wrangler (Node) process itself. */
  wranglerCpuMs(): number;
  stop(): Promise<void>;
}

function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(d), ppid);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, parent] of parents) {
      if (parent === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

export async function startWorker(options: {
  name: string;
  main: string;
  dir: string;
  vars: Record<string, string>;
  caCertPath?: string;
  compatibilityDate?: string;
}): Promise<WranglerWorker> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const config = join(options.dir, `${options.name}.toml`);
  const vars = Object.entries(options.vars)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join('\n');
  writeFileSync(
    config,
    `name = ${JSON.stringify(options.name)}\nmain = ${JSON.stringify(options.main)}\ncompatibility_date = ${JSON.stringify(options.compatibilityDate ?? '2025-11-17')}\n\n[vars]\n${vars}\n`,
  );
  const child = track(
    spawn(
      process.execPath,
      [
        join(REPO_DIR, 'node_modules/wrangler/bin/wrangler.js'),
        'dev',
        '--config',
        config,
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--inspector-port',
        String(inspectorPort),
        '--show-interactive-dev-session=false',
        '--log-level',
        'warn',
      ],
      {
        cwd: options.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: false,
        env: {
          ...process.env,
          CLOUDFLARE_CF_FETCH_ENABLED: 'false',
          WRANGLER_SEND_METRICS: 'false',
          ...(options.caCertPath ? { NODE_EXTRA_CA_CERTS: options.caCertPath } : {}),
        },
      },
    ),
  );
  let output = '';
  const collect = (d: string): void => {
    if (output.length < 50_000) output += d;
  };
  child.stdout?.setEncoding('utf8').on('data', collect);
  child.stderr?.setEncoding('utf8').on('data', collect);
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited: ${output.slice(-3000)}`);
    try {
      const res = await fetch(`${url}/__bench_ready`);
      await res.arrayBuffer();
      break;
    } catch {
      if (Date.now() > until) {
        await stop(child);
        throw new Error(`wrangler dev did not answer in 60 s: ${output.slice(-3000)}`);
      }
      await sleep(200);
    }
  }
  const pid = child.pid!;
  const workerd = (): number[] => descendants(pid).filter((p) => comm(p).startsWith('workerd'));
  return {
    url,
    pid,
    inspectorPort,
    workerdCpuMs: () =>
      workerd().reduce((sum, p) => {
        try {
          return sum + cpuMs(p);
        } catch {
          return sum;
        }
      }, 0),
    wranglerCpuMs: () => cpuMs(pid),
    async stop() {
      await stop(child, 5_000);
    },
  };
}
