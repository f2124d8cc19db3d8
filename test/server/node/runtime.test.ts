/**
 * The member runtime, three members in one process over the real WAL and state store (on the
 * in-memory twins): elections, writes through any member (followers forward to the leader),
 * linearizable reads on followers, a leader crash without losing an acknowledged write, a
 * restart from what the disks kept, and a member brought back by a snapshot after the log it
 * missed was compacted away.
 *
 * Must never: sleep; wait without a bound.
 */

import { describe, expect, it, vi } from 'vitest';
import type { StateResult } from '../../../server/state/state-machine.js';
import { LocalCluster, settle } from './local-cluster.js';
import { Wal } from '../../../server/storage/wal/wal.js';
import { MemberRuntime } from '../../../server/node/runtime.js';
import { MemoryStoreHome } from '../../../server/node/store-home.js';
import { MemoryFileSystem } from '../../../server/storage/memory-file-system.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const valueAt = (cluster: LocalCluster, id: string, path: string): string | null => {
  const got = cluster.runtime(id).machine.namespace.get(path);
  return got.ok && got.op === 'get' ? new TextDecoder().decode(got.node.value) : null;
};

async function write(cluster: LocalCluster, via: string, path: string, value: string): Promise<StateResult> {
  const answer = cluster.runtime(via).propose({ op: 'put', path, value: text(value) });
  let settled = false;
  answer.then(
    () => void (settled = true),
    () => void (settled = true),
  );
  await cluster.until(() => settled, 100, `the write of ${path} via ${via}`);
  return answer;
}

/**
 * A follower is down while the leader writes 80 entries and compacts its log (snapshots every 20,
 * 5 kept), then comes back: it can catch up only by a snapshot. Answers the leader and it.
 */
async function bringBackBySnapshot(cluster: LocalCluster): Promise<{ leader: string; away: string }> {
  await cluster.start();
  await cluster.until(() => cluster.leader() !== null);
  const leader = cluster.leader()!;
  const away = cluster.followers()[0]!;
  cluster.crash(away);
  for (let i = 0; i < 80; i++) expect(await write(cluster, leader, `/s/${i % 10}`, `v${i}`)).toMatchObject({ ok: true });
  expect(cluster.runtime(leader).status.snapshotIndex).toBeGreaterThan(10);
  await cluster.restart(away);
  await cluster.until(() => valueAt(cluster, away, '/s/9') === 'v79', 300, 'the snapshot install');
  return { leader, away };
}

