/**
 * A counting semaphore with fencing tokens: Curator's InterProcessSemaphoreV2 shape on the lock
 * queue. Up to `permits` participants hold at once: the first `permits` entries of the fair
 * queue (sequential ephemeral `permit-…` nodes under the semaphore's path). A waiter at place i
 * (i ≥ permits) needs i − permits + 1 of the i entries ahead of it gone, and at most
 * i − permits of them lie outside the `permits` entries just ahead of it — so watching only those
 * few is enough (no wake-up is missed) and a release wakes at most `permits` waiters, not the
 * herd. One instance is one participant (it holds at most one permit at a time); every
 * participant of a semaphore must be built with the same `permits`.
 *
 * Must never: grant while `permits` or more entries are ahead of its own.
 */

import { WardenError, type WardenClient } from '../public.js';
import { QueueLock, type EntryKind, type QueueEntry, type QueueLockOptions } from './queue.js';

export type SemaphoreOptions = QueueLockOptions;

/** The most permits a semaphore may have (its queue holds at most QUEUE_ENTRIES_MAX anyway). */
export const SEMAPHORE_PERMITS_MAX = 10_000;

export class Semaphore extends QueueLock {
  protected readonly kind: EntryKind = 'permit';

  constructor(
    client: WardenClient,
    path: string,
    /** How many participants may hold at once. */
    readonly permits: number,
    options: SemaphoreOptions = {},
  ) {
    super(client, path, options);
    if (!Number.isInteger(permits) || permits < 1 || permits > SEMAPHORE_PERMITS_MAX) throw new WardenError('INVALID_ARGUMENT', `permits must be an integer within 1..${SEMAPHORE_PERMITS_MAX}, got ${permits}`);
  }

  protected blockers(queue: readonly QueueEntry[], index: number): readonly QueueEntry[] {
    return index < this.permits ? [] : queue.slice(index - this.permits, index);
  }
}
