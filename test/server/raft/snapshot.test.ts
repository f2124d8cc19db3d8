/**
 * Log compaction and snapshots (Raft paper §7, thesis §5): once the leader has compacted its log,
 * a follower that needs compacted entries is sent the snapshot instead (the core sends it with
 * `data: null`; the caller attaches the state); the follower hands it out in a Ready to be
 * persisted and installed, replacing its log, then catches up by ordinary appends. A member that
 * restarts recovers from its snapshot and the log after it. A snapshot to install carries its
 * state as bytes or as the caller's stage (the runtime's), never neither.
 *
 * Pattern: Low-Water Mark (snapshot + compaction), Replicated Log.
 * Must never: reach into the core past its public API, use real time, or loop without a bound.
 */

import { describe, expect, it } from 'vitest';
import { Raft } from '../../../server/raft/index.js';
import type { Snapshot, SnapshotMessage } from '../../../server/raft/index.js';
import { FixedRandom, Network, decodeState, encodeState, logOfTerms } from './harness.js';

/** a leads; c misses `count` entries, which a then compacts away. */
function followerBehindCompaction(count: number): Network {
  const net = Network.cluster(['a', 'b', 'c']);
  net.elect('a');
  const reconnect = net.isolate('c');
  net.proposeAll('a', Array.from({ length: count }, (_, i) => `e${i + 1}`));
  const last = net.raft('a').status.commitIndex;
  net.member('a').compact(last);
  reconnect();
  return net;
}

describe('§7 snapshots for followers that fell behind compaction', () => {
  it('the leader sends a snapshot (without data: the caller attaches it) instead of compacted entries', () => {
    const net = followerBehindCompaction(10);
    expect(net.raft('a').status).toMatchObject({ snapshotIndex: 11, lastIndex: 11, commitIndex: 11 });

    net.tick(1, ['a']);
    const snapshots = net.messages((m) => m.type === 'Snapshot') as SnapshotMessage[];
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]).toMatchObject({ from: 'a', to: 'c', term: 1 });
    expect(snapshots[0]!.snapshot.meta).toEqual({ index: 11, term: 1, conf: { voters: ['a', 'b', 'c'] } });
    expect(snapshots[0]!.snapshot.data).toBeNull();
  });

  it("the follower's Ready carries the snapshot; once installed, its state and commit equal the leader's", () => {
    const net = followerBehindCompaction(10);
    net.tick(1, ['a']);

    const withSnapshot = net.member('c').handled.filter((h) => h.ready.snapshot !== null);
    expect(withSnapshot).toHaveLength(1);
    const rd = withSnapshot[0]!.ready;
    expect(rd.snapshot!.meta.index).toBe(11);
    expect(decodeState(rd.snapshot!.data!).map((r) => r.text)).toEqual(net.member('a').texts());
    expect(rd.committedEntries).toEqual([]); // nothing is applied on top of a snapshot not yet installed

    expect(net.raft('c').status).toMatchObject({ snapshotIndex: 11, lastIndex: 11, commitIndex: 11, appliedIndex: 11 });
    expect(net.member('c').disk.snapshot?.meta.index).toBe(11);
    expect(net.member('c').disk.entries).toEqual([]);
    expect(net.member('c').texts()).toEqual(net.member('a').texts());
    // Entries 2..11 arrived inside the snapshot, never one by one.
    expect(net.member('c').appliedEntries.map((e) => e.index)).toEqual([1]);
  });

  it('after the snapshot the follower catches up by appends and commits the same entries', () => {
    const net = followerBehindCompaction(10);
    net.tick(1, ['a']);
    net.proposeAll('a', ['after-1', 'after-2']);

    expect(net.raft('c').status).toMatchObject({ lastIndex: 13, commitIndex: 13, appliedIndex: 13 });
    expect(net.member('c').appliedEntries.map((e) => e.index)).toEqual([1, 12, 13]);
    expect(net.member('c').texts()).toEqual(net.member('a').texts());
    expect(net.member('c').texts().slice(-3)).toEqual(['e10', 'after-1', 'after-2']);
    expect(net.messages((m) => m.type === 'Snapshot')).toHaveLength(1); // no second snapshot was needed
  });

  it('a member restarted after installing a snapshot recovers from it and the log after it', () => {
    const net = followerBehindCompaction(5);
    net.tick(1, ['a']);
    net.proposeAll('a', ['after']);
    net.crash('c');
    net.restart('c');
    expect(net.raft('c').status).toMatchObject({ term: 1, snapshotIndex: 6, lastIndex: 7, commitIndex: 7 });
    net.proposeAll('a', ['later']);
    expect(net.member('c').texts()).toEqual(net.member('a').texts());
  });

  it('a snapshot the follower already covers is acknowledged with its commit index and not installed', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    net.proposeAll('a', ['x', 'y']);
    net.member('b').compact(3); // b's own snapshot is newer than the one about to arrive
    const before = net.sent.length;
    const stale: SnapshotMessage = {
      type: 'Snapshot',
      from: 'a',
      to: 'b',
      term: 1,
      snapshot: { meta: { index: 2, term: 1, conf: { voters: ['a', 'b', 'c'] } }, data: encodeState([]) },
    };
    net.inject(stale);
    expect(net.member('b').installedSnapshots).toBe(0);
    expect(net.raft('b').status).toMatchObject({ snapshotIndex: 3, commitIndex: 3, lastIndex: 3 });
    expect(net.member('b').texts()).toEqual(['x', 'y']);
    expect(net.sent.slice(before + 1).map((s) => s.message)).toMatchObject([{ type: 'AppendResp', from: 'b', reject: false, index: 3 }]);
  });

  it("a follower that already holds the snapshot's last entry commits up to it, keeps its later entries, and acknowledges only the snapshot index", () => {
    // b holds entries 1..5; 4 and 5 (term 2) came from a deposed leader and may not be a's.
    const net = Network.cluster(['a', 'b', 'c'], {
      members: { b: { persisted: { hardState: { term: 2, vote: null, commit: 0 }, snapshot: null, entries: logOfTerms([1, 1, 1, 2, 2]) } } },
    });
    net.drop((m) => m.to === 'a'); // only the hand-made snapshot below matters
    const snapshot: SnapshotMessage = {
      type: 'Snapshot',
      from: 'a',
      to: 'b',
      term: 3,
      snapshot: { meta: { index: 3, term: 1, conf: { voters: ['a', 'b', 'c'] } }, data: new Uint8Array([1]) },
    };
    net.inject(snapshot);

    // Fast-forward: (3, 1) matches, so entries 1..3 are the leader's and committed; nothing is installed.
    expect(net.member('b').installedSnapshots).toBe(0);
    expect(net.raft('b').status).toMatchObject({ term: 3, leaderId: 'a', snapshotIndex: 0, commitIndex: 3, lastIndex: 5 });
    expect([4, 5].map((i) => net.raft('b').termAt(i))).toEqual([2, 2]);
    expect(net.member('b').appliedEntries.map((e) => e.index)).toEqual([1, 2, 3]);
    // The acknowledgement claims 3, not 5: the leader must not count b as holding its own 4 and 5.
    expect(net.messages((m) => m.type === 'AppendResp' && m.from === 'b')).toMatchObject([
      { to: 'a', term: 3, reject: false, index: 3 },
    ]);
  });

  it('a follower refuses loudly a snapshot that arrives without its state', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    const bare: SnapshotMessage = {
      type: 'Snapshot',
      from: 'a',
      to: 'b',
      term: 1,
      snapshot: { meta: { index: 9, term: 1, conf: { voters: ['a', 'b', 'c'] } }, data: null },
    };
    expect(() => net.inject(bare)).toThrow(/without its state/);
  });
});