describe('MemberRuntime', () => {
  it('elects a leader and applies a write on every member', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null, 300, 'an election');
    const leader = cluster.leader()!;
    const result = await write(cluster, leader, '/config/db', 'postgres://one');
    expect(result).toMatchObject({ ok: true, op: 'put', revision: 1 });
    await cluster.until(() => ['a', 'b', 'c'].every((id) => valueAt(cluster, id, '/config/db') === 'postgres://one'), 50, 'replication');
  });

  it('forwards a write made through a follower, and serves a linearizable read there', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const follower = cluster.followers()[0]!;
    expect(await write(cluster, follower, '/svc/x', 'v1')).toMatchObject({ ok: true, op: 'put' });
    const read = cluster.runtime(follower).readLinearizable((machine) => machine.namespace.get('/svc/x'));
    let value: unknown;
    void read.then((v) => (value = v));
    await cluster.until(() => value !== undefined, 50, 'the read');
    expect(value).toMatchObject({ ok: true, node: { value: text('v1') } });
  });

  it('forwards a write through a follower at once, without waiting for a turn of its own — but never ahead of a proposal already queued', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const leader = cluster.leader()!;
    const follower = cluster.followers()[0]!;
    const forwarded = vi.spyOn(cluster.runtime(leader), 'proposeForwarded');
    // Nothing queued: the write leaves in the same call (the core would only refuse it with the same hint a turn later).
    const first = cluster.runtime(follower).propose({ op: 'put', path: '/fast', value: text('1') });
    expect(forwarded).toHaveBeenCalledTimes(1);
    await expect(first).resolves.toMatchObject({ ok: true, op: 'put' });
    // A proposal waits in the follower's queue (a membership change, which goes only to a leader):
    // a write made now must not overtake it, so it goes through the turn too.
    forwarded.mockClear();
    const queued = cluster.runtime(follower).proposeConfChange({ op: 'remove', id: 'c' });
    const second = cluster.runtime(follower).propose({ op: 'put', path: '/after-queue', value: text('2') });
    expect(forwarded).not.toHaveBeenCalled();
    await expect(queued).rejects.toMatchObject({ code: 'NOT_LEADER' });
    await expect(second).resolves.toMatchObject({ ok: true, op: 'put' });
    expect(forwarded).toHaveBeenCalledTimes(1);
  });

  it('writes the store behind the apply in batches: at the next tick, or at once past 256 entries', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const leader = cluster.leader()!;
    await cluster.tick(); // what the election applied is written
    const engine = cluster.storeEngine(leader);
    const writes = vi.spyOn(engine, 'write');
    // A few writes, no tick: answered, and the store not yet written (the WAL holds them).
    const few = Array.from({ length: 3 }, (_, i) => cluster.runtime(leader).propose({ op: 'put', path: `/few/${i}`, value: text('v') }));
    await settle();
    for (const answer of few) await expect(answer).resolves.toMatchObject({ ok: true });
    expect(writes).not.toHaveBeenCalled();
    await cluster.tick();
    expect(writes).toHaveBeenCalledTimes(1);
    // Past the batch bound the store is written without waiting for a tick.
    writes.mockClear();
    const many = Array.from({ length: 1_100 }, (_, i) => cluster.runtime(leader).propose({ op: 'put', path: `/many/${i % 50}`, value: text('v') }));
    let answered = 0;
    for (const answer of many) void answer.then(() => (answered += 1));
    for (let round = 0; round < 50 && answered < many.length; round++) await settle();
    expect(answered).toBe(many.length);
    expect(writes).toHaveBeenCalled();
  });

  it('loses no acknowledged write when the leader crashes, and goes on under a new leader', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const first = cluster.leader()!;
    for (let i = 0; i < 20; i++) expect(await write(cluster, first, `/k/${i}`, `v${i}`)).toMatchObject({ ok: true });
    cluster.crash(first);
    await cluster.until(() => cluster.leader() !== null, 300, 'a new leader');
    const second = cluster.leader()!;
    expect(second).not.toBe(first);
    expect(await write(cluster, second, '/after', 'yes')).toMatchObject({ ok: true });
    for (const id of cluster.followers().concat(second)) for (let i = 0; i < 20; i++) expect(valueAt(cluster, id, `/k/${i}`)).toBe(`v${i}`);
    await cluster.restart(first);
    await cluster.until(() => valueAt(cluster, first, '/after') === 'yes', 300, 'the old leader catching up');
    for (let i = 0; i < 20; i++) expect(valueAt(cluster, first, `/k/${i}`)).toBe(`v${i}`);
  });

  it('brings back a member whose missing entries were compacted away, by a snapshot', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c'], { snapshotEvery: 20, keepEntries: 5 });
    const { away } = await bringBackBySnapshot(cluster);
    expect(cluster.runtime(away).machine.appliedIndex).toBeGreaterThanOrEqual(80);
    // It came back through a snapshot, not the log: its log now starts above where it stopped.
    expect(cluster.runtime(away).status.snapshotIndex).toBeGreaterThan(10);
  });

  it('makes the log\'s new base durable before it swaps in a snapshot (a power cut between leaves a log start-up can pair with the staged store)', async () => {
    const bases: (number | null)[] = [];
    const cluster = new LocalCluster(['a', 'b', 'c'], {
      snapshotEvery: 20,
      keepEntries: 5,
      // At the moment of the swap: what would a power cut leave in the WAL?
      beforeInstall: (_id, fs) => {
        const afterPowerCut = fs.clone();
        afterPowerCut.crash();
        bases.push(Wal.open(afterPowerCut, '/wal', { segmentBytes: 16 * 1024 }).log.base?.meta.index ?? null);
      },
    });
    await bringBackBySnapshot(cluster);
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) expect(base).toBeGreaterThan(10);
  });

  it('stops a member whose fdatasync failed: it reports the failure once, answers nothing more, and the others go on', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const leader = cluster.leader()!;
    cluster.fileSystem(leader).failNextSync = true;
    const doomed = await write(cluster, leader, '/doomed', 'maybe').catch((error: Error) => error);
    // Its appends left before the leader's own fdatasync: the followers may commit it under the
    // next leader, so its outcome is unknown — never "certainly not applied".
    expect(doomed).toMatchObject({ code: 'OUTCOME_UNKNOWN' });
    expect(cluster.fatal.get(leader)?.message).toContain('fdatasync');
    // Nothing more is served from state that may not be durable.
    await expect(cluster.runtime(leader).readSerializable((m) => m.revision)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(cluster.runtime(leader).readLinearizable((m) => m.revision)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(cluster.runtime(leader).propose({ op: 'put', path: '/x', value: text('x') })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    // The other two elect a leader between them and take writes.
    const others = ['a', 'b', 'c'].filter((id) => id !== leader);
    const newLeader = (): string | undefined => others.find((id) => cluster.runtime(id).status.role === 'leader');
    await cluster.until(() => newLeader() !== undefined, 300, 'a new leader');
    const next = newLeader()!;
    expect(await write(cluster, next, '/after', 'yes')).toMatchObject({ ok: true });
  });

  it('stages a second snapshot stream only after the first is installed or declined (a replaced stage under a logged base stopped the member for good)', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c'], { snapshotEvery: 20, keepEntries: 5, snapshotTwice: true });
    const { leader, away } = await bringBackBySnapshot(cluster);
    expect(cluster.fatal.get(away)).toBeUndefined();
    expect(await write(cluster, leader, '/after', 'yes')).toMatchObject({ ok: true });
    await cluster.until(() => valueAt(cluster, away, '/after') === 'yes', 100, 'the log after the snapshot');
  });

  it('answers a proposal already in the log when the member stops OUTCOME_UNKNOWN (it may yet commit), never "retry"', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const leader = cluster.leader()!;
    const runtime = cluster.runtime(leader);
    // Cut off, the leader appends the write (and sends it nowhere) but cannot commit it.
    cluster.isolate(leader);
    const inTheLog = runtime.propose({ op: 'put', path: '/maybe', value: text('x') }).catch((error: Error) => error);
    await cluster.until(() => runtime.status.lastIndex > runtime.status.commitIndex, 20, 'the write in the leader\'s log');
    await runtime.stop();
    expect(await inTheLog).toMatchObject({ code: 'OUTCOME_UNKNOWN' });
  });

  it('names its read requests apart from its previous process\'s: a leader\'s answer to a read asked before a restart never confirms one asked after (simulator seed 393)', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const follower = cluster.followers()[0]!;
    const readIds = async (): Promise<string[]> => {
      const readIndex = vi.spyOn(cluster.runtime(follower).raft, 'readIndex');
      let done = false;
      void cluster.runtime(follower).readLinearizable(() => undefined).finally(() => void (done = true));
      await cluster.until(() => done, 50, 'the read');
      return readIndex.mock.calls.map(([requestId]) => requestId);
    };
    const before = await readIds();
    cluster.crash(follower);
    await cluster.restart(follower);
    await cluster.until(() => cluster.runtime(follower).status.leaderId !== null, 100, 'the restarted member hearing the leader');
    const after = await readIds();
    expect(before.length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(0);
    for (const id of after) expect(before).not.toContain(id);
  });

  it('answers a keep-alive only once a quorum confirms it still leads: a leader cut off never tells a client its lease lives (etcd #15247)', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const leader = cluster.leader()!;
    const runtime = cluster.runtime(leader);
    const granted = await runtime.propose({ op: 'leaseGrant', ttlMs: 5_000 });
    expect(granted).toMatchObject({ ok: true, op: 'leaseGrant' });
    const lease = (granted as { lease: { id: number } }).lease.id;
    await cluster.until(() => runtime.leaseKeeper.keepAlive([lease])[0]!.ok, 50, 'the new leader keeping time');
    expect(await runtime.answerLeaseRequest({ op: 'keepAlive', leases: [lease] })).toMatchObject([{ id: lease, ok: true }]);
    // Cut off, it still believes it leads (until check-quorum deposes it): its answer must wait for a quorum it cannot reach.
    cluster.isolate(leader);
    let answer: unknown = null;
    runtime.answerLeaseRequest({ op: 'keepAlive', leases: [lease] }).then((statuses) => void (answer = statuses), (error: Error) => void (answer = error));
    await cluster.until(() => answer !== null, 100, 'the cut-off leader answering');
    expect(answer).toMatchObject({ code: 'NOT_LEADER' });
  });

  it('applies no more than its turn\'s work before letting the network in, and every entry exactly once across turns', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c'], { turnChangesMax: 2 });
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const leader = cluster.leader()!;
    const runtime = cluster.runtime(leader);
    const advance = vi.spyOn(runtime.raft, 'advance');
    const answers = Array.from({ length: 30 }, (_, i) => runtime.propose({ op: 'put', path: `/t/${i}`, value: text(`${i}`) }));
    let settled = 0;
    for (const answer of answers) answer.then(() => void (settled += 1), () => void (settled += 1));
    await cluster.until(() => settled === answers.length, 100, 'every write answered');
    const results = await Promise.all(answers);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(new Set(results.map((r) => r.revision)).size).toBe(30);
    // Some turn stopped part way through its committed entries and yielded.
    expect(advance.mock.calls.some(([appliedThrough]) => typeof appliedThrough === 'number')).toBe(true);
    await cluster.until(() => cluster.ids.every((id) => cluster.runtime(id).machine.revision === 30), 100, 'every member applying all 30');
    for (const id of cluster.ids) for (let i = 0; i < 30; i++) expect(valueAt(cluster, id, `/t/${i}`)).toBe(`${i}`);
  });

  it('compacts its log by bytes as well as by entries, keeping at most half the snapshot bytes below the mark', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c'], { snapshotEvery: 1_000_000, keepEntries: 1_000_000, snapshotBytes: 64 * 1024 });
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const leader = cluster.leader()!;
    const value = 'x'.repeat(4 * 1024);
    for (let i = 0; i < 40; i++) await write(cluster, leader, `/big/${i % 4}`, value);
    const status = cluster.runtime(leader).status;
    // 40 entries of ~4 KiB: past 64 KiB a snapshot was taken, keeping ~32 KiB (about 7 entries) below it.
    expect(status.snapshotIndex).toBeGreaterThan(0);
    expect(status.lastIndex - status.snapshotIndex).toBeLessThanOrEqual(8 + 16);
  });

  it('answers every proposal still queued when the member stops (none hangs)', async () => {
    const cluster = new LocalCluster(['a', 'b', 'c']);
    await cluster.start();
    await cluster.until(() => cluster.leader() !== null);
    const runtime = cluster.runtime(cluster.leader()!);
    const queued = runtime.propose({ op: 'put', path: '/late', value: text('x') });
    const waiting = runtime.whenRevision(1_000_000, 60_000);
    await runtime.stop();
    await expect(queued).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(waiting).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('refuses to start on a store behind its log\'s base (the entries between are gone), rather than run short of them', async () => {
    const fs = new MemoryFileSystem();
    const { wal } = Wal.open(fs, '/wal', { segmentBytes: 16 * 1024 });
    wal.setBase({ meta: { index: 10, term: 2, conf: { voters: ['a', 'b', 'c'] } }, replacesLog: true });
    wal.sync();
    wal.close();
    const { wal: reopened, log } = Wal.open(fs, '/wal', { segmentBytes: 16 * 1024 });
    const home = await MemoryStoreHome.open(); // applied 0: the staged store that had index 10 is gone
    const quiet = { info() {}, warn() {}, error() {} };
    const construct = (): MemberRuntime =>
      new MemberRuntime(
        { id: 'a', peers: ['a', 'b', 'c'] },
        {
          clock: { monotonicMs: () => 0, wallMs: () => 0 },
          timers: { setInterval: () => null, clearInterval: () => undefined, defer: (run) => void setImmediate(run) },
          random: { intBelow: () => 0 },
          wal: reopened,
          recovered: log,
          home,
          link: { send() {}, forward: () => Promise.reject(new Error('no')), sendSnapshot: () => Promise.reject(new Error('no')), leaseRequest: () => Promise.reject(new Error('no')) },
          logger: quiet,
        },
      );
    expect(construct).toThrow(/below the log's base 10/);
  });

  describe('lease-based reads (Clock-Bound Wait)', () => {
    /** Let the runtime's own scheduled work run (no timer, no tick): what completes without the network. */
    const turns = async (n = 5): Promise<void> => {
      for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
    };
    const readOn = (cluster: LocalCluster, id: string): { done: () => boolean; value: () => unknown; failed: () => unknown } => {
      let value: unknown;
      let failed: unknown;
      cluster
        .runtime(id)
        .readLinearizable((m) => m.namespace.get('/lease/read'))
        .then(
          (v) => void (value = v),
          (e: unknown) => void (failed = e),
        );
      return { done: () => value !== undefined || failed !== undefined, value: () => value, failed: () => failed };
    };

    async function leaderWithLease(leaseReads: boolean): Promise<{ cluster: LocalCluster; leader: string }> {
      const cluster = new LocalCluster(['a', 'b', 'c'], leaseReads ? { leaseReads: { driftPercent: 10 } } : {});
      await cluster.start();
      await cluster.until(() => cluster.leader() !== null, 300, 'an election');
      const leader = cluster.leader()!;
      expect(await write(cluster, leader, '/lease/read', 'fresh')).toMatchObject({ ok: true });
      for (let i = 0; i < 3; i++) await cluster.tick(); // probes confirmed by the followers
      for (const id of cluster.followers()) cluster.isolate(id);
      return { cluster, leader };
    }

    it('serves a read from the leader alone while its lease holds, with the followers cut off', async () => {
      const { cluster, leader } = await leaderWithLease(true);
      expect(cluster.runtime(leader).leaseReadMs).toBe(718); // (10 − 1) × 100 ms ÷ 1.1 − 100 ms
      const read = readOn(cluster, leader);
      await turns();
      expect(read.value()).toMatchObject({ ok: true, node: { value: text('fresh') } });
    });

    it('without lease reads the same read waits for a heartbeat round the cut-off followers cannot answer', async () => {
      const { cluster, leader } = await leaderWithLease(false);
      const read = readOn(cluster, leader);
      await turns();
      expect(read.done()).toBe(false);
    });

    it('stops serving from the lease once it has run out (no confirmation since), and the read fails rather than go stale', async () => {
      const { cluster, leader } = await leaderWithLease(true);
      for (let i = 0; i < 8; i++) await cluster.tick(); // 800 ms: past the 718 ms lease
      const read = readOn(cluster, leader);
      await turns();
      expect(read.done()).toBe(false);
      await cluster.until(() => read.done(), 30, 'the read failing once the leader steps down');
      expect(read.value()).toBeUndefined();
      expect(read.failed()).toMatchObject({ code: expect.stringMatching(/NOT_LEADER|UNAVAILABLE/) });
    });

    it('gives up the lease when it hands leadership over (the transferee\'s forced vote is granted inside a lease)', async () => {
      const { cluster, leader } = await leaderWithLease(true);
      void cluster.runtime(leader).handOffLeadership(5_000);
      const read = readOn(cluster, leader);
      await turns();
      expect(read.done()).toBe(false);
    });
  });
});
