/**
 * Lease-based reads with real `wardend` processes started with --lease-reads: linearizable reads
 * are served, and a leader frozen (SIGSTOP) past its lease, while the others elect a new leader
 * and take a write, never answers a read with the value from before that write when it wakes —
 * the classic way a read lease lies, which its monotonic clock, not its tick count, prevents.
 *
 * Must never: leave a process or a folder behind; wait without a bound.
 */

import { describe, expect, it } from 'vitest';
import { b64, Cluster, ProtocolClient, unb64 } from './cluster.js';
import { clusterForSuite } from './suite.js';

let cluster: Cluster;
clusterForSuite((started) => (cluster = started), { extraArgs: ['--lease-reads'] });

describe('lease-based reads', () => {
  it('serves linearizable reads, and a leader that wakes from a freeze past its lease never answers a stale value', async () => {
    const leader = await cluster.leader();
    const old = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    expect(await old.request('put', { path: '/lr/k', value: b64('before') })).toMatchObject({ ok: true });
    expect(unb64((((await old.request('get', { path: '/lr/k' })) as { node: { value: string } }).node).value)).toBe('before');

    const frozen = cluster.member(leader).process!;
    frozen.kill('SIGSTOP');
    let staleRead: Promise<Record<string, unknown>> | null = null;
    try {
      // The others elect a leader between them and take a write the frozen one never saw.
      const others = cluster.members.filter((m) => m.name !== leader);
      let written = false;
      const deadline = Date.now() + 20_000;
      while (!written && Date.now() < deadline) {
        for (const member of others) {
          const client = await ProtocolClient.connect(member.clientUrl);
          const answer = await client.request('put', { path: '/lr/k', value: b64('after') }, 3_000).catch(() => ({ ok: false }));
          client.close();
          if (answer['ok'] === true) {
            written = true;
            break;
          }
        }
        if (!written) await new Promise((resolve) => setTimeout(resolve, 100)); // retry interval, bounded by the deadline
      }
      expect(written).toBe(true);
      // A read waits in the frozen leader's socket: the first thing it may act on when it wakes.
      staleRead = old.request('get', { path: '/lr/k' }, 15_000);
    } finally {
      frozen.kill('SIGCONT');
    }
    const answer = await staleRead!;
    if (answer['ok'] === true) expect(unb64((answer['node'] as { value: string }).value)).toBe('after');
    else expect(answer).toMatchObject({ error: { code: expect.stringMatching(/NOT_LEADER|UNAVAILABLE/) } });
    old.close();
  }, 90_000);
});
