/**
 * postfix `smtp-source` as the load generator (a C program: it costs the machine little and is
 * the same for every server). One message per connection unless `reuse` (-d).
 */
import { run } from './proc.ts';

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
  const res = await run('/usr/sbin/smtp-source', args, { timeoutMs: o.timeoutMs ?? 120_000 });
  if (res.code !== 0) {
    throw new Error(
      `smtp-source ${args.join(' ')} failed (${res.code ?? res.signal}): ${res.stderr.trim().slice(0, 500)}`,
    );
  }
  return { wallMs: res.wallMs, rate: o.messages / (res.wallMs / 1000) };
}
