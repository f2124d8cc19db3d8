/**
 * `warden bench --html FILE`: one self-contained HTML page of a run — the figures as text, the
 * latency distribution as bars and throughput over time (1-second buckets) as a line, both
 * drawn as inline SVG when the page is written (no script, no network, nothing to load), so it
 * opens from a mail attachment or a CI artefact as it is.
 *
 * Pattern: Template View — a pure function from the summary to a string.
 *
 * Must never: reference a URL outside the page; put unescaped text from the run into markup.
 */

import { BINS_PER_DECADE, type BenchSummary } from './report.js';

const esc = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const W = 720;
const H = 260;
const PAD = { left: 64, right: 16, top: 16, bottom: 48 };
// The histogram's p50 and p99 labels get two rows of their own above the bars: written over the
// bars they are unreadable wherever the tallest bars stand (the p50 label always sits by them).
const MARKER_ROWS = { p50: 12, p99: 26 } as const;
const HIST_TOP = 36;

function axisLabel(x: number, y: number, text: string, anchor = 'middle', extra = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" text-anchor="${anchor}" ${extra}>${esc(text)}</text>`;
}

/** Bars: one per log-spaced latency bin, labelled with its upper bound. */
function histogramSvg(s: BenchSummary): string {
  const bins = s.distribution;
  if (bins.length === 0) return '<p>No successful operations: nothing to draw.</p>';
  const most = Math.max(...bins.map(([, n]) => n));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - HIST_TOP - PAD.bottom;
  const bw = plotW / bins.length;
  const parts: string[] = [];
  bins.forEach(([upper, n], i) => {
    const h = most === 0 ? 0 : (n / most) * plotH;
    const x = PAD.left + i * bw;
    parts.push(`<rect class="bar" fill="#3b82f6" x="${(x + 1).toFixed(1)}" y="${(HIST_TOP + plotH - h).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}"><title>≤ ${upper} ms: ${n}</title></rect>`);
    if (bins.length <= 12 || i % Math.ceil(bins.length / 12) === 0) parts.push(axisLabel(x + bw / 2, H - PAD.bottom + 16, String(Number(upper.toPrecision(3))), 'middle', 'class="tick"'));
  });
  // p50 and p99 as dashed markers, placed on the same log scale as the bins.
  const first = Math.round(Math.log10(bins[0]![0] * 1000) * BINS_PER_DECADE);
  for (const [label, value, colour] of [['p50', s.latencyMs.p50, '#16a34a'], ['p99', s.latencyMs.p99, '#dc2626']] as const) {
    if (value <= 0) continue;
    const at = Math.log10(value * 1000) * BINS_PER_DECADE - (first - 1);
    const x = Math.min(PAD.left + plotW, Math.max(PAD.left, PAD.left + at * bw));
    const row = MARKER_ROWS[label];
    parts.push(`<line x1="${x.toFixed(1)}" y1="${row - 10}" x2="${x.toFixed(1)}" y2="${HIST_TOP + plotH}" stroke="${colour}" stroke-width="1.5" stroke-dasharray="4 3"/>`);
    // p50's label to the left of its line and p99's to the right, so neither crosses the other's
    // line; either turns round where it would run off the picture (~6.5 px a character at 11 px).
    const text = `${label} ${value} ms`;
    const room = text.length * 6.5 + 4;
    const right = label === 'p99' ? x + room <= W : x - room < 0;
    // A style, not a fill attribute: the page's `svg text` rule would win over the attribute.
    parts.push(axisLabel(right ? x + 4 : x - 4, row, text, right ? 'start' : 'end', `class="marker" style="fill:${colour}"`));
  }
  parts.push(axisLabel(PAD.left - 8, HIST_TOP + 10, String(most), 'end', 'class="tick"'));
  parts.push(axisLabel(PAD.left - 8, HIST_TOP + plotH, '0', 'end', 'class="tick"'));
  parts.push(axisLabel(PAD.left + plotW / 2, H - 8, 'latency, ms (upper bound of each bin, log scale); bar height: operations'));
  parts.push(`<line x1="${PAD.left}" y1="${HIST_TOP + plotH}" x2="${PAD.left + plotW}" y2="${HIST_TOP + plotH}" class="axis" stroke="#999"/>`);
  return `<svg id="latency" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="latency histogram">${parts.join('')}</svg>`;
}

