/**
 * A cluster of one (the `wardend` default): the lone member is its own majority, so it elects
 * itself after an election timeout, commits each proposal as soon as it is durable (persisted in
 * one Ready, committed and applied in the next: a commit counting an entry a power cut could
 * still take would let others apply it), and answers ReadIndex at once with its commit index,
 * all without sending a single message.
 *
 * Pattern: Majority Quorum (of one), Leader and Followers.
 * Must never: reach into the core past its public API, use real time, or loop without a bound.
 */

import { describe, expect, it } from 'vitest';
import { Network, bytes } from './harness.js';

const ELECTION_TICKS = 10;

function soloLeader(): Network {
  const net = Network.cluster(['solo'], { electionTicks: ELECTION_TICKS });
  net.tickUntil(() => net.leaders().length === 1, 2 * ELECTION_TICKS);
  return net;
}

describe('a single-member cluster', () => {
  it('campaigns after its election timeout and becomes leader of term 1 without sending anything', () => {
    const net = Network.cluster(['solo'], { electionTicks: ELECTION_TICKS });
    const ticks = net.tickUntil(() => net.leaders().length === 1, 2 * ELECTION_TICKS);
    expect(ticks).toBeGreaterThanOrEqual(ELECTION_TICKS);
    expect(ticks).toBeLessThan(2 * ELECTION_TICKS);
    expect(net.raft('solo').status).toMatchObject({ role: 'leader', term: 1, vote: 'solo', leaderId: 'solo', commitIndex: 1 });
    expect(net.sent).toEqual([]);
  });

  it('commits a proposal on its own once it is durable: persisted in one Ready, committed and applied in the next', () => {
    const net = soloLeader();
    net.settle();
    const raft = net.raft('solo');
    expect(raft.propose(bytes('x'))).toEqual({ ok: true, index: 2, term: 1 });
    expect(raft.status.commitIndex).toBe(1);
    const persist = raft.ready();
    expect(persist.entries.map((e) => e.index)).toEqual([2]);
    expect(persist.committedEntries).toEqual([]);
    raft.advance();
    expect(raft.status.commitIndex).toBe(2);
    const apply = raft.ready();
    expect(apply.entries).toEqual([]);
    expect(apply.committedEntries.map((e) => e.index)).toEqual([2]);
    raft.advance();
    expect(raft.hasReady()).toBe(false);
    expect(net.sent).toEqual([]);
  });

  it('answers readIndex in the next Ready with its commit index, with no heartbeat round', () => {
    const net = soloLeader();
    net.proposeAll('solo', ['x', 'y']);
    expect(net.raft('solo').readIndex('r')).toEqual({ ok: true });
    net.settle();
    expect(net.member('solo').readStates).toEqual([{ requestId: 'r', index: 3 }]);
    expect(net.sent).toEqual([]);
  });
});

describe('applying committed entries in part (a caller whose turn ran out of work)', () => {
  it('hands out again, in the next Ready, the committed entries the caller did not apply', () => {
    const net = soloLeader();
    const raft = net.raft('solo');
    net.settle();
    for (const text of ['a', 'b', 'c', 'd']) raft.propose(bytes(text));
    raft.ready(); // persisted: now they commit
    raft.advance();
    const first = raft.ready();
    expect(first.committedEntries.map((e) => e.index)).toEqual([2, 3, 4, 5]);
    // The caller applied 2 and 3 only.
    raft.advance(3);
    expect(raft.status.appliedIndex).toBe(3);
    expect(raft.hasReady()).toBe(true);
    const second = raft.ready();
    expect(second.committedEntries.map((e) => e.index)).toEqual([4, 5]);
    expect(second.entries).toEqual([]); // persisting is not asked again
    raft.advance();
    expect(raft.status.appliedIndex).toBe(5);
    expect(raft.hasReady()).toBe(false);
  });

  it('refuses an applied index past what the Ready handed out', () => {
    const net = soloLeader();
    const raft = net.raft('solo');
    net.settle();
    raft.propose(bytes('a'));
    raft.ready();
    raft.advance();
    raft.ready();
    expect(() => raft.advance(9)).toThrow(/applied through 9, past the 2 handed out/);
  });
});

describe('a lone voter with a learner', () => {
  it('never sends a commit index covering its own entries before they are durable', () => {
    const net = Network.cluster(['solo', 'learner'], { electionTicks: ELECTION_TICKS, voters: ['solo'] });
    net.tickUntil(() => net.leaders().length === 1, 2 * ELECTION_TICKS);
    const raft = net.raft('solo');
    expect(raft.proposeConfChange({ op: 'addLearner', id: 'learner' })).toMatchObject({ ok: true });
    net.settle();
    expect(net.raft('learner').status.learners).toEqual(['learner']);
    const { index } = raft.propose(bytes('x')) as { index: number };
    // The Ready that asks for x to be persisted may send the learner its append before the
    // sync (send-order.ts): the commit index in it must not yet count x.
    const persist = raft.ready();
    expect(persist.entries.map((e) => e.index)).toEqual([index]);
    const appends = persist.messages.filter((m) => m.type === 'Append' || m.type === 'Heartbeat');
    expect(appends.length).toBeGreaterThan(0);
    for (const m of appends) expect((m as { commit: number }).commit).toBeLessThan(index);
    raft.advance();
    // Durable now: x commits, and the learner hears so.
    expect(raft.status.commitIndex).toBe(index);
    const next = raft.ready();
    expect(next.messages.some((m) => (m.type === 'Append' || m.type === 'Heartbeat') && m.to === 'learner' && m.commit === index)).toBe(true);
    raft.advance();
  });
});
