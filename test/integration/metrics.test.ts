/**
 * What a member tells its operators, on real processes: /metrics scraped during a workload parses
 * as Prometheus exposition (with a parser library) and moves as it should — requests counted by
 * type and result, latency and fsync histograms filled, the Raft gauges, a round trip per peer,
 * every limit — and a leader change is counted after the leader is killed; /livez answers while
 * the member runs; /readyz turns 503 on a member cut off from any leader and names why. The
 * sample Grafana dashboard (deploy/grafana/warden.json) asks only for series a member exports.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, Cluster, ProtocolClient, until } from './cluster.js';

let cluster: Cluster;
const NAMES = ['n1', 'n2', 'n3'];

async function scrape(name: string): Promise<Map<string, ParsedFamily>> {
  const response = await fetch(`${cluster.member(name).httpUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(await response.text());
  // The parser refuses malformed lines; it leaves values as text, so each must be a number.
  for (const family of families) {
    for (const m of family.metrics) for (const value of [m.value, m.count, m.sum, ...Object.values(m.buckets ?? {})]) if (value !== undefined) expect(Number.isNaN(Number(value)), `${family.name} ${value}`).toBe(false);
  }
  return new Map(families.map((family) => [family.name, family]));
}

function sample(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  if (family === undefined) throw new Error(`no metric ${name}`);
  const found = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (found?.value === undefined) throw new Error(`no sample of ${name} with ${JSON.stringify(labels)}`);
  return Number(found.value);
}

async function probe(name: string, path: '/livez' | '/readyz'): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${cluster.member(name).httpUrl}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('metrics, liveness and readiness', () => {
  beforeAll(async () => {
    cluster = await Cluster.start(NAMES.length);
    await cluster.leader();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('/metrics parses as Prometheus exposition and counts what the workload did', async () => {
    const leader = await cluster.leader();
    const before = await scrape(leader);
    const client = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    for (let i = 0; i < 50; i++) await client.request('put', { path: `/m/k${i % 5}`, value: b64(`v${i}`) });
    for (let i = 0; i < 20; i++) await client.request('get', { path: `/m/k${i % 5}` });
    const missing = await client.request('get', { path: '/m/none' });
    // Refused before any handler, and under one label whatever type a client makes up.
    for (const type of ['bogus-1', 'bogus-2']) await client.raw(JSON.stringify({ id: `x-${type}`, type }));
    client.close();
    const after = await scrape(leader);

    const puts = (f: Map<string, ParsedFamily>): number => (f.get('warden_requests_total')?.metrics.find((m) => m.labels?.['type'] === 'put' && m.labels['result'] === 'ok') ? sample(f, 'warden_requests_total', { type: 'put', result: 'ok' }) : 0);
    expect(puts(after) - puts(before)).toBe(50);
    expect(sample(after, 'warden_requests_total', { type: '(unknown)', result: 'INVALID_ARGUMENT' })).toBeGreaterThanOrEqual(2);
    expect(after.get('warden_requests_total')!.metrics.some((m) => m.labels?.['type']?.startsWith('bogus'))).toBe(false);
    expect(sample(after, 'warden_requests_total', { type: 'get', result: 'ok' })).toBeGreaterThanOrEqual(20);
    expect(sample(after, 'warden_requests_total', { type: 'get', result: String((missing['error'] as { code?: string } | undefined)?.code ?? 'ok') })).toBeGreaterThanOrEqual(1);
    for (const [name, type] of [
      ['warden_requests_total', 'COUNTER'],
      ['warden_request_duration_seconds', 'HISTOGRAM'],
      ['warden_wal_fsync_duration_seconds', 'HISTOGRAM'],
      ['warden_event_loop_lag_seconds', 'HISTOGRAM'],
      ['warden_proposals_committed_total', 'COUNTER'],
      ['warden_leader_changes_total', 'COUNTER'],
      ['warden_raft_term', 'GAUGE'],
      ['warden_raft_role', 'GAUGE'],
      ['warden_wal_bytes', 'GAUGE'],
      ['warden_store_bytes', 'GAUGE'],
      ['warden_limit', 'GAUGE'],
    ] as const) {
      expect(after.get(name)?.type, name).toBe(type);
    }
    // (The parser folds a labelled histogram's series together, so latency is read on the unlabelled ones.)
    expect(Number(after.get('warden_wal_fsync_duration_seconds')!.metrics[0]!.count) - Number(before.get('warden_wal_fsync_duration_seconds')!.metrics[0]!.count)).toBeGreaterThanOrEqual(1);
    expect(Number(after.get('warden_event_loop_lag_seconds')!.metrics[0]!.count)).toBeGreaterThan(0);
    expect(sample(after, 'warden_proposals_committed_total') - sample(before, 'warden_proposals_committed_total')).toBeGreaterThanOrEqual(50);
    expect(sample(after, 'warden_raft_role', { role: 'leader' })).toBe(1);
    expect(sample(after, 'warden_raft_commit_index')).toBeGreaterThanOrEqual(50);
    expect(sample(after, 'warden_limit', { limit: 'max-connections', unit: 'count' })).toBe(4_096);
    expect(sample(after, 'warden_connections')).toBeGreaterThanOrEqual(0);
    // A round trip to each peer, once the first pings have been answered.
    const peers = await until('round trips to both peers', async () => {
      const f = await scrape(leader);
      const rtts = f.get('warden_peer_round_trip_seconds')?.metrics ?? [];
      return rtts.length === 2 ? rtts : null;
    });
    expect(peers.map((m) => m.labels?.['peer']).sort()).toEqual(NAMES.filter((n) => n !== leader).sort());
    for (const m of peers) expect(Number(m.value)).toBeGreaterThan(0);
    // The sample Grafana dashboard asks only for series the member exports.
    const dashboard = readFileSync(fileURLToPath(new URL('../../deploy/grafana/warden.json', import.meta.url)), 'utf8');
    const exported = new Set([...after.keys()].flatMap((name) => [name, `${name}_bucket`, `${name}_sum`, `${name}_count`]));
    const asked = [...new Set(dashboard.match(/warden_[a-z_]+/g) ?? [])];
    expect(asked.length).toBeGreaterThan(10);
    expect(asked.filter((name) => !exported.has(name))).toEqual([]);
  }, 60_000);

  it('counts a leader change after the leader is killed; /livez and /readyz answer', async () => {
    const leader = await cluster.leader();
    const other = NAMES.find((n) => n !== leader)!;
    expect(await probe(other, '/livez')).toMatchObject({ status: 200, body: { live: 'ok' } });
    expect(await probe(other, '/readyz')).toMatchObject({ status: 200, body: { ready: 'ok', failed: [] } });
    const changesBefore = sample(await scrape(other), 'warden_leader_changes_total');
    await cluster.kill(leader);
    const next = await cluster.leader();
    expect(next).not.toBe(leader);
    await until('the leader change counted', async () => (sample(await scrape(other), 'warden_leader_changes_total') > changesBefore ? true : null));
    // The last member alone knows no leader: alive, but not ready.
    const last = NAMES.find((n) => n !== leader && n !== other)!;
    await cluster.kill(next === other ? last : other);
    const alone = next === other ? other : last;
    const readiness = await until('the lone member not ready', async () => {
      const r = await probe(alone, '/readyz');
      return r.status === 503 ? r : null;
    });
    expect(readiness.body).toMatchObject({ ready: 'not ready', failed: ['no leader known'] });
    expect(await probe(alone, '/livez')).toMatchObject({ status: 200 });
    expect(sample(await scrape(alone), 'warden_has_leader')).toBe(0);
  }, 90_000);
});
