/**
 * Nothing lost when the receiver dies or the disk fills (issue 8), with the directory store.
 *
 * 1. SIGKILL in the middle of transactions, then restart, while clients deliver continuously
 *    and retry what was not acknowledged: no partial object under a final name, every message
 *    that got 250 is committed (`.json` and a complete `.eml` of the exact bytes).
 * 2. A full file system (a 1 MiB tmpfs; skipped with a reason when it cannot be mounted): the
 *    message that does not fit gets 451 4.3.0, nothing is left half written, and the receiver
 *    keeps serving messages that fit once space is back.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  baseEnv,
  type ReceiverProcess,
  startReceiver,
} from '../../receiver/test/support/receiver-process.ts';
import { sendMail } from '../../shared/src/adapter/node/client.ts';
import { SmtpReplyError } from '../../shared/src/core/errors.ts';
import {
  audit,
  bodyAfterReceived,
  copiesByMarker,
  type Delivery,
  deliver,
  messageFor,
  prng,
} from './support.ts';

const dirs: string[] = [];
function temp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

const isTemp = (name: string) => /(^|\/)\.[^/]*\.tmp$/.test(name);

function env(store: string): Record<string, string> {
  return {
    ...baseEnv(),
    RECEIVER_STORE: `file://${store}`,
    RECEIVER_DOMAINS: 'example.com',
    RECEIVER_SUBMISSION_PORT: 'off',
    RECEIVER_SUBMISSIONS_PORT: 'off',
    RECEIVER_MESSAGES_PER_IP_PER_MINUTE: '0',
  };
}

describe('receiver killed with SIGKILL mid-transaction, then restarted', () => {
  it('no partial object, no acknowledged message missing', async () => {
    const store = temp('faults-kill-');
    const random = prng(Number(process.env['CHAOS_SEED'] ?? 7));
    let rx: ReceiverProcess = await startReceiver(env(store));
    let port = rx.ports.mx!;
    let stop = false;
    // Big enough (300 KB) that a kill often lands inside DATA/BDAT or inside the store's writes.
    const loops = Array.from({ length: 3 }, async (_, c) => {
      const mine: Delivery[] = [];
      for (let i = 0; !(stop && i >= 4); i++) {
        const marker = `KILL-${c}-${i}-END`;
        mine.push(
          await deliver(0, marker, {
            port: () => port,
            bytes: messageFor(marker, 300_000),
            attempts: 100,
            pauseMs: 100,
          }),
        );
      }
      return mine;
    });
    let kills = 0;
    for (let k = 0; k < 4; k++) {
      await new Promise((r) => setTimeout(r, 150 + Math.floor(random() * 350)));
      rx.child.kill('SIGKILL');
      await rx.exited;
      kills++;
      rx = await startReceiver(env(store));
      port = rx.ports.mx!;
    }
    stop = true;
    const deliveries = (await Promise.all(loops)).flat();
    expect(await rx.stop()).toBe(0);
    expect(kills).toBe(4);

    const names = filesUnder(store);
    const a = await audit(names, async (n) => readFileSync(join(store, n)), isTemp);
    // Only dot-named temporary files may be left by a kill; readers ignore them.
    expect(a.other).toEqual([]);
    expect(a.orphanJson).toEqual([]);
    const byMarker = copiesByMarker(a.committed, /KILL-\d+-\d+-END/);
    expect(byMarker.has('(none)')).toBe(false);
    const acked = deliveries.filter((d) => d.acked);
    expect(acked.length).toBe(deliveries.length);
    expect(deliveries.some((d) => d.outcomes.includes('conn'))).toBe(true);
    for (const d of acked) {
      const copies = byMarker.get(d.marker) ?? [];
      expect(copies.length, `${d.marker} committed`).toBeGreaterThanOrEqual(1);
      for (const c of copies) expect(bodyAfterReceived(c.eml)).toBe(d.bytes);
    }
    // A kill between the two renames can leave a complete .eml without its .json; it is never
    // partial (it was fsynced under a temporary name first).
    for (const n of a.orphanEml) {
      const body = bodyAfterReceived(readFileSync(join(store, n)));
      const marker = /KILL-\d+-\d+-END/.exec(body)?.[0];
      expect(deliveries.find((d) => d.marker === marker)?.bytes).toBe(body);
    }
  }, 120_000);
});

function mountTmpfs(dir: string, size: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): ${(e as Error).message.split('\n')[0]}`;
  }
}

/** Can this process mount a tmpfs? Probed once (mount and unmount at once), so nothing stays mounted. */
function probeMount(): string | null {
  const probe = mkdtempSync(join(tmpdir(), 'faults-probe-'));
  const problem = mountTmpfs(probe, '64k');
  if (problem === null) execFileSync('umount', [probe], { stdio: 'pipe' });
  rmSync(probe, { recursive: true, force: true });
  return problem;
}

