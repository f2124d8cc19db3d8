/**
 * Messages from an earlier term (Raft paper §5.1: "If a server receives a request with a stale
 * term number, it rejects the request"; thesis §3.3 and §9.6): a network may delay a message
 * past the term it was sent in, and an answer from an election this member has already given up
 * on must not count in the one it is running now. A delayed vote, or a delayed pre-vote, that
 * counted would let a candidate lead on votes nobody gave it in this term.
 *
 * Pattern: Generation Clock (term), Majority Quorum.
 * Must never: reach into the core past its public API, use real time, or loop without a bound.
 */

import { describe, expect, it } from 'vitest';
import type { Message, PersistedState } from '../../../server/raft/index.js';
import { Network } from './harness.js';

function atTerm(term: number): PersistedState {
  return { hardState: { term, vote: null, commit: 0 }, snapshot: null, entries: [] };
}

const grantsTo = (type: 'VoteResp' | 'PreVoteResp', to: string, term: number) => (m: Message) =>
  m.type === type && m.to === to && m.term === term && !m.reject;

describe('§5.1 an answer from an earlier election does not count in the current one', () => {
  it('a candidate in term 5 does not become leader on granted votes delayed from its term-4 candidacy', () => {
    const net = Network.cluster(['a', 'b', 'c'], { preVote: false, members: { a: { persisted: atTerm(3) } } });
    net.hold((m) => m.type === 'VoteResp'); // the term-4 grants are delayed
    net.campaign('a');
    expect(net.raft('a').status).toMatchObject({ role: 'candidate', term: 4, vote: 'a' });
    expect(net.heldMessages()).toMatchObject([
      { type: 'VoteResp', from: 'b', term: 4, reject: false },
      { type: 'VoteResp', from: 'c', term: 4, reject: false },
    ]);

    // Its term-4 election times out; it campaigns again in term 5, and those requests are slow too.
    net.hold((m) => m.type === 'Vote' && m.term === 5);
    net.campaign('a');
    expect(net.raft('a').status).toMatchObject({ role: 'candidate', term: 5, vote: 'a' });

    // Both term-4 grants arrive now: a majority of three with a's own vote, but of the wrong term.
    net.deliverHeld(grantsTo('VoteResp', 'a', 4));
    net.deliverHeld(grantsTo('VoteResp', 'a', 4));
    expect(net.raft('a').status).toMatchObject({ role: 'candidate', term: 5, vote: 'a', leaderId: null });
    expect(net.leaders()).toEqual([]);
    expect(net.messages((m) => m.from === 'a' && m.type === 'Append')).toEqual([]);

    // The control: real term-5 grants do elect it.
    net.heal();
    net.releaseHeld();
    expect(net.raft('a').status).toMatchObject({ role: 'leader', term: 5 });
    expect(net.messages(grantsTo('VoteResp', 'a', 5)).map((m) => m.from)).toEqual(['b', 'c']);
  });

  it('a pre-candidate in term 5 does not start an election on granted pre-votes delayed from its pre-candidacy in term 3', () => {
    const net = Network.cluster(['a', 'b', 'c'], { members: { a: { persisted: atTerm(3) } } });
    net.hold((m) => m.type === 'PreVoteResp');
    net.campaign('a'); // asks whether it could win term 4; b and c say yes, slowly
    expect(net.raft('a').status).toMatchObject({ role: 'precandidate', term: 3 });
    expect(net.heldMessages()).toMatchObject([
      { type: 'PreVoteResp', from: 'b', term: 4, reject: false },
      { type: 'PreVoteResp', from: 'c', term: 4, reject: false },
    ]);

    // Meanwhile a hears from a leader of term 5, later loses it and asks about term 6.
    net.inject({ type: 'Heartbeat', from: 'c', to: 'a', term: 5, commit: 0, readRound: null });
    expect(net.raft('a').status).toMatchObject({ role: 'follower', term: 5, leaderId: 'c' });
    net.campaign('a');
    expect(net.raft('a').status).toMatchObject({ role: 'precandidate', term: 5 });
    expect(net.heldMessages().filter(grantsTo('PreVoteResp', 'a', 6)).map((m) => m.from)).toEqual(['b', 'c']);

    // The pre-votes granted for term 4 arrive: a majority with a's own, but for another term.
    net.deliverHeld(grantsTo('PreVoteResp', 'a', 4));
    net.deliverHeld(grantsTo('PreVoteResp', 'a', 4));
    expect(net.raft('a').status).toMatchObject({ role: 'precandidate', term: 5 });
    expect(net.messages((m) => m.from === 'a' && m.type === 'Vote')).toEqual([]);

    // The control: one pre-vote granted for term 6 is enough to start the real election.
    net.heal();
    net.deliverHeld(grantsTo('PreVoteResp', 'a', 6));
    expect(net.messages((m) => m.from === 'a' && m.type === 'Vote').map((m) => [m.to, m.term])).toEqual([
      ['b', 6],
      ['c', 6],
    ]);
    expect(net.raft('a').status).toMatchObject({ role: 'leader', term: 6 });
  });
});

describe('thesis §9.6 a pre-vote answers one question: could the pre-candidate win the NEXT term', () => {
  // Regression: a granted PreVoteResp carries the term it was asked about, the asker's term + 1,
  // so one granted to the pre-candidacy before (at term - 1) carries exactly the current term.
  // It used to be counted, raising the term without a majority having said it could win — the
  // disruption pre-vote exists to prevent. Only m.term === term + 1 answers the current question.
  it('a pre-candidate in term 4 does not start an election on pre-votes granted for term 4 (asked while it was in term 3)', () => {
    const net = Network.cluster(['a', 'b', 'c'], { members: { a: { persisted: atTerm(3) } } });
    net.hold((m) => m.type === 'PreVoteResp');
    net.campaign('a'); // at term 3: could I win term 4? b and c say yes, slowly
    net.inject({ type: 'Heartbeat', from: 'c', to: 'a', term: 4, commit: 0, readRound: null });
    expect(net.raft('a').status).toMatchObject({ role: 'follower', term: 4, leaderId: 'c' });
    net.campaign('a'); // at term 4: could I win term 5?
    expect(net.raft('a').status).toMatchObject({ role: 'precandidate', term: 4 });

    net.deliverHeld(grantsTo('PreVoteResp', 'a', 4));
    net.deliverHeld(grantsTo('PreVoteResp', 'a', 4));
    expect(net.messages((m) => m.from === 'a' && m.type === 'Vote')).toEqual([]);
    expect(net.raft('a').status).toMatchObject({ role: 'precandidate', term: 4 });
  });
});
