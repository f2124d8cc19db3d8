/**
 * Log replication and commitment, as the Raft paper states them: entries flow from the leader to
 * every follower and commit once a majority stores them (§5.3); the leader's log overwrites a
 * conflicting follower suffix (§5.3, Figure 7), backing up a term at a time rather than an entry
 * at a time (thesis §5.3 fast backtracking); a leader never commits an older-term entry by
 * counting replicas (§5.4.2, Figure 8); and the High-Water Mark only moves forward, with every
 * committed entry handed out for applying exactly once, in order, never past the commit index.
 *
 * Pattern: Replicated Log, High-Water Mark, Majority Quorum.
 * Must never: reach into the core past its public API, use real time, or loop without a bound.
 */

import { describe, expect, it } from 'vitest';
import type { Entry, Message, NodeId, PersistedState } from '../../../server/raft/index.js';
import { Network, SeededRandom, entry, logOfTerms, text } from './harness.js';

function appendsTo(to: NodeId): (m: Message) => boolean {
  return (m) => m.type === 'Append' && m.to === to;
}

/** The log as [index, term] pairs, read through the public API. */
function logOf(net: Network, id: NodeId): [number, number][] {
  const status = net.raft(id).status;
  const out: [number, number][] = [];
  for (let i = status.snapshotIndex + 1; i <= status.lastIndex; i++) out.push([i, net.raft(id).termAt(i)!]);
  return out;
}

function persistedLog(net: Network, id: NodeId): [number, number][] {
  return net.member(id).disk.entries.map((e) => [e.index, e.term]);
}

function startingAt(term: number, entries: Entry[]): PersistedState {
  return { hardState: { term, vote: null, commit: 0 }, snapshot: null, entries };
}

