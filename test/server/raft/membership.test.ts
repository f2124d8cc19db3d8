/**
 * Membership changes in the core (thesis §4.1, single-server changes with Ongaro's 2015
 * correction): a learner receives the log but neither votes nor counts for commit; it is promoted
 * only within a bounded lag; one change at a time, and only once the leader has committed an
 * entry of its own term; a member uses the latest configuration in its log, and falls back when a
 * new leader truncates an uncommitted change away; a removed leader steps down once its removal
 * commits (handing over first); the configuration survives compaction and restart.
 *
 * Pattern: Leader and Followers, Majority Quorum.
 * Must never: reach into the core past its public API, use real time, or loop without a bound.
 */

import { describe, expect, it } from 'vitest';
import { Network } from './harness.js';

const ELECTION_TICKS = 10;

/** a, b, c voters; d (and e) start outside the configuration, waiting to be added. */
function cluster(extra: readonly string[] = ['d'], promoteLagMax = 1_000): Network {
  return Network.cluster(['a', 'b', 'c', ...extra], { electionTicks: ELECTION_TICKS, voters: ['a', 'b', 'c'], promoteLagMax });
}

describe('learners', () => {
  it('receive the log once added, but neither count for commit nor vote', () => {
    const net = cluster();
    net.elect('a');
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', id: 'd' })).toMatchObject({ ok: true });
    net.proposeAll('a', ['x']);
    expect(net.member('d').texts()).toEqual(['x']);
    for (const id of net.ids) expect(net.raft(id).status).toMatchObject({ voters: ['a', 'b', 'c'], learners: ['d'] });

    // With b and c cut off, a and its learner are no majority: nothing commits.
    net.isolate('b');
    net.isolate('c');
    const commit = net.raft('a').status.commitIndex;
    net.propose('a', 'y');
    net.settle();
    expect(net.raft('d').status.lastIndex).toBe(net.raft('a').status.lastIndex);
    expect(net.raft('a').status.commitIndex).toBe(commit);
    // A learner never campaigns, however long it hears nothing.
    net.heal();
    const reconnect = net.isolate('a');
    net.tick(3 * ELECTION_TICKS, ['d']);
    expect(net.messages((m) => (m.type === 'PreVote' || m.type === 'Vote') && m.from === 'd')).toEqual([]);
    reconnect();
  });

  it('are not promoted before they have answered at all, however short the log', () => {
    const net = cluster();
    net.elect('a');
    net.isolate('d');
    net.raft('a').proposeConfChange({ op: 'addLearner', id: 'd' });
    net.settle();
    expect(net.raft('a').status.lastIndex).toBeLessThan(10);
    expect(net.raft('a').proposeConfChange({ op: 'promote', id: 'd' })).toMatchObject({ ok: false, code: 'REFUSED', reason: expect.stringMatching(/not acknowledged the configuration/) });
    net.heal();
    net.tick(2);
    expect(net.raft('a').proposeConfChange({ op: 'promote', id: 'd' })).toMatchObject({ ok: true });
  });

  it('are promoted only within the lag bound, and count once promoted', () => {
    const net = cluster(['d'], 2);
    net.elect('a');
    net.raft('a').proposeConfChange({ op: 'addLearner', id: 'd' });
    net.settle();
    const reconnect = net.isolate('d');
    net.proposeAll('a', ['1', '2', '3', '4']);
    expect(net.raft('a').proposeConfChange({ op: 'promote', id: 'd' })).toMatchObject({ ok: false, code: 'REFUSED', reason: expect.stringMatching(/d is \d+ entries behind/) });
    reconnect();
    net.tick(2); // heartbeats bring d up to date
    expect(net.raft('a').proposeConfChange({ op: 'promote', id: 'd' })).toMatchObject({ ok: true });
    net.settle();
    for (const id of net.ids) expect(net.raft(id).status).toMatchObject({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    // Four voters: a and d alone are no majority; a, b and d are.
    net.isolate('b');
    net.isolate('c');
    const commit = net.raft('a').status.commitIndex;
    net.proposeAll('a', ['5']);
    expect(net.raft('a').status.commitIndex).toBe(commit);
    net.heal();
    net.isolate('c');
    net.tick(2);
    expect(net.raft('a').status.commitIndex).toBeGreaterThan(commit);
  });
});

describe('the rules of a change', () => {
  it('one at a time: a second change waits for the first to commit', () => {
    const net = cluster(['d', 'e']);
    net.elect('a');
    net.hold((m) => m.type === 'Append');
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', id: 'd' })).toMatchObject({ ok: true });
    net.settle();
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', id: 'e' })).toMatchObject({ ok: false, code: 'REFUSED', reason: expect.stringMatching(/not committed yet/) });
    net.heal();
    net.releaseHeld();
    net.tick(1);
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', id: 'e' })).toMatchObject({ ok: true });
  });

  it('not before the leader has committed an entry of its own term', () => {
    const net = cluster();
    net.hold((m) => m.type === 'Append');
    net.elect('a'); // its no-op is held: nothing of term 1 is committed
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', id: 'd' })).toMatchObject({ ok: false, code: 'REFUSED', reason: expect.stringMatching(/not committed an entry of its term/) });
    net.heal();
    net.releaseHeld();
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', id: 'd' })).toMatchObject({ ok: true });
  });

  it('refuses what cannot apply: a member twice, a promotion of a voter, the last voter', () => {
    const net = Network.cluster(['a'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', id: 'a' })).toMatchObject({ code: 'REFUSED', reason: 'a is a member already' });
    expect(net.raft('a').proposeConfChange({ op: 'promote', id: 'a' })).toMatchObject({ code: 'REFUSED', reason: 'a is not a learner' });
    expect(net.raft('a').proposeConfChange({ op: 'remove', id: 'a' })).toMatchObject({ code: 'REFUSED', reason: 'a is the last voter' });
    expect(net.raft('a').proposeConfChange({ op: 'remove', id: 'z' })).toMatchObject({ code: 'REFUSED', reason: 'z is not a member' });
  });
});

describe('the configuration in use', () => {
  it('is the latest in the log, committed or not, and falls back when a new leader truncates the change away', () => {
    const net = cluster();
    net.elect('a');
    net.hold((m) => m.type === 'Append' && m.from === 'a');
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', id: 'd' })).toMatchObject({ ok: true });
    net.settle();
    expect(net.raft('a').status.learners).toEqual(['d']);
    expect(net.raft('b').status.learners).toEqual([]);
    net.heal();
    net.isolate('a');
    net.tickUntil(() => net.leaders().some((id) => id !== 'a'), 10 * ELECTION_TICKS);
    const next = net.leaders().find((id) => id !== 'a')!;
    net.proposeAll(next, ['from the new leader']);
    net.heal();
    net.tickUntil(() => net.raft('a').status.leaderId === next, 10 * ELECTION_TICKS);
    // The new leader's log replaced a's uncommitted change: a is back in the configuration before it.
    expect(net.raft('a').status).toMatchObject({ role: 'follower', learners: [] });
    expect(net.member('a').texts()).toEqual(['from the new leader']);
  });

  it('survives compaction and restart, learners included', () => {
    const net = cluster();
    net.elect('a');
    net.raft('a').proposeConfChange({ op: 'addLearner', id: 'd' });
    net.proposeAll('a', ['x', 'y']);
    for (const id of net.ids) net.member(id).compact(net.member(id).appliedIndex);
    for (const id of net.ids) {
      expect(net.raft(id).snapshotMeta().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
      net.crash(id);
      net.restart(id);
      expect(net.raft(id).status).toMatchObject({ voters: ['a', 'b', 'c'], learners: ['d'] });
    }
  });
});

describe('removing members', () => {
  it('a removed follower is no longer counted: the rest commit without it', () => {
    const net = cluster([]);
    net.elect('a');
    expect(net.raft('a').proposeConfChange({ op: 'remove', id: 'c' })).toMatchObject({ ok: true });
    net.settle();
    expect(net.raft('a').status.voters).toEqual(['a', 'b']);
    net.isolate('c');
    const commit = net.raft('a').status.commitIndex;
    net.proposeAll('a', ['without c']);
    expect(net.raft('a').status.commitIndex).toBeGreaterThan(commit);
  });

  it('a removed leader steps down once its removal commits, handing over to a caught-up voter', () => {
    const net = cluster([]);
    net.elect('a');
    net.proposeAll('a', ['x']);
    expect(net.raft('a').proposeConfChange({ op: 'remove', id: 'a' })).toMatchObject({ ok: true });
    net.settle();
    expect(net.raft('a').status.role).toBe('follower');
    expect(net.messages((m) => m.type === 'TimeoutNow' && m.from === 'a')).toHaveLength(1);
    const leaders = net.leaders();
    expect(leaders).toHaveLength(1);
    expect(['b', 'c']).toContain(leaders[0]);
    expect(net.raft(leaders[0]!).status.voters).toEqual(['b', 'c']);
    net.proposeAll(leaders[0]!, ['after a']);
    for (const id of ['b', 'c']) expect(net.member(id).texts()).toEqual(['x', 'after a']);
    // a no longer campaigns: it is in no configuration it knows.
    const before = net.sent.length;
    net.tick(3 * ELECTION_TICKS, ['a']);
    expect(net.sent.slice(before).filter((s) => (s.message.type === 'PreVote' || s.message.type === 'Vote') && s.message.from === 'a')).toEqual([]);
  });
});

describe('a member whose removal is not yet committed', () => {
  // Two voters; a leads and appends its own removal, which only a holds. b cannot win (a's log is
  // longer) and a, outside its latest configuration, would not campaign: no leader, ever.
  function removalOnlyTheLeaderHolds(): Network {
    const net = cluster([]);
    net.elect('a');
    net.raft('a').proposeConfChange({ op: 'remove', id: 'c' });
    net.settle();
    net.proposeAll('a', ['x']);
    const reconnect = net.isolate('b');
    expect(net.raft('a').proposeConfChange({ op: 'remove', id: 'a' })).toMatchObject({ ok: true });
    net.settle();
    expect(net.raft('a').status).toMatchObject({ voters: ['b'] });
    expect(net.raft('b').status).toMatchObject({ voters: ['a', 'b'] });
    net.crash('a');
    net.restart('a');
    reconnect();
    return net;
  }

  it('campaigns, counting only the voters of its latest configuration, commits its removal and hands over', () => {
    const net = removalOnlyTheLeaderHolds();
    const ticks = net.tickUntil(() => net.leaders().length === 1 && net.leaders()[0] === 'b' && net.raft('b').status.voters.join() === 'b', 20 * ELECTION_TICKS);
    expect(ticks).toBeLessThan(20 * ELECTION_TICKS);
    expect(net.messages((m) => m.type === 'TimeoutNow' && m.from === 'a')).not.toHaveLength(0);
    net.proposeAll('b', ['after a']);
    expect(net.member('b').texts()).toEqual(['x', 'after a']);
    // Its removal committed, a campaigns no more.
    const before = net.sent.length;
    net.tick(3 * ELECTION_TICKS, ['a']);
    expect(net.sent.slice(before).filter((s) => (s.message.type === 'PreVote' || s.message.type === 'Vote') && s.message.from === 'a')).toEqual([]);
  });

  it('leading outside its configuration, serves no read its one voter has not confirmed', () => {
    const net = removalOnlyTheLeaderHolds();
    // a wins (b grants: a's log is longer) but cannot commit (its appends are lost); then b is cut off.
    net.drop((m) => m.type === 'Append' && m.from === 'a');
    net.tickUntil(() => net.leaders().includes('a'), 20 * ELECTION_TICKS);
    expect(net.leaders()).toEqual(['a']);
    net.isolate('b');
    const answered = net.member('a').readStates.length;
    expect(net.raft('a').readIndex('r1')).toMatchObject({ ok: true });
    net.settle();
    expect(net.member('a').readStates.length).toBe(answered);
  });
});

describe('Ongaro\'s 2015 correction (a leader changes the configuration only after committing an entry of its term)', () => {
  /**
   * s1..s4 voters, s5 a learner. s1 (term 1) promotes s5 — {s1..s5} in its log only — and
   * crashes. s2 wins term 2 with s3 and s4, but its no-op reaches only s3 (s4 and s5 are cut off
   * from its appends); it asks to remove s1 — {s2, s3, s4}, whose majority s2 and s3 alone make.
   * Then s1 comes back cut off from s2 and s3, and campaigns with its own configuration {s1..s5}:
   * s4 and s5, whose logs end in term 1 like its own, can elect it.
   */
  function scenario(bug: boolean) {
    const net = Network.cluster(['s1', 's2', 's3', 's4', 's5'], { electionTicks: ELECTION_TICKS, voters: ['s1', 's2', 's3', 's4'], plantedBugs: { confChangeBeforeTermCommit: bug } });
    net.elect('s1');
    net.raft('s1').proposeConfChange({ op: 'addLearner', id: 's5' });
    net.proposeAll('s1', ['x']);
    const s1Silenced = net.drop((m) => m.from === 's1');
    expect(net.raft('s1').proposeConfChange({ op: 'promote', id: 's5' })).toMatchObject({ ok: true });
    net.settle();
    net.crash('s1');
    s1Silenced();
    net.tick(2 * ELECTION_TICKS, ['s3', 's4', 's5']); // the lease s1's heartbeats gave them runs out
    const appendsCut = net.drop((m) => m.from === 's2' && (m.type === 'Append' || m.type === 'Heartbeat') && (m.to === 's4' || m.to === 's5'));
    net.elect('s2');
    const change = net.raft('s2').proposeConfChange({ op: 'remove', id: 's1' });
    net.settle();
    return { net, change, appendsCut };
  }

  /** s1 restarts cut off from s2 and s3, and campaigns against s4 and s5 for a while. */
  function s1ComesBack(net: Network): void {
    net.restart('s1');
    net.drop((m) => ['s2', 's3'].includes(m.from) && ['s1', 's4', 's5'].includes(m.to));
    net.drop((m) => ['s2', 's3'].includes(m.to) && ['s1', 's4', 's5'].includes(m.from));
    net.tick(6 * ELECTION_TICKS, ['s1', 's4', 's5']);
  }

  it('with the rule, s2 must first commit its no-op (on s4 too), and s1 can no longer win', () => {
    const { net, change, appendsCut } = scenario(false);
    expect(change).toMatchObject({ ok: false, code: 'REFUSED', reason: expect.stringMatching(/not committed an entry of its term/) });
    appendsCut();
    net.tick(2); // s2's no-op reaches s4 and commits
    expect(net.raft('s2').proposeConfChange({ op: 'remove', id: 's1' })).toMatchObject({ ok: true });
    net.settle();
    s1ComesBack(net);
    expect(net.raft('s1').status.role).not.toBe('leader');
  });

  it('without it (the planted bug), s1 wins with a configuration that no longer holds, and two members apply different entries at one index', () => {
    const { net, change } = scenario(true);
    expect(change).toMatchObject({ ok: true });
    const committed = (change as { index: number }).index;
    expect(net.raft('s2').status.commitIndex).toBeGreaterThanOrEqual(committed); // by s2 and s3 alone
    s1ComesBack(net);
    expect(net.raft('s1').status.role).toBe('leader');
    // With s4 and s5 (a majority of its {s1..s5}) s1 commits a log that disagrees with what s2
    // committed at the same index: two members applied different entries there.
    net.proposeAll('s1', ['after']);
    expect(net.raft('s1').status.commitIndex).toBeGreaterThanOrEqual(committed);
    const termAt = (id: string, index: number): number | undefined => net.member(id).appliedEntries.find((e) => e.index === index)?.term;
    expect(termAt('s2', committed - 1)).toBe(2);
    expect(termAt('s1', committed - 1)).toBe(1);
  });
});

describe('random membership changes under faults', () => {
  /**
   * Seeded runs over six members (three voters at first): proposals, membership changes the
   * leader accepts (add a learner, promote, remove), partitions, crashes and restarts, and time.
   * Checked throughout: at most one leader per term, and no two members apply different entries
   * at one index.
   */
  /** Answers how many membership changes were committed and applied in the run. */
  function run(seed: number): number {
    const changes = new Set<string>();
    const ids = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
    const net = Network.cluster(ids, { electionTicks: ELECTION_TICKS, voters: ['m1', 'm2', 'm3'], seed, promoteLagMax: 50 });
    let state = seed >>> 0 || 1;
    const next = (n: number): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % n;
    };
    const leadersByTerm = new Map<number, string>();
    const appliedTerm = new Map<number, number>();
    const checked = new Map<string, number>();
    let lift: (() => void) | null = null;
    for (let step = 0; step < 300; step++) {
      const roll = next(100);
      const leader = net.leaders().sort((a, b) => net.raft(b).status.term - net.raft(a).status.term)[0];
      if (roll < 40 && leader !== undefined) net.propose(leader, `v${step}`);
      else if (roll < 55 && leader !== undefined) {
        const status = net.raft(leader).status;
        const outside = ids.filter((id) => !status.voters.includes(id) && !status.learners.includes(id));
        const pick = next(3);
        const change =
          pick === 0 && outside.length > 0 ? { op: 'addLearner' as const, id: outside[next(outside.length)]! }
          : pick === 1 && status.learners.length > 0 ? { op: 'promote' as const, id: status.learners[next(status.learners.length)]! }
          : status.voters.length > 2 ? { op: 'remove' as const, id: status.voters[next(status.voters.length)]! }
          : null;
        if (change !== null) net.raft(leader).proposeConfChange(change);
      } else if (roll < 62) {
        lift?.();
        lift = net.isolate(ids[next(ids.length)]!);
      } else if (roll < 66) {
        lift?.();
        lift = null;
      } else if (roll < 70) {
        const id = ids[next(ids.length)]!;
        if (net.member(id).up) net.crash(id);
        else net.restart(id);
      }
      net.tick(1, ids.filter((id) => net.member(id).up));
      for (const id of ids) {
        const status = net.raft(id).status;
        if (status.role === 'leader') {
          const known = leadersByTerm.get(status.term);
          expect(known === undefined || known === id, `seed ${seed} step ${step}: two leaders in term ${status.term}`).toBe(true);
          leadersByTerm.set(status.term, id);
        }
        const applied = net.member(id).appliedEntries;
        for (let k = checked.get(id) ?? 0; k < applied.length; k++) {
          const e = applied[k]!;
          if (e.type === 'config') changes.add(`${e.index}`);
          const term = appliedTerm.get(e.index);
          expect(term === undefined || term === e.term, `seed ${seed} step ${step}: index ${e.index} applied at terms ${term} and ${e.term}`).toBe(true);
          appliedTerm.set(e.index, e.term);
        }
        checked.set(id, applied.length);
      }
    }
    return changes.size;
  }

  it('keep one leader per term and one entry per index, over 100 seeds', () => {
    let changes = 0;
    for (let seed = 1; seed <= 100; seed++) changes += run(seed);
    expect(changes).toBeGreaterThan(100); // the runs did change the configuration, many times
  });
});
