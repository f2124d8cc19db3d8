/**
 * The page `warden bench --html FILE` writes, looked at in a real browser: a put run against a
 * real 3-member cluster (the CLI as a real process, test/cli/run.ts), its page opened from disk in
 * headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core), and the rendered DOM
 * checked against the run's `--output json`: the throughput and p50/p99/max as the page shows
 * them, histogram bars drawn at a size that matches their counts, throughput points drawn, no
 * label drawn over another, over a bar or past the picture's edge, no script error and nothing
 * fetched but the file itself. A screenshot
 * goes to scratch/bench-html.png (gitignored) for a person to look at.
 *
 * Pattern: end-to-end test with a browser; the page is read only through what Chromium laid out.
 *
 * Must never: skip when Chromium is missing (a picture nobody checked is the failure this file
 * exists to catch: it fails and says how to install it); download a browser; leave the browser,
 * the cluster or the temporary folder behind; sleep to synchronise.
 */

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchSummary } from '../../client/cli/bench/report.js';
import type { Cluster } from '../integration/cluster.js';
import { clusterForSuite } from '../integration/suite.js';
import { runCli } from './run.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCREENSHOT = join(ROOT, 'scratch', 'bench-html.png');
// The flags that keep Chromium from reaching for the network or a GPU this machine lacks.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let cluster: Cluster;
let browser: Browser | undefined;
const dir = mkdtempSync(join(tmpdir(), 'warden-bench-html-'));

clusterForSuite((started) => (cluster = started));

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** What Chromium laid out, read in the page: visible text, cells by heading, and every mark's box. */
interface Rendered {
  readonly text: string;
  readonly summary: Record<string, string>;
  readonly percentiles: Record<string, { text: string; box: Box }>;
  readonly histogram: { svg: Box; bars: Box[]; labels: { text: string; box: Box }[] } | null;
  readonly throughput: { svg: Box; dots: Box[]; linePoints: number; labels: { text: string; box: Box }[] } | null;
}

/**
 * The little of the DOM readPage uses: tsconfig leaves the DOM library out (server code must not
 * see browser globals), and readPage runs inside Chromium, not here.
 */
interface Node_ {
  readonly textContent: string | null;
  readonly innerText: string;
  getBoundingClientRect(): Box;
  getAttribute(name: string): string | null;
  querySelector(selector: string): Node_ | null;
  querySelectorAll(selector: string): Iterable<Node_>;
}

/** Runs in the page (page.evaluate serialises it): everything it needs is inside it. */
function readPage(): Rendered {
  const doc = (globalThis as unknown as { document: Node_ & { body: Node_ } }).document;
  const box = (e: Node_): Box => {
    const r = e.getBoundingClientRect();
    return { x: r.x, y: r.y, width: r.width, height: r.height };
  };
  const labels = (svg: Node_): { text: string; box: Box }[] => [...svg.querySelectorAll('text')].map((t) => ({ text: t.textContent ?? '', box: box(t) }));
  const summary: Record<string, string> = {};
  for (const tr of doc.querySelectorAll('#summary tr')) summary[tr.querySelector('th')?.innerText ?? ''] = tr.querySelector('td')?.innerText ?? '';
  const percentiles: Record<string, { text: string; box: Box }> = {};
  const heads = [...doc.querySelectorAll('#percentiles tr:first-child th')];
  const cells = [...doc.querySelectorAll('#percentiles tr:nth-child(2) td')];
  heads.forEach((h, i) => {
    const cell = cells[i];
    if (cell !== undefined) percentiles[h.innerText] = { text: cell.innerText, box: box(cell) };
  });
  const latency = doc.querySelector('svg#latency');
  const over = doc.querySelector('svg#throughput');
  const line = over?.querySelector('polyline') ?? null;
  return {
    text: doc.body.innerText,
    summary,
    percentiles,
    histogram: latency === null ? null : { svg: box(latency), bars: [...latency.querySelectorAll('rect.bar')].map(box), labels: labels(latency) },
    throughput: over === null ? null : { svg: box(over), dots: [...over.querySelectorAll('circle.dot')].map(box), linePoints: line === null ? 0 : (line.getAttribute('points') ?? '').trim().split(/\s+/).filter((p) => p !== '').length, labels: labels(over) },
  };
}

const inside = (inner: Box, outer: Box): boolean => inner.x >= outer.x - 0.5 && inner.y >= outer.y - 0.5 && inner.x + inner.width <= outer.x + outer.width + 0.5 && inner.y + inner.height <= outer.y + outer.height + 0.5;
const overlap = (a: Box, b: Box): boolean => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

/** Labels in one chart that Chromium drew on top of each other (unreadable), as "a / b" pairs. */
function collisions(labels: readonly { text: string; box: Box }[]): string[] {
  const found: string[] = [];
  labels.forEach((a, i) => labels.slice(i + 1).forEach((b) => overlap(a.box, b.box) && found.push(`${a.text} / ${b.text}`)));
  return found;
}