describe('§5.3 log replication', () => {
  it('entries proposed on the leader reach every follower, commit, and are applied in the same order everywhere', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    expect(net.propose('a', 'x')).toEqual({ ok: true, index: 2, term: 1 });
    expect(net.propose('a', 'y')).toEqual({ ok: true, index: 3, term: 1 });
    expect(net.propose('a', 'z')).toEqual({ ok: true, index: 4, term: 1 });
    net.settle();

    for (const id of net.ids) {
      expect(net.raft(id).status).toMatchObject({ commitIndex: 4, appliedIndex: 4, lastIndex: 4 });
      expect(persistedLog(net, id)).toEqual([
        [1, 1],
        [2, 1],
        [3, 1],
        [4, 1],
      ]);
      expect(net.member(id).texts()).toEqual(['x', 'y', 'z']);
    }
  });

  it('an entry commits once a majority stores it, without waiting for the slowest member', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    const reconnect = net.isolate('c');
    net.proposeAll('a', ['x']);

    expect(net.raft('a').status.commitIndex).toBe(2);
    expect(net.raft('b').status.commitIndex).toBe(2);
    expect(net.raft('c').status.lastIndex).toBe(1);
    expect(net.member('a').texts()).toEqual(['x']);

    reconnect();
    net.tick(1);
    expect(net.raft('c').status.commitIndex).toBe(2);
    expect(net.member('c').texts()).toEqual(['x']);
  });

  it('an entry a leader holds alone, without a majority, is not committed', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    net.proposeAll('a', ['x']);
    expect(net.raft('a').status).toMatchObject({ lastIndex: 2, commitIndex: 1 });
    expect(net.member('a').texts()).toEqual([]);
  });

  it('a follower persists an entry first and applies it only once it learns the entry is committed', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    net.proposeAll('a', ['x']);

    const readiesOfB = net.member('b').handled.map((h) => h.ready);
    const persistedAt = readiesOfB.findIndex((rd) => rd.entries.some((e) => e.index === 2));
    const appliedAt = readiesOfB.findIndex((rd) => rd.committedEntries.some((e) => e.index === 2));
    expect(persistedAt).toBeGreaterThanOrEqual(0);
    expect(appliedAt).toBeGreaterThan(persistedAt);
    expect(readiesOfB[persistedAt]!.committedEntries.map((e) => e.index)).not.toContain(2);
  });

  it("a follower commits only up to the last entry it knows matches the leader: min(leaderCommit, last new entry) (Figure 2)", () => {
    // b still holds two uncommitted term-2 entries from a deposed leader; a leads term 3 with commit 4.
    const net = Network.cluster(['a', 'b', 'c'], {
      members: { b: { persisted: startingAt(3, logOfTerms([1, 1, 2, 2])) } },
    });
    net.drop((m) => m.to === 'a'); // keep a out of it: only the hand-made append below matters
    net.inject({ type: 'Append', from: 'a', to: 'b', term: 3, prevLogIndex: 1, prevLogTerm: 1, entries: [entry(2, 1)], commit: 4 });

    // The append proves b matches a up to index 2 only; entries 3 and 4 may differ from a's.
    expect(net.raft('b').status).toMatchObject({ commitIndex: 2, lastIndex: 4, leaderId: 'a' });
    expect(net.member('b').appliedEntries.map((e) => e.index)).toEqual([1, 2]);
    expect(net.messages((m) => m.type === 'AppendResp' && m.from === 'b')).toMatchObject([{ reject: false, index: 2 }]);
  });

  it('a follower acknowledging an empty append that matches below its divergent suffix commits only to the append\'s prevLogIndex, though the leader has committed more', () => {
    // b: [1, 1, 2, 2] (3 and 4 from a deposed term-2 leader); a leads term 3 and has committed 5.
    const net = Network.cluster(['a', 'b', 'c'], {
      members: { b: { persisted: startingAt(3, logOfTerms([1, 1, 2, 2])) } },
    });
    net.drop((m) => m.to === 'a');
    net.inject({ type: 'Append', from: 'a', to: 'b', term: 3, prevLogIndex: 2, prevLogTerm: 1, entries: [], commit: 5 });

    expect(net.raft('b').status).toMatchObject({ commitIndex: 2, lastIndex: 4, leaderId: 'a' });
    expect([3, 4].map((i) => net.raft('b').termAt(i))).toEqual([2, 2]);
    expect(net.member('b').appliedEntries.map((e) => e.index)).toEqual([1, 2]);
    expect(net.messages((m) => m.type === 'AppendResp' && m.from === 'b')).toMatchObject([{ reject: false, index: 2 }]);

    // a's real entry 3 (its term-3 no-op) then replaces b's: possible only because 3 was never committed.
    net.inject({ type: 'Append', from: 'a', to: 'b', term: 3, prevLogIndex: 2, prevLogTerm: 1, entries: [{ index: 3, term: 3, type: 'noop', data: new Uint8Array(0) }], commit: 5 });
    expect(logOf(net, 'b')).toEqual([
      [1, 1],
      [2, 1],
      [3, 3],
    ]);
    expect(net.raft('b').status.commitIndex).toBe(3);
  });

  it('a follower with a conflicting, uncommitted suffix has it overwritten by the new leader (§5.3)', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: 10 });
    net.elect('a');
    net.proposeAll('a', ['committed']);
    const reconnect = net.isolate('a');
    net.proposeAll('a', ['lost-1', 'lost-2']); // only a ever stores these
    expect(logOf(net, 'a')).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
    ]);

    net.tickUntil(() => net.leaders().some((id) => id !== 'a'), 100);
    const newLeader = net.leaders().find((id) => id !== 'a')!;
    net.proposeAll(newLeader, ['kept-1']);
    const term = net.raft(newLeader).status.term;
    expect(term).toBeGreaterThan(1);

    reconnect();
    net.tick(1);
    // a's entries 3 and 4 (term 1) were replaced by the new leader's no-op and entry (its term).
    expect(logOf(net, 'a')).toEqual(logOf(net, newLeader));
    expect(logOf(net, 'a')).toEqual([
      [1, 1],
      [2, 1],
      [3, term],
      [4, term],
    ]);
    expect(persistedLog(net, 'a')).toEqual(logOf(net, newLeader));
    expect(net.member('a').texts()).toEqual(['committed', 'kept-1']);
    expect(net.member('a').appliedEntries.map((e) => text(e.data))).not.toContain('lost-1');
  });
});

