/**
 * The development state `npm start` creates on first run and reuses afterwards:
 *
 *   <state>/ca.crt, ca.key          a development certificate authority (never trusted system-wide)
 *   <state>/server.crt, server.key  a certificate for `localhost` / 127.0.0.1 signed by that CA
 *   <state>/credentials.json        the development user, its password and the Worker API key
 *   <state>/users                   the receiver's users file (`name:{PLAIN}secret`, Dovecot style)
 *   <state>/dev.vars                the Worker's variables and secrets for `wrangler dev --env-file`
 *
 * Keys and secrets are written with mode 0600. Certificates are made with the `openssl` command
 * (node:crypto can make keys but not X.509 certificates); a missing `openssl` is reported plainly.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

export interface DevCredentials {
  /** The development submission user, as written in the users file and sent with AUTH. */
  username: string;
  /** Random; stored `{PLAIN}` so every mechanism, CRAM-MD5 included, works in development. */
  password: string;
  /** The Bearer key for `POST /send` (one entry of the Worker's `API_KEYS`). */
  apiKey: string;
}

export interface DevState {
  dir: string;
  caCertPath: string;
  caKeyPath: string;
  certPath: string;
  keyPath: string;
  usersPath: string;
  credentialsPath: string;
  devVarsPath: string;
  credentials: DevCredentials;
  /** What this call created (empty when everything already existed). */
  created: string[];
}

export interface RelaySettings {
  /** Host name the Worker connects to; must match the certificate (`localhost`). */
  host: string;
  /** The receiver's submission port. */
  port: number;
}

/** Thrown for conditions a person must fix (a missing command, a broken state file). */
export class StartError extends Error {
  override name = 'StartError';
}

const SECRET_MODE = 0o600;

function openssl(cwd: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') {
      throw new StartError(
        'npm start needs the `openssl` command to create a development certificate, and it was not found on the PATH.\n' +
          'Install it (Debian/Ubuntu: `sudo apt-get install openssl`; Fedora: `sudo dnf install openssl`; ' +
          'macOS ships one) and run `npm start` again.',
      );
    }
    const stderr = e.stderr?.toString().trim() ?? '';
    throw new StartError(`openssl ${args[0]} failed: ${stderr || e.message}`);
  }
}

