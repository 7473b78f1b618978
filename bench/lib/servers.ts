/**
 * SMTP servers under test, each in its own process so the load generator, the server and the
 * bench driver never share a CPU thread: our engine, nodemailer's smtp-server and postfix
 * smtp-sink.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, cpuMs, freePort, NodeChild, stop, track, waitForPort } from './proc.ts';

export type ServerKind = 'ours' | 'ours-delay100' | 'smtp-server' | 'smtp-server-nodelay' | 'smtp-sink';

export const SERVER_LABEL: Record<ServerKind, string> = {
  ours: 'ours',
  'ours-delay100': 'ours (100 ms greeting delay)',
  'smtp-server': 'smtp-server',
  'smtp-server-nodelay': 'smtp-server (greeting delay patched to 0)',
  'smtp-sink': 'smtp-sink',
};

export interface RunningServer {
  kind: ServerKind;
  label: string;
  port: number;
  pid: number;
  cpuMs(): number;
  /** Messages the server accepted so far (null when it cannot tell: smtp-sink). */
  accepted(): Promise<number | null>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra smtp-sink flags, e.g. `-p` (no PIPELINING). */
  sinkFlags?: string[];
  /** Extra Node flags for Node servers (e.g. `--cpu-prof`). */
  execArgv?: string[];
}

export async function startServer(kind: ServerKind, options: StartOptions = {}): Promise<RunningServer> {
  if (kind === 'smtp-sink') return startSink(options.sinkFlags ?? []);
  const script =
    kind === 'ours' || kind === 'ours-delay100'
      ? join(BENCH_DIR, 'peers/ours-server.ts')
      : join(BENCH_DIR, 'peers/smtp-server-peer.ts');
  const args =
    kind === 'ours-delay100' ? ['--delay=100'] : kind === 'smtp-server-nodelay' ? ['--no-delay'] : [];
  const child = new NodeChild(script, { args, execArgv: options.execArgv ?? [] });
  const ready = await child.ready;
  return {
    kind,
    label: SERVER_LABEL[kind],
    port: ready['port'] as number,
    pid: child.pid,
    cpuMs: () => child.cpuMs(),
    accepted: async () => (await child.request({ type: 'stats' }, 10_000))['messages'] as number,
    stop: () => child.stop(),
  };
}

/** postfix smtp-sink: as root it must drop privileges (`-u nobody`); -m raises its connection cap. */
export async function startSink(flags: string[]): Promise<RunningServer> {
  const port = await freePort();
  const root = process.getuid?.() === 0;
  const child = track(
    spawn(
      '/usr/sbin/smtp-sink',
      [...(root ? ['-u', 'nobody'] : []), '-m', '1000', ...flags, `127.0.0.1:${port}`, '4096'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    ),
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  try {
    await waitForPort(port);
  } catch (e) {
    await stop(child);
    throw new Error(`smtp-sink did not start: ${stderr || String(e)}`);
  }
  const pid = child.pid!;
  return {
    kind: 'smtp-sink',
    label: SERVER_LABEL['smtp-sink'],
    port,
    pid,
    cpuMs: () => cpuMs(pid),
    accepted: async () => null,
    stop: () => stop(child),
  };
}
