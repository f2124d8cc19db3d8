/**
 * The coordination recipes against a real 3-member cluster (processes, tick 50 ms): a Barrier
 * holds its waiters until removed (and falls with its setter's session); a DoubleBarrier lets
 * nobody through `enter` before n are in and nobody out of `leave` before all have left, round
 * after round, with a failed enter taking its participant out again (its delete retried in the
 * background when the first one fails); the ServiceRegistry's watch
 * yields exactly the memberships the group went through — joins, an info update, a closed
 * session, a revoked lease — across the kill of the member the watcher was connected to; and
 * PartitionAssignment keeps every partition with exactly one live member through joins, a
 * leave and a lost session, moving no more partitions than the fewest a balanced map needs
 * (checked against an independent count, and by property over random maps).
 *
 * Must never: wait without a bound; sleep to synchronise; pass if the behaviour it names breaks.
 */

import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type Session, type WardenClient } from '../../client/index.js';
import { Barrier, DoubleBarrier } from '../../client/recipes/barrier.js';
import { assignPartitions, PartitionAssignment, type PartitionMap } from '../../client/recipes/partition-assignment.js';
import { ServiceRegistry, type Member } from '../../client/recipes/service-registry.js';
import type { Cluster } from '../integration/cluster.js';
import { clusterForSuite } from '../integration/suite.js';

let cluster: Cluster;
clusterForSuite((started) => (cluster = started));

const TTL_MS = 3_000;
const clients: WardenClient[] = [];
afterAll(async () => {
  for (const client of clients) await client.close();
});

function client(): WardenClient {
  const made = connect({ endpoints: cluster.members.map((m) => m.clientUrl), timeoutMs: 20_000 });
  clients.push(made);
  return made;
}

async function withSession(): Promise<{ client: WardenClient; session: Session }> {
  const c = client();
  return { client: c, session: await c.session({ ttlMs: TTL_MS }) };
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Tracks whether a promise has settled (to show that a wait is still waiting). */
function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { promise, settled: () => settled };
}

/** Waits (bounded, on a children watch) until `path`'s children satisfy `ok`. */
async function childrenUntil(c: WardenClient, path: string, ok: (names: string[]) => boolean, what: string, ms = 10_000): Promise<string[]> {
  const watch = c.watch(path, { scope: 'children' });
  try {
    await within(watch.started, ms, 'the watch starts');
    let names = await c.children(path).catch(() => [] as string[]);
    if (ok(names)) return names;
    return await within((async () => {
      for await (const _event of watch) {
        names = await c.children(path).catch(() => [] as string[]);
        if (ok(names)) return names;
      }
      throw new Error('the watch ended');
    })(), ms, what);
  } finally {
    await watch.cancel();
  }
}

