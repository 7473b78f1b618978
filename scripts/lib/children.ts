/**
 * Child processes for `npm start`: each child runs in its own process group (so that stopping it
 * also stops what it started: wrangler leaves workerd children), its output is prefixed line by
 * line, and the last lines are kept to explain an early exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export interface ChildSpec {
  /** Short name used as the output prefix, e.g. `receiver`. */
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Turns one output line into what is printed (or null to drop it). Default: the line. */
  format?: (line: string) => string | null;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ManagedChild {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  /** The last output lines (both streams), for error messages. */
  readonly tail: string[] = [];
  #exit: ExitInfo | null = null;

  constructor(spec: ChildSpec, write: (text: string) => void, width: number) {
    this.name = spec.name;
    this.process = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      // Own process group: we signal the whole group, and a Ctrl-C in the terminal reaches only us,
      // so the order of shutdown stays ours.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const prefix = `[${spec.name}]`.padEnd(width + 2);
    const format = spec.format ?? ((line: string) => line);
    for (const stream of [this.process.stdout, this.process.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
        this.tail.push(line);
        if (this.tail.length > 40) this.tail.shift();
        const shown = format(line);
        if (shown !== null) write(`${prefix} ${shown}\n`);
      });
    }
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
      this.process.once('error', (err) => {
        this.tail.push(String(err));
        this.#exit = { code: 127, signal: null };
        resolve(this.#exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Exit status once the group leader has exited, else null. */
  get exit(): ExitInfo | null {
    return this.#exit;
  }

  /** Signal the whole process group. Returns false when the group is already gone. */
  signalGroup(signal: NodeJS.Signals): boolean {
    const pid = this.process.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** True while any process of the group is still alive (zombies do not count). */
  groupAlive(): boolean {
    const pid = this.process.pid;
    return pid !== undefined && processGroupAlive(pid);
  }
}

/**
 * True while a process of group `pgid` is alive. On Linux, /proc is read so that zombies (an
 * orphaned workerd that a container's PID 1 never reaps) do not count; elsewhere `kill(-pgid, 0)`.
 */
export function processGroupAlive(pgid: number): boolean {
  let entries: string[] | null = null;
  try {
    entries = readdirSync('/proc');
  } catch {
    entries = null;
  }
  if (entries?.includes('self')) {
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited while we looked
      }
      // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
    }
    return false;
  }
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Stop children: SIGTERM to each group, wait until every group is gone, SIGKILL what is left at the
 * deadline. Resolves when nothing of any group is alive.
 */
export async function stopAll(children: ManagedChild[], deadlineMs: number): Promise<void> {
  for (const child of children) child.signalGroup('SIGTERM');
  const until = Date.now() + deadlineMs;
  while (children.some((c) => c.groupAlive()) && Date.now() < until) await sleep(100);
  for (const child of children) if (child.groupAlive()) child.signalGroup('SIGKILL');
  const hard = Date.now() + 5_000;
  while (children.some((c) => c.groupAlive()) && Date.now() < hard) await sleep(50);
}

/** Last resort when this process exits abruptly: no child group survives us. */
export function killAllSync(children: ManagedChild[]): void {
  for (const child of children) if (child.groupAlive()) child.signalGroup('SIGKILL');
}
