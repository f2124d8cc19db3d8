/**
 * Reads waiting for this member to reach a revision (read-your-writes: a client that saw
 * revision R on one member reads on another only once that one has applied R). Released after
 * each apply, failed at their deadline (checked each tick and after each apply) or when the
 * member stops.
 *
 * Must never: keep a waiter past its deadline by more than a tick; resolve one before the
 * member's revision reached it.
 */

import { RequestError } from './waiting-list.js';
import type { NodeId } from '../raft/types.js';

interface Waiter {
  readonly revision: number;
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class RevisionWaiters {
  private waiting: Waiter[] = [];

  constructor(private readonly nowMs: () => number) {}

  /** Resolves once `release` sees `revision` reached; fails after `timeoutMs`. */
  wait(revision: number, current: number, timeoutMs: number): Promise<void> {
    if (current >= revision) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.waiting.push({ revision, resolve, reject, deadline: this.nowMs() + timeoutMs }));
  }

  /** The member is at `current`: resolve who waited for it, fail who waited too long. */
  release(current: number, leaderHint: NodeId | null): void {
    if (this.waiting.length === 0) return;
    const now = this.nowMs();
    this.waiting = this.waiting.filter((w) => {
      if (w.revision <= current) w.resolve();
      else if (now >= w.deadline) w.reject(new RequestError('UNAVAILABLE', `this member has not reached revision ${w.revision} (at ${current}); try another member`, leaderHint));
      else return true;
      return false;
    });
  }

  failAll(error: Error): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const waiter of waiting) waiter.reject(error);
  }
}
