/**
 * postfix `smtp-source` as the load generator (a C program: it costs the machine little and is
 * the same for every server). One message per connection unless `reuse` (-d).
 */
import { existsSync } from 'node:fs';
import { run } from './proc.ts';

/** GNU time, when installed, reports smtp-source's own CPU time (user + system). */
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

export interface SourceRun {
  sessions: number;
  messages: number;
  bytes: number;
  reuse: boolean;
  port: number;
  timeoutMs?: number;
}

export interface SourceResult {
  wallMs: number;
  rate: number;
  /** smtp-source's CPU time (ms), when /usr/bin/time is available. */
  sourceCpuMs: number | null;
}

export async function smtpSource(o: SourceRun): Promise<SourceResult> {
  const args = [
    ...(o.reuse ? ['-d'] : []),
    '-s',
    String(o.sessions),
    '-m',
    String(o.messages),
    '-l',
    String(o.bytes),
    '-M',
    'bench.test',
    '-f',
    'sender@bench.test',
    '-t',
    'rcpt@bench.test',
    `127.0.0.1:${o.port}`,
  ];
  const res =
    TIME === null
      ? await run('/usr/sbin/smtp-source', args, { timeoutMs: o.timeoutMs ?? 120_000 })
      : await run(TIME, ['-f', 'BENCH_TIME %U %S', '/usr/sbin/smtp-source', ...args], {
          timeoutMs: o.timeoutMs ?? 120_000,
        });
  if (res.code !== 0) {
    throw new Error(
      `smtp-source ${args.join(' ')} failed (${res.code ?? res.signal}): ${res.stderr.trim().slice(0, 500)}`,
    );
  }
  const t = /BENCH_TIME ([\d.]+) ([\d.]+)/.exec(res.stderr);
  const sourceCpuMs = t ? (Number(t[1]) + Number(t[2])) * 1000 : null;
  return { wallMs: res.wallMs, rate: o.messages / (res.wallMs / 1000), sourceCpuMs };
}
