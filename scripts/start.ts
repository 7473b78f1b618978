#!/usr/bin/env node
/**
 * `npm start`: the whole smtp-edge stack on one machine.
 *
 * 1. On first run, creates `.smtp-edge/` (git-ignored): a development CA, a certificate for
 *    localhost, a development user with a random password, an API key, and the Worker's variables.
 * 2. Starts the receiver (`receiver/src/main.ts`) storing to `./data`, with MX, submission
 *    (STARTTLS + AUTH) and implicit-TLS listeners on loopback.
 * 3. Starts the Worker under `wrangler dev`, relaying through the receiver's submission port with
 *    STARTTLS and AUTH; workerd trusts the development CA through NODE_EXTRA_CA_CERTS.
 * 4. Waits until both answer, prints a ready `curl`, and on Ctrl-C (or SIGTERM) stops both,
 *    process groups included (wrangler leaves workerd children), then exits.
 *
 * Everything is configurable through SMTP_EDGE_* variables (`npm start -- --help`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { killAllSync, ManagedChild, stopAll } from './lib/children.ts';
import { type DevState, ensureDevState, StartError } from './lib/dev-state.ts';
import { freePort, portProblem, waitForHttp } from './lib/net.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';
/** The name the Worker connects to; the development certificate is issued for it. */
const RELAY_HOST = 'localhost';

const HELP = `npm start: run the receiver and the Worker together on this machine.

Usage: npm start [-- --help]

Environment (all optional):
  SMTP_EDGE_STATE_DIR          development CA, certificate, credentials   (default: .smtp-edge)
  SMTP_EDGE_DATA_DIR           where the receiver stores messages          (default: data)
  SMTP_EDGE_WORKER_PORT        wrangler dev HTTP port                      (default: 8787)
  SMTP_EDGE_MX_PORT            receiver MX port, or "off"                  (default: 2525)
  SMTP_EDGE_SUBMISSION_PORT    receiver submission port (STARTTLS + AUTH)  (default: 2587)
  SMTP_EDGE_SUBMISSIONS_PORT   receiver implicit-TLS port, or "off"        (default: 2465)
  SMTP_EDGE_HTTP_PORT          receiver health and metrics port            (default: 9025)
  SMTP_EDGE_READY_TIMEOUT      seconds to wait for both to answer          (default: 120)
  SMTP_EDGE_STOP_TIMEOUT       seconds to wait for a clean stop            (default: 40)
  SMTP_EDGE_RAW_LOGS=1         print the receiver's JSON log lines as they are
A port of 0 picks a free one. Other RECEIVER_* variables in your environment reach the receiver.
`;

interface Ports {
  worker: number;
  mx: number | 'off';
  submission: number;
  submissions: number | 'off';
  http: number;
}

interface Settings {
  stateDir: string;
  dataDir: string;
  ports: Ports;
  readyTimeoutMs: number;
  stopTimeoutMs: number;
  rawLogs: boolean;
}

function envPort(name: string, fallback: number, allowOff: boolean): number | 'off' {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (allowOff && raw.toLowerCase() === 'off') return 'off';
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    throw new StartError(`${name}="${raw}" is not a port number (0-65535${allowOff ? ' or "off"' : ''}).`);
  }
  return Number(raw);
}

function envSeconds(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback * 1000;
  if (!/^\d+$/.test(raw) || Number(raw) === 0)
    throw new StartError(`${name}="${raw}" is not a number of seconds.`);
  return Number(raw) * 1000;
}

