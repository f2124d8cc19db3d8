/**
 * What a member asked the leader over a peer channel and still waits on — forwarded writes and
 * lease requests (Request Pipeline: many in flight, answered by id) — and how each ends: with the
 * leader's answer, its refusal, the channel closing, the member stopping, or the time running out.
 *
 * Must never: answer a write that may have reached the leader as if it certainly had not (a write
 * that left fails TIMEOUT or OUTCOME_UNKNOWN; only one that never left is UNAVAILABLE); keep a
 * request past FORWARD_TIMEOUT_MS.
 */

import type { WebSocket } from 'ws';
import type { NodeId } from '../raft/types.js';
import { RequestError } from '../node/waiting-list.js';

/** A forwarded write with no answer by then fails (the client may retry with its stamp). */
export const FORWARD_TIMEOUT_MS = 10_000;

interface Asked {
  /** The channel it went out on: if that closes before the answer, the request is failed then. */
  readonly socket: WebSocket | undefined;
  readonly isWrite: boolean;
  readonly resolve: (answer: never) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class LeaderAsks {
  private readonly asked = new Map<number, Asked>();
  private seq = 0;

  /**
   * Ask the leader `to` over `socket`: `send(id)` writes the frame and answers whether it left.
   * Once a write has left, no answer is no news: the leader may have proposed it, so it fails
   * TIMEOUT or OUTCOME_UNKNOWN, never as if it were certainly not applied. (Lease requests are
   * idempotent.)
   */
  ask<T>(to: NodeId, socket: WebSocket | undefined, send: (id: number) => boolean, what: string, isWrite: boolean): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.asked.delete(id);
        reject(new RequestError(isWrite ? 'TIMEOUT' : 'UNAVAILABLE', `the leader ${to} did not answer ${what} within ${FORWARD_TIMEOUT_MS} ms`, to));
      }, FORWARD_TIMEOUT_MS);
      this.asked.set(id, { socket, isWrite, resolve: resolve as (answer: never) => void, reject, timer });
      if (!send(id)) {
        clearTimeout(timer);
        this.asked.delete(id);
        reject(new RequestError('UNAVAILABLE', `the leader ${to} is unreachable from this member`, to));
      }
    });
  }

  /** The leader answered request `id` (an unknown id — timed out, or not ours — is ignored). */
  answered(id: number, answer: unknown): void {
    this.settle(id)?.resolve(answer as never);
  }

  /** The leader refused request `id`, saying what the client may do. */
  refused(id: number, error: RequestError): void {
    this.settle(id)?.reject(error);
  }

  /** The channel `socket` to `peer` closed: what went out on it gets no answer, so it fails now, not at the timeout. */
  channelClosed(socket: WebSocket, peer: NodeId): void {
    for (const [id, pending] of this.asked) {
      if (pending.socket !== socket) continue;
      this.settle(id);
      pending.reject(new RequestError(pending.isWrite ? 'OUTCOME_UNKNOWN' : 'UNAVAILABLE', `the connection to the leader ${peer} closed before it answered`, peer));
    }
  }

  /** The member stops: everything still waiting fails. */
  failAll(): void {
    for (const [id, pending] of this.asked) {
      this.settle(id);
      pending.reject(new RequestError(pending.isWrite ? 'OUTCOME_UNKNOWN' : 'UNAVAILABLE', 'the member stopped before the leader answered', null));
    }
  }

  private settle(id: number): Asked | undefined {
    const pending = this.asked.get(id);
    if (pending === undefined) return undefined;
    this.asked.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }
}
