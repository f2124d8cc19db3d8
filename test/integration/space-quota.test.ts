/**
 * The space quota on real processes with RocksDB: filled past --quota-bytes, a member raises
 * NO_SPACE through the log; every member then refuses writes that add data with NO_SPACE naming
 * the quota, `alarmList` shows the alarm and /readyz is 503 naming it, while reads, deletes and
 * compaction go on; once the data is deleted and the history compacted, the member's store gives
 * the space back (RocksDB compacts in its own threads) and the alarm clears by itself — no
 * restart, no manual step — and writes succeed again.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, Cluster, ProtocolClient, until } from './cluster.js';

const QUOTA_BYTES = 4 * 1024 * 1024;
/** Incompressible values: RocksDB compresses its tables, and a repeated byte would take no space. */
const value = (): string => randomBytes(64 * 1024).toString('base64');
let cluster: Cluster;

describe('the space quota', () => {
  beforeAll(async () => {
    cluster = await Cluster.start(3, { extraArgs: ['--quota-bytes', String(QUOTA_BYTES)] });
    await cluster.leader();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('refuses writes that add data past the quota, and clears by itself once deletes and compaction free the space', async () => {
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m.name !== leader)!;
    const client = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    // Fill until the cluster refuses (bounded: 4× the quota at most).
    let refusal: Record<string, unknown> | null = null;
    for (let i = 0; i < (4 * QUOTA_BYTES) / (64 * 1024) && refusal === null; i++) {
      const answer = await client.request('put', { path: `/fill/k${i}`, value: value() });
      if (answer['ok'] !== true) refusal = answer;
      else if (i % 8 === 7) await new Promise((resolve) => setTimeout(resolve, 250)); // let the quota's once-a-second look see the store grow
    }
    expect(refusal, 'the cluster never refused a write').not.toBeNull();
    expect(refusal!['error']).toMatchObject({ code: 'NO_SPACE', outcome: 'retry', message: expect.stringMatching(`--quota-bytes ${QUOTA_BYTES}`) });

    // Every member refuses what adds data, and says why.
    const other = await ProtocolClient.connect(follower.clientUrl);
    expect(await other.request('put', { path: '/fill/more', value: b64('x') })).toMatchObject({ ok: false, error: { code: 'NO_SPACE' } });
    expect(await other.request('create', { path: '/fill/new', value: b64('x') })).toMatchObject({ ok: false, error: { code: 'NO_SPACE' } });
    const alarms = await other.request('alarmList');
    // One alarm per member whose store crossed the quota (they hold the same data: often all).
    expect((alarms['alarms'] as unknown[]).length).toBeGreaterThanOrEqual(1);
    for (const alarm of alarms['alarms'] as unknown[]) expect(alarm).toMatchObject({ kind: 'NO_SPACE', quotaBytes: QUOTA_BYTES, usedBytes: expect.any(Number) });
    const readiness = await fetch(`${follower.httpUrl}/readyz`);
    expect(readiness.status).toBe(503);
    const failed = ((await readiness.json()) as { failed: string[] }).failed;
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const check of failed) expect(check).toMatch(/^alarm NO_SPACE \(n\d\)$/);
    // As etcd 3.6 takes it: a load balancer may keep the member despite the alarm.
    expect((await fetch(`${follower.httpUrl}/readyz?exclude=alarm`)).status).toBe(200);
    // Reads, deletes and compaction go on.
    expect(await other.request('get', { path: '/fill/k0' })).toMatchObject({ ok: true });
    expect(await client.request('delete', { path: '/fill', recursive: true })).toMatchObject({ ok: true });
    const deleted = await client.request('get', { path: '/fill/k0' });
    const revision = deleted['revision'] as number;
    expect(await client.request('compact', { revision })).toMatchObject({ ok: true });
    const compactedAt = performance.now();

    // The alarm clears by itself: no restart, no disarm.
    await until('every NO_SPACE alarm cleared', async () => (((await other.request('alarmList'))['alarms'] as unknown[]).length === 0 ? true : null), 60_000);
    const clearedAfterMs = performance.now() - compactedAt;
    expect(await client.request('put', { path: '/after', value: b64('written') })).toMatchObject({ ok: true });
    expect((await fetch(`${follower.httpUrl}/readyz`)).status).toBe(200);
    console.log(`[space-quota] the alarm cleared ${Math.round(clearedAfterMs)} ms after the compaction was answered`);
    client.close();
    other.close();
  }, 120_000);
});