function readSettings(): Settings {
  return {
    stateDir: resolve(REPO, process.env['SMTP_EDGE_STATE_DIR'] || '.smtp-edge'),
    dataDir: resolve(REPO, process.env['SMTP_EDGE_DATA_DIR'] || 'data'),
    ports: {
      worker: envPort('SMTP_EDGE_WORKER_PORT', 8787, false) as number,
      mx: envPort('SMTP_EDGE_MX_PORT', 2525, true),
      submission: envPort('SMTP_EDGE_SUBMISSION_PORT', 2587, false) as number,
      submissions: envPort('SMTP_EDGE_SUBMISSIONS_PORT', 2465, true),
      http: envPort('SMTP_EDGE_HTTP_PORT', 9025, false) as number,
    },
    readyTimeoutMs: envSeconds('SMTP_EDGE_READY_TIMEOUT', 120),
    stopTimeoutMs: envSeconds('SMTP_EDGE_STOP_TIMEOUT', 40),
    rawLogs: process.env['SMTP_EDGE_RAW_LOGS'] === '1',
  };
}

const PORT_ENV: Record<keyof Ports, string> = {
  worker: 'SMTP_EDGE_WORKER_PORT',
  mx: 'SMTP_EDGE_MX_PORT',
  submission: 'SMTP_EDGE_SUBMISSION_PORT',
  submissions: 'SMTP_EDGE_SUBMISSIONS_PORT',
  http: 'SMTP_EDGE_HTTP_PORT',
};

/** Replace 0 by free ports, then make sure every port can be bound, naming the variable if not. */
async function resolvePorts(ports: Ports): Promise<Ports> {
  const out = { ...ports };
  const keys = Object.keys(out) as (keyof Ports)[];
  for (const key of keys) {
    const value = out[key];
    if (value === 'off') continue;
    const port = value === 0 ? await freePort(HOST) : value;
    const problem = await portProblem(port, HOST);
    if (problem === 'EADDRINUSE') {
      throw new StartError(
        `Port ${port} on ${HOST} is already in use (is another \`npm start\` running?). ` +
          `Stop what uses it, or choose another port with ${PORT_ENV[key]}=<port>.`,
      );
    }
    if (problem !== null)
      throw new StartError(`Cannot listen on ${HOST}:${port} (${PORT_ENV[key]}): ${problem}.`);
    (out as Record<keyof Ports, number | 'off'>)[key] = port;
  }
  return out;
}

function requireFile(path: string, hint: string): void {
  if (!existsSync(path)) throw new StartError(`${relative(REPO, path)} is missing: ${hint}`);
}

