/**
 * Results as Markdown (bench/results/results.md) and the scaling chart as a self-made SVG
 * (bench/results/scaling.svg): no charting dependency.
 */
import type { BenchResults, Measurement, Ratio, Row, ScenarioResult } from './types.ts';

function fmtRate(m: Measurement | undefined): string {
  if (m === undefined) return '';
  if (m.error !== undefined) return `error: ${m.error.replace(/\|/g, '/').slice(0, 120)}`;
  const cpu = m.cpuMsPerMsg === null ? '' : ` (${m.cpuMsPerMsg.toFixed(3)})`;
  return `${fmtNumber(m.rate)}${cpu}`;
}

export function fmtNumber(x: number): string {
  if (x >= 100) return String(Math.round(x));
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function fmtRatio(r: Ratio): string {
  if (r.value === null) return 'n/a';
  const mark = r.target === undefined ? '' : r.met ? ' ✅' : ' ❌';
  const cpu = r.cpu === null ? '' : ` (CPU ${r.cpu.toFixed(2)}x)`;
  return `**${r.value.toFixed(2)}x**${mark}${cpu}`;
}

function peersOf(rows: Row[]): string[] {
  const peers: string[] = [];
  for (const row of rows) for (const m of row.results) if (!peers.includes(m.peer)) peers.push(m.peer);
  return peers;
}

function ratioNames(rows: Row[]): string[] {
  const names: string[] = [];
  for (const row of rows) for (const r of row.ratios) if (!names.includes(r.name)) names.push(r.name);
  return names;
}

function scenarioTable(s: ScenarioResult): string {
  if (s.rows.length === 0) return '';
  const peers = peersOf(s.rows);
  const ratios = ratioNames(s.rows);
  const unit = s.unit ?? 'msg/s';
  const head = ['configuration', ...peers.map((p) => `${p}`), ...ratios];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const row of s.rows) {
    const cells = [
      row.label,
      ...peers.map((p) => fmtRate(row.results.find((m) => m.peer === p))),
      ...ratios.map((n) => {
        const r = row.ratios.find((x) => x.name === n);
        return r === undefined ? '' : fmtRatio(r);
      }),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return `Cells: ${unit} (CPU ms per ${s.unitSingular ?? 'message'} of the measured process). Ratios: ours / peer throughput (and peer CPU / ours CPU; above 1 = we use less CPU).\n\n${lines.join('\n')}\n`;
}

/** Every targeted value of a run, by `scenario|configuration|name`, as printed. */
export function targetValues(results: BenchResults): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of results.scenarios) {
    for (const row of s.rows) {
      for (const r of row.ratios) {
        if (r.target === undefined) continue;
        out.set(`${s.id}|${row.label}|${r.name}`, r.value === null ? 'n/a' : `${r.value.toFixed(2)}x`);
      }
    }
    for (const t of s.targets ?? []) out.set(`${s.id}|${t.label}|${t.name}`, t.value);
  }
  return out;
}

