/**
 * Third-party SMTP clients run as programs: swaks, msmtp and Python's smtplib (Debian's python3).
 * Each helper resolves with the exit code and output; tests assert on them.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  PEER_PATHS,
  peerDir,
  type RunOptions,
  type RunResult,
  removePeerDir,
  requirePeers,
  runCommand,
} from './process.ts';

/**
 * Run swaks with these arguments. swaks exits 0 on success; 23 = MAIL rejected, 24 = every RCPT
 * rejected, 28 = AUTH failed (see swaks(1) "EXIT CODES"). `--hide-all`/`--silent` are up to the test.
 */
export function runSwaks(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  requirePeers('swaks');
  return runCommand(PEER_PATHS.swaks, args, { timeoutMs: 60_000, ...opts });
}

/**
 * Run msmtp in sendmail mode (message on `opts.input`). Pass `--host` so no configuration file is
 * read; e.g. `['--host=127.0.0.1', '--port=2525', '--from=a@b', '--', 'c@d']`.
 */
export function runMsmtp(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  requirePeers('msmtp');
  return runCommand(PEER_PATHS.msmtp, args, { timeoutMs: 60_000, ...opts });
}

/**
 * Run a Python script with Debian's /usr/bin/python3 (smtplib, ssl, json are all there). The script
 * gets `opts.env` in os.environ; print JSON on stdout to hand results back.
 */
export async function runPythonSmtplib(script: string, opts: RunOptions = {}): Promise<RunResult> {
  requirePeers('python3');
  const dir = peerDir('py');
  const file = join(dir, 'client.py');
  writeFileSync(file, script);
  try {
    return await runCommand(PEER_PATHS.python3, [file], {
      timeoutMs: 60_000,
      ...opts,
      env: { PYTHONDONTWRITEBYTECODE: '1', ...opts.env },
    });
  } finally {
    removePeerDir(dir);
  }
}
