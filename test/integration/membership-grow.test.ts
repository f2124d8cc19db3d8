/**
 * A cluster that changes shape under a client: 3 members grow to 5 (each new one joining empty,
 * added, caught up and promoted) and shrink back to 3, while three clients write and read at
 * once (most through followers); the history, with every remaining member's final reads, is
 * linearizable — so no acknowledged write was lost and no read went stale. A
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
import { checkHistory } from '../linearizability/checker.js';
import type { Operation } from '../linearizability/history.js';

let cluster: Cluster;
const FIRST = ['n1', 'n2', 'n3'];

/** Clients writing and reading at once, each on its own connection (to a different member first). */
const CLIENTS = 3;
const KEYS = 4;

/**
 * Puts and linearizable gets on a few keys from several clients at once, recorded in the shared
 * history format for the linearizability checker: a failed write's outcome is unknown (it may
 * have applied), a failed read is left out (it changed nothing).
 */
class HistoryWorkload {
  readonly history: Operation[] = [];
  /** Writes acknowledged in all. */
  count = 0;
  private running = true;
  private readonly done: Promise<void>[];
  private readonly started = performance.now();

  constructor(private readonly clients: readonly WardenClient[]) {
    this.done = clients.map((client, clientId) => this.loop(client, clientId));
  }

  private now(): number {
    return performance.now() - this.started;
  }

  private async loop(client: WardenClient, clientId: number): Promise<void> {
    for (let i = 0; this.running; i++) {
      const key = `/grow/k${(i * 7 + clientId) % KEYS}`;
      const callTime = this.now();
      if (i % 2 === 0) {
        const value = `c${clientId}-${i}`;
        try {
          await client.put(key, value);
          this.history.push({ clientId, input: { kind: 'put', key, value }, callTime, returnTime: this.now(), output: { kind: 'put' } });
          this.count += 1;
        } catch {
          this.history.push({ clientId, input: { kind: 'put', key, value }, callTime, returnTime: null, output: null });
        }
      } else {
        try {
          const node = await client.get(key);
          this.history.push({ clientId, input: { kind: 'get', key }, callTime, returnTime: this.now(), output: { kind: 'get', value: node?.value ?? null } });
        } catch {
          // A read that failed changed nothing: it is no operation of the history.
        }
      }
    }
  }

  /** Stop, then read every key from `readers` (one per remaining member) into the history too. */
  async stop(readers: readonly ProtocolClient[]): Promise<void> {
    this.running = false;
    await Promise.all(this.done);
    for (const [r, reader] of readers.entries()) {
      for (let k = 0; k < KEYS; k++) {
        const key = `/grow/k${k}`;
        const callTime = this.now();
        const got = await reader.request('get', { path: key });
        const node = got['node'] as { value: string } | null | undefined;
        this.history.push({ clientId: CLIENTS + r, input: { kind: 'get', key }, callTime, returnTime: this.now(), output: { kind: 'get', value: node ? unb64(node.value) : null } });
      }
    }
  }
}

describe('a cluster that changes shape under load', () => {
  let client: WardenClient;
  let writers: WardenClient[];
  let workload: HistoryWorkload;

  beforeAll(async () => {
    cluster = await Cluster.plan(6);
    for (const name of FIRST) cluster.launch(cluster.member(name), { initialCluster: cluster.specOf(FIRST) });
    await cluster.leader();
    const urls = cluster.members.map((m) => m.clientUrl);
    client = connect({ endpoints: urls.join(','), timeoutMs: 20_000 });
    // Each writer's first endpoint is another of the first members: most talk to a follower.
    writers = Array.from({ length: CLIENTS }, (_, c) => connect({ endpoints: [...urls.slice(c), ...urls.slice(0, c)].join(','), timeoutMs: 20_000 }));
    workload = new HistoryWorkload(writers);
  }, 60_000);

  afterAll(async () => {
    await workload?.stop([]);
    await Promise.all((writers ?? []).map((w) => w.close()));
    await client?.close();
    await cluster?.stop();
  });

  it('grows from 3 to 5 and shrinks back to 3 under three clients: the history, final reads included, is linearizable', async () => {
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
    // Every remaining member's answer, after the clients stop, joins the history: a lost
    // acknowledged write would show there as a read the history cannot explain.
    const readers = await Promise.all(FIRST.map((name) => ProtocolClient.connect(cluster.member(name).clientUrl)));
    await workload.stop(readers);
    for (const reader of readers) reader.close();
    expect(workload.count).toBeGreaterThan(50);
    const verdict = checkHistory(workload.history, { timeoutMs: 60_000 });
    expect(verdict.verdict === 'illegal' ? `${verdict.key}: ${verdict.explanation}` : verdict.verdict).toBe('ok');
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