const mountProblem = probeMount();
const diskDir = mkdtempSync(join(tmpdir(), 'faults-disk-'));

// Where a tmpfs cannot be mounted the block is skipped and its title says why.
const fullDiskTitle = `directory store on a full file system (1 MiB tmpfs)${mountProblem === null ? '' : `: skipped, ${mountProblem}`}`;

describe.skipIf(mountProblem !== null)(fullDiskTitle, () => {
  beforeAll(() => {
    const problem = mountTmpfs(diskDir, '1m');
    if (problem !== null) throw new Error(problem);
  });
  afterAll(() => {
    try {
      execFileSync('umount', [diskDir], { stdio: 'pipe' });
    } catch {
      // already unmounted
    }
    rmSync(diskDir, { recursive: true, force: true });
  });

  it('451 4.3.0 for the message that does not fit, nothing half written, service goes on', async () => {
    const store = join(diskDir, 'mail');
    const rx = await startReceiver(env(store));
    const send = async (bytes: string) => {
      try {
        const r = await sendMail(
          { host: '127.0.0.1', port: rx.ports.mx!, security: 'none', helo: 'disk.client.example' },
          { from: 'a@client.example', to: ['b@example.com'] },
          bytes,
        );
        return `${r.response.code} ${r.response.enhancedCode}`;
      } catch (e) {
        if (e instanceof SmtpReplyError) return `${e.code} ${e.enhancedCode}`;
        throw e;
      }
    };
    try {
      // Fits.
      expect(await send(messageFor('DISK-small-1-END', 10_000))).toMatch(/^250/);
      // 2 MiB cannot fit in 1 MiB.
      expect(await send(messageFor('DISK-huge-END', 2 * 1024 * 1024))).toBe('451 4.3.0');
      expect(filesUnder(store).filter((n) => isTemp(n) || n.includes('huge'))).toEqual([]);
      // Fill the disk almost completely with a ballast file, so the next message fails part way.
      const ballast = join(diskDir, 'ballast');
      const free = () =>
        Number(execFileSync('df', ['--output=avail', '-B1', diskDir]).toString().split('\n')[1]);
      writeFileSync(ballast, Buffer.alloc(Math.max(0, free() - 30_000)));
      expect(await send(messageFor('DISK-fill-END', 200_000))).toBe('451 4.3.0');
      const names = filesUnder(store);
      expect(names.filter(isTemp)).toEqual([]);
      const a = await audit(names, async (n) => readFileSync(join(store, n)));
      expect(a.orphanEml).toEqual([]);
      expect(a.orphanJson).toEqual([]);
      expect(a.other).toEqual([]);
      expect([...copiesByMarker(a.committed, /DISK-[a-z]+-?\d*-END/).keys()]).toEqual(['DISK-small-1-END']);
      // Space is back: the receiver serves again.
      rmSync(ballast);
      expect(statSync(diskDir).isDirectory()).toBe(true);
      expect(await send(messageFor('DISK-small-2-END', 10_000))).toMatch(/^250/);
    } finally {
      expect(await rx.stop()).toBe(0);
    }
  }, 60_000);
});
