/**
 * infra/ cannot be built here (no container engine, no cluster), so this test parses every file
 * and checks the facts that tie it to the receiver: images, non-root user, health check, ports
 * and variables (validated with the receiver's own loadConfig), probes, grace period vs drain
 * time-out, Secret references, DNS records.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { DEFAULTS, loadConfig, VARIABLES } from '../src/config.ts';
import { OpsServer } from '../src/http.ts';
import { Metrics } from '../src/metrics.ts';
import { REPO } from './support/receiver-process.ts';

const INFRA = join(REPO, 'infra');
const read = (p: string) => readFileSync(join(INFRA, p), 'utf8');

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => v as Obj;
const arr = (v: unknown): Obj[] => v as Obj[];

function isKnownVariable(name: string): boolean {
  return VARIABLES.includes(name) || name.startsWith('AWS_') || name === 'NODE_ENV';
}

/** `${VAR:-default}` -> default, `${VAR:?message}` -> a placeholder, `$$` -> `$` (compose interpolation). */
function interpolate(v: string): string {
  return v
    .replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')
    .replace(/\$\{[A-Z_]+:\?[^}]*\}/g, 'placeholder')
    .replaceAll('$$', '$');
}

describe('infra/Dockerfile', () => {
  const text = read('Dockerfile');
  // Continuation lines joined, comments dropped.
  const lines = text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => !l.startsWith('#'));
  const instr = (name: string) => lines.filter((l) => l.startsWith(`${name} `));

  it('is multi-stage on Node 22 slim, production dependencies only', () => {
    const froms = instr('FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^FROM node:22-slim( AS \w+)?$/);
    expect(text).toMatch(/npm ci --omit=dev --workspace receiver/);
    expect(text).toMatch(/COPY --from=deps \/app\/node_modules/);
  });

  it('runs as a non-root user with a health check on /healthz and the npm run receiver entry point', () => {
    const lastFrom = lines.findLastIndex((l) => l.startsWith('FROM '));
    const user = lines.findLastIndex((l) => l.startsWith('USER '));
    expect(user).toBeGreaterThan(lastFrom);
    expect(lines[user]).not.toMatch(/^USER (root|0)\b/);
    expect(instr('HEALTHCHECK').join(' ')).toContain('/healthz');
    expect(instr('CMD')).toEqual(['CMD ["node", "receiver/src/main.ts"]']);
  });

  it('keeps the ops endpoint on loopback (RECEIVER_HTTP_BIND=127.0.0.1, the default)', () => {
    expect(DEFAULTS.httpBind).toBe('127.0.0.1');
    const env = instr('ENV').join(' ');
    expect(env).toContain('RECEIVER_HTTP_BIND=127.0.0.1');
  });

  it('its HEALTHCHECK command reaches /healthz for each kind of RECEIVER_HTTP_BIND', async () => {
    const cmd = JSON.parse(
      instr('HEALTHCHECK')
        .join(' ')
        .replace(/^.*? CMD /, ''),
    ) as string[];
    expect(cmd.slice(0, 2)).toEqual(['node', '-e']);
    const script = cmd[2]!;
    /** Run the image's health check here (same Node major as the image) with `env`; its exit code. */
    const check = (env: Record<string, string>) =>
      new Promise<number | null>((resolve) => {
        execFile(
          process.execPath,
          ['-e', script],
          { env: { PATH: process.env['PATH'] ?? '', ...env } },
          (err) => resolve(err === null ? 0 : typeof err.code === 'number' ? err.code : null),
        );
      });
    const ops = (host: string) => {
      const o = new OpsServer({
        store: { check: async () => {} },
        metrics: new Metrics(),
        isDraining: () => false,
      });
      return o.listen(0, host).then((a) => ({ o, port: String(a.port) }));
    };
    const lo = await ops('127.0.0.1');
    const other = await ops('127.0.0.3');
    try {
      // Unset (the receiver's default) and the wildcards are reached on loopback; a specific address on itself.
      expect(await check({ RECEIVER_HTTP_PORT: lo.port })).toBe(0);
      expect(await check({ RECEIVER_HTTP_PORT: lo.port, RECEIVER_HTTP_BIND: '127.0.0.1' })).toBe(0);
      expect(await check({ RECEIVER_HTTP_PORT: lo.port, RECEIVER_HTTP_BIND: '0.0.0.0' })).toBe(0);
      expect(await check({ RECEIVER_HTTP_PORT: other.port, RECEIVER_HTTP_BIND: '127.0.0.3' })).toBe(0);
      // It can fail: nothing on that address and port.
      expect(await check({ RECEIVER_HTTP_PORT: other.port, RECEIVER_HTTP_BIND: '127.0.0.1' })).toBe(1);
    } finally {
      await lo.o.close();
      await other.o.close();
    }
  });

  it('exposes and sets the default ports, and copies files that exist', () => {
    const exposed = instr('EXPOSE').flatMap((l) => l.split(/\s+/).slice(1).map(Number));
    expect(exposed.sort()).toEqual(
      [DEFAULTS.mxPort, DEFAULTS.submissionPort, DEFAULTS.submissionsPort, DEFAULTS.httpPort].sort(),
    );
    expect(text).toContain(`RECEIVER_MX_PORT=${DEFAULTS.mxPort}`);
    expect(text).toContain(`RECEIVER_HTTP_PORT=${DEFAULTS.httpPort}`);
    for (const l of instr('COPY').filter((c) => !c.includes('--from='))) {
      for (const src of l.split(/\s+/).slice(1, -1)) expect(existsSync(join(REPO, src)), src).toBe(true);
    }
  });
});