async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: this test looks at the bench page in headless Chromium. Install Debian's chromium (as root: DEBIAN_FRONTEND=noninteractive apt-get install -y chromium); .ci/run does this on CI.`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
  return browser;
}

describe('warden bench --html, rendered in headless Chromium', () => {
  it('shows the run\'s throughput and p50/p99/max, draws the bars and the points, and logs no error', async () => {
    const b = await launch();
    const file = join(dir, 'put.html');
    const endpoints = cluster.members.map((m) => m.clientUrl).join(',');
    const ran = await runCli(['bench', 'put', '--total', '4000', '--clients', '16', '--prefix', '/bench-html', '--html', file, '--output', 'json'], { endpoints, timeoutMs: 60_000 });
    expect(ran.code, ran.stderr).toBe(0);
    const s = JSON.parse(ran.stdout) as BenchSummary;
    expect(s.ok).toBe(4000);

    const page = await b.newPage({ viewport: { width: 900, height: 900 } });
    const problems: string[] = [];
    const fetched: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => fetched.push(r.url()));
    const url = pathToFileURL(file).href;
    await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
    mkdirSync(join(ROOT, 'scratch'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true, timeout: 15_000 });
    const r = await page.evaluate(readPage);

    // The figures, as the page formats them, in what Chromium shows (innerText leaves hidden text out).
    const l = s.latencyMs;
    expect(r.summary['throughput']).toBe(`${s.throughput} ops/s`);
    expect(r.text).toContain(`${s.throughput} ops/s`);
    for (const [name, value] of [['p50', l.p50], ['p99', l.p99], ['max', l.max]] as const) {
      const cell = r.percentiles[name];
      expect(cell?.text, `${name} cell`).toBe(value.toFixed(3));
      expect(cell!.box.width, `${name} cell laid out`).toBeGreaterThan(0);
      expect(cell!.box.height, `${name} cell laid out`).toBeGreaterThan(0);
    }
    expect(r.text).toContain(`p50 ${l.p50} ms`);
    expect(r.text).toContain(`p99 ${l.p99} ms`);

    // The histogram: a bar per bin, inside the picture, each as tall as its count says.
    expect(r.histogram, 'svg#latency').not.toBeNull();
    const h = r.histogram!;
    expect(h.svg.width).toBeGreaterThan(0);
    expect(h.svg.height).toBeGreaterThan(0);
    expect(h.bars).toHaveLength(s.distribution.length);
    const most = Math.max(...s.distribution.map(([, n]) => n));
    const tallest = Math.max(...h.bars.map((bar) => bar.height));
    expect(tallest, 'tallest bar').toBeGreaterThan(h.svg.height / 2);
    s.distribution.forEach(([upper, n], i) => {
      const bar = h.bars[i]!;
      expect(bar.width, `bar ≤ ${upper} ms`).toBeGreaterThan(0);
      expect(inside(bar, h.svg), `bar ≤ ${upper} ms inside the chart`).toBe(true);
      expect(Math.abs(bar.height - (n / most) * tallest), `bar ≤ ${upper} ms: ${n} of ${most}`).toBeLessThan(1);
      if (n === most) expect(bar.height).toBeGreaterThan(0);
    });
    expect(collisions(h.labels), 'histogram labels drawn over each other').toEqual([]);
    const overBars = h.labels.filter((label) => h.bars.some((bar) => bar.height > 0 && overlap(label.box, bar))).map((label) => label.text);
    expect(overBars, 'histogram labels drawn over the bars').toEqual([]);
    expect(h.labels.filter((label) => !inside(label.box, h.svg)).map((label) => label.text), 'histogram labels cut off at the edge').toEqual([]);

    // Throughput over time: at least one point, each drawn and inside the picture, joined by the line.
    expect(r.throughput, 'svg#throughput').not.toBeNull();
    const t = r.throughput!;
    expect(t.dots.length).toBeGreaterThanOrEqual(1);
    expect(t.dots.length).toBeGreaterThanOrEqual(s.perSecond.length - 1);
    expect(t.dots.length).toBeLessThanOrEqual(s.perSecond.length);
    expect(t.linePoints).toBe(t.dots.length);
    for (const dot of t.dots) {
      expect(dot.width).toBeGreaterThan(0);
      expect(dot.height).toBeGreaterThan(0);
      expect(inside(dot, t.svg), 'point inside the chart').toBe(true);
    }
    expect(collisions(t.labels), 'throughput labels drawn over each other').toEqual([]);
    expect(t.labels.filter((label) => !inside(label.box, t.svg)).map((label) => label.text), 'throughput labels cut off at the edge').toEqual([]);

    expect(problems).toEqual([]);
    expect(fetched.filter((u) => u !== url), 'anything fetched besides the page').toEqual([]);
    await page.close();
  }, 120_000);
});
