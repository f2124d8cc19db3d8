/**
 * Request Waiting List: client requests parked until the log reaches them. A proposal waits for
 * its (index, term) to be applied; a linearizable read waits for its read index, then for the
 * state machine to apply that far. A read that fails was not served (retry freely). A proposal
 * in the log fails only when its slot went to another leader's entry (certainly not applied);
 * any other end before its apply — the member stopping, a snapshot covering it — may hide a
 * commit, so it fails OUTCOME_UNKNOWN (retry with the session stamp).
 *
 * Must never: answer a proposal with another entry's result (the term must match); keep a
 * request forever (every failure path empties the list it owns).
 */

import type { ErrorCode } from '../../shared/errors.js';
import type { NodeId } from '../raft/types.js';

/**
 * A request the member could not finish, and what the client may do: NOT_LEADER, UNAVAILABLE
 * and RESOURCE_EXHAUSTED when it was certainly not applied (retry freely); OUTCOME_UNKNOWN and
 * TIMEOUT when it may have been (a write: retry only with its session stamp).
 */
export class RequestError extends Error {
  constructor(
    readonly code: Extract<ErrorCode, 'NOT_LEADER' | 'UNAVAILABLE' | 'RESOURCE_EXHAUSTED' | 'OUTCOME_UNKNOWN' | 'TIMEOUT'>,
    message: string,
    readonly leaderHint: NodeId | null,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** Why a stopping member refuses what is asked of it (one wording everywhere). */
export const STOPPING = 'the member is stopping';

/** The refusal of a request to a member that is stopping: certainly not applied. */
export function stopping(): RequestError {
  return new RequestError('UNAVAILABLE', STOPPING, null);
}

interface Waiter<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
}

/** Proposals by log index, answered when that index is applied. */
export class ProposalWaitingList<T> {
  private readonly byIndex = new Map<number, Waiter<T> & { readonly term: number }>();

  add(index: number, term: number): Promise<T> {
    return new Promise<T>((resolve, reject) => this.byIndex.set(index, { term, resolve, reject }));
  }

  /** Entry `index` of `term` was applied with `result`. */
  applied(index: number, term: number, result: T, leaderHint: NodeId | null): void {
    const waiter = this.byIndex.get(index);
    if (waiter === undefined) return;
    this.byIndex.delete(index);
    if (waiter.term === term) waiter.resolve(result);
    // Another leader's entry took this slot: ours was never committed.
    else waiter.reject(new RequestError('NOT_LEADER', `the proposal at index ${index} was replaced by another leader's entry`, leaderHint));
  }

  /** Fail every proposal at or below `index` (a snapshot replaced that part of the log). */
  failThrough(index: number, error: Error): void {
    for (const [at, waiter] of this.byIndex) {
      if (at > index) continue;
      this.byIndex.delete(at);
      waiter.reject(error);
    }
  }

  failAll(error: Error): void {
    for (const waiter of this.byIndex.values()) waiter.reject(error);
    this.byIndex.clear();
  }

  get size(): number {
    return this.byIndex.size;
  }
}

/**
 * Linearizable reads by request id: first their read index, then the apply that reaches it. A
 * read whose index never comes (its ReadIndex lost on the way, or dropped by a leader whose read
 * queue is full) fails at its deadline rather than wait forever.
 */
export class ReadWaitingList {
  private readonly pending = new Map<string, Waiter<void> & { index: number | null; readonly deadline: number }>();

  /** `deadline`: when, on the caller's clock, the read gives up waiting for its read index. */
  add(requestId: string, deadline = Number.POSITIVE_INFINITY): Promise<void> {
    return new Promise<void>((resolve, reject) => this.pending.set(requestId, { resolve, reject, index: null, deadline }));
  }

  /** Fail the reads still without a read index whose deadline is at or before `now` (in insertion order: oldest first). */
  failOverdue(now: number, error: () => Error): void {
    let failure: Error | null = null;
    for (const [requestId, waiter] of this.pending) {
      if (waiter.index !== null || waiter.deadline > now) continue;
      this.pending.delete(requestId);
      // Built only when a read is overdue: every tick calls this, and an Error captures a stack.
      failure ??= error();
      waiter.reject(failure);
    }
  }

  /** The leader confirmed `requestId` may be served once `index` is applied. */
  readIndex(requestId: string, index: number): void {
    const waiter = this.pending.get(requestId);
    if (waiter !== undefined) waiter.index = index;
  }

  /** Release every read whose index is applied. */
  applied(appliedIndex: number): void {
    for (const [requestId, waiter] of this.pending) {
      if (waiter.index === null || waiter.index > appliedIndex) continue;
      this.pending.delete(requestId);
      waiter.resolve();
    }
  }

  /** Fail one read (its ReadIndex was refused). */
  fail(requestId: string, error: Error): void {
    const waiter = this.pending.get(requestId);
    if (waiter === undefined) return;
    this.pending.delete(requestId);
    waiter.reject(error);
  }

  /** Fail the reads still waiting for a read index (the leader that would confirm them is gone). */
  failUnconfirmed(error: Error): void {
    for (const [requestId, waiter] of this.pending) {
      if (waiter.index !== null) continue;
      this.pending.delete(requestId);
      waiter.reject(error);
    }
  }

  failAll(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}