describe('infra/compose.yaml', () => {
  const doc = obj(parse(read('compose.yaml')));
  const services = obj(doc['services']);
  const receiver = obj(services['receiver']);
  const env = obj(receiver['environment']);

  it('runs the receiver after a one-shot that creates the bucket in MinIO', () => {
    expect(Object.keys(services).sort()).toEqual(['create-bucket', 'minio', 'receiver']);
    expect(String(obj(services['minio'])['image'])).toMatch(/^minio\/minio:RELEASE\./);
    expect(obj(obj(receiver['depends_on'])['create-bucket'])['condition']).toBe(
      'service_completed_successfully',
    );
    expect(obj(obj(obj(services['create-bucket'])['depends_on'])['minio'])['condition']).toBe(
      'service_healthy',
    );
    const bucket = /^s3:\/\/([^/]+)/.exec(String(env['RECEIVER_STORE']))?.[1];
    expect(String(arr(obj(services['create-bucket'])['command'])[0])).toContain(
      `mc mb --ignore-existing store/${bucket}`,
    );
    const build = obj(receiver['build']);
    expect(existsSync(join(INFRA, String(build['context']), String(build['dockerfile'])))).toBe(true);
  });

  it('configures the receiver with known variables that pass its own validation', () => {
    for (const k of Object.keys(env)) expect(isKnownVariable(k), k).toBe(true);
    const values = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v))]));
    const c = loadConfig(values, { cwd: '/app' });
    expect(c.store).toEqual({ kind: 's3', bucket: 'mail', prefix: 'inbound' });
    // Docker forwards a published port to the container's address: the ops endpoint must bind it,
    // and the port is published on the host's loopback only.
    expect(c.httpBind).toBe('0.0.0.0');
    expect(arr(receiver['ports']).filter((p) => String(p).endsWith(`:${c.httpPort}`))).toEqual([
      `127.0.0.1:${c.httpPort}:${c.httpPort}`,
    ]);
    const targets = arr(receiver['ports']).map((p) => Number(String(p).split(':').pop()));
    expect(targets.sort()).toEqual([c.mxPort, c.submissionPort, c.submissionsPort, c.httpPort].sort());
    expect(Number.parseInt(String(receiver['stop_grace_period']), 10) * 1000).toBeGreaterThan(
      c.drainTimeoutMs + c.storeTimeoutMs,
    );
  });
});

