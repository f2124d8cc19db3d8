/**
 * The test harness itself, pinned: its disk persists a Ready the way the contract says (a later
 * Ready's entries replace the persisted suffix from their first index; a snapshot replaces the
 * whole log), snapshots leave with the sender's saved state attached, held messages wait, and
 * settle() refuses to spin forever. The Raft tests lean on all of this.
 *
 * Must never: pass vacuously (every check looks at concrete values), use real time, or loop
 * without a bound.
 */

import { describe, expect, it } from 'vitest';
import type { Ready } from '../../../server/raft/index.js';
import { FixedRandom, MemoryDisk, Network, SeededRandom, encodeState, entry } from './harness.js';

function readyWith(parts: Partial<Ready>): Ready {
  return { softState: null, hardState: null, snapshot: null, entries: [], messages: [], committedEntries: [], readStates: [], ...parts };
}

describe('MemoryDisk', () => {
  it('appends entries, and a later Ready starting lower drops the persisted suffix from there', () => {
    const disk = new MemoryDisk();
    disk.persist(readyWith({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)] }));
    disk.persist(readyWith({ entries: [entry(2, 2)], hardState: { term: 2, vote: 'b', commit: 1 } }));
    expect(disk.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(disk.hardState).toEqual({ term: 2, vote: 'b', commit: 1 });
    expect(() => disk.persist(readyWith({ entries: [entry(5, 2)] }))).toThrow(/gap/);
  });

  it('a snapshot replaces the whole log; entries in the same Ready follow it', () => {
    const disk = new MemoryDisk();
    disk.persist(readyWith({ entries: [entry(1, 1), entry(2, 1)] }));
    const meta = { index: 10, term: 3, conf: { voters: ['a'] } };
    disk.persist(readyWith({ snapshot: { meta, data: encodeState([]) }, entries: [entry(11, 3)] }));
    expect(disk.recover()).toEqual({ hardState: { term: 0, vote: null, commit: 0 }, snapshot: meta, entries: [entry(11, 3)] });
    expect(disk.termAt(10)).toBe(3);
    expect(() => disk.persist(readyWith({ snapshot: { meta, data: null } }))).toThrow(/without data/);
  });
});

describe('randomness', () => {
  it('SeededRandom replays the same stream for the same seed and stays in range', () => {
    const draw = (seed: number) => Array.from({ length: 20 }, () => new SeededRandom(seed)).map((r, i) => r.intBelow(10 + i));
    expect(draw(3)).toEqual(draw(3));
    const r = new SeededRandom(9);
    const values = Array.from({ length: 200 }, () => r.intBelow(7));
    expect(Math.min(...values)).toBe(0);
    expect(Math.max(...values)).toBe(6);
  });

  it('FixedRandom answers its value, clamped below the bound, and records the bounds', () => {
    const r = new FixedRandom(8);
    expect([r.intBelow(10), r.intBelow(5)]).toEqual([8, 4]);
    expect(r.boundsAsked).toEqual([10, 5]);
  });
});

describe('Network', () => {
  it('holds matching messages until they are delivered one by one', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.hold((m) => m.type === 'VoteResp' || m.type === 'PreVoteResp');
    net.campaign('a');
    expect(net.raft('a').status.role).toBe('precandidate');
    expect(net.heldMessages().map((m) => [m.type, m.from])).toEqual([
      ['PreVoteResp', 'b'],
      ['PreVoteResp', 'c'],
    ]);
    net.deliverHeld();
    expect(net.raft('a').status).toMatchObject({ role: 'candidate', term: 1 });
  });

  it('drops messages to a crashed member and records them as dropped', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.crash('c');
    net.elect('a');
    const toC = net.sent.filter((s) => s.message.to === 'c');
    expect(toC.length).toBeGreaterThan(0);
    expect(toC.every((s) => s.fate === 'dropped')).toBe(true);
  });

  it('settle() throws instead of spinning when the cluster is not quiet within its bound', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.raft('a').campaign();
    expect(() => net.settle(1)).toThrow(/not quiet after 1 rounds/);
  });

  it('attaches the sender saved snapshot state to a Snapshot message', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    const reconnect = net.isolate('c');
    net.proposeAll('a', ['x']);
    net.member('a').compact(2);
    reconnect();
    net.tick(1, ['a']);
    const installed = net.member('c').handled.find((h) => h.ready.snapshot !== null)!.ready.snapshot!;
    expect(installed.data).toEqual(net.member('a').disk.snapshot!.data);
  });

  it('refuses to send a snapshot the sender never saved (the core compacted behind the disk)', () => {
    const net = Network.cluster(['a', 'b', 'c']);
    net.elect('a');
    const reconnect = net.isolate('c');
    net.proposeAll('a', ['x']);
    net.raft('a').compact(2); // not through Member.compact: nothing saved on a's disk
    reconnect();
    expect(() => net.tick(1, ['a'])).toThrow(/sent a snapshot at 2 it has not saved/);
  });
});
