/**
 * Leader election, as the Raft paper (§5.2, §5.4.1) and thesis (§9.6 pre-vote, §6.2 check-quorum)
 * state it: randomized election timeouts, one leader per term, one vote per member per term, the
 * up-to-date log restriction, the leader's no-op, pre-vote keeping a partitioned member from
 * inflating its term, and check-quorum deposing a leader that lost its majority.
 *
 * Pattern: Leader and Followers, Generation Clock (term), Majority Quorum, HeartBeat.
 * Must never: reach into the core past its public API, use real time, or loop without a bound.
 */

import { describe, expect, it } from 'vitest';
import type { Message, NodeId, PersistedState, VoteMessage } from '../../../server/raft/index.js';
import { FixedRandom, Network, SeededRandom, logOfTerms } from './harness.js';

const ELECTION_TICKS = 10;

function isFrom(from: NodeId, type: Message['type']): (m: Message) => boolean {
  return (m) => m.from === from && m.type === type;
}

function voteRequest(from: NodeId, to: NodeId, term: number, lastLogIndex: number, lastLogTerm: number): VoteMessage {
  return { type: 'Vote', from, to, term, lastLogIndex, lastLogTerm, transfer: false };
}

/** Ticks the isolated member `id` until it first asks for (pre-)votes; returns how many ticks it took. */
function ticksUntilCampaign(net: Network, id: NodeId, maxTicks: number): number {
  for (let t = 1; t <= maxTicks; t++) {
    net.tick(1, [id]);
    if (net.messages((m) => m.from === id && (m.type === 'PreVote' || m.type === 'Vote')).length > 0) return t;
  }
  throw new Error(`${id} never campaigned within ${maxTicks} ticks`);
}

describe('§5.1 terms', () => {
  it('a member refuses an append from a stale term and answers with its own term; the stale leader steps down', () => {
    const net = Network.cluster(['a', 'b', 'c'], { checkQuorum: false });
    net.elect('a');
    const reconnectA = net.isolate('a');
    net.elect('b'); // term 2, with c's vote; a, cut off, still believes it leads term 1
    net.proposeAll('b', ['new']);
    expect(net.raft('a').status).toMatchObject({ role: 'leader', term: 1 });

    reconnectA();
    net.drop((m) => (m.from === 'a' && m.to === 'b') || (m.from === 'b' && m.to === 'a')); // a can reach only c
    const logOfC = [1, 2, 3].map((i) => net.raft('c').termAt(i));
    const before = net.sent.length;
    net.proposeAll('a', ['stale']);

    // c stored nothing from the stale leader, still follows b, and told a about term 2.
    expect([1, 2, 3].map((i) => net.raft('c').termAt(i))).toEqual(logOfC);
    expect(net.raft('c').status).toMatchObject({ term: 2, leaderId: 'b', lastIndex: 3 });
    const answers = net.sent.slice(before).filter((x) => x.message.from === 'c' && x.message.to === 'a');
    expect(answers.map((x) => x.message)).toMatchObject([{ type: 'AppendResp', term: 2 }]);
    // "If a leader discovers that its term is out of date, it immediately reverts to follower state."
    expect(net.raft('a').status).toMatchObject({ role: 'follower', term: 2 });

    net.heal();
    net.tick(1, ['b']);
    expect(net.member('a').texts()).toEqual(['new']);
  });
});

describe('§5.2 election timeout', () => {
  it.each([0, 4, ELECTION_TICKS - 1])(
    'a follower that hears nothing campaigns after exactly electionTicks + random ticks (random = %i)',
    (drawn) => {
      const random = new FixedRandom(drawn);
      const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS, members: { a: { random } } });
      net.isolate('a');

      expect(ticksUntilCampaign(net, 'a', 3 * ELECTION_TICKS)).toBe(ELECTION_TICKS + drawn);
      // The random part is drawn below electionTicks, so the timeout lies in [electionTicks, 2*electionTicks).
      expect(random.boundsAsked.length).toBeGreaterThan(0);
      expect(new Set(random.boundsAsked)).toEqual(new Set([ELECTION_TICKS]));
      // With pre-vote on, the first move asks for votes in term+1 without taking that term.
      expect(net.raft('a').status).toMatchObject({ role: 'precandidate', term: 0 });
      expect(net.messages(isFrom('a', 'PreVote')).map((m) => [m.to, m.term])).toEqual([
        ['b', 1],
        ['c', 1],
      ]);
    },
  );

  it('the timeout is randomized within [electionTicks, 2*electionTicks) across seeds', () => {
    const observed = new Set<number>();
    for (let seed = 1; seed <= 60; seed++) {
      const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS, members: { a: { random: new SeededRandom(seed) } } });
      net.isolate('a');
      const ticks = ticksUntilCampaign(net, 'a', 3 * ELECTION_TICKS);
      expect(ticks).toBeGreaterThanOrEqual(ELECTION_TICKS);
      expect(ticks).toBeLessThan(2 * ELECTION_TICKS);
      observed.add(ticks);
    }
    // Randomized, not fixed: split votes would otherwise repeat forever.
    expect(observed.size).toBeGreaterThanOrEqual(5);
  });

  it('a candidate whose election times out starts another one in a higher term, after a fresh timeout', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS, preVote: false });
    net.isolate('a');
    ticksUntilCampaign(net, 'a', 2 * ELECTION_TICKS);
    expect(net.raft('a').status).toMatchObject({ role: 'candidate', term: 1, vote: 'a' });

    let ticks = 0;
    while (net.raft('a').status.term === 1 && ticks < 3 * ELECTION_TICKS) {
      net.tick(1, ['a']);
      ticks++;
    }
    expect(net.raft('a').status).toMatchObject({ role: 'candidate', term: 2, vote: 'a' });
    expect(ticks).toBeGreaterThanOrEqual(ELECTION_TICKS);
    expect(ticks).toBeLessThan(2 * ELECTION_TICKS);
  });
});

