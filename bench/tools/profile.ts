/**
 * Reproduce the CPU profiles behind the findings in bench/results/results.md: run one of our
 * processes under `--cpu-prof` with the same load the benchmark uses, then print the functions
 * with the most self and inclusive time.
 *
 *   npx node bench/tools/profile.ts engine [--sessions=10] [--bytes=10240] [--reuse] [--messages=10000] [--peer=smtp-server]
 *   npx node bench/tools/profile.ts client [--connections=10] [--bytes=10240] [--messages=5000] [--no-pipelining]
 *   npx node bench/tools/profile.ts receiver [--sessions=10] [--bytes=10240] [--messages=1000]
 *
 * A Worker under workerd is profiled through its inspector instead: bench/tools/profile-worker.ts.
 *
 * Profiles are written to bench/work/profiles/ (ignored by git); open them in Chrome DevTools
 * (Performance > Load profile) or speedscope for flame charts.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, cpuMs, NodeChild, REPO_DIR, stop, stopAll, track, waitForPort } from '../lib/proc.ts';
import { s3Env, startS3rver } from '../lib/s3.ts';
import { startServer, startSink } from '../lib/servers.ts';
import { smtpSource } from '../lib/smtp-source.ts';
import { summarize } from './cpuprofile-top.ts';

const [what = 'engine', ...rest] = process.argv.slice(2);
const opt = (name: string, fallback: string): string =>
  rest.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const flag = (name: string): boolean => rest.includes(`--${name}`);

const dir = join(BENCH_DIR, 'work', 'profiles', `${what}-${Date.now()}`);
mkdirSync(dir, { recursive: true });
const profArgs = ['--cpu-prof', `--cpu-prof-dir=${dir}`];

function report(label: string): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  for (const f of files) {
    const s = summarize(join(dir, f), 25);
    process.stdout.write(`\n== ${label}: ${join(dir, f)} (sampled ${s.sampledMs} ms)\nself time:\n`);
    for (const r of s.self)
      process.stdout.write(
        `${String(r.selfMs).padStart(9)} ms ${String(r.selfPct).padStart(5)}%  ${r.name}\n`,
      );
    process.stdout.write('inclusive time:\n');
    for (const r of s.total) process.stdout.write(`${String(r.totalMs).padStart(9)} ms  ${r.name}\n`);
  }
}

try {
  if (what === 'engine') {
    const peer = opt('peer', 'ours') as 'ours' | 'smtp-server';
    const server = await startServer(peer === 'smtp-server' ? 'smtp-server-nodelay' : 'ours', {
      execArgv: profArgs,
    });
    const messages = Number(opt('messages', '10000'));
    const shape = {
      sessions: Number(opt('sessions', '10')),
      bytes: Number(opt('bytes', '10240')),
      reuse: flag('reuse'),
    };
    const cpu0 = server.cpuMs();
    const r = await smtpSource({ ...shape, messages, port: server.port, timeoutMs: 600_000 });
    process.stdout.write(
      `${peer}: ${Math.round(r.rate)} msg/s, ${((server.cpuMs() - cpu0) / messages).toFixed(3)} CPU ms/msg\n`,
    );
    await server.stop();
    report(peer);
  } else if (what === 'client') {
    const sink = await startSink(flag('no-pipelining') ? ['-p'] : []);
    const messages = Number(opt('messages', '5000'));
    const peer = opt('peer', 'ours');
    const child = new NodeChild(
      join(BENCH_DIR, peer === 'nodemailer' ? 'peers/client-nodemailer.ts' : 'peers/client-ours.ts'),
      {
        args: [
          `--port=${sink.port}`,
          `--connections=${opt('connections', '10')}`,
          `--bytes=${opt('bytes', '10240')}`,
        ],
        execArgv: profArgs,
      },
    );
    await child.ready;
    const r = await child.request({ type: 'run', messages }, 600_000);
    const wall = r['wallMs'] as number;
    process.stdout.write(
      `${peer}: ${Math.round(messages / (wall / 1000))} msg/s, ${((r['cpuMs'] as number) / messages).toFixed(3)} CPU ms/msg\n`,
    );
    await child.stop();
    await sink.stop();
    report(peer);
  } else if (what === 'receiver') {
    const s3 = await startS3rver(join(dir, 's3rver'));
    const { freePort } = await import('../lib/proc.ts');
    const port = await freePort();
    const child = track(
      spawn(process.execPath, [...profArgs, join(REPO_DIR, 'receiver/src/main.ts')], {
        stdio: ['ignore', 'ignore', 'inherit'],
        cwd: REPO_DIR,
        env: {
          PATH: process.env['PATH'],
          ...s3Env(s3.port),
          RECEIVER_HOSTNAME: 'mx.bench.test',
          RECEIVER_BIND: '127.0.0.1',
          RECEIVER_MX_PORT: String(port),
          RECEIVER_SUBMISSION_PORT: 'off',
          RECEIVER_SUBMISSIONS_PORT: 'off',
          RECEIVER_HTTP_PORT: 'off',
          RECEIVER_DOMAINS: 'bench.test',
          RECEIVER_STORE: 's3://bench/msgs',
          RECEIVER_S3_FORCE_PATH_STYLE: 'true',
          RECEIVER_MESSAGES_PER_IP_PER_MINUTE: '0',
          RECEIVER_MAX_CONNECTIONS_PER_IP: '2000',
          RECEIVER_LOG_LEVEL: 'warn',
        },
      }),
    );
    await waitForPort(port, 20_000);
    const messages = Number(opt('messages', '1000'));
    const cpu0 = cpuMs(child.pid!);
    const r = await smtpSource({
      sessions: Number(opt('sessions', '10')),
      bytes: Number(opt('bytes', '10240')),
      reuse: true,
      messages,
      port,
      timeoutMs: 600_000,
    });
    process.stdout.write(
      `receiver: ${Math.round(r.rate)} msg/s, ${((cpuMs(child.pid!) - cpu0) / messages).toFixed(3)} CPU ms/msg\n`,
    );
    await stop(child, 10_000);
    await s3.stop();
    rmSync(join(dir, 's3rver'), { recursive: true, force: true });
    report('receiver');
  } else {
    process.stderr.write('usage: profile.ts engine|client|receiver [options]\n');
    process.exitCode = 2;
  }
} finally {
  await stopAll();
}