describe('infra/k8s', () => {
  const docs = ['deployment.yaml', 'service.yaml', 'hpa.yaml', 'secrets.example.yaml'].flatMap((f) =>
    parseAllDocuments(read(join('k8s', f))).map((d) => {
      expect(d.errors, f).toEqual([]);
      return obj(d.toJS());
    }),
  );
  const byKind = (kind: string) => docs.filter((d) => d['kind'] === kind);
  const deployment = byKind('Deployment')[0]!;
  const pod = obj(obj(obj(deployment['spec'])['template'])['spec']);
  const container = arr(pod['containers'])[0]!;
  const envList = arr(container['env']);
  const ports = Object.fromEntries(arr(container['ports']).map((p) => [p['name'], p['containerPort']]));

  it('has a Deployment, Services, an HPA and the Secret shapes', () => {
    expect(byKind('Deployment')).toHaveLength(1);
    expect(byKind('Service').length).toBeGreaterThanOrEqual(1);
    const hpa = byKind('HorizontalPodAutoscaler')[0]!;
    expect(obj(obj(hpa['spec'])['scaleTargetRef'])['name']).toBe(obj(deployment['metadata'])['name']);
    expect(Number(obj(hpa['spec'])['minReplicas'])).toBeGreaterThanOrEqual(2);
  });

  it('passes the receiver configuration check with its env, and ports agree', () => {
    for (const e of envList) expect(isKnownVariable(String(e['name'])), String(e['name'])).toBe(true);
    const values = Object.fromEntries(
      envList.map((e) => [String(e['name']), e['value'] === undefined ? 'from-secret' : String(e['value'])]),
    );
    const c = loadConfig(values, { cwd: '/app' });
    // The kubelet's probes and Prometheus come to the pod IP, not the container's loopback.
    expect(c.httpBind).toBe('0.0.0.0');
    expect(ports).toEqual({
      smtp: c.mxPort,
      submission: c.submissionPort,
      submissions: c.submissionsPort,
      http: c.httpPort,
    });
    expect(Number(pod['terminationGracePeriodSeconds']) * 1000).toBeGreaterThan(
      c.drainTimeoutMs + c.storeTimeoutMs,
    );
  });

  it('probes /readyz and /healthz on the HTTP port, runs as non-root', () => {
    expect(obj(obj(container['readinessProbe'])['httpGet'])).toEqual({ path: '/readyz', port: 'http' });
    expect(obj(obj(container['livenessProbe'])['httpGet'])).toEqual({ path: '/healthz', port: 'http' });
    const sc = obj(pod['securityContext']);
    expect(sc['runAsNonRoot']).toBe(true);
    expect(Number(sc['runAsUser'])).toBeGreaterThan(0);
    expect(obj(container['securityContext'])['allowPrivilegeEscalation']).toBe(false);
  });

  it('references only Secrets whose shapes are given, and mounts the files the env names', () => {
    const secretNames = new Set(byKind('Secret').map((s) => obj(s['metadata'])['name']));
    const referenced = [
      ...envList.flatMap((e) => (e['valueFrom'] ? [obj(obj(e['valueFrom'])['secretKeyRef'])['name']] : [])),
      ...arr(pod['volumes']).flatMap((v) => (v['secret'] ? [obj(v['secret'])['secretName']] : [])),
    ];
    for (const name of referenced)
      expect(secretNames.has(name) || name === 'receiver-tls', String(name)).toBe(true);
    const mounts = arr(container['volumeMounts']).map((m) => String(m['mountPath']));
    for (const v of ['RECEIVER_TLS_CERT', 'RECEIVER_TLS_KEY', 'RECEIVER_USERS_FILE']) {
      const path = String(envList.find((e) => e['name'] === v)?.['value']);
      expect(
        mounts.some((m) => path.startsWith(`${m}/`)),
        v,
      ).toBe(true);
    }
  });

  it('exposes 25, 587 and 465 on container ports by name', () => {
    const svc = byKind('Service').find((s) => obj(s['spec'])['type'] === 'LoadBalancer')!;
    const sp = arr(obj(svc['spec'])['ports']);
    expect(sp.map((p) => [p['port'], p['targetPort']])).toEqual([
      [25, 'smtp'],
      [587, 'submission'],
      [465, 'submissions'],
    ]);
  });
});

describe('infra/dns/records.zone', () => {
  const zone = read('dns/records.zone')
    .split('\n')
    .map((l) => l.replace(/;.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('$'));

  it('publishes an MX whose target has address records, and an SPF policy', () => {
    const mx = zone.map((l) => /^(\S+)\s+IN\s+MX\s+(\d+)\s+(\S+)$/.exec(l)).find(Boolean);
    expect(mx).toBeTruthy();
    const target = mx![3]!;
    expect(target.endsWith('.')).toBe(true);
    const host = target.replace(/\.example\.com\.$/, '');
    expect(zone.some((l) => new RegExp(`^${host}\\s+IN\\s+A\\s+\\d+\\.\\d+\\.\\d+\\.\\d+$`).test(l))).toBe(
      true,
    );
    const spf = zone.find((l) => /\sTXT\s+"v=spf1 /.test(l));
    expect(spf).toMatch(/"v=spf1 [^"]* [-~]all"$/);
  });
});
