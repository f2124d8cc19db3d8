/**
 * A cluster that changes shape under a client: 3 members grow to 5 (each new one joining empty,
 * added, caught up and promoted) and shrink back to 3, while a client keeps writing and reading;
 * no acknowledged write is lost and every read sees the latest acknowledged value of its key. A
 * SIGKILLed member whose disk is gone is replaced by a new, empty one while 20 leases are kept
 * alive: none is lost. A member added at a URL nobody answers is only a learner: the cluster
 * keeps its quorum and goes on, and the member can be removed again.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, Cluster, freePort, ProtocolClient, unb64, until } from './cluster.js';
import { connect, type WardenClient } from '../../client/index.js';

let cluster: Cluster;
const FIRST = ['n1', 'n2', 'n3'];

/** Writes key k{i % 20} = "v{i}" one at a time, reading the key back after each write, until stopped. */
class Workload {
  readonly acknowledged = new Map<string, number>();
  /** Writes acknowledged in all. */
  count = 0;
  readonly problems: string[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly client: WardenClient) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    for (let i = 0; this.running; i++) {
      const key = `/grow/k${i % 20}`;
      try {
        await this.client.put(key, `v${i}`);
        this.acknowledged.set(key, i);
        this.count += 1;
        const read = await this.client.get(key);
        // Linearizable: a read after an acknowledged write sees it (or a later one: there is none).
        if (read?.value !== `v${i}`) this.problems.push(`${key}: wrote v${i}, read ${String(read?.value)}`);
      } catch (error) {
        // A write may fail during a change (its outcome told); an acknowledged one may never be lost.
        if (!(error instanceof Error)) throw error;
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

describe('a cluster that changes shape under load', () => {
  let client: WardenClient;
  let workload: Workload;

  beforeAll(async () => {
    cluster = await Cluster.plan(6);
    for (const name of FIRST) cluster.launch(cluster.member(name), { initialCluster: cluster.specOf(FIRST) });
    await cluster.leader();
    client = connect({ endpoints: cluster.members.map((m) => m.clientUrl).join(','), timeoutMs: 20_000 });
    workload = new Workload(client);
  }, 60_000);

  afterAll(async () => {
    await workload?.stop();
    await client?.close();
    await cluster?.stop();
  });

  it('grows from 3 to 5 and shrinks back to 3, losing no acknowledged write', async () => {
    for (const name of ['n4', 'n5']) {
      cluster.launch(cluster.member(name), { initialCluster: cluster.specOf([...FIRST, 'n4', 'n5']), extraArgs: ['--initial-cluster-state', 'existing'] });
      const change = await client.members.add(name, cluster.peerUrlOf(name));
      expect(change.member).toMatchObject({ name, role: 'voter' });
    }
    expect((await client.members.list()).map((m) => [m.name, m.role])).toEqual([['n1', 'voter'], ['n2', 'voter'], ['n3', 'voter'], ['n4', 'voter'], ['n5', 'voter']]);
    const at5 = workload.count;
    await until('writes go on with five', async () => (workload.count > at5 + 20 ? true : null));
    for (const name of ['n5', 'n4']) {
      await client.members.remove(name);
      await cluster.kill(name);
    }
    expect((await client.members.list()).map((m) => m.name)).toEqual(FIRST);
    await workload.stop();
    expect(workload.problems).toEqual([]);
    // Every key's last acknowledged write is what every remaining member holds.
    for (const name of FIRST) {
      const reader = await ProtocolClient.connect(cluster.member(name).clientUrl);
      for (const [key, i] of workload.acknowledged) {
        const got = await reader.request('get', { path: key });
        expect(unb64((got['node'] as { value: string }).value), `${name} ${key}`).toBe(`v${i}`);
      }
      reader.close();
    }
  });

  it('replaces a SIGKILLed member whose disk is gone with a new, empty one, losing none of 20 leases kept alive', async () => {
    const sessions = await Promise.all(Array.from({ length: 20 }, () => client.session({ ttlMs: 3_000 })));
    await Promise.all(sessions.map((session, i) => client.create(`/replace/s${i}`, 'alive', { lease: session.lease, parents: true })));
    const leader = await cluster.leader();
    const dead = FIRST.find((n) => n !== leader)!;
    await cluster.kill(dead);
    rmSync(cluster.dataDirOf(dead), { recursive: true, force: true }); // its disk is gone
    await client.members.remove(dead);
    // The new machine, under a new name (the dead one's is never used again), joins empty.
    cluster.launch(cluster.member('n6'), { initialCluster: cluster.specOf([...FIRST, 'n6']), extraArgs: ['--initial-cluster-state', 'existing'] });
    expect((await client.members.add('n6', cluster.peerUrlOf('n6'))).member).toMatchObject({ name: 'n6', role: 'voter' });
    const watchUntil = Date.now() + 2 * 3_000 + 500;
    while (Date.now() < watchUntil) {
      expect(sessions.filter((session) => session.lost).map((session) => session.lease)).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 250)); // observing for a fixed time, not waiting on an event
    }
    const reader = await ProtocolClient.connect(cluster.member('n6').clientUrl);
    for (let i = 0; i < 20; i++) expect(unb64(((await reader.request('get', { path: `/replace/s${i}` }))['node'] as { value: string }).value)).toBe('alive');
    reader.close();
    await Promise.all(sessions.map((session) => session.close()));
  });

  it('keeps its quorum with a member added at a URL nobody answers, and removes it again', async () => {
    const nobody = `ws://127.0.0.1:${await freePort()}`;
    expect(await client.members.add('ghost', nobody, { learner: true })).toMatchObject({ member: { name: 'ghost', role: 'learner' } });
    for (let i = 0; i < 20; i++) await client.put('/ghost/check', `w${i}`);
    await expect(client.members.promote('ghost')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await client.members.remove('ghost');
    const writer = await ProtocolClient.connect(cluster.member(await cluster.leader()).clientUrl);
    expect(await writer.request('put', { path: '/ghost/after', value: b64('ok') })).toMatchObject({ ok: true });
    writer.close();
  });
});
