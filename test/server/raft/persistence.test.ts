/**
 * The persisting contract (Raft paper Figure 2 "persistent state", updated on stable storage
 * before responding to RPCs): a granted vote, a candidate's vote request and an append
 * acknowledgement only ever leave in a Ready that makes what they promise durable; a member
 * restarted from what it persisted keeps its term, its vote and its log, so it can never vote
 * twice in one term.
 *
 * Pattern: Write-Ahead Log (what the Ready asks to persist), Generation Clock (term).
 * Must never: reach into the core past its public API, use real time, or loop without a bound.
 */

import { describe, expect, it } from 'vitest';
import { Raft } from '../../../server/raft/index.js';
import type { Message, RaftStatus, VoteMessage } from '../../../server/raft/index.js';
import { FixedRandom, Network, SeededRandom, bytes } from './harness.js';

const ELECTION_TICKS = 10;

function voteRequest(from: string, to: string, term: number, lastLogIndex: number, lastLogTerm: number): VoteMessage {
  return { type: 'Vote', from, to, term, lastLogIndex, lastLogTerm, transfer: false };
}

describe('Figure 2: persistent state is durable before any message that relies on it', () => {
  it('every granted vote, vote request and append acknowledgement leaves with its term, vote and entries already persisted', () => {
    let grantedVotes = 0;
    let voteRequests = 0;
    let acks = 0;
    for (let seed = 1; seed <= 4; seed++) {
      const ids = ['a', 'b', 'c', 'd', 'e'];
      const net = Network.cluster(ids, { seed, electionTicks: ELECTION_TICKS, preVote: seed % 2 === 0 });
      const chaos = new SeededRandom(seed);
      let lift: (() => void) | null = null;
      for (let step = 0; step < 300; step++) {
        for (const leader of net.leaders()) net.propose(leader, `s${seed}-${step}`);
        if (step % 40 === 0) {
          // Depose the current leader now and then, so that elections keep happening.
          lift?.();
          const leader = net.leaders()[0];
          lift = leader === undefined ? null : net.isolate(leader);
        }
        if (chaos.intBelow(10) === 0) {
          const someone = ids[chaos.intBelow(ids.length)]!;
          net.crash(someone);
          net.restart(someone);
        }
        net.tick(1);
      }

      for (const id of ids) {
        for (const { ready, durableHardState, durableLastIndex, durableTermAt } of net.member(id).handled) {
          for (const m of ready.messages) {
            if (m.type === 'VoteResp' && !m.reject) {
              grantedVotes++;
              expect(durableHardState, `${id} granted ${m.to} a vote in term ${m.term}`).toMatchObject({ term: m.term, vote: m.to });
            } else if (m.type === 'Vote') {
              voteRequests++;
              expect(durableHardState, `${id} asked ${m.to} for a vote in term ${m.term}`).toMatchObject({ term: m.term, vote: id });
            } else if (m.type === 'AppendResp' && !m.reject && m.index > 0) {
              acks++;
              expect(durableLastIndex, `${id} acknowledged index ${m.index}`).toBeGreaterThanOrEqual(m.index);
              expect(durableTermAt(m.index), `${id} acknowledged index ${m.index}`).toBeDefined();
              expect(durableHardState.term).toBe(m.term);
            }
          }
        }
      }
    }
    // The check had plenty to look at.
    expect(grantedVotes).toBeGreaterThan(20);
    expect(voteRequests).toBeGreaterThan(20);
    expect(acks).toBeGreaterThan(500);
  });

  it('a Ready asks to persist a hard state only when term, vote or commit changed', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    const handledBefore = new Map(net.ids.map((id) => [id, net.member(id).handled.length]));
    net.tick(1, ['a']); // one heartbeat round: nothing durable changes

    for (const id of net.ids) {
      const readies = net.member(id).handled.slice(handledBefore.get(id)!).map((h) => h.ready);
      expect(readies.length, id).toBeGreaterThan(0);
      for (const rd of readies) {
        expect(rd.hardState, id).toBeNull();
        expect(rd.entries, id).toEqual([]);
      }
    }
  });
});

