/**
 * --auto-compaction-retention on real processes: with a 2 s retention the leader compacts the
 * history by itself, so a read of a revision older than that answers COMPACTED, while the
 * current value is still read.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, Cluster, ProtocolClient, until } from './cluster.js';

let cluster: Cluster;

describe('compaction by age', () => {
  beforeAll(async () => {
    cluster = await Cluster.start(3, { extraArgs: ['--auto-compaction-retention', '2s'] });
    await cluster.leader();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('compacts the history older than the retention by itself', async () => {
    const leader = await cluster.leader();
    const client = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    const first = await client.request('put', { path: '/aged', value: b64('v0') });
    const firstRevision = first['revision'] as number;
    for (let i = 1; i < 5; i++) await client.request('put', { path: '/aged', value: b64(`v${i}`) });
    expect(await client.request('get', { path: '/aged', revision: firstRevision })).toMatchObject({ ok: true });
    await until('the old revision compacted away', async () => {
      const answer = await client.request('get', { path: '/aged', revision: firstRevision });
      return (answer['error'] as { code?: string } | undefined)?.code === 'COMPACTED' ? true : null;
    }, 20_000);
    expect(await client.request('get', { path: '/aged' })).toMatchObject({ ok: true, node: { value: b64('v4') } });
    client.close();
  }, 60_000);
});
