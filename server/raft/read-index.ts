/**
 * The leader's book of linearizable reads waiting on it (ReadIndex, Raft thesis §6.4): reads
 * held until the leader has committed in its own term, reads queued for the next heartbeat
 * round, and rounds in flight with the acknowledgements they have gathered. The protocol in
 * raft.ts decides when a round starts and whom to answer; this only keeps the books.
 *
 * Must never: release a read on acknowledgements of a round that began before the read
 * arrived, or hold more reads than its bound.
 */

import { hasQuorum } from './quorum.js';
import type { NodeId } from './types.js';

export interface PendingRead {
  readonly requestId: string;
  /** Who asked: this member, or a follower that forwarded its caller's read. */
  readonly from: NodeId;
}

interface ReadRound {
  readonly round: number;
  /** The leader's commit index when the round began: the index its reads are served at. */
  readonly index: number;
  readonly reads: readonly PendingRead[];
  readonly acks: Set<NodeId>;
}

export class ReadIndexBook {
  private roundSeq = 0;
  private rounds: ReadRound[] = [];
  /** Reads that arrived since the last round began; they share the next one. */
  private queued: PendingRead[] = [];
  /** Reads waiting for the first commit of this term (until then the commit index may be stale). */
  private held: PendingRead[] = [];

  constructor(private readonly maxPendingReads: number) {}

  isFull(): boolean {
    let count = this.queued.length + this.held.length;
    for (const r of this.rounds) count += r.reads.length;
    return count >= this.maxPendingReads;
  }

  hold(read: PendingRead): void {
    this.held.push(read);
  }

  /** The leader committed in its own term: the held reads may now be queued. */
  takeHeld(): PendingRead[] {
    const held = this.held;
    this.held = [];
    return held;
  }

  queue(read: PendingRead): void {
    this.queued.push(read);
  }

  hasQueued(): boolean {
    return this.queued.length > 0;
  }

  /** Begin a round for every queued read, at `commitIndex`; returns its number, or null if none waited. */
  startRound(commitIndex: number, leaderId: NodeId): number | null {
    if (this.queued.length === 0) return null;
    const round = ++this.roundSeq;
    this.rounds.push({ round, index: commitIndex, reads: this.queued, acks: new Set([leaderId]) });
    this.queued = [];
    return round;
  }

  /**
   * `from` answered round `round`. Once a majority of `voters` has, that round and every earlier
   * one are confirmed (leadership held after each of them began) and their reads come back,
   * in order, each with its own index.
   */
  acknowledge(round: number, from: NodeId, voters: readonly NodeId[]): { read: PendingRead; index: number }[] {
    const at = this.rounds.findIndex((r) => r.round === round);
    if (at < 0) return [];
    const confirmed = this.rounds[at]!;
    confirmed.acks.add(from);
    if (!hasQuorum(voters, confirmed.acks)) return [];
    const released = this.rounds.slice(0, at + 1);
    this.rounds = this.rounds.slice(at + 1);
    return released.flatMap((r) => r.reads.map((read) => ({ read, index: r.index })));
  }

  /** Leadership changed: nobody is waiting here any more (callers time out and retry). */
  clear(): void {
    this.rounds = [];
    this.queued = [];
    this.held = [];
  }
}