describe('Figure 2: a restarted member keeps its term, vote and log', () => {
  /** a asks for votes in term 1 and gets them, but never hears the answers (so nobody leads). */
  function votedInTerm1(): Network {
    const net = Network.cluster(['a', 'b', 'c'], { preVote: false });
    net.drop((m) => m.type === 'VoteResp');
    net.campaign('a');
    net.heal();
    return net;
  }

  it('it comes back with the term and vote it persisted', () => {
    const net = votedInTerm1();
    expect(net.raft('c').status).toMatchObject({ term: 1, vote: 'a' });
    expect(net.member('c').disk.hardState).toMatchObject({ term: 1, vote: 'a' });
    net.crash('c');
    net.restart('c');
    expect(net.raft('c').status).toMatchObject({ term: 1, vote: 'a', role: 'follower', leaderId: null });
  });

  it('it refuses a second candidate in the same term, and still grants the one it voted for', () => {
    const net = votedInTerm1();
    net.crash('c');
    net.restart('c');

    const answers = (to: string): Message[] => net.messages((m) => m.type === 'VoteResp' && m.from === 'c' && m.to === to);
    const answersToBBefore = answers('b').length;
    net.inject(voteRequest('b', 'c', 1, 5, 1)); // a longer log: only the earlier vote stands in the way
    expect(answers('b').slice(answersToBBefore)).toMatchObject([{ term: 1, reject: true }]);
    expect(net.raft('c').status).toMatchObject({ term: 1, vote: 'a' });

    const answersToABefore = answers('a').length;
    net.inject(voteRequest('a', 'c', 1, 0, 0));
    expect(answers('a').slice(answersToABefore)).toMatchObject([{ term: 1, reject: false }]);
  });

  it('it comes back with its log and commit index, and applies nothing twice', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    net.proposeAll('a', ['x', 'y']);
    net.crash('b');
    net.restart('b');
    expect(net.raft('b').status).toMatchObject({ term: 1, vote: 'a', lastIndex: 3, commitIndex: 3, appliedIndex: 3 });
    expect([1, 2, 3].map((i) => net.raft('b').termAt(i))).toEqual([1, 1, 1]);
    net.tick(1);
    expect(net.member('b').appliedEntries.map((e) => e.index)).toEqual([1, 2, 3]);
  });
});

describe('the Ready contract: no input between ready() and advance()', () => {
  /**
   * A bare core, driven by hand as a caller would: a leads a, b, c in term 1 and its no-op (1) is
   * committed and applied; then x (2) is proposed and its Ready handed out but not yet advanced.
   */
  function leaderWithReadyOutstanding(): { raft: Raft; before: RaftStatus } {
    const raft = new Raft(
      { id: 'a', peers: ['a', 'b', 'c'], random: new FixedRandom(0), preVote: false, checkQuorum: false },
      { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] },
    );
    const drain = () => {
      for (let i = 0; i < 10 && raft.hasReady(); i++) {
        raft.ready();
        raft.advance();
      }
      expect(raft.hasReady()).toBe(false);
    };
    raft.campaign();
    raft.step({ type: 'VoteResp', from: 'b', to: 'a', term: 1, reject: false });
    drain();
    raft.step({ type: 'AppendResp', from: 'b', to: 'a', term: 1, reject: false, index: 1, rejectHint: 0, hintTerm: 0 });
    drain();
    expect(raft.status).toMatchObject({ role: 'leader', term: 1, lastIndex: 1, commitIndex: 1, appliedIndex: 1 });

    expect(raft.propose(bytes('x'))).toEqual({ ok: true, index: 2, term: 1 });
    const rd = raft.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]); // being persisted by the caller right now
    return { raft, before: raft.status };
  }

  const inputs: { input: string; run: (raft: Raft) => unknown; afterAdvance: (raft: Raft, result: unknown) => void }[] = [
    {
      input: 'tick',
      run: (raft) => raft.tick(),
      afterAdvance: (raft) => expect(raft.ready().messages.filter((m) => m.type === 'Heartbeat').map((m) => m.to)).toEqual(['b', 'c']),
    },
    {
      input: 'step',
      run: (raft) => raft.step({ type: 'Vote', from: 'c', to: 'a', term: 2, lastLogIndex: 9, lastLogTerm: 1, transfer: false }),
      afterAdvance: (raft) => expect(raft.status).toMatchObject({ role: 'follower', term: 2, vote: 'c' }),
    },
    {
      input: 'propose',
      run: (raft) => raft.propose(bytes('y')),
      afterAdvance: (raft, result) => {
        expect(result).toEqual({ ok: true, index: 3, term: 1 });
        expect(raft.status.lastIndex).toBe(3);
      },
    },
    {
      input: 'readIndex',
      run: (raft) => raft.readIndex('r'),
      afterAdvance: (raft, result) => {
        expect(result).toEqual({ ok: true });
        expect(raft.ready().messages.filter((m) => m.type === 'Heartbeat' && m.readRound !== null).map((m) => m.to)).toEqual(['b', 'c']);
      },
    },
    {
      input: 'transferLeadership',
      run: (raft) => raft.transferLeadership('b'),
      afterAdvance: (raft) => {
        expect(raft.propose(bytes('z'))).toEqual({ ok: false, code: 'UNAVAILABLE', leaderHint: null }); // transferring
      },
    },
    {
      input: 'compact',
      run: (raft) => raft.compact(1),
      afterAdvance: (raft) => expect(raft.status).toMatchObject({ snapshotIndex: 1, lastIndex: 2 }),
    },
  ];

  it.each(inputs.map((i) => [i.input, i] as const))('%s() throws between ready() and advance(), changes nothing, and works again after advance()', (_input, { run, afterAdvance }) => {
    const { raft, before } = leaderWithReadyOutstanding();
    expect(() => run(raft)).toThrow(/between ready\(\) and advance\(\)/);
    expect(raft.status).toEqual(before);

    raft.advance();
    expect(raft.status).toEqual(before);
    afterAdvance(raft, run(raft));
  });
});
