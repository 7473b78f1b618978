/**
 * `npm start`'s first-run state (scripts/lib/dev-state.ts) and its failure messages, without the
 * receiver or the Worker: the development CA really signs a certificate Node accepts for localhost,
 * secrets are private files, a second run keeps the credentials, broken state is reported plainly.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, createServer as createTlsServer } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { devVarsText, ensureDevState, StartError } from '../../scripts/lib/dev-state.ts';
import { formatLogLine, syncRepoDevVars } from '../../scripts/start.ts';

const REPO = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'smtp-edge-start-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const relay = { host: 'localhost', port: 2587 };

describe('ensureDevState (first run of npm start)', () => {
  const dir = join(tempDir(), 'state');
  const state = ensureDevState(dir, relay);

  it('creates a CA, a localhost certificate it signed, credentials and the derived files', () => {
    expect(state.created).toEqual([
      'development CA',
      'localhost certificate',
      'development user and API key',
    ]);
    const verify = execFileSync('openssl', ['verify', '-CAfile', state.caCertPath, state.certPath], {
      encoding: 'utf8',
    });
    expect(verify.trim()).toBe(`${state.certPath}: OK`);
    const text = execFileSync(
      'openssl',
      ['x509', '-in', state.certPath, '-noout', '-ext', 'subjectAltName,extendedKeyUsage'],
      {
        encoding: 'utf8',
      },
    );
    expect(text).toContain('DNS:localhost');
    expect(text).toContain('IP Address:127.0.0.1');
    expect(text).toContain('TLS Web Server Authentication');
  });

  it('keeps keys and secrets private (mode 0600)', () => {
    for (const path of [
      state.caKeyPath,
      state.keyPath,
      state.credentialsPath,
      state.usersPath,
      state.devVarsPath,
    ]) {
      expect({ path, mode: statSync(path).mode & 0o777 }).toEqual({ path, mode: 0o600 });
    }
  });

  it('writes the users file in the receiver format with a {PLAIN} secret', () => {
    const { username, password } = state.credentials;
    expect(username).toBe('dev');
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const lines = readFileSync(state.usersPath, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(lines).toEqual([`dev:{PLAIN}${password}`]);
  });

  it('writes the Worker variables: relay on the submission port with STARTTLS and AUTH', () => {
    const { apiKey, password } = state.credentials;
    expect(apiKey).toMatch(/^sek_[A-Za-z0-9_-]{32}$/);
    const vars = Object.fromEntries(
      readFileSync(state.devVarsPath, 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(vars).toEqual({
      API_KEYS: apiKey,
      SMTP_HOST: 'localhost',
      SMTP_PORT: '2587',
      SMTP_SECURITY: 'starttls',
      SMTP_USERNAME: 'dev',
      SMTP_PASSWORD: password,
    });
    expect(readFileSync(state.devVarsPath, 'utf8')).toBe(devVarsText(state.credentials, relay));
  });

  it('produces a certificate that a TLS client trusting only the dev CA accepts for localhost', async () => {
    const server = createTlsServer(
      { key: readFileSync(state.keyPath), cert: readFileSync(state.certPath) },
      (s) => s.end('ok'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const attempt = (ca: Buffer | undefined, servername: string) =>
      new Promise<string>((resolveResult) => {
        const socket = connect({ host: '127.0.0.1', port, servername, ca, minVersion: 'TLSv1.2' }, () => {
          resolveResult(socket.authorized ? 'authorized' : String(socket.authorizationError));
          socket.destroy();
        });
        socket.on('error', (err: NodeJS.ErrnoException) => resolveResult(err.code ?? err.message));
      });
    const ca = readFileSync(state.caCertPath);
    try {
      expect(await attempt(ca, 'localhost')).toBe('authorized');
      expect(await attempt(ca, 'wrong.example')).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
      expect(await attempt(undefined, 'localhost')).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    } finally {
      server.close();
    }
  });

  it('keeps credentials and certificates on a second run, and follows a new submission port', () => {
    const cert = readFileSync(state.certPath, 'utf8');
    const again = ensureDevState(dir, { host: 'localhost', port: 3587 });
    expect(again.created).toEqual([]);
    expect(again.credentials).toEqual(state.credentials);
    expect(readFileSync(again.certPath, 'utf8')).toBe(cert);
    expect(readFileSync(again.devVarsPath, 'utf8')).toContain('\nSMTP_PORT=3587\n');
  });

  it('replaces a damaged server certificate, signed by the same CA', () => {
    const ca = readFileSync(state.caCertPath, 'utf8');
    writeFileSync(state.certPath, 'not a certificate\n');
    const again = ensureDevState(dir, relay);
    expect(again.created).toEqual(['localhost certificate']);
    expect(readFileSync(again.caCertPath, 'utf8')).toBe(ca);
    const verify = execFileSync('openssl', ['verify', '-CAfile', again.caCertPath, again.certPath], {
      encoding: 'utf8',
    });
    expect(verify.trim()).toBe(`${again.certPath}: OK`);
  });
});

describe('ensureDevState failures', () => {
  it('names a broken credentials file and how to recover', () => {
    const dir = tempDir();
    ensureDevState(dir, relay);
    writeFileSync(join(dir, 'credentials.json'), '{"username":"dev","password":"a\\nb","apiKey":"k"}');
    expect(() => ensureDevState(dir, relay)).toThrow(StartError);
    expect(() => ensureDevState(dir, relay)).toThrow(
      /credentials\.json: "password" must be a non-empty single-line string/,
    );
  });

  it('says plainly that openssl is missing', () => {
    const saved = process.env['PATH'];
    process.env['PATH'] = tempDir(); // an empty directory: no openssl
    try {
      expect(() => ensureDevState(join(tempDir(), 'state'), relay)).toThrow(
        /npm start needs the `openssl` command to create a development certificate, and it was not found on the PATH/,
      );
    } finally {
      process.env['PATH'] = saved;
    }
  });
});

describe('scripts/start.ts command line', () => {
  const run = (env: Record<string, string>, args: string[] = []) =>
    spawnSync(process.execPath, [join(REPO, 'scripts/start.ts'), ...args], {
      cwd: REPO,
      env: {
        ...process.env,
        SMTP_EDGE_STATE_DIR: join(tempDir(), 'state'),
        SMTP_EDGE_DATA_DIR: tempDir(),
        ...env,
      },
      encoding: 'utf8',
      timeout: 30_000,
    });

  it('prints its settings with --help', () => {
    const r = run({}, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('SMTP_EDGE_WORKER_PORT');
    expect(r.stdout).toContain('SMTP_EDGE_STATE_DIR');
  });

  it('refuses a port in use and names the variable that moves it', async () => {
    const blocker: Server = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address() as { port: number };
    try {
      const r = run({
        SMTP_EDGE_WORKER_PORT: String(port),
        SMTP_EDGE_HTTP_PORT: '0',
        SMTP_EDGE_MX_PORT: 'off',
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`Port ${port} on 127.0.0.1 is already in use`);
      expect(r.stderr).toContain(`SMTP_EDGE_WORKER_PORT=<port>`);
    } finally {
      blocker.close();
    }
  });

  it('refuses a malformed port value', () => {
    const r = run({ SMTP_EDGE_SUBMISSION_PORT: 'off' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('npm start: SMTP_EDGE_SUBMISSION_PORT="off" is not a port number (0-65535).\n');
  });
});

describe('formatLogLine (receiver log lines in the npm start output)', () => {
  it('turns a pino JSON line into level, message and fields', () => {
    const line = JSON.stringify({
      level: 30,
      time: 1,
      pid: 2,
      hostname: 'h',
      msg: 'message stored',
      id: 'abc',
      size: 12,
    });
    expect(formatLogLine(line)).toBe('info  message stored id=abc size=12');
  });
  it('leaves other lines alone', () => {
    expect(formatLogLine('plain text')).toBe('plain text');
    expect(formatLogLine('{not json')).toBe('{not json');
  });
});

describe('syncRepoDevVars (.dev.vars for npm run dev)', () => {
  it('creates a private .dev.vars on the default state directory, never overwrites yours', () => {
    const repo = tempDir();
    const state = ensureDevState(join(repo, '.smtp-edge'), relay);
    expect(syncRepoDevVars(repo, state.dir, state.devVarsPath)).toBe(
      'Created .dev.vars (a copy of the Worker variables above, for `npm run dev`).',
    );
    expect(readFileSync(join(repo, '.dev.vars'), 'utf8')).toBe(readFileSync(state.devVarsPath, 'utf8'));
    expect(statSync(join(repo, '.dev.vars')).mode & 0o777).toBe(0o600);
    expect(syncRepoDevVars(repo, state.dir, state.devVarsPath)).toBeNull();
    writeFileSync(join(repo, '.dev.vars'), 'API_KEYS=mine\n');
    expect(syncRepoDevVars(repo, state.dir, state.devVarsPath)).toBe(
      'Note: your .dev.vars is not used by npm start; it uses .smtp-edge/dev.vars.',
    );
    expect(readFileSync(join(repo, '.dev.vars'), 'utf8')).toBe('API_KEYS=mine\n');
  });

  it('leaves the repository alone when the state lives elsewhere', () => {
    const repo = tempDir();
    const state = ensureDevState(join(tempDir(), 'state'), relay);
    expect(syncRepoDevVars(repo, state.dir, state.devVarsPath)).toBeNull();
    expect(existsSync(join(repo, '.dev.vars'))).toBe(false);
  });
});
