/**
 * What clients get from the core (Raft paper §8, thesis §6): only the leader accepts proposals,
 * others name the leader they know; linearizable reads take the ReadIndex path (thesis §6.4): the
 * read index is the commit index at the time of the request, released only after a heartbeat
 * round acknowledged by a majority confirms the leader still leads, and only once the leader has
 * committed an entry of its own term. A follower forwards its read to the leader and gets the
 * read state back.
 *
 * Pattern: Follower Reads (ReadIndex), Leader and Followers, Majority Quorum.
 * Must never: reach into the core past its public API, use real time, or loop without a bound.
 */

import { describe, expect, it } from 'vitest';
import type { HeartbeatMessage, HeartbeatResponse, Message } from '../../../server/raft/index.js';
import { Network, bytes } from './harness.js';

const ELECTION_TICKS = 10;

const heartbeatAnswersTo = (leader: string) => (m: Message) => m.type === 'HeartbeatResp' && m.to === leader;

/** The answer of `from` to the heartbeat of read round `round` (null: a plain heartbeat). */
const roundAnswer = (from: string, round: number | null) => (m: Message) =>
  m.type === 'HeartbeatResp' && m.from === from && m.readRound === round;

/**
 * Five members; a leads with commit 2. Read A starts round 1 at commit 2; then y commits (3) and
 * read B starts round 2 at commit 3. Every answer to a round's heartbeats is held.
 */
function twoReadRounds(): { net: Network; round1: number; round2: number } {
  const net = Network.cluster(['a', 'b', 'c', 'd', 'e']);
  net.elect('a');
  net.proposeAll('a', ['x']);
  net.hold(heartbeatAnswersTo('a'));
  expect(net.raft('a').readIndex('A')).toEqual({ ok: true });
  net.settle();
  net.proposeAll('a', ['y']);
  expect(net.raft('a').status.commitIndex).toBe(3);
  expect(net.raft('a').readIndex('B')).toEqual({ ok: true });
  net.settle();

  const rounds = (net.heldMessages() as HeartbeatResponse[]).map((m) => m.readRound);
  const round1 = rounds[0]!;
  const round2 = rounds[4]!;
  expect(round2).toBeGreaterThan(round1);
  expect(rounds).toEqual([round1, round1, round1, round1, round2, round2, round2, round2]);
  expect(net.member('a').readStates).toEqual([]);
  return { net, round1, round2 };
}

describe('§8 proposals', () => {
  it('a follower refuses a proposal with NOT_LEADER and names the leader it follows', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    expect(net.raft('b').propose(bytes('x'))).toEqual({ ok: false, code: 'NOT_LEADER', leaderHint: 'a' });
    net.settle();
    expect(net.raft('b').status.lastIndex).toBe(1);
    expect(net.raft('a').status.lastIndex).toBe(1); // nothing was forwarded by the core
  });

  it('a member that knows no leader refuses with NOT_LEADER and no hint', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    expect(net.raft('b').propose(bytes('x'))).toEqual({ ok: false, code: 'NOT_LEADER', leaderHint: null });
  });

  it('the leader accepts a proposal and tells its index and term', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    expect(net.raft('a').propose(bytes('x'))).toEqual({ ok: true, index: 2, term: 1 });
  });
});

