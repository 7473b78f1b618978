/**
 * s3rver (the S3 emulator from npm) and the real receiver (`receiver/src/main.ts`, configured
 * only through RECEIVER_* and AWS_* variables, as in production) for the S3 benchmarks.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpuMs, freePort, REPO_DIR, stop, track, waitForPort } from './proc.ts';

export interface RunningProcess {
  pid: number;
  port: number;
  cpuMs(): number;
  stop(): Promise<void>;
}

export const BUCKET = 'bench';

/** s3rver as its own process (not through npx: killing npx would leave the server running). */
export async function startS3rver(dir: string): Promise<RunningProcess> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = track(
    spawn(
      process.execPath,
      [
        join(REPO_DIR, 'node_modules/s3rver/bin/s3rver.js'),
        '-d',
        dir,
        '-a',
        '127.0.0.1',
        '-p',
        String(port),
        '--silent',
        '--configure-bucket',
        BUCKET,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    ),
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  try {
    await waitForPort(port, 20_000);
  } catch (e) {
    await stop(child);
    throw new Error(`s3rver did not start: ${stderr || String(e)}`);
  }
  const pid = child.pid!;
  return { pid, port, cpuMs: () => cpuMs(pid), stop: () => stop(child) };
}

/** The AWS SDK settings every S3 user in the bench shares (the SDK's standard variables). */
export function s3Env(s3Port: number): NodeJS.ProcessEnv {
  return {
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${s3Port}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** The receiver with its S3 store on s3rver; MX port only; limits opened for load. */
export async function startReceiver(s3Port: number): Promise<RunningProcess> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    ...s3Env(s3Port),
    RECEIVER_HOSTNAME: 'mx.bench.test',
    RECEIVER_BIND: '127.0.0.1',
    RECEIVER_MX_PORT: String(port),
    RECEIVER_SUBMISSION_PORT: 'off',
    RECEIVER_SUBMISSIONS_PORT: 'off',
    RECEIVER_HTTP_PORT: 'off',
    RECEIVER_DOMAINS: 'bench.test',
    RECEIVER_STORE: `s3://${BUCKET}/msgs`,
    RECEIVER_S3_FORCE_PATH_STYLE: 'true',
    RECEIVER_MAX_MESSAGE_BYTES: String(100 * 1024 * 1024),
    RECEIVER_MAX_CONNECTIONS: '2000',
    RECEIVER_MAX_CONNECTIONS_PER_IP: '2000',
    RECEIVER_MESSAGES_PER_IP_PER_MINUTE: '0',
    RECEIVER_LOG_LEVEL: 'warn',
  };
  const child = track(
    spawn(process.execPath, [join(REPO_DIR, 'receiver/src/main.ts')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
      cwd: REPO_DIR,
    }),
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 20_000) stderr += d;
  });
  const exited = new Promise<never>((_, fail) =>
    child.once('exit', (code) => fail(new Error(`receiver exited (${code}): ${stderr.slice(-2000)}`))),
  );
  exited.catch(() => {});
  try {
    await Promise.race([waitForPort(port, 20_000), exited]);
  } catch (e) {
    await stop(child);
    throw e;
  }
  const pid = child.pid!;
  return { pid, port, cpuMs: () => cpuMs(pid), stop: () => stop(child, 5_000) };
}
