/** Shapes of the benchmark results (bench/results/results.json). */

export interface Measurement {
  /** Peer label, e.g. `ours`, `smtp-server`, `smtp-sink`. */
  peer: string;
  /** Messages (or sends) completed in the measured run. */
  count: number;
  wallMs: number;
  /** count / wall seconds (best of the rounds). */
  rate: number;
  /** Rates of every round, in run order. */
  rounds: number[];
  /** CPU milliseconds of the measured process per message (lowest of the rounds), when known. */
  cpuMsPerMsg: number | null;
  /** Whole-machine CPU busy % (all cores, every process) during the best round. */
  machineBusyPct?: number;
  /** CPU ms of the load generator (smtp-source) per message in the best round, when known. */
  loadGenCpuMsPerMsg?: number;
  error?: string;
}

export interface Ratio {
  /** e.g. `ours / smtp-server`. */
  name: string;
  /** Throughput ratio (ours rate / peer rate). */
  value: number | null;
  /** CPU efficiency ratio (peer CPU per message / ours CPU per message); > 1 = we use less CPU. */
  cpu: number | null;
  target?: number;
  /** Whether `value` meets `target`. */
  met?: boolean;
}

export interface Row {
  /** Human-readable configuration, e.g. `10 sessions, 10 KB, new connection`. */
  label: string;
  config: Record<string, string | number | boolean>;
  results: Measurement[];
  ratios: Ratio[];
  notes?: string[];
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** When and at which commit this scenario ran (a partial `--only` run keeps the others' own). */
  ranAt?: string;
  commit?: string | null;
  /** What is measured and how, for the report. */
  method: string;
  rows: Row[];
  /** Extra key/value facts (memory numbers, profile summaries). */
  facts?: Record<string, string | number | null>;
  notes?: string[];
  /** Targets that are not a ratio (memory), for the summary table. */
  targets?: { label: string; name: string; value: string; target: string; met: boolean }[];
  /** Unit of the table cells (default `msg/s`) and what the CPU column is per (default `message`). */
  unit?: string;
  unitSingular?: string;
  error?: string;
  durationMs: number;
}

export interface BenchResults {
  meta: {
    startedAt: string;
    finishedAt: string;
    quick: boolean;
    only: string[] | null;
    node: string;
    cpus: string;
    cores: number;
    memoryGb: number;
    loadAvgStart: number[];
    loadAvgEnd: number[];
    commit: string | null;
  };
  scenarios: ScenarioResult[];
}

export interface BenchContext {
  quick: boolean;
  /** Seconds each measured run should last (adaptive message counts aim for it). */
  targetSeconds: number;
  /** Seconds of unmeasured warm-up per contender before its rounds (see measureInterleaved). */
  warmupSeconds: number;
  rounds: number;
  /** Working directory for this run (bench/work/...), removed at the end. */
  workDir: string;
  log(text: string): void;
}

export function ratio(
  name: string,
  ours: Measurement | undefined,
  peer: Measurement | undefined,
  target?: number,
): Ratio {
  const value =
    ours && peer && !ours.error && !peer.error && peer.rate > 0 ? round(ours.rate / peer.rate, 2) : null;
  const cpu =
    ours?.cpuMsPerMsg && peer?.cpuMsPerMsg && !ours.error && !peer.error
      ? round(peer.cpuMsPerMsg / ours.cpuMsPerMsg, 2)
      : null;
  const r: Ratio = { name, value, cpu };
  if (target !== undefined) {
    r.target = target;
    r.met = value !== null && value >= target;
  }
  return r;
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