describe('§5.3 Figure 7: the leader forces any follower log to match its own', () => {
  // The leader's log for term 8 in Figure 7, and the six follower logs it may meet.
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  // Each follower log, and the last index where it agrees with the leader (null: it already
  // agrees at the leader's last index, 10, and only needs the new entry).
  const followerLogs = [
    { follower: '(a) missing one entry', log: [1, 1, 1, 4, 4, 5, 5, 6, 6], agreeAt: 9 },
    { follower: '(b) missing many entries', log: [1, 1, 1, 4], agreeAt: 4 },
    { follower: '(c) one extra uncommitted entry of term 6', log: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], agreeAt: null },
    { follower: '(d) extra entries of term 7', log: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], agreeAt: null },
    { follower: '(e) missing entries and extra entries of term 4', log: [1, 1, 1, 4, 4, 4, 4], agreeAt: 5 },
    { follower: '(f) extra entries of terms 2 and 3 only it has', log: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], agreeAt: 3 },
  ];

  /**
   * a leads (elected in term 8 with c's vote, c starting empty); b holds the follower log and is
   * cut off during the election. Then b is reconnected and the leader brings it in line.
   * Returns the messages between a and b from the reconnection on.
   */
  function syncFollower(followerLog: readonly number[]): { net: Network; exchanged: Message[] } {
    const net = Network.cluster(['a', 'b', 'c'], {
      members: {
        a: { persisted: startingAt(7, logOfTerms(leaderLog)) },
        b: { persisted: startingAt(7, logOfTerms(followerLog)) },
        c: { persisted: startingAt(7, []) },
      },
    });
    const reconnect = net.isolate('b');
    net.elect('a');
    expect(net.raft('a').status).toMatchObject({ term: 8, lastIndex: 11, commitIndex: 11 });
    const before = net.sent.length;
    reconnect();
    net.tick(1, ['a']); // a heartbeat finds b again
    const exchanged = net.sent
      .slice(before)
      .filter((s) => s.fate === 'delivered' && (s.message.to === 'b' || s.message.from === 'b'))
      .map((s) => s.message);
    return { net, exchanged };
  }

  it.each(followerLogs)('follower $follower ends with exactly the leader log, after at most one rejection', ({ log, agreeAt }) => {
    const { net, exchanged } = syncFollower(log);
    const expected = [...leaderLog, 8].map((term, i) => [i + 1, term]);
    expect(logOf(net, 'b')).toEqual(expected);
    expect(persistedLog(net, 'b')).toEqual(expected);
    expect(net.raft('b').status).toMatchObject({ term: 8, leaderId: 'a', commitIndex: 11 });

    // Backing up by term, not by entry: one rejection tells the leader where the logs agree,
    // and its next append starts exactly there.
    const rejections = exchanged.filter((m) => m.type === 'AppendResp' && m.reject);
    const appends = exchanged.filter(appendsTo('b'));
    expect(appends[0]).toMatchObject({ prevLogIndex: 10, prevLogTerm: 6 });
    if (agreeAt === null) {
      expect(rejections).toEqual([]);
    } else {
      expect(rejections).toHaveLength(1);
      expect(appends[1]).toMatchObject({ prevLogIndex: agreeAt, prevLogTerm: leaderLog[agreeAt - 1] });
    }
    expect(appends.length).toBeLessThanOrEqual(3);
  });

  it('fast backtracking: a follower 60 conflicting entries ahead catches up in a couple of appends, not 60', () => {
    const net = Network.cluster(['a', 'b', 'c'], {
      members: {
        a: { persisted: startingAt(3, logOfTerms([1, ...new Array<number>(40).fill(3)])) },
        b: { persisted: startingAt(3, logOfTerms([1, ...new Array<number>(60).fill(2)])) },
        c: { persisted: startingAt(3, []) },
      },
    });
    const reconnect = net.isolate('b');
    net.elect('a');
    const before = net.sent.length;
    reconnect();
    net.tick(1, ['a']);

    const delivered = net.sent.slice(before).filter((s) => s.fate === 'delivered').map((s) => s.message);
    expect(delivered.filter(appendsTo('b')).length).toBeLessThanOrEqual(3);
    expect(delivered.filter((m) => m.type === 'AppendResp' && m.from === 'b' && m.reject)).toHaveLength(1);
    expect(net.raft('b').status).toMatchObject({ lastIndex: 42, commitIndex: 42 });
    expect(logOf(net, 'b')).toEqual(logOf(net, 'a'));
  });

  it('fast backtracking: a follower 100 entries behind catches up in a couple of appends, not 100', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    const reconnect = net.isolate('b');
    net.proposeAll('a', Array.from({ length: 100 }, (_, i) => `e${i}`));
    const before = net.sent.length;
    reconnect();
    net.tick(1, ['a']);

    const delivered = net.sent.slice(before).filter((s) => s.fate === 'delivered').map((s) => s.message);
    expect(delivered.filter(appendsTo('b')).length).toBeLessThanOrEqual(3);
    expect(net.raft('b').status).toMatchObject({ lastIndex: 101, commitIndex: 101 });
    expect(net.member('b').texts()).toEqual(net.member('a').texts());
  });
});

