/**
 * Summarize a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self time
 * and the most total (inclusive) time, with file:line. Usage:
 *
 *   npx node bench/tools/cpuprofile-top.ts PROFILE.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  selfMs: number;
  totalMs: number;
  selfPct: number;
}

function label(f: CallFrame): string {
  const file = f.url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/(node_modules|shared|receiver|workers|bench)\//, '$1/');
  return `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
}

export function summarize(
  path: string,
  top = 25,
): { self: ProfileRow[]; total: ProfileRow[]; sampledMs: number } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let sampled = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    sampled += dt;
  });
  const selfBy = new Map<string, number>();
  const totalBy = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const name = label(node.callFrame);
    selfBy.set(name, (selfBy.get(name) ?? 0) + us);
    // Inclusive time: count each distinct function once per sample stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const l = label(n.callFrame);
      if (seen.has(l)) continue;
      seen.add(l);
      totalBy.set(l, (totalBy.get(l) ?? 0) + us);
    }
  }
  const rows = (m: Map<string, number>): ProfileRow[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name]) => ({
        name,
        selfMs: Math.round((selfBy.get(name) ?? 0) / 100) / 10,
        totalMs: Math.round((totalBy.get(name) ?? 0) / 100) / 10,
        selfPct: Math.round(((selfBy.get(name) ?? 0) / sampled) * 1000) / 10,
      }));
  return { self: rows(selfBy), total: rows(totalBy), sampledMs: Math.round(sampled / 1000) };
}

if (import.meta.main || process.argv[1]?.endsWith('cpuprofile-top.ts')) {
  const [path, n] = process.argv.slice(2);
  if (path === undefined) {
    process.stderr.write('usage: cpuprofile-top.ts PROFILE.cpuprofile [N]\n');
    process.exit(2);
  }
  const s = summarize(path, Number(n ?? 25));
  process.stdout.write(`sampled ${s.sampledMs} ms\n\nself time:\n`);
  for (const r of s.self)
    process.stdout.write(`${String(r.selfMs).padStart(8)} ms ${String(r.selfPct).padStart(5)}%  ${r.name}\n`);
  process.stdout.write('\ninclusive time:\n');
  for (const r of s.total) process.stdout.write(`${String(r.totalMs).padStart(8)} ms  ${r.name}\n`);
}
