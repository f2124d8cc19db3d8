/**
 * Leadership transfer (thesis §3.10): the leader stops accepting proposals, brings the target up
 * to date, then sends it TimeoutNow; the target campaigns at once in the next term, and voters
 * grant it even though check-quorum would otherwise make them ignore a candidate while their
 * leader is alive. A transfer that does not finish within an election timeout is abandoned.
 *
 * Pattern: Leader and Followers, Generation Clock (term).
 * Must never: reach into the core past its public API, use real time, or loop without a bound.
 */

import { describe, expect, it } from 'vitest';
import { Network, bytes } from './harness.js';

const ELECTION_TICKS = 10;

describe('thesis §3.10 leadership transfer', () => {
  it('to a caught-up follower: TimeoutNow at once, and the follower leads in the next term', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    net.proposeAll('a', ['x']);

    net.raft('a').transferLeadership('b');
    net.settle();

    expect(net.messages((m) => m.type === 'TimeoutNow')).toMatchObject([{ from: 'a', to: 'b', term: 1 }]);
    // b's election skips pre-vote and is marked as a transfer, which voters honour despite their lease.
    expect(net.messages((m) => m.type === 'PreVote' && m.from === 'b')).toEqual([]);
    expect(net.messages((m) => m.type === 'Vote' && m.from === 'b')).toMatchObject([
      { to: 'a', term: 2, transfer: true },
      { to: 'c', term: 2, transfer: true },
    ]);
    expect(net.leaders()).toEqual(['b']);
    for (const id of net.ids) expect(net.raft(id).status).toMatchObject({ term: 2, leaderId: 'b' });
    net.proposeAll('b', ['y']);
    for (const id of net.ids) expect(net.member(id).texts()).toEqual(['x', 'y']);
  });

  it('to a follower that is behind: it is caught up first, and proposals meanwhile are refused with UNAVAILABLE', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    const reconnect = net.isolate('b');
    net.proposeAll('a', ['x', 'y']);
    expect(net.raft('b').status.lastIndex).toBe(1);

    net.raft('a').transferLeadership('b');
    net.settle();
    expect(net.messages((m) => m.type === 'TimeoutNow')).toEqual([]); // not before b holds the whole log
    expect(net.raft('a').propose(bytes('refused'))).toEqual({ ok: false, code: 'UNAVAILABLE', leaderHint: null });
    expect(net.raft('a').status).toMatchObject({ role: 'leader', lastIndex: 3 });

    reconnect();
    net.tick(1); // a heartbeat finds b; a catches it up, then hands over
    const timeoutNow = net.messages((m) => m.type === 'TimeoutNow');
    expect(timeoutNow).toMatchObject([{ from: 'a', to: 'b', term: 1 }]);
    expect(net.leaders()).toEqual(['b']);
    expect(net.raft('b').status.term).toBe(2);
    net.proposeAll('b', ['z']);
    for (const id of net.ids) expect(net.member(id).texts()).toEqual(['x', 'y', 'z']);
  });

  it('a transfer that cannot finish within an election timeout is abandoned, and the leader accepts proposals again', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    net.isolate('b');
    net.proposeAll('a', ['x']);
    net.raft('a').transferLeadership('b');
    expect(net.raft('a').propose(bytes('refused')).ok).toBe(false);

    net.tick(ELECTION_TICKS, ['a', 'c']);
    expect(net.raft('a').status).toMatchObject({ role: 'leader', term: 1 });
    expect(net.raft('a').propose(bytes('accepted'))).toEqual({ ok: true, index: 3, term: 1 });
  });

  it('a transfer to itself or to a non-member is ignored', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    net.raft('a').transferLeadership('a');
    net.raft('a').transferLeadership('zz');
    net.settle();
    expect(net.raft('a').propose(bytes('x'))).toEqual({ ok: true, index: 2, term: 1 });
    expect(net.messages((m) => m.type === 'TimeoutNow')).toEqual([]);
  });
});
