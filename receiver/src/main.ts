/**
 * Entry point: `npm run receiver` (root script `node receiver/src/main.ts`), also the container's CMD.
 *
 *   npm run receiver                           start, configured by RECEIVER_* (docs/reference/receiver-env.md)
 *   npm run receiver -- hash-password [NAME]   print a {SCRYPT} users-file line (password from stdin)
 *
 * Exit codes: 0 after a graceful stop (SIGTERM/SIGINT), 1 on invalid configuration or a start-up
 * failure (stderr names the variable), 2 on a usage error.
 */
import { hostname } from 'node:os';
import { ConfigError, loadConfig, summarizeConfig } from './config.ts';
import { hashPasswordCommand } from './hash-password.ts';
import { createLogger } from './log.ts';

const USAGE = `usage: npm run receiver                         start the receiver (configured by RECEIVER_* variables)
       npm run receiver -- hash-password [NAME]  print a users-file line; the password is read from stdin
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'hash-password') return hashPasswordCommand(rest, process);
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command !== undefined) {
    process.stderr.write(`receiver: unknown command ${JSON.stringify(command)}\n${USAGE}`);
    return 2;
  }

  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env, { defaultHostname: hostname() });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(
      `receiver: invalid configuration\n${e.issues.map((i) => `  ${i.variable}: ${i.message}`).join('\n')}\n`,
    );
    return 1;
  }
  const log = createLogger(config.logLevel);
  log.info({ event: 'config', settings: summarizeConfig(config, process.env) }, 'effective settings');

  // Loaded after validation, so that a configuration error is reported fast.
  const { StartupError, startReceiver } = await import('./service.ts');
  let service: Awaited<ReturnType<typeof startReceiver>>;
  try {
    service = await startReceiver(config, log);
  } catch (e) {
    const text =
      e instanceof StartupError ? e.message : `start-up failed: ${(e as Error)?.stack ?? String(e)}`;
    log.fatal({ event: 'startup_failed', variable: e instanceof StartupError ? e.variable : null }, text);
    process.stderr.write(`receiver: ${text}\n`);
    return 1;
  }

  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        log.warn({ signal }, 'second signal: exiting without waiting for transactions');
        resolve(1);
        return;
      }
      log.info({ event: 'shutdown', signal }, 'shutting down');
      service.stop().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed; do not wait for stray timers (SDK keep-alive sockets and the like).
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`receiver: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