export function targetSummary(results: BenchResults, previous: BenchResults | null = null): string {
  const before = previous === null ? null : targetValues(previous);
  const prevHead = previous === null ? '' : ` previous run (${previous.meta.commit ?? '?'}) |`;
  const lines = [
    `| scenario | configuration | ratio | value | target | met |${prevHead}`,
    `| --- | --- | --- | --- | --- | --- |${previous === null ? '' : ' --- |'}`,
  ];
  const prev = (key: string): string => (before === null ? '' : ` ${before.get(key) ?? ''} |`);
  for (const s of results.scenarios) {
    for (const row of s.rows) {
      for (const r of row.ratios) {
        if (r.target === undefined) continue;
        lines.push(
          `| ${s.id} | ${row.label} | ${r.name} | ${r.value === null ? 'n/a' : `${r.value.toFixed(2)}x`} | ≥ ${r.target}x | ${r.met ? 'yes' : 'NO'} |${prev(`${s.id}|${row.label}|${r.name}`)}`,
        );
      }
    }
    for (const t of s.targets ?? []) {
      lines.push(
        `| ${s.id} | ${t.label} | ${t.name} | ${t.value} | ${t.target} | ${t.met ? 'yes' : 'NO'} |${prev(`${s.id}|${t.label}|${t.name}`)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

export function renderMarkdown(results: BenchResults, previous: BenchResults | null = null): string {
  const m = results.meta;
  const out: string[] = [];
  out.push('# Benchmark results');
  out.push('');
  out.push(
    `Run ${m.startedAt} → ${m.finishedAt}${m.quick ? ' (--quick)' : ''}${m.only ? `, only ${m.only.join(',')}` : ''}; ` +
      `commit ${m.commit ?? 'unknown'}; Node ${m.node}; ${m.cores} × ${m.cpus}; ${m.memoryGb} GB RAM; ` +
      `load average at start ${m.loadAvgStart.join(' / ')}, at end ${m.loadAvgEnd.join(' / ')}.`,
  );
  out.push('');
  out.push(
    'Everything runs on 127.0.0.1 on the same machine; absolute numbers drift with whatever else runs (this machine is shared), ratios from the same run are the result. ' +
      'How to read and reproduce: docs/explanation/benchmarks.md.',
  );
  out.push('');
  out.push('## Targets');
  out.push('');
  out.push(targetSummary(results, previous));
  for (const s of results.scenarios) {
    out.push(`## ${s.title} (\`${s.id}\`)`);
    out.push('');
    if (s.ranAt !== undefined && s.ranAt < m.startedAt) {
      out.push(`_Kept from an earlier run: ${s.ranAt}, commit ${s.commit ?? 'unknown'}._`);
      out.push('');
    }
    if (s.error !== undefined) {
      out.push(`**Not measured:** ${s.error}`);
      out.push('');
    }
    if (s.method) {
      out.push(s.method);
      out.push('');
    }
    const table = scenarioTable(s);
    if (table) {
      out.push(table);
    }
    if (s.facts && Object.keys(s.facts).length > 0) {
      out.push('| measurement | value |');
      out.push('| --- | --- |');
      for (const [k, v] of Object.entries(s.facts)) out.push(`| ${k} | ${v ?? 'n/a'} |`);
      out.push('');
    }
    for (const row of s.rows) for (const n of row.notes ?? []) out.push(`- ${row.label}: ${n}`);
    for (const n of s.notes ?? []) out.push(`- ${n}`);
    if ((s.notes?.length ?? 0) > 0 || s.rows.some((r) => (r.notes?.length ?? 0) > 0)) out.push('');
    out.push(`_${(s.durationMs / 1000).toFixed(0)} s_`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}

const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

function esc(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Line chart of msg/s against sessions (categorical x axis 1, 10, 100, 500) for the scaling scenario. */
export function renderScalingSvg(results: BenchResults): string | null {
  const s = results.scenarios.find((x) => x.id === 'scaling');
  if (s === undefined || s.rows.length === 0) return null;
  const xs = s.rows.map((r) => String(r.config['sessions']));
  const peers = peersOf(s.rows);
  const series = peers.map((p) =>
    s.rows.map((r) => r.results.find((m) => m.peer === p && m.error === undefined)?.rate ?? null),
  );
  const maxY = Math.max(1, ...series.flat().filter((v): v is number => v !== null));
  const niceMax = niceCeil(maxY);
  const W = 880;
  const H = 440;
  const L = 80;
  const R = 330;
  const T = 50;
  const B = 60;
  const pw = W - L - R;
  const ph = H - T - B;
  const x = (i: number) => L + (xs.length === 1 ? pw / 2 : (i * pw) / (xs.length - 1));
  const y = (v: number) => T + ph - (v / niceMax) * ph;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${esc('Messages per second vs concurrent sessions (10 KB, reused connections)')}</text>`,
  );
  for (let k = 0; k <= 5; k++) {
    const v = (niceMax * k) / 5;
    parts.push(`<line x1="${L}" y1="${y(v)}" x2="${L + pw}" y2="${y(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${Math.round(v)}</text>`);
  }
  xs.forEach((label, i) => {
    parts.push(`<line x1="${x(i)}" y1="${T}" x2="${x(i)}" y2="${T + ph}" stroke="#eee"/>`);
    parts.push(`<text x="${x(i)}" y="${T + ph + 20}" text-anchor="middle">${esc(label)}</text>`);
  });
  parts.push(
    `<text x="${L + pw / 2}" y="${H - 15}" text-anchor="middle">concurrent smtp-source sessions</text>`,
  );
  parts.push(
    `<text x="20" y="${T + ph / 2}" text-anchor="middle" transform="rotate(-90 20 ${T + ph / 2})">messages per second</text>`,
  );
  parts.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  series.forEach((vals, p) => {
    const color = COLORS[p % COLORS.length]!;
    const pts = vals
      .map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`))
      .filter((v): v is string => v !== null);
    if (pts.length > 1)
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2.5" points="${pts.join(' ')}"/>`);
    vals.forEach((v, i) => {
      if (v === null) return;
      parts.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="4" fill="${color}"/>`);
      parts.push(
        `<text x="${(x(i) + 6).toFixed(1)}" y="${(y(v) - 6).toFixed(1)}" fill="${color}" font-size="10">${Math.round(v)}</text>`,
      );
    });
    const ly = T + 10 + p * 22;
    parts.push(
      `<line x1="${L + pw + 16}" y1="${ly}" x2="${L + pw + 40}" y2="${ly}" stroke="${color}" stroke-width="2.5"/>`,
    );
    parts.push(`<text x="${L + pw + 46}" y="${ly + 4}">${esc(peers[p]!)}</text>`);
  });
  const m = results.meta;
  parts.push(
    `<text x="${L + pw + 16}" y="${T + ph - 10}" font-size="10" fill="#555">${esc(`${m.startedAt.slice(0, 16)} · ${m.cores} cores`)}</text>`,
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const k of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (k * p >= v) return k * p;
  return 10 * p;
}