const PINO_LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** One pino JSON line as `level message key=value…`; anything else unchanged. */
export function formatLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time: _time, pid: _pid, hostname: _hostname, msg, ...rest } = record;
  const name = typeof level === 'number' ? (PINO_LEVELS[level] ?? String(level)) : String(level ?? '');
  const fields = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${name.padEnd(5)} ${typeof msg === 'string' ? msg : ''}${fields ? ` ${fields}` : ''}`.trimEnd();
}

function receiverEnv(settings: Settings, state: DevState): NodeJS.ProcessEnv {
  const { ports } = settings;
  return {
    ...process.env,
    RECEIVER_HOSTNAME: RELAY_HOST,
    RECEIVER_BIND: HOST,
    RECEIVER_MX_PORT: String(ports.mx),
    RECEIVER_SUBMISSION_PORT: String(ports.submission),
    RECEIVER_SUBMISSIONS_PORT: String(ports.submissions),
    RECEIVER_HTTP_PORT: String(ports.http),
    RECEIVER_DOMAINS: RELAY_HOST,
    RECEIVER_TLS_CERT: state.certPath,
    RECEIVER_TLS_KEY: state.keyPath,
    RECEIVER_USERS_FILE: state.usersPath,
    RECEIVER_STORE: pathToFileURL(settings.dataDir).href,
  };
}

function workerEnv(state: DevState): NodeJS.ProcessEnv {
  return {
    ...process.env,
    // workerd verifies the relay's certificate: trust the development CA (read when miniflare loads).
    NODE_EXTRA_CA_CERTS: state.caCertPath,
    // No phoning home from a local development run.
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_LOG_PATH: join(state.dir, 'wrangler-logs'),
  };
}

/** A path relative to the working directory when it is inside it, else absolute. */
function displayPath(path: string): string {
  const r = relative(process.cwd(), path);
  return r === '' ? '.' : r.startsWith('..') ? path : r;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function banner(settings: Settings, state: DevState, repoDevVarsNote: string | null): string {
  const { ports } = settings;
  const rel = displayPath;
  const body = JSON.stringify({
    from: `${state.credentials.username}@${RELAY_HOST}`,
    to: 'you@example.org',
    subject: 'Hello from smtp-edge',
    text: 'It works: Worker -> receiver -> disk.',
  });
  const lines = [
    '',
    'smtp-edge is running.',
    '',
    `  Worker, POST /send        http://${HOST}:${ports.worker}/send`,
    `  Receiver submission       ${RELAY_HOST}:${ports.submission} (STARTTLS, then AUTH as "${state.credentials.username}")`,
    ports.mx === 'off'
      ? null
      : `  Receiver MX               ${RELAY_HOST}:${ports.mx} (mail for @${RELAY_HOST})`,
    ports.submissions === 'off' ? null : `  Receiver implicit TLS     ${RELAY_HOST}:${ports.submissions}`,
    `  Receiver health, metrics  http://${HOST}:${ports.http}/readyz  http://${HOST}:${ports.http}/metrics`,
    `  Messages are stored in    ${rel(settings.dataDir)}`,
    `  Development credentials   ${rel(state.credentialsPath)} (CA certificate: ${rel(state.caCertPath)})`,
    '',
    'Send a message through the Worker:',
    '',
    `  curl -sS http://${HOST}:${ports.worker}/send \\`,
    `    -H ${shellQuote(`Authorization: Bearer ${state.credentials.apiKey}`)} \\`,
    `    -H 'Content-Type: application/json' \\`,
    `    -d ${shellQuote(body)}`,
    '',
    `Then look in ${rel(settings.dataDir)}: each accepted message is one .eml file (the exact bytes, with`,
    'our Received: header on top) and one .json file beside it (the envelope).',
    repoDevVarsNote,
    '',
    'Press Ctrl-C to stop both.',
    '',
  ];
  return lines.filter((l) => l !== null).join('\n');
}

/**
 * `wrangler dev` is given the generated variables with `--env-file`, so a `.dev.vars` of yours is
 * never read by `npm start`. On the default state directory, a missing `.dev.vars` is created as a
 * copy (mode 0600), so that `npm run dev` alone relays through a receiver started with the same
 * settings. Returns a line to print, or null.
 */
