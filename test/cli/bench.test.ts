/**
 * `warden bench` against a real 3-member cluster, run as a real process (test/cli/bench-runner.ts,
 * the bench command under the same global options main.ts gives it): a put run whose count
 * agrees with the cluster's revision (every acknowledged put is one revision), `--output json`
 * with every field, a get run, `--html` writing the numbers, every other workload running clean,
 * and bad usage exiting 2.
 *
 * Must never: sleep to synchronise; leave the cluster running (afterAll stops it).
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type WardenClient } from '../../client/index.js';
import { Cluster } from '../integration/cluster.js';

let cluster: Cluster;
let client: WardenClient;
let endpoints: string;
const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function bench(args: readonly string[], timeoutMs = 40_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'test/cli/bench-runner.ts', '--endpoints', endpoints, 'bench', ...args], { timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The cluster's revision now: a linearizable read answers at least every acknowledged write's revision. */
async function revisionNow(): Promise<number> {
  await client.get('/bench');
  return client.revision;
}

beforeAll(async () => {
  cluster = await Cluster.start(3);
  await cluster.leader();
  endpoints = cluster.members.map((m) => m.clientUrl).join(',');
  client = connect({ endpoints });
}, 40_000);

afterAll(async () => {
  await client?.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('warden bench', () => {
  it('put: every acknowledged put is one revision, and --output json has every figure', async () => {
    // The prefix node exists first, so the run's only writes are its puts.
    await client.create('/bench', '', { parents: true });
    const before = await revisionNow();
    const ran = await bench(['put', '--total', '2000', '--clients', '16', '--conns', '2', '--output', 'json']);
    expect(ran.code, ran.stderr).toBe(0);
    const lines = ran.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as Record<string, unknown> & { latencyMs: Record<string, number>; errors: Record<string, number>; perSecond: number[] };
    for (const field of ['workload', 'clients', 'conns', 'total', 'ok', 'failed', 'errors', 'elapsedS', 'throughput', 'latencyMs', 'perSecond', 'distribution']) expect(s).toHaveProperty(field);
    for (const p of ['min', 'mean', 'p50', 'p90', 'p99', 'p999', 'max']) expect(typeof s.latencyMs[p]).toBe('number');
    expect(s.latencyMs.p50).toBeGreaterThan(0);
    expect(s.latencyMs.p50).toBeLessThanOrEqual(s.latencyMs.p99);
    expect(s.latencyMs.p99).toBeLessThanOrEqual(s.latencyMs.max);
    expect(s['workload']).toBe('put');
    expect(s['total']).toBe(2000);
    expect(s['ok']).toBe(2000);
    expect(s['failed']).toBe(0);
    expect(s.perSecond.reduce((a, b) => a + b, 0)).toBe(2000);
    expect(s['throughput']).toBeGreaterThan(0);
    // The progress bar is off with --output json (and off a TTY).
    expect(ran.stderr).not.toMatch(/%/);
    const after = await revisionNow();
    expect(after - before).toBe(s['ok']);
  }, 60_000);

  it('get: linearizable and serializable reads run, as a table and as key=value lines', async () => {
    const table = await bench(['get', '--total', '500', '--clients', '8', '--key-space', '50']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/throughput\s+[\d.]+ ops\/s/);
    expect(table.stdout).toMatch(/p99\.9/);
    expect(table.stdout).toMatch(/linearizable get/);
    const simple = await bench(['get', '--consistency', 'serializable', '--total', '300', '--clients', '4', '--key-space', '50', '--output', 'simple']);
    expect(simple.code, simple.stderr).toBe(0);
    expect(simple.stdout).toMatch(/^workload=get$/m);
    expect(simple.stdout).toMatch(/^ok=300$/m);
    expect(simple.stdout).toMatch(/^p99_ms=[\d.]+$/m);
  }, 60_000);

  it('--html writes a self-contained page with the numbers and both pictures', async () => {
    const file = join(dir, 'put.html');
    const ran = await bench(['put', '--duration', '1.5', '--clients', '8', '--output', 'json', '--html', file, '--prefix', '/bench/html']);
    expect(ran.code, ran.stderr).toBe(0);
    const s = JSON.parse(ran.stdout) as { ok: number; throughput: number; latencyMs: Record<string, number>; perSecond: number[] };
    const page = readFileSync(file, 'utf8');
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<svg id="latency"');
    expect(page).toContain('<svg id="throughput"');
    expect(page).toContain(`${s.throughput} ops/s`);
    expect(page).toContain(`<td class="num">${s.latencyMs['p99']!.toFixed(3)}</td>`);
    expect(page).toContain(`<td class="num">${s.latencyMs['max']!.toFixed(3)}</td>`);
    expect(page).toContain(`second 1: ${s.perSecond[0]} ops`);
    // Nothing to fetch: no URL but the SVG namespace.
    expect(page.replaceAll('http://www.w3.org/2000/svg', '')).not.toMatch(/(https?:)?\/\/[a-z]/i);
  }, 60_000);

  it('every other workload runs without a failure', async () => {
    const workloads = ['txn', 'range', 'watch', 'lease-keepalive', 'lock', 'election'];
    const runs = await Promise.all(workloads.map((w) => bench([w, '--total', '150', '--clients', '4', '--key-space', '20', '--output', 'json', '--prefix', `/bench/${w}`])));
    runs.forEach((ran, i) => {
      expect(ran.code, `${workloads[i]}: ${ran.stderr}`).toBe(0);
      const s = JSON.parse(ran.stdout) as { workload: string; ok: number; failed: number; errors: Record<string, number> };
      expect(s.workload).toBe(workloads[i]);
      expect(s, workloads[i]).toMatchObject({ ok: 150, failed: 0, errors: {} });
    });
  }, 60_000);

  it('bad usage exits 2 with a message', async () => {
    const unknown = await bench(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Invalid values|choices/i);
    const both = await bench(['put', '--total', '10', '--duration', '1']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/mutually exclusive/i);
    const zero = await bench(['put', '--clients', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--clients must be/);
  }, 60_000);
});