describe("a snapshot's state: its bytes or the caller's stage, never neither", () => {
  /** A bare follower b (term 1, entries 1..2, none committed) and a leader's snapshot at 9 it lacks, its state given as `state`. */
  function followerAndSnapshot(state: Pick<Snapshot, 'data' | 'staged'>): { raft: Raft; message: SnapshotMessage } {
    const raft = new Raft({ id: 'b', peers: ['a', 'b', 'c'], random: new FixedRandom(0) }, { hardState: { term: 1, vote: null, commit: 0 }, snapshot: null, entries: logOfTerms([1, 1]) });
    const message: SnapshotMessage = { type: 'Snapshot', from: 'a', to: 'b', term: 1, snapshot: { meta: { index: 9, term: 1, conf: { voters: ['a', 'b', 'c'] } }, ...state } };
    return { raft, message };
  }

  it('installs a staged one without bytes: its Ready hands it out still marked staged, and the log restarts at its index', () => {
    const { raft, message } = followerAndSnapshot({ data: null, staged: true });
    raft.step(message);
    const rd = raft.ready();
    expect(rd.snapshot).toEqual({ meta: message.snapshot.meta, data: null, staged: true });
    expect(rd.committedEntries).toEqual([]);
    expect(rd.messages).toMatchObject([{ type: 'AppendResp', to: 'a', reject: false, index: 9 }]);
    raft.advance();
    expect(raft.status).toMatchObject({ snapshotIndex: 9, lastIndex: 9, commitIndex: 9, appliedIndex: 9 });
  });

  it('refuses loudly one with neither bytes nor a stage, and keeps its log', () => {
    const { raft, message } = followerAndSnapshot({ data: null });
    expect(() => raft.step(message)).toThrow(/without its state: neither data nor a stage/);
    expect(raft.status).toMatchObject({ snapshotIndex: 0, lastIndex: 2, commitIndex: 0 });
  });

  it('refuses loudly one with both bytes and a stage', () => {
    const { raft, message } = followerAndSnapshot({ data: new Uint8Array([1]), staged: true });
    expect(() => raft.step(message)).toThrow(/both data and a stage/);
    expect(raft.status).toMatchObject({ snapshotIndex: 0, lastIndex: 2, commitIndex: 0 });
  });
});