describe('§5.2 electing a leader', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('a 3-member cluster elects exactly one leader that every member follows (seed %i)', (seed) => {
    const net = Network.cluster(['a', 'b', 'c'], { seed, electionTicks: ELECTION_TICKS });
    net.tickUntil(() => net.leaders().length > 0, 20 * ELECTION_TICKS);
    net.tick(2 * ELECTION_TICKS); // and it stays that way

    const leaders = net.leaders();
    expect(leaders).toHaveLength(1);
    const leader = leaders[0]!;
    const term = net.raft(leader).status.term;
    expect(term).toBeGreaterThanOrEqual(1);
    for (const id of net.ids) {
      expect(net.raft(id).status).toMatchObject({ term, leaderId: leader, role: id === leader ? 'leader' : 'follower' });
    }
    // Election Safety (Figure 3): no term ever had two leaders.
    const leaderOfTerm = new Map<number, NodeId>();
    for (const id of net.ids) {
      for (const soft of net.member(id).softStates) {
        if (soft.role !== 'leader') continue;
        expect(leaderOfTerm.get(soft.term) ?? id).toBe(id);
        leaderOfTerm.set(soft.term, id);
      }
    }
  });

  it('the new leader appends an empty no-op entry in its own term, and it commits everywhere', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');

    const firstLeaderReady = net.member('a').handled.find((h) => h.ready.softState?.role === 'leader')!;
    expect(firstLeaderReady.ready.entries).toHaveLength(1);
    const noop = firstLeaderReady.ready.entries[0]!;
    expect(noop).toMatchObject({ index: 1, term: 1, type: 'noop' });
    expect(noop.data.byteLength).toBe(0);
    for (const id of net.ids) {
      expect(net.raft(id).status.commitIndex).toBe(1);
      expect(net.member(id).appliedEntries.map((e) => [e.index, e.term, e.type])).toEqual([[1, 1, 'noop']]);
    }
  });
});

describe('§5.2 one vote per term', () => {
  it('a member votes for at most one candidate per term, and repeats the same vote to a retry', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    const answersFromC = () => net.messages(isFrom('c', 'VoteResp')).map((m) => [m.to, m.term, m.type === 'VoteResp' && m.reject]);

    net.inject(voteRequest('a', 'c', 1, 0, 0));
    net.inject(voteRequest('b', 'c', 1, 0, 0));
    net.inject(voteRequest('a', 'c', 1, 0, 0)); // a retransmission

    expect(answersFromC()).toEqual([
      ['a', 1, false],
      ['b', 1, true],
      ['a', 1, false],
    ]);
    expect(net.raft('c').status).toMatchObject({ term: 1, vote: 'a' });
  });

  it('a candidate has voted for itself and refuses a rival in the same term', () => {
    const net = Network.cluster(['a', 'b', 'c'], { preVote: false });
    net.drop((m) => m.type === 'VoteResp'); // keep a a candidate
    net.campaign('a');
    expect(net.raft('a').status).toMatchObject({ role: 'candidate', term: 1, vote: 'a' });

    net.heal();
    net.inject(voteRequest('b', 'a', 1, 5, 5));
    expect(net.messages(isFrom('a', 'VoteResp'))).toMatchObject([{ to: 'b', term: 1, reject: true }]);
    expect(net.raft('a').status.vote).toBe('a');
  });
});