describe('§5.4.2 Figure 8: committing entries from previous terms', () => {
  it('a leader does not commit an older-term entry stored on a majority until an entry of its own term is', () => {
    // One entry per append, so the old entry and the leader's own no-op travel separately.
    const net = Network.cluster(['a', 'b', 'c'], { preVote: false, checkQuorum: false, maxEntriesPerAppend: 1 });
    net.elect('a');
    expect(net.raft('c').status.commitIndex).toBe(1);

    // Term 1: a appends x at index 2 but nobody else receives it; then a crashes.
    const reconnectA = net.isolate('a');
    net.proposeAll('a', ['x']);
    net.crash('a');
    reconnectA();

    // Term 2: b is elected with c's vote and appends its no-op at index 2, which nobody receives; b crashes.
    const silenceB = net.drop((m) => m.from === 'b' && m.type === 'Append');
    net.elect('b');
    expect(net.raft('b').termAt(2)).toBe(2);
    net.crash('b');
    silenceB();

    // Term 3: a restarts and is elected by c (c voted for b in term 2, so a needs term 3).
    net.restart('a');
    net.hold((m) => m.from === 'a' && m.to === 'c' && m.type === 'Append');
    net.campaign('a');
    expect(net.raft('a').status).toMatchObject({ role: 'candidate', term: 2 });
    net.elect('a');
    expect(net.raft('a').status).toMatchObject({ term: 3, lastIndex: 3, commitIndex: 1 });
    expect(net.raft('a').termAt(3)).toBe(3); // its no-op

    // c refuses the first append (it lacks index 2); a backs up and sends x alone.
    net.deliverHeld();
    expect(net.raft('c').status.lastIndex).toBe(1);
    net.deliverHeld();
    expect(net.raft('c').termAt(2)).toBe(1);

    // x (term 1) is now stored on a and c, a majority of three: it must still not be committed,
    // because b (whose log ends with term 2) could still be elected by c and overwrite it.
    expect(net.raft('a').status.commitIndex).toBe(1);
    expect(net.raft('c').status.commitIndex).toBe(1);
    expect(net.heldMessages()).toMatchObject([{ type: 'Append', to: 'c', prevLogIndex: 2, entries: [{ index: 3, term: 3 }] }]);

    // Once the term-3 no-op reaches c, it commits, and x with it.
    net.deliverHeld();
    expect(net.raft('a').status.commitIndex).toBe(3);
    expect(net.member('a').texts()).toEqual(['x']);
    net.heal();
    net.releaseHeld();
    expect(net.raft('c').status.commitIndex).toBe(3);
    expect(net.member('c').texts()).toEqual(['x']);
  });
});

