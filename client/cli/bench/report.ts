/**
 * The figures of a `warden bench` run, as one plain object (what `--output json` prints and
 * the HTML page draws) and as text for people (`table`) or scripts (`simple`, key=value lines).
 * Percentiles come from the HDR histogram; latency is reported in milliseconds.
 *
 * Pattern: a pure formatter — RunResult in, a summary and strings out.
 *
 * Must never: print colour off a TTY or under NO_COLOR; round a figure to zero when it is not.
 */

import type { Histogram } from 'hdr-histogram-js';
import type { RunResult } from './runner.js';

export interface BenchSummary {
  readonly workload: string;
  readonly describe: string;
  readonly endpoints: string;
  readonly clients: number;
  readonly conns: number;
  readonly rate: number;
  readonly keySize: number;
  readonly valSize: number;
  readonly keySpace: number;
  readonly consistency?: string;
  readonly total: number;
  readonly ok: number;
  readonly failed: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly elapsedS: number;
  readonly throughput: number;
  /** Latency in ms. */
  readonly latencyMs: { readonly min: number; readonly mean: number; readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number };
  /** Successful operations per 1-second bucket since the start. */
  readonly perSecond: readonly number[];
  /** The latency distribution for drawing: [upper bound of the bin in ms, count] on a log scale. */
  readonly distribution: readonly (readonly [number, number])[];
}

const ms = (us: number): number => Math.round(us) / 1000;

/** Recorded values folded into log-spaced bins (BINS_PER_DECADE) for the picture; percentiles are the histogram's own. */
export const BINS_PER_DECADE = 10;

function distribution(result: RunResult): [number, number][] {
  const h = result.histogram as unknown as { recordedValuesIterator?: { reset(): void; hasNext(): boolean; next(): { valueIteratedTo: number; countAtValueIteratedTo: number } } };
  const it = h.recordedValuesIterator;
  if (it === undefined || result.histogram.totalCount === 0) return [];
  const bins = new Map<number, number>();
  it.reset();
  while (it.hasNext()) {
    const v = it.next();
    const bin = Math.ceil(Math.log10(Math.max(1, v.valueIteratedTo)) * BINS_PER_DECADE);
    bins.set(bin, (bins.get(bin) ?? 0) + v.countAtValueIteratedTo);
  }
  const lo = Math.min(...bins.keys());
  const hi = Math.max(...bins.keys());
  const out: [number, number][] = [];
  for (let b = lo; b <= hi; b++) out.push([ms(10 ** (b / BINS_PER_DECADE)), bins.get(b) ?? 0]);
  return out;
}

/**
 * The latency figures (ms) of a histogram of microseconds. Exported for latencies the runner does
 * not time itself (a watch's deliveries: one put, many samples), so they read alike.
 */
export function latencyOf(h: Histogram): BenchSummary['latencyMs'] {
  const empty = h.totalCount === 0;
  // The histogram answers a bin's highest equivalent value; never above the largest value seen.
  const at = (p: number): number => (empty ? 0 : ms(Math.min(h.getValueAtPercentile(p), h.maxValue)));
  return { min: empty ? 0 : ms(h.minNonZeroValue), mean: empty ? 0 : ms(h.mean), p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: empty ? 0 : ms(h.maxValue) };
}

export function summarize(result: RunResult, setup: Omit<BenchSummary, 'total' | 'ok' | 'failed' | 'errors' | 'elapsedS' | 'throughput' | 'latencyMs' | 'perSecond' | 'distribution'>): BenchSummary {
  return {
    ...setup,
    total: result.ok + result.errorCount,
    ok: result.ok,
    failed: result.errorCount,
    errors: result.errors,
    elapsedS: Math.round(result.elapsedMs) / 1000,
    throughput: Math.round((result.ok / Math.max(1e-9, result.elapsedMs / 1000)) * 10) / 10,
    latencyMs: latencyOf(result.histogram),
    perSecond: result.perSecond,
    distribution: distribution(result),
  };
}

function colour(code: string, text: string, on: boolean): string {
  return on ? `\u001b[${code}m${text}\u001b[0m` : text;
}