/**
 * Which seconds (0-based) get a label under the throughput line: each while there are at most 12,
 * past that every k-th, always the last, and never one so near the last that the two would touch.
 */
function secondTicks(n: number): number[] {
  const every = Math.ceil(n / 12);
  const ticks: number[] = [];
  for (let i = 0; i < n - 1; i += every) if (i === 0 || n - 1 - i >= every * 0.75) ticks.push(i);
  ticks.push(n - 1);
  return ticks;
}

/** A line of successful operations per second. */
function throughputSvg(s: BenchSummary): string {
  // The last bucket covers only the run's last fraction of a second: drawn as a rate (count ÷
  // the fraction), or left out when it covers under a tenth of a second.
  const counts = s.perSecond;
  if (counts.length === 0) return '<p>No successful operations: nothing to draw.</p>';
  const lastFraction = Math.min(1, s.elapsedS - (counts.length - 1));
  const points = lastFraction >= 0.1 || counts.length === 1 ? counts.map((n, i) => (i === counts.length - 1 ? Math.round(n / Math.max(0.1, lastFraction)) : n)) : counts.slice(0, -1);
  const most = Math.max(1, ...points);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = points.length === 1 ? 0 : plotW / (points.length - 1);
  const xy = points.map((n, i) => [PAD.left + i * step, PAD.top + plotH - (n / most) * plotH] as const);
  const parts = [
    `<polyline class="line" fill="none" stroke="#16a34a" stroke-width="2" points="${xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`,
    ...xy.map(([x, y], i) => `<circle class="dot" fill="#16a34a" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3"><title>second ${i + 1}: ${points[i]} ops${i === counts.length - 1 && lastFraction < 1 ? '/s (partial second, as a rate)' : ''}</title></circle>`),
    `<line x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${PAD.left + plotW}" y2="${PAD.top + plotH}" class="axis" stroke="#999"/>`,
    `<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left + plotW}" y2="${PAD.top}" stroke="#eee"/>`,
    axisLabel(PAD.left - 8, PAD.top + 10, String(most), 'end', 'class="tick"'),
    axisLabel(PAD.left - 8, PAD.top + plotH, '0', 'end', 'class="tick"'),
    ...secondTicks(points.length).map((i) => axisLabel(xy[i]![0], H - PAD.bottom + 16, String(i + 1), 'middle', 'class="tick"')),
    axisLabel(PAD.left + plotW / 2, H - 8, 'second of the run; operations completed in each 1 s bucket'),
  ];
  return `<svg id="throughput" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="throughput over time">${parts.join('')}</svg>`;
}

export function html(s: BenchSummary, when: Date = new Date()): string {
  const l = s.latencyMs;
  const row = (k: string, v: string): string => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`;
  const errors = Object.entries(s.errors).map(([c, n]) => `${c} ${n}`).join(', ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>warden bench ${esc(s.workload)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:${W + 40}px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}th,td{padding:2px 12px 2px 0;text-align:left}th{font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
svg text{font-size:11px;fill:#444}.bar{fill:#3b82f6}.line{stroke:#16a34a;stroke-width:2}.dot{fill:#16a34a}.axis{stroke:#999}
</style></head><body>
<h1>warden bench ${esc(s.workload)}</h1>
<p>${esc(s.describe)} — ${esc(when.toISOString())}</p>
<table id="summary">
${row('endpoints', s.endpoints)}
${row('in flight / connections', `${s.clients} / ${s.conns}`)}
${row('requests', `${s.total} (${s.ok} ok, ${s.failed} failed${errors === '' ? '' : `: ${errors}`}) in ${s.elapsedS} s`)}
${row('throughput', `${s.throughput} ops/s`)}
${row('key size / value size / key space', `${s.keySize} / ${s.valSize} / ${s.keySpace}`)}
</table>
<h2>Latency (ms)</h2>
<table id="percentiles"><tr><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
<tr>${[l.min, l.mean, l.p50, l.p90, l.p99, l.p999, l.max].map((v) => `<td class="num">${v.toFixed(3)}</td>`).join('')}</tr></table>
<h2>Latency distribution</h2>
${histogramSvg(s)}
<h2>Throughput over time</h2>
${throughputSvg(s)}
<script type="application/json" id="data">${JSON.stringify(s).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}