export function syncRepoDevVars(repo: string, stateDir: string, devVarsPath: string): string | null {
  const repoDevVars = join(repo, '.dev.vars');
  if (resolve(stateDir) !== join(repo, '.smtp-edge')) return null;
  const generated = readFileSync(devVarsPath, 'utf8');
  if (!existsSync(repoDevVars)) {
    writeFileSync(repoDevVars, generated, { mode: 0o600, flag: 'wx' });
    return 'Created .dev.vars (a copy of the Worker variables above, for `npm run dev`).';
  }
  if (readFileSync(repoDevVars, 'utf8') !== generated) {
    return `Note: your .dev.vars is not used by npm start; it uses ${relative(repo, devVarsPath)}.`;
  }
  return null;
}

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 12)) {
    throw new StartError(
      `Node ${process.versions.node} is too old: run \`npm start\` (npm puts Node 22 first on the PATH).`,
    );
  }

  const settings = readSettings();
  const receiverMain = join(REPO, 'receiver', 'src', 'main.ts');
  const wranglerBin = join(REPO, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
  settings.ports = await resolvePorts(settings.ports);
  requireFile(receiverMain, 'this checkout has no receiver entry point yet.');
  requireFile(join(REPO, 'wrangler.toml'), 'this checkout has no Worker configuration yet.');
  requireFile(wranglerBin, 'run `npm ci` first.');
  const state = ensureDevState(settings.stateDir, { host: RELAY_HOST, port: settings.ports.submission });
  if (state.created.length > 0) {
    process.stdout.write(`First run: created ${state.created.join(', ')} in ${displayPath(state.dir)}\n`);
  }
  mkdirSync(settings.dataDir, { recursive: true });
  const devVarsNote = syncRepoDevVars(REPO, settings.stateDir, state.devVarsPath);

  const write = (text: string) => process.stdout.write(text);
  const children: ManagedChild[] = [];
  let stopping: Promise<number> | null = null;
  let stopRequested: (stopped: Promise<number>) => void = () => {};
  const stopRequest = new Promise<Promise<number>>((resolve) => {
    stopRequested = resolve;
  });

  const stop = (code: number, why: string | null): Promise<number> => {
    if (stopping) return stopping;
    if (why) process.stdout.write(`\n${why}\n`);
    stopping = stopAll(children, settings.stopTimeoutMs).then(() => {
      process.stdout.write('Stopped.\n');
      return code;
    });
    stopRequested(stopping);
    return stopping;
  };

  process.on('exit', () => killAllSync(children));
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) {
      process.stdout.write('\nSecond interrupt: killing everything now.\n');
      killAllSync(children);
      process.exit(130);
    }
    void stop(
      0,
      `${signal}: stopping the Worker and the receiver (the receiver finishes transactions in progress)…`,
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

  const { ports } = settings;
  const receiver = new ManagedChild(
    {
      name: 'receiver',
      command: process.execPath,
      args: [receiverMain],
      cwd: REPO,
      env: receiverEnv(settings, state),
      format: settings.rawLogs ? undefined : formatLogLine,
    },
    write,
    8,
  );
  children.push(receiver);
  const worker = new ManagedChild(
    {
      name: 'worker',
      command: process.execPath,
      args: [
        wranglerBin,
        'dev',
        '--ip',
        HOST,
        '--port',
        String(ports.worker),
        '--env-file',
        state.devVarsPath,
        '--show-interactive-dev-session=false',
      ],
      cwd: REPO,
      env: workerEnv(state),
    },
    write,
    8,
  );
  children.push(worker);
  process.stdout.write(
    `Starting the receiver (pid ${receiver.pid}) and the Worker under wrangler dev (pid ${worker.pid})…\n`,
  );

  const died = (): string | null => {
    for (const child of children) {
      if (child.exit) {
        const how = child.exit.signal ? `signal ${child.exit.signal}` : `exit code ${child.exit.code}`;
        return `the ${child.name} stopped during start-up (${how}). Its last output:\n  ${child.tail.slice(-15).join('\n  ')}`;
      }
    }
    return null;
  };

  try {
    await Promise.all([
      waitForHttp(`http://${HOST}:${ports.http}/readyz`, {
        timeoutMs: settings.readyTimeoutMs,
        abandon: () => (stopping ? 'stopping' : died()),
        ready: (status) => status === 200,
      }),
      // The Worker's OpenAPI document: 200 once wrangler serves and the Worker code has loaded.
      waitForHttp(`http://${HOST}:${ports.worker}/openapi.json`, {
        timeoutMs: settings.readyTimeoutMs,
        abandon: () => (stopping ? 'stopping' : died()),
        ready: (status) => status === 200,
      }),
    ]);
  } catch (err) {
    if (stopping) return stopping;
    return stop(1, `npm start failed: ${(err as Error).message}`);
  }
  if (stopping) return stopping;

  process.stdout.write(banner(settings, state, devVarsNote));

  // Run until a signal stops us or a child exits by itself.
  const first = await Promise.race([
    ...children.map((c) => c.exited.then(() => c)),
    stopRequest.then(() => null),
  ]);
  if (first !== null && !stopping) {
    const exit = first.exit;
    const how = exit?.signal ? `signal ${exit.signal}` : `exit code ${exit?.code}`;
    return stop(1, `The ${first.name} stopped unexpectedly (${how}); stopping the rest.`);
  }
  return stopping ?? 0;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(
        `npm start: ${err instanceof StartError ? err.message : String((err as Error).stack ?? err)}\n`,
      );
      process.exit(1);
    },
  );
}