/** Text for people: a summary block, the percentiles and the failures by code. */
export function table(s: BenchSummary, tty: boolean): string {
  const on = tty && process.env['NO_COLOR'] === undefined;
  const l = s.latencyMs;
  const rows: [string, string][] = [
    ['workload', `${s.workload} (${s.describe})`],
    ['requests', `${s.total} in ${s.elapsedS.toFixed(2)} s, ${s.clients} in flight over ${s.conns} connection${s.conns === 1 ? '' : 's'}${s.rate > 0 ? `, capped at ${s.rate}/s` : ''}`],
    ['throughput', colour('1', `${s.throughput.toFixed(1)} ops/s`, on)],
    ['failed', s.failed === 0 ? '0' : colour('31', `${s.failed} (${Object.entries(s.errors).map(([c, n]) => `${c} ${n}`).join(', ')})`, on)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  lines.push('', 'latency (ms)');
  const cells: [string, number][] = [['min', l.min], ['mean', l.mean], ['p50', l.p50], ['p90', l.p90], ['p99', l.p99], ['p99.9', l.p999], ['max', l.max]];
  lines.push(cells.map(([k]) => k.padStart(9)).join(''));
  lines.push(cells.map(([, v]) => v.toFixed(3).padStart(9)).join(''));
  if (s.distribution.length > 0) {
    lines.push('', 'distribution (ms, upper bound of each bin)');
    const most = Math.max(...s.distribution.map(([, n]) => n));
    for (const [upper, n] of s.distribution) {
      if (n === 0) continue;
      const bar = '#'.repeat(Math.max(1, Math.round((n / most) * 40)));
      lines.push(`${('≤' + upper.toFixed(3)).padStart(11)}  ${String(n).padStart(8)}  ${colour('36', bar, on)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** key=value lines, one figure each: for grep and shell scripts. */
export function simple(s: BenchSummary): string {
  const l = s.latencyMs;
  const pairs: [string, string | number][] = [
    ['workload', s.workload], ['clients', s.clients], ['conns', s.conns], ['total', s.total], ['ok', s.ok], ['failed', s.failed],
    ['elapsed_s', s.elapsedS], ['throughput', s.throughput], ['p50_ms', l.p50], ['p90_ms', l.p90], ['p99_ms', l.p99], ['p999_ms', l.p999], ['max_ms', l.max],
    ...Object.entries(s.errors).map(([code, n]): [string, number] => [`error_${code}`, n]),
  ];
  return pairs.map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
}

/** One timed run of one system, for a side-by-side table (bench/server.ts, bench/watch.ts). */
export interface Compared {
  /** The case, e.g. `put@16`. */
  readonly label: string;
  readonly round: number;
  readonly system: string;
  readonly summary: Pick<BenchSummary, 'throughput' | 'latencyMs' | 'failed'>;
}

/**
 * Systems side by side: a row per case, round and system (ops/s, p50/p99/p99.9 ms, failures),
 * and on every other system's row `reference`'s figure ÷ its own in the same round, so a noisy
 * round moves both sides of a ratio alike. The figure is throughput, or a latency when the load
 * is paced (every system then runs at the same rate).
 */
export function comparison(rows: readonly Compared[], reference: string, by: 'ops/s' | 'p50' | 'p99' = 'ops/s'): string {
  const figure = (r: Compared): number => (by === 'ops/s' ? r.summary.throughput : r.summary.latencyMs[by]);
  const head = ['case', 'round', 'system', 'ops/s', 'p50', 'p99', 'p99.9', 'failed', `${reference} ÷ it (${by})`];
  const body = rows.map((r) => {
    const l = r.summary.latencyMs;
    const ref = rows.find((o) => o.label === r.label && o.round === r.round && o.system === reference);
    const ratio = ref === undefined || r.system === reference ? '' : `×${(figure(ref) / figure(r)).toFixed(2)}`;
    return [r.label, String(r.round), r.system, r.summary.throughput.toFixed(0), l.p50.toFixed(2), l.p99.toFixed(2), l.p999.toFixed(2), String(r.summary.failed), ratio];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  // Text columns to the left, figures to the right.
  const cell = (text: string, i: number): string => (i <= 2 ? text.padEnd(widths[i]!) : text.padStart(widths[i]!));
  const line = (cells: readonly string[]): string => cells.map(cell).join('  ').trimEnd();
  return [`latency in ms`, line(head), ...body.map(line)].join('\n') + '\n';
}