describe('High-Water Mark and applying', () => {
  it('under partitions, crashes and leader changes: commit never decreases, applied never passes commit, every entry is applied once, in order, the same everywhere', () => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const net = Network.cluster(ids, { seed: 7, electionTicks: 10 });
    const chaos = new SeededRandom(42);
    const liftRules: (() => void)[] = [];
    let proposals = 0;

    for (let step = 0; step < 600; step++) {
      const dice = chaos.intBelow(100);
      const someone = ids[chaos.intBelow(ids.length)]!;
      const down = ids.filter((id) => !net.member(id).up);
      if (dice < 40) {
        for (const leader of net.leaders()) if (net.propose(leader, `p${step}`).ok) proposals++;
      } else if (dice < 44 && liftRules.length < 2) {
        liftRules.push(net.isolate(someone));
      } else if (dice < 50) {
        liftRules.splice(0).forEach((lift) => lift());
      } else if (dice < 53 && down.length < 2 && net.member(someone).up) {
        net.crash(someone);
      } else if (dice < 58 && down.length > 0) {
        net.restart(down[0]!);
      }
      net.tick(1);
      for (const id of ids) {
        const status = net.raft(id).status;
        expect(status.appliedIndex).toBeLessThanOrEqual(status.commitIndex);
      }
    }
    net.heal();
    for (const id of ids) if (!net.member(id).up) net.restart(id);
    net.tickUntil(() => net.leaders().length === 1, 200);
    net.proposeAll(net.leaders()[0]!, ['final']);
    net.tick(2);

    // The run was not trivial: several leaders, many proposals.
    const leaderTerms = new Set(ids.flatMap((id) => net.member(id).softStates.filter((s) => s.role === 'leader').map((s) => s.term)));
    expect(leaderTerms.size).toBeGreaterThanOrEqual(3);
    expect(proposals).toBeGreaterThan(100);

    const reference = net.member(net.leaders()[0]!).appliedEntries;
    expect(reference.length).toBeGreaterThan(100);
    for (const id of ids) {
      const member = net.member(id);
      // The commit index never went back, in memory or on disk.
      for (let i = 1; i < member.commitIndexes.length; i++) {
        expect(member.commitIndexes[i]!).toBeGreaterThanOrEqual(member.commitIndexes[i - 1]!);
      }
      const durableCommits = member.handled.map((h) => h.durableHardState.commit);
      for (let i = 1; i < durableCommits.length; i++) expect(durableCommits[i]!).toBeGreaterThanOrEqual(durableCommits[i - 1]!);
      // Handed out exactly once, in order, and never past the commit index persisted with it.
      expect(member.appliedEntries.map((e) => e.index)).toEqual(member.appliedEntries.map((_, i) => i + 1));
      for (const h of member.handled) {
        for (const e of h.ready.committedEntries) expect(e.index).toBeLessThanOrEqual(h.durableHardState.commit);
      }
      // State Machine Safety: the same entry at every index, on every member.
      expect(member.appliedEntries.map((e) => [e.index, e.term, text(e.data)])).toEqual(
        reference.map((e) => [e.index, e.term, text(e.data)]),
      );
      expect(member.texts().at(-1)).toBe('final');
    }
  });

  it('a restarted member does not hand out again what its state machine already applied', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    net.proposeAll('a', ['x', 'y']);
    net.crash('b');
    net.restart('b');
    net.proposeAll('a', ['z']);
    net.tick(1);
    expect(net.member('b').appliedEntries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(net.member('b').texts()).toEqual(['x', 'y', 'z']);
  });
});