describe('thesis §6.4 ReadIndex on the leader', () => {
  it('answers only after a majority acknowledged a heartbeat round, with the commit index at the time of the request', () => {
    const net = Network.cluster(['a', 'b', 'c', 'd', 'e']);
    net.elect('a');
    net.proposeAll('a', ['x']);
    const commitIndex = net.raft('a').status.commitIndex;
    expect(commitIndex).toBe(2);

    net.hold(heartbeatAnswersTo('a'));
    expect(net.raft('a').readIndex('r1')).toEqual({ ok: true });
    net.settle();
    const round = net.messages((m) => m.type === 'Heartbeat' && m.readRound !== null);
    expect(round.map((m) => m.to)).toEqual(['b', 'c', 'd', 'e']);
    expect(net.member('a').readStates).toEqual([]);

    net.deliverHeld(); // a and b: two of five
    expect(net.member('a').readStates).toEqual([]);
    net.deliverHeld(); // a, b and c: a majority
    expect(net.member('a').readStates).toEqual([{ requestId: 'r1', index: commitIndex }]);

    net.releaseHeld(); // late acknowledgements change nothing
    expect(net.member('a').readStates).toEqual([{ requestId: 'r1', index: commitIndex }]);
  });

  it('acknowledgements of a heartbeat sent before the read was requested do not confirm it', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    net.proposeAll('a', ['x']);
    const unhold = net.hold(heartbeatAnswersTo('a'));
    net.tick(1, ['a']); // a plain heartbeat round; its answers are held back
    expect(net.heldMessages()).toHaveLength(2);
    unhold();

    net.drop((m) => m.type === 'Heartbeat' && m.readRound !== null); // the read's own round is lost
    expect(net.raft('a').readIndex('r')).toEqual({ ok: true });
    net.settle();
    net.releaseHeld(); // old answers arrive after the request
    expect(net.member('a').readStates).toEqual([]);
  });

  it('a majority acknowledging a round releases the reads of that round only, not those of a round that began after it', () => {
    const { net, round1, round2 } = twoReadRounds();

    net.deliverHeld(roundAnswer('b', round1));
    expect(net.member('a').readStates).toEqual([]);
    net.deliverHeld(roundAnswer('c', round1)); // a, b, c: a majority for round 1
    expect(net.member('a').readStates).toEqual([{ requestId: 'A', index: 2 }]);
    // These answers left b..e before B was even requested: they say nothing about leadership since.
    net.deliverHeld(roundAnswer('d', round1));
    net.deliverHeld(roundAnswer('e', round1));
    expect(net.member('a').readStates).toEqual([{ requestId: 'A', index: 2 }]);

    net.deliverHeld(roundAnswer('b', round2));
    expect(net.member('a').readStates).toEqual([{ requestId: 'A', index: 2 }]);
    net.deliverHeld(roundAnswer('c', round2)); // a majority for round 2
    expect(net.member('a').readStates).toEqual([
      { requestId: 'A', index: 2 },
      { requestId: 'B', index: 3 },
    ]);
  });

  it('a majority acknowledging a later round releases the reads of earlier rounds too, in order, each at its own index', () => {
    const { net, round1, round2 } = twoReadRounds();

    net.deliverHeld(roundAnswer('d', round2));
    net.deliverHeld(roundAnswer('e', round2)); // a, d, e: a majority for round 2, none yet for round 1
    expect(net.member('a').readStates).toEqual([
      { requestId: 'A', index: 2 },
      { requestId: 'B', index: 3 },
    ]);

    net.releaseHeld(); // the round-1 answers, and the rest of round 2, arrive late: nothing more to release
    expect(net.heldMessages()).toEqual([]);
    expect(net.messages((m) => m.type === 'HeartbeatResp' && m.readRound === round1, 'delivered')).toHaveLength(4);
    expect(net.member('a').readStates).toEqual([
      { requestId: 'A', index: 2 },
      { requestId: 'B', index: 3 },
    ]);
  });

  it('answers to a plain heartbeat sent before a read round began do not count toward that round, even from a majority', () => {
    const net = Network.cluster(['a', 'b', 'c', 'd', 'e']);
    net.elect('a');
    net.proposeAll('a', ['x']);
    net.hold(heartbeatAnswersTo('a'));
    net.tick(1, ['a']); // a plain heartbeat round: four answers held
    expect(net.heldMessages().map((m) => [m.from, m.type === 'HeartbeatResp' && m.readRound])).toEqual([
      ['b', null],
      ['c', null],
      ['d', null],
      ['e', null],
    ]);

    expect(net.raft('a').readIndex('r')).toEqual({ ok: true });
    net.settle();
    const roundHeartbeats = net.messages((m) => m.type === 'Heartbeat' && m.readRound !== null) as HeartbeatMessage[];
    expect(roundHeartbeats.map((m) => m.to)).toEqual(['b', 'c', 'd', 'e']);
    const readRound = roundHeartbeats[0]!.readRound!;

    for (const from of ['b', 'c', 'd', 'e']) net.deliverHeld(roundAnswer(from, null));
    expect(net.member('a').readStates).toEqual([]);

    net.deliverHeld(roundAnswer('b', readRound));
    expect(net.member('a').readStates).toEqual([]);
    net.deliverHeld(roundAnswer('c', readRound));
    expect(net.member('a').readStates).toEqual([{ requestId: 'r', index: 2 }]);
  });

  it('a leader isolated from the majority never produces a read state', () => {
    const net = Network.cluster(['a', 'b', 'c'], { electionTicks: ELECTION_TICKS });
    net.elect('a');
    net.proposeAll('a', ['x']);
    net.isolate('a');

    expect(net.raft('a').readIndex('stale')).toEqual({ ok: true }); // it still believes it leads
    for (let t = 0; t < 3 * ELECTION_TICKS; t++) {
      net.tick(1);
      expect(net.member('a').readStates).toEqual([]);
    }
    expect(net.raft('a').status.role).toBe('follower'); // check-quorum deposed it meanwhile
    expect(net.raft('a').readIndex('later')).toEqual({ ok: false, code: 'NOT_LEADER', leaderHint: null });
  });

  it('a new leader holds reads back until it has committed an entry of its own term', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    const unhold = net.hold((m) => m.type === 'AppendResp' && m.to === 'a');
    net.elect('a');
    expect(net.raft('a').status.commitIndex).toBe(0);

    expect(net.raft('a').readIndex('early')).toEqual({ ok: true });
    net.tick(3); // heartbeats go round and are acknowledged, yet the commit index is not known to be current
    expect(net.member('a').readStates).toEqual([]);

    unhold();
    net.releaseHeld();
    expect(net.raft('a').status.commitIndex).toBe(1);
    expect(net.member('a').readStates).toEqual([{ requestId: 'early', index: 1 }]);
  });
  it('a new leader whose commit index is stale does not answer a read with it: it waits for its own no-op to commit', () => {
    const net = Network.cluster(['a', 'b', 'c'], { checkQuorum: false });
    net.elect('a');
    // x is stored by all three and committed by a, but b and c never learn that it committed.
    const silenceCommit = net.drop((m) => m.from === 'a' && (m.type === 'Append' || m.type === 'Heartbeat') && m.commit >= 2);
    net.proposeAll('a', ['x']);
    expect(net.raft('a').status.commitIndex).toBe(2);
    expect(net.member('a').texts()).toEqual(['x']); // a may already have answered a client
    expect(net.raft('b').status).toMatchObject({ lastIndex: 2, commitIndex: 1 });
    net.crash('a');
    silenceCommit();

    const unhold = net.hold((m) => m.type === 'AppendResp' && m.to === 'b'); // b's no-op stays uncommitted
    net.elect('b');
    expect(net.raft('b').status).toMatchObject({ term: 2, lastIndex: 3, commitIndex: 1 });
    expect(net.raft('b').termAt(2)).toBe(1); // x: committed, but b does not know it

    expect(net.raft('b').readIndex('r')).toEqual({ ok: true });
    net.tick(3); // heartbeats go round and are acknowledged by c
    expect(net.messages((m) => m.type === 'HeartbeatResp' && m.from === 'c' && m.to === 'b', 'delivered').length).toBeGreaterThan(0);
    // Answering now with 1 would let a read miss x, which a client may already have seen.
    expect(net.member('b').readStates).toEqual([]);

    unhold();
    net.releaseHeld();
    expect(net.raft('b').status.commitIndex).toBe(3);
    expect(net.member('b').readStates).toEqual([{ requestId: 'r', index: 3 }]);
    expect(net.member('b').texts()).toEqual(['x']);
  });
});

describe('thesis §6.4 ReadIndex on a follower', () => {
  it('is forwarded to the leader, confirmed by its heartbeat round, and the read state comes back to the follower', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    net.proposeAll('a', ['x']);
    net.hold(heartbeatAnswersTo('a'));

    expect(net.raft('b').readIndex('rb')).toEqual({ ok: true });
    net.settle();
    expect(net.messages((m) => m.type === 'ReadIndex')).toMatchObject([{ from: 'b', to: 'a', requestId: 'rb' }]);
    expect(net.member('b').readStates).toEqual([]);

    net.releaseHeld();
    expect(net.messages((m) => m.type === 'ReadIndexResp')).toMatchObject([{ from: 'a', to: 'b', requestId: 'rb', index: 2 }]);
    expect(net.member('b').readStates).toEqual([{ requestId: 'rb', index: 2 }]);
    expect(net.member('a').readStates).toEqual([]);
  });

  it('a follower that knows no leader answers NOT_LEADER at once and sends nothing', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    expect(net.raft('b').readIndex('r')).toEqual({ ok: false, code: 'NOT_LEADER', leaderHint: null });
    net.settle();
    expect(net.sent).toEqual([]);
  });
});