/** True when the certificate exists and stays valid for at least `seconds` more. */
function certValidFor(certPath: string, seconds: number): boolean {
  if (!existsSync(certPath)) return false;
  try {
    execFileSync('openssl', ['x509', '-checkend', String(seconds), '-noout', '-in', certPath], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

function randomSerial(): string {
  // A positive 127-bit serial (RFC 5280 section 4.1.2.2 allows up to 20 octets).
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return `0x${bytes.toString('hex')}`;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const ONE_DAY = 24 * 60 * 60;

function makeCa(dir: string): void {
  const tmp = mkdtempSync(join(dir, '.ca-'));
  try {
    openssl(tmp, [
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '3650',
      '-sha256',
      '-set_serial',
      randomSerial(),
      '-subj',
      '/CN=smtp-edge development CA (this machine only)',
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    chmodSync(join(tmp, 'ca.key'), SECRET_MODE);
    renameSync(join(tmp, 'ca.key'), join(dir, 'ca.key'));
    renameSync(join(tmp, 'ca.crt'), join(dir, 'ca.crt'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function makeServerCert(dir: string): void {
  const tmp = mkdtempSync(join(dir, '.server-'));
  try {
    writeFileSync(
      join(tmp, 'server.ext'),
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' +
        'extendedKeyUsage=serverAuth\n' +
        'keyUsage=critical,digitalSignature\n' +
        'basicConstraints=critical,CA:FALSE\n',
    );
    openssl(tmp, ['req', ...EC_KEY, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
    openssl(tmp, [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      join(dir, 'ca.crt'),
      '-CAkey',
      join(dir, 'ca.key'),
      '-set_serial',
      randomSerial(),
      '-out',
      'server.crt',
      '-days',
      '365',
      '-sha256',
      '-extfile',
      'server.ext',
    ]);
    chmodSync(join(tmp, 'server.key'), SECRET_MODE);
    // Key first, certificate last: a present server.crt means a complete pair.
    renameSync(join(tmp, 'server.key'), join(dir, 'server.key'));
    renameSync(join(tmp, 'server.crt'), join(dir, 'server.crt'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Write a file atomically (temp name in the same directory, then rename). */
export function writeFileAtomic(path: string, contents: string, mode = 0o644): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, contents, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function randomSecret(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

function readCredentials(path: string): DevCredentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new StartError(
      `${path} is not valid JSON (${(err as Error).message}); delete it to make new credentials.`,
    );
  }
  const c = parsed as Partial<Record<keyof DevCredentials, unknown>>;
  for (const key of ['username', 'password', 'apiKey'] as const) {
    const v = c[key];
    // The users file and dev.vars are line-based: a secret with a line break or a colon in the
    // user name would corrupt them.
    if (typeof v !== 'string' || v === '' || /[\r\n\0]/.test(v) || (key === 'username' && v.includes(':'))) {
      throw new StartError(
        `${path}: "${key}" must be a non-empty single-line string; delete the file to start over.`,
      );
    }
  }
  return c as DevCredentials;
}

/** The Worker's local variables: the relay is the receiver's submission port, STARTTLS and AUTH. */
export function devVarsText(credentials: DevCredentials, relay: RelaySettings): string {
  return [
    '# Written by `npm start` (scripts/start.ts) on every run; the secrets come from credentials.json.',
    '# The Worker relays through the local receiver: submission port, STARTTLS, AUTH.',
    `API_KEYS=${credentials.apiKey}`,
    `SMTP_HOST=${relay.host}`,
    `SMTP_PORT=${relay.port}`,
    'SMTP_SECURITY=starttls',
    `SMTP_USERNAME=${credentials.username}`,
    `SMTP_PASSWORD=${credentials.password}`,
    '',
  ].join('\n');
}

/**
 * Create whatever is missing under `dir` and return the paths and credentials. Existing
 * credentials are kept; a server certificate that expires within a day is replaced.
 */
export function ensureDevState(dir: string, relay: RelaySettings): DevState {
  const created: string[] = [];
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const caCertPath = join(dir, 'ca.crt');
  const caKeyPath = join(dir, 'ca.key');
  if (!existsSync(caKeyPath) || !certValidFor(caCertPath, 30 * ONE_DAY)) {
    makeCa(dir);
    rmSync(join(dir, 'server.crt'), { force: true }); // signed by the old CA
    created.push('development CA');
  }
  const certPath = join(dir, 'server.crt');
  const keyPath = join(dir, 'server.key');
  if (!existsSync(keyPath) || !certValidFor(certPath, ONE_DAY)) {
    makeServerCert(dir);
    created.push('localhost certificate');
  }

  const credentialsPath = join(dir, 'credentials.json');
  let credentials: DevCredentials;
  if (existsSync(credentialsPath)) {
    credentials = readCredentials(credentialsPath);
  } else {
    credentials = { username: 'dev', password: randomSecret(18), apiKey: `sek_${randomSecret(24)}` };
    writeFileAtomic(credentialsPath, `${JSON.stringify(credentials, null, 2)}\n`, SECRET_MODE);
    created.push('development user and API key');
  }

  // Derived files are rewritten on every run so they always agree with credentials.json and the ports.
  const usersPath = join(dir, 'users');
  writeFileAtomic(
    usersPath,
    `# Written by npm start from credentials.json. Format: name:{SCHEME}secret\n${credentials.username}:{PLAIN}${credentials.password}\n`,
    SECRET_MODE,
  );
  const devVarsPath = join(dir, 'dev.vars');
  writeFileAtomic(devVarsPath, devVarsText(credentials, relay), SECRET_MODE);

  return {
    dir,
    caCertPath,
    caKeyPath,
    certPath,
    keyPath,
    usersPath,
    credentialsPath,
    devVarsPath,
    credentials,
    created,
  };
}