describe('§5.4.1 election restriction: only a candidate with an up-to-date log wins votes', () => {
  // The voter's log: terms [1, 2, 2]; it is in term 2 and has not voted.
  const voterDisk: PersistedState = { hardState: { term: 2, vote: null, commit: 0 }, snapshot: null, entries: logOfTerms([1, 2, 2]) };

  it.each([
    { candidate: 'lower last term, longer log', lastLogTerm: 1, lastLogIndex: 9, granted: false },
    { candidate: 'same last term, shorter log', lastLogTerm: 2, lastLogIndex: 2, granted: false },
    { candidate: 'same last term, same length', lastLogTerm: 2, lastLogIndex: 3, granted: true },
    { candidate: 'same last term, longer log', lastLogTerm: 2, lastLogIndex: 4, granted: true },
    { candidate: 'higher last term, shorter log', lastLogTerm: 3, lastLogIndex: 1, granted: true },
  ])('a candidate with $candidate is granted=$granted', ({ lastLogTerm, lastLogIndex, granted }) => {
    for (const type of ['Vote', 'PreVote'] as const) {
      const net = Network.cluster(['a', 'b', 'c'], { members: { c: { persisted: voterDisk } } });
      const request: Message =
        type === 'Vote'
          ? voteRequest('b', 'c', 3, lastLogIndex, lastLogTerm)
          : { type: 'PreVote', from: 'b', to: 'c', term: 3, lastLogIndex, lastLogTerm };
      net.inject(request);

      const answers = net.messages((m) => m.from === 'c' && m.type === `${type}Resp`);
      expect(answers, type).toHaveLength(1);
      expect(answers[0], type).toMatchObject({ to: 'b', reject: !granted });
      // A real vote moves the voter to the candidate's term either way, and is recorded only when granted.
      if (type === 'Vote') expect(net.raft('c').status).toMatchObject({ term: 3, vote: granted ? 'b' : null });
      // A pre-vote changes nothing on the voter.
      else expect(net.raft('c').status).toMatchObject({ term: 2, vote: null });
    }
  });

  it('a member that missed committed entries cannot be elected; a member holding them can', () => {
    const net = Network.cluster(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    net.elect('a');
    const cutC = net.isolate('c');
    net.proposeAll('a', ['x', 'y']);
    expect(net.raft('a').status.commitIndex).toBe(3); // committed by a and b, c missed it
    expect(net.raft('c').status.lastIndex).toBe(1);

    net.crash('a');
    cutC();
    net.campaign('c');
    expect(net.raft('c').status).toMatchObject({ role: 'candidate', term: 2 });
    expect(net.messages((m) => isFrom('b', 'VoteResp')(m) && m.to === 'c')).toMatchObject([{ term: 2, reject: true }]);
    expect(net.raft('b').status.vote).toBeNull(); // in term 2 it voted for nobody

    net.elect('b');
    expect(net.raft('b').status.term).toBe(3);
    net.proposeAll('b', ['z']);
    expect(net.member('c').texts()).toEqual(['x', 'y', 'z']);
  });
});

describe('thesis §9.6 pre-vote', () => {
  it('an isolated member that keeps campaigning does not raise its term, and on rejoining leaves the leader alone', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    net.proposeAll('a', ['before']);
    const rejoin = net.isolate('c');

    const termsOfC = new Set<number>();
    for (let t = 0; t < 6 * ELECTION_TICKS; t++) {
      net.tick(1);
      termsOfC.add(net.raft('c').status.term);
      net.propose('a', `during-${t}`);
    }
    // It did campaign, several times, but only ever with pre-votes, never a term-raising vote.
    expect(net.messages(isFrom('c', 'PreVote')).length).toBeGreaterThanOrEqual(6);
    expect(net.messages(isFrom('c', 'Vote'))).toEqual([]);
    expect([...termsOfC]).toEqual([1]);
    expect(net.member('c').handled.every((h) => h.durableHardState.term <= 1)).toBe(true);

    rejoin();
    net.tick(2 * ELECTION_TICKS);
    expect(net.leaders()).toEqual(['a']);
    for (const id of net.ids) expect(net.raft(id).status).toMatchObject({ term: 1, leaderId: 'a' });
    expect(net.raft('c').status.commitIndex).toBe(net.raft('a').status.commitIndex);
    expect(net.member('c').texts()).toEqual(net.member('a').texts());
  });

  it('without pre-vote the same isolated member does inflate its term (the control for the test above)', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS, preVote: false });
    net.elect('a');
    net.isolate('c');
    net.tick(6 * ELECTION_TICKS);
    expect(net.raft('c').status.term).toBeGreaterThanOrEqual(4);
  });
});

