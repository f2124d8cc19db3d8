/**
 * A follower that was down while the others compacted their logs comes back through a snapshot
 * streamed over the peer channel (real `wardend` processes, real RocksDB): its state then equals
 * the leader's, it takes new entries from the log after the snapshot, and a restart after the
 * install recovers from what it installed.
 *
 * Must never: leave a process or a folder behind (afterAll stops the cluster).
 */

import { describe, expect, it } from 'vitest';
import { b64, Cluster, ProtocolClient, unb64 } from './cluster.js';
import { clusterForSuite } from './suite.js';

let cluster: Cluster;
// Snapshots every 100 entries, 20 kept below each: a member 600 entries behind cannot catch up from the log.
clusterForSuite((started) => (cluster = started), { extraArgs: ['--snapshot-count', '100', '--catchup-entries', '20'] });

async function rangeOf(client: ProtocolClient, consistency: 'linearizable' | 'serializable', minRevision?: number): Promise<unknown[]> {
  const answer = await client.request('range', { path: '/snap', limit: 10_000, consistency, ...(minRevision === undefined ? {} : { minRevision }) });
  expect(answer).toMatchObject({ ok: true });
  return answer['nodes'] as unknown[];
}

/** A put through the leader, tried again (bounded) if leadership moved meanwhile — two busy cores can delay a heartbeat. */
async function put(path: string, value: string): Promise<Record<string, unknown>> {
  for (let attempt = 1; ; attempt++) {
    const client = await ProtocolClient.connect(cluster.member(await cluster.leader()).clientUrl);
    const answer = await client.request('put', { path, value: b64(value) });
    client.close();
    const code = (answer['error'] as { code?: string } | undefined)?.code;
    if (answer['ok'] === true || attempt === 5 || (code !== 'NOT_LEADER' && code !== 'UNAVAILABLE')) return answer;
  }
}

/** Poll `check` until it holds, failing after `timeoutMs` (state, not timing: the bound only ends a hung test). */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // polling interval, bounded by the deadline
  }
}

describe('catching up through a snapshot', () => {
  it('brings back a follower whose missing entries were compacted away, and it goes on from the log', async () => {
    const leader = await cluster.leader();
    const away = cluster.members.find((m) => m.name !== leader)!;
    await cluster.kill(away.name);

    let lastRevision = 0;
    for (let batch = 0; batch < 12; batch++) {
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => put(`/snap/k${(batch * 50 + i) % 150}`, `v${batch * 50 + i}`)));
      for (const answer of answers) expect(answer).toMatchObject({ ok: true });
      lastRevision = Math.max(lastRevision, ...answers.map((a) => a['revision'] as number));
    }

    cluster.launch(away);
    const writer = await ProtocolClient.connect(cluster.member(await cluster.leader()).clientUrl);
    const reader = await ProtocolClient.connect(away.clientUrl);
    const expected = await rangeOf(writer, 'linearizable');
    expect(expected).toHaveLength(150);
    // It comes back by the snapshot path, not the log: judged by the members' state (/status),
    // waited for with a bound — a log line may reach this process after the member answers.
    const snapshotsOf = async (name: string): Promise<{ sent: number; installed: number }> =>
      ((await cluster.status(name))?.['snapshots'] as { sent: number; installed: number } | undefined) ?? { sent: 0, installed: 0 };
    await until(async () => (await snapshotsOf(away.name)).installed >= 1, 60_000, `${away.name} installing a snapshot`);
    const sent = await Promise.all(cluster.members.filter((m) => m.name !== away.name).map((m) => snapshotsOf(m.name)));
    expect(sent.some((s) => s.sent >= 1)).toBe(true);
    expect(await rangeOf(reader, 'serializable', lastRevision)).toEqual(expected);

    // After the install it follows the log as any follower does.
    const after = await put('/snap/after', 'after the snapshot');
    const got = await reader.request('get', { path: '/snap/after', consistency: 'serializable', minRevision: after['revision'] });
    expect(unb64((got['node'] as { value: string }).value)).toBe('after the snapshot');
    reader.close();

    // A restart recovers from the installed store and its log, with nothing lost.
    await cluster.kill(away.name);
    cluster.launch(away);
    await cluster.leader();
    const again = await ProtocolClient.connect(away.clientUrl);
    const latest = await rangeOf(writer, 'serializable', after['revision'] as number);
    expect(await rangeOf(again, 'serializable', after['revision'] as number)).toEqual(latest);
    again.close();
    writer.close();
  }, 120_000);
});
