/**
 * The leader's view of one follower: how much of the log it is known to hold (match), what to
 * send next, and how fast to send it (probe one append at a time, replicate with a bounded
 * number in flight, or wait for a snapshot to land).
 *
 * Must never: move `match` backwards, or let more than `maxInflight` appends be outstanding.
 */

import { assert } from './log.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Probe state: one append is out; wait for its answer (or a heartbeat answer) before the next. */
  probeSent = false;
  /** Snapshot state: the index of the snapshot sent, and how many ticks it has been out. */
  pendingSnapshot = 0;
  snapshotTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Last index of each append in flight, oldest first (replicate state). */
  private readonly inflight: number[] = [];

  constructor(
    next: number,
    private readonly maxInflight: number,
  ) {
    this.next = next;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflight.length >= this.maxInflight;
      case 'snapshot':
        return true;
    }
  }

  becomeProbe(): void {
    const from = this.state === 'snapshot' ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.reset('probe');
    this.next = from;
  }

  becomeReplicate(): void {
    this.reset('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.reset('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.inflight.length = 0;
  }

  /** An append ending at lastIndex went out. */
  sentAppend(lastIndex: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        assert(this.inflight.length < this.maxInflight, `an append sent with ${this.inflight.length} in flight, the most allowed (${this.maxInflight})`);
        this.next = lastIndex + 1;
        this.inflight.push(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** The follower acknowledged `index`. Returns whether match advanced. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    while (this.inflight.length > 0 && this.inflight[0]! <= index) this.inflight.shift();
    return updated;
  }

  /**
   * The follower rejected an append whose prevLogIndex was `rejected`; `probeFrom` is the
   * leader's best guess of where the logs agree. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, probeFrom: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.becomeProbe();
      this.next = Math.max(this.match + 1, Math.min(rejected, probeFrom + 1));
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(this.match + 1, Math.min(rejected, probeFrom + 1));
    this.probeSent = false;
    return true;
  }

  /** A heartbeat answer proves the follower is reachable: let one more append through. */
  resumeOnHeartbeat(): void {
    this.recentActive = true;
    this.probeSent = false;
    if (this.state === 'replicate' && this.inflight.length >= this.maxInflight) this.inflight.shift();
  }
}