describe('thesis §6.2 check-quorum', () => {
  it('a leader cut off from a majority steps down within two election timeouts, without a new term', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    net.tick(3); // somewhere inside an election timeout
    net.isolate('a');

    let ticks = 0;
    while (net.raft('a').status.role === 'leader' && ticks < 4 * ELECTION_TICKS) {
      net.tick(1);
      ticks++;
    }
    expect(ticks).toBeGreaterThan(0);
    expect(ticks).toBeLessThanOrEqual(2 * ELECTION_TICKS);
    expect(net.raft('a').status).toMatchObject({ role: 'follower', term: 1, leaderId: null });
    // Meanwhile the majority side has moved on under a new leader.
    net.tick(2 * ELECTION_TICKS);
    const newLeaders = net.leaders();
    expect(newLeaders).toHaveLength(1);
    expect(newLeaders[0]).not.toBe('a');
    expect(net.raft(newLeaders[0]!).status.term).toBeGreaterThan(1);
  });

  // Regression: transferLeadership() once reset electionElapsed, which is also the check-quorum
  // clock, so transfer requests to changing targets kept an isolated leader in office forever.
  it('a leader cut off from a majority steps down within two election timeouts even while asked to transfer leadership', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    net.isolate('a');
    for (let t = 0; t < 2 * ELECTION_TICKS; t++) {
      net.raft('a').transferLeadership(t % 2 === 0 ? 'b' : 'c'); // e.g. an operator tool retrying on each member
      net.tick(1, ['a']);
    }
    expect(net.raft('a').status.role).toBe('follower');
  });

  it('a leader that hears from its majority keeps leading through many election timeouts, even with a minority cut off', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    net.isolate('c'); // a minority lost is no reason to step down
    net.tick(5 * ELECTION_TICKS);
    expect(net.raft('a').status).toMatchObject({ role: 'leader', term: 1 });
  });

  it.each(['Vote', 'PreVote'] as const)(
    'a follower that recently heard from its leader ignores a higher-term %s request',
    (type) => {
      const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
      net.elect('a');
      net.tick(2); // b hears heartbeats
      const disruptive: Message =
        type === 'Vote'
          ? voteRequest('c', 'b', 9, 100, 9)
          : { type: 'PreVote', from: 'c', to: 'b', term: 9, lastLogIndex: 100, lastLogTerm: 9 };
      net.inject(disruptive);

      expect(net.raft('b').status).toMatchObject({ term: 1, vote: 'a', leaderId: 'a', role: 'follower' });
      expect(net.messages((m) => m.from === 'b' && m.to === 'c')).toEqual([]);
      expect(net.leaders()).toEqual(['a']);
    },
  );

  it('once an election timeout passes without the leader, the same request is honoured', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    net.crash('a');
    net.tick(ELECTION_TICKS, ['b']); // b has not heard from a for a whole election timeout
    net.inject(voteRequest('c', 'b', 9, 100, 9));
    expect(net.raft('b').status).toMatchObject({ term: 9, vote: 'c' });
    expect(net.messages((m) => isFrom('b', 'VoteResp')(m) && m.to === 'c')).toMatchObject([{ term: 9, reject: false }]);
  });

  it('with quietAfterStart, a started member refuses votes for an election timeout, then grants them; a transfer\'s forced vote at once', () => {
    // A leader's read lease rests on its followers refusing votes for an election timeout after
    // its heartbeat; a member that (re)started has forgotten that heartbeat, so it waits as if
    // it had just heard one.
    const net = Network.cluster(['a', 'b', 'c'], { preVote: false, quietAfterStart: true });
    net.inject(voteRequest('a', 'c', 1, 0, 0));
    expect(net.messages(isFrom('c', 'VoteResp'))).toEqual([]);
    expect(net.raft('c').status.term).toBe(0);
    net.inject({ ...voteRequest('b', 'c', 1, 0, 0), transfer: true });
    expect(net.messages(isFrom('c', 'VoteResp'))).toMatchObject([{ to: 'b', term: 1, reject: false }]);

    const quiet = Network.cluster(['a', 'b', 'c'], { preVote: false, quietAfterStart: true });
    quiet.isolate('c');
    quiet.tick(9, ['c']);
    quiet.heal();
    quiet.inject(voteRequest('a', 'c', 1, 0, 0));
    expect(quiet.messages(isFrom('c', 'VoteResp'))).toEqual([]);
    quiet.isolate('c');
    quiet.tick(1, ['c']);
    quiet.heal();
    quiet.inject(voteRequest('a', 'c', 1, 0, 0));
    expect(quiet.messages(isFrom('c', 'VoteResp'))).toMatchObject([{ to: 'a', term: 1, reject: false }]);
  });
});