describe('Barrier', () => {
  it('holds its waiters until removed; a wait times out; an ephemeral barrier falls with its session', async () => {
    const c = client();
    const barrier = new Barrier(c, '/it/barrier/plain');
    expect(await barrier.set()).toBe(true);
    expect(await barrier.set()).toBe(false);
    const waiters = [0, 1, 2].map(() => tracked(new Barrier(client(), '/it/barrier/plain').wait({ timeoutMs: 20_000 })));
    await expect(barrier.wait({ timeoutMs: 200 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(await barrier.isSet()).toBe(true);
    expect(waiters.some((w) => w.settled())).toBe(false);
    expect(await barrier.remove()).toBe(true);
    await within(Promise.all(waiters.map((w) => w.promise)), 10_000, 'the waiters pass');
    await within(barrier.wait(), 5_000, 'a wait on a lowered barrier passes at once');
    expect(await barrier.remove()).toBe(false);

    const setter = await withSession();
    const ephemeral = new Barrier(setter.client, '/it/barrier/ephemeral', setter.session);
    await ephemeral.set();
    const waiter = tracked(new Barrier(client(), '/it/barrier/ephemeral').wait({ timeoutMs: 20_000 }));
    expect(await ephemeral.isSet()).toBe(true);
    expect(waiter.settled()).toBe(false);
    await setter.session.close();
    await within(waiter.promise, 10_000, 'the waiter passes when the setter\'s session ends');
  });
});

describe('DoubleBarrier', () => {
  it('nobody enters before n are in, nobody leaves before all are out; round after round', async () => {
    const path = '/it/double-barrier/rounds';
    const parties = await Promise.all([0, 1, 2].map(() => withSession()));
    const barriers = parties.map((p, i) => new DoubleBarrier(p.client, path, 3, p.session, { id: `p${i}` }));
    const watcher = client();
    for (let round = 0; round < 2; round++) {
      const entering = [tracked(barriers[0]!.enter({ timeoutMs: 20_000 })), tracked(barriers[1]!.enter({ timeoutMs: 20_000 }))];
      await childrenUntil(watcher, path, (names) => names.includes('p-p0') && names.includes('p-p1'), 'two in');
      expect(entering.some((e) => e.settled())).toBe(false);
      entering.push(tracked(barriers[2]!.enter({ timeoutMs: 20_000 })));
      await within(Promise.all(entering.map((e) => e.promise)), 10_000, `round ${round}: all three enter`);

      const leaving = [tracked(barriers[0]!.leave({ timeoutMs: 20_000 })), tracked(barriers[1]!.leave({ timeoutMs: 20_000 }))];
      await childrenUntil(watcher, path, (names) => !names.includes('p-p0') && !names.includes('p-p1'), 'two out');
      expect(leaving.some((l) => l.settled())).toBe(false);
      leaving.push(tracked(barriers[2]!.leave({ timeoutMs: 20_000 })));
      await within(Promise.all(leaving.map((l) => l.promise)), 10_000, `round ${round}: all three leave`);
      // The last one out took the ready marker with it: the next round starts clean.
      await childrenUntil(watcher, path, (names) => names.length === 0, 'the barrier is empty');
    }
  });

  it('an enter that times out takes its participant out; a participant whose session is lost has left', async () => {
    const path = '/it/double-barrier/failures';
    const watcher = client();
    const lonely = await withSession();
    await expect(new DoubleBarrier(lonely.client, path, 2, lonely.session, { id: 'lonely' }).enter({ timeoutMs: 300 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(await watcher.children(path)).toEqual([]);

    const parties = await Promise.all([0, 1].map(() => withSession()));
    const barriers = parties.map((p, i) => new DoubleBarrier(p.client, path, 2, p.session, { id: `q${i}` }));
    await within(Promise.all(barriers.map((b) => b.enter({ timeoutMs: 20_000 }))), 10_000, 'both enter');
    const leaving = tracked(barriers[0]!.leave({ timeoutMs: 20_000 }));
    await childrenUntil(watcher, path, (names) => !names.includes('p-q0'), 'q0 out');
    expect(leaving.settled()).toBe(false);
    await watcher.leases.revoke(parties[1]!.session.lease); // q1 dies without leaving
    await within(leaving.promise, 10_000, 'q0 leaves once q1 is gone');
  });

  it('a failed enter whose delete failed is taken out in the background, not left to count as one of the n', async () => {
    const path = '/it/double-barrier/stray';
    const watcher = client();
    const { client: real, session } = await withSession();
    const broken = { on: false };
    const flaky = new Proxy(real, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        const bound = (value as (...args: unknown[]) => unknown).bind(target);
        return property === 'delete' ? (...args: unknown[]) => (broken.on ? Promise.reject(new Error('delete: unreachable (the test broke it)')) : bound(...args)) : bound;
      },
    });
    const barrier = new DoubleBarrier(flaky, path, 2, session, { id: 'stray' });
    const aborter = new AbortController();
    const entering = barrier.enter({ signal: aborter.signal }).catch((e: unknown) => e);
    await childrenUntil(watcher, path, (names) => names.includes('p-stray'), 'stray in');
    broken.on = true;
    aborter.abort();
    expect(((await entering) as { code?: string }).code).toBe('UNAVAILABLE');
    expect(await watcher.children(path)).toEqual(['p-stray']); // its delete failed: still in
    broken.on = false;
    await childrenUntil(watcher, path, (names) => names.length === 0, 'the stray participant taken out');
    expect(session.signal.aborted).toBe(false);
    await session.close();
  });
});

describe('ServiceRegistry', () => {
  it('watch yields every membership the group goes through, across the kill of the watcher\'s member', async () => {
    const watcherClient = client();
    const registry = new ServiceRegistry(watcherClient, { root: '/it/services' });
    const stop = new AbortController();
    const seen: Member<{ port: number }>[][] = [];
    let wake: () => void = () => undefined;
    const watching = (async () => {
      for await (const members of registry.watch<{ port: number }>('api', { signal: stop.signal })) {
        seen.push(members);
        wake();
      }
    })();
    const sawCount = async (count: number, what: string): Promise<void> => {
      const deadline = Date.now() + 15_000;
      while (seen.length < count) {
        if (Date.now() > deadline) throw new Error(`not within 15 s: ${what}; saw ${JSON.stringify(seen)}`);
        await within(new Promise<void>((resolve) => (wake = resolve)), deadline - Date.now(), what).catch(() => undefined);
      }
    };
    await sawCount(1, 'the first membership');

    const a = await withSession();
    const b = await withSession();
    const regA = await new ServiceRegistry(a.client, { root: '/it/services', session: a.session }).register('api', 'a', { port: 1 });
    await sawCount(2, 'a joins');
    const regB = await new ServiceRegistry(b.client, { root: '/it/services', session: b.session }).register('api', 'b', { port: 2 });
    await sawCount(3, 'b joins');
    await expect(new ServiceRegistry(b.client, { root: '/it/services', session: b.session }).register('api', 'a', { port: 9 })).rejects.toMatchObject({ code: 'NODE_EXISTS' });
    expect((await registry.members('api')).map((m) => [m.id, m.info])).toEqual([['a', { port: 1 }], ['b', { port: 2 }]]);

    // The watcher's member dies: the watch carries on from another with no change lost.
    expect(cluster.members.filter((m) => m.process === null).map((m) => `${m.name}: ${m.logs.slice(-3).join(' | ')}`), 'every member runs before one is killed').toEqual([]);
    const connected = cluster.members.find((m) => m.clientUrl === watcherClient.endpoint)!;
    await cluster.kill(connected.name, 'SIGKILL');
    await regB.update({ port: 3 });
    await b.session.close();
    await sawCount(5, 'b updates its info, then its session closes');
    await a.client.leases.revoke(a.session.lease);
    await sawCount(6, 'a\'s lease is revoked');
    cluster.launch(connected);

    const ids = (members: Member<{ port: number }>[]): string[] => members.map((m) => `${m.id}:${m.info.port}`);
    expect(seen.map(ids)).toEqual([[], ['a:1'], ['a:1', 'b:2'], ['a:1', 'b:3'], ['a:1'], []]);
    expect(await registry.members('api')).toEqual([]);
    await expect(regA.update({ port: 4 })).rejects.toMatchObject({ code: 'NO_NODE' });
    stop.abort();
    await within(watching, 5_000, 'the watch ends');
    await cluster.leader();
  });
});

describe('PartitionAssignment', () => {
  /** The fewest moves from `previous` to any balanced map of the live members (computed apart from the recipe). */
  function fewestMoves(count: number, previous: readonly (string | null)[], live: readonly string[]): number {
    if (live.length === 0) return previous.filter((o) => o !== null).length;
    const kept = live.map((m) => previous.filter((o) => o === m).length).sort((x, y) => y - x);
    const base = Math.floor(count / live.length);
    const extra = count % live.length;
    const overlap = kept.reduce((sum, k, i) => sum + Math.min(k, base + (i < extra ? 1 : 0)), 0);
    return count - overlap;
  }
  const moves = (a: readonly (string | null)[], b: readonly (string | null)[]): number => a.filter((o, p) => o !== b[p]).length;
  function balanced(owners: readonly (string | null)[], live: readonly string[]): boolean {
    const counts = live.map((m) => owners.filter((o) => o === m).length);
    return owners.every((o) => o !== null && live.includes(o)) && Math.max(...counts) - Math.min(...counts) <= 1;
  }

  it('assignPartitions: balanced, only to live members, with the fewest moves (property)', () => {
    const ids = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(fc.option(fc.constantFrom(...ids)), { maxLength: 40 }), fc.subarray(ids, { minLength: 1 }), (count, previousRaw, live) => {
        const previous = previousRaw.slice(0, count);
        const owners = assignPartitions(count, previous, live);
        expect(owners).toHaveLength(count);
        expect(balanced(owners, live)).toBe(true);
        expect(moves(owners, Array.from({ length: count }, (_, p) => previous[p] ?? null))).toBe(fewestMoves(count, Array.from({ length: count }, (_, p) => previous[p] ?? null), live));
      }),
      { numRuns: 500 },
    );
  });

  it('every partition with exactly one live member through joins, a leave and a lost session; minimal moves', async () => {
    const path = '/it/partitions/orders';
    const count = 12;
    const members = new Map<string, { assignment: PartitionAssignment; session: Session }>();
    const join = async (id: string): Promise<void> => {
      const { client: c, session } = await withSession();
      const assignment = new PartitionAssignment(c, { path, partitions: count, id, session, info: { id } });
      members.set(id, { assignment, session });
      await assignment.start();
    };
    /** Every live member's view shows the same valid, balanced map of the live members. */
    const converged = async (what: string): Promise<PartitionMap> => {
      const live = [...members.keys()].sort();
      const [first] = [...members.values()];
      await first!.assignment.waitUntil((self) => self.map !== null && balanced(self.map.owners, live), { timeoutMs: 20_000 });
      const map = first!.assignment.map!;
      for (const { assignment } of members.values()) {
        await assignment.waitUntil((self) => self.map?.revision === map.revision, { timeoutMs: 20_000 }).catch(() => {
          throw new Error(`${assignment.id} did not see the map at ${map.revision} (${what})`);
        });
      }
      const union = [...members.values()].flatMap(({ assignment }) => assignment.mine).sort((x, y) => x - y);
      expect(union, `${what}: each partition served by exactly one live member`).toEqual(Array.from({ length: count }, (_, p) => p));
      for (const { assignment } of members.values()) expect(assignment.mine).toEqual(map.owners.flatMap((o, p) => (o === assignment.id ? [p] : [])));
      return map;
    };

    await join('w1');
    let map = await converged('w1 alone');
    for (const id of ['w2', 'w3', 'w4']) {
      const before = map.owners;
      await join(id);
      map = await converged(`${id} joined`);
      expect(moves(before, map.owners), `${id} joined`).toBe(fewestMoves(count, before, [...members.keys()]));
    }

    const leaving = members.get('w2')!;
    members.delete('w2');
    let before = map.owners;
    await leaving.assignment.stop();
    await leaving.session.close();
    map = await converged('w2 left');
    expect(moves(before, map.owners), 'w2 left').toBe(fewestMoves(count, before, [...members.keys()]));
    expect(moves(before, map.owners)).toBe(3); // exactly w2's three partitions moved

    // w3's session is lost: its partitions (and the leadership, if it led) go to the others.
    const lost = members.get('w3')!;
    members.delete('w3');
    before = map.owners;
    const admin = client();
    await admin.leases.revoke(lost.session.lease);
    map = await converged('w3 lost its session');
    expect(moves(before, map.owners), 'w3 lost').toBe(fewestMoves(count, before, [...members.keys()]));
    expect(map.owners.filter((o) => o === 'w1')).toHaveLength(6);
    // …and w3 itself stops serving as soon as it hears its session is gone.
    await lost.assignment.waitUntil((self) => self.mine.length === 0, { timeoutMs: 10_000 });
    await lost.assignment.stop();

    for (const { assignment, session } of members.values()) {
      await assignment.stop();
      await session.close();
    }
  });
});
