/**
 * A distributed mutex with fencing tokens: Curator's InterProcessMutex on Warden (ZooKeeper's
 * lock recipe), with Chubby's lock-delay. Participants queue as sequential ephemeral nodes
 * under the lock's path; the first holds, each other watches only its predecessor (no herd).
 * `acquire()` resolves with the fencing token (the create revision of the holder's node); pass it
 * to the resources you protect, or write through `guard` / `fencedTxn` / `fencedPut`, which a
 * holder that lost its lease cannot get past.
 *
 * Lock-delay (Chubby §2.4): with `lockDelayMs`, the lock is not granted for that long after a
 * holder was removed by anything but a clean release (its session expired or was revoked),
 * counted from when the next holder learns of it — time for a paused old holder's stray
 * unfenced writes to land or fail. A clean release deletes the node in a txn that also puts the
 * marker `.released` (markers start with `.`: never queue entries), so the queue's history
 * tells the two apart: removals since the marker's revision are children-counter steps that no
 * clean release accounts for.
 *
 * Must never: grant while its predecessor exists; grant within `lockDelayMs` of a holder's
 * unclean removal it can see; let a write through its fence after its node is gone.
 */

import { op, WardenError, type TxnOp, type WardenClient } from '../public.js';
import { QueueLock, type EntryKind, type QueueEntry, type QueueLockOptions } from './queue.js';
import { pause } from './waits.js';

export interface LockOptions extends QueueLockOptions {
  /**
   * Chubby's lock-delay: after a holder's session is lost (its node deleted by lease expiry or
   * revoke, not by `release()`), the next grant waits this long (default 0: no delay). The wait
   * is conservative: a waiter's own timeout or abort since the last release counts as unclean too.
   */
  readonly lockDelayMs?: number;
}

/** The marker a clean release puts in the same txn as its delete (its value: the entry released). */
export const RELEASED_MARKER = '.released';

/** The longest lock-delay taken (a larger one is refused: it would read as a hang). */
export const LOCK_DELAY_MAX_MS = 600_000;

export class Lock extends QueueLock {
  protected readonly kind: EntryKind = 'lock';
  readonly lockDelayMs: number;

  constructor(client: WardenClient, path: string, options: LockOptions = {}) {
    super(client, path, options);
    const delay = options.lockDelayMs ?? 0;
    if (!Number.isFinite(delay) || delay < 0 || delay > LOCK_DELAY_MAX_MS) throw new WardenError('INVALID_ARGUMENT', `lockDelayMs must be within 0..${LOCK_DELAY_MAX_MS}, got ${delay}`);
    this.lockDelayMs = delay;
  }

  /** A mutex waits for its one predecessor, whatever kind it is. */
  protected blockers(queue: readonly QueueEntry[], index: number): readonly QueueEntry[] {
    return index === 0 ? [] : [queue[index - 1]!];
  }

  protected override releaseOps(entry: QueueEntry): TxnOp[] {
    return [op.put(`${this.path}/${RELEASED_MARKER}`, entry.name)];
  }

  protected override async beforeGrant(_entry: QueueEntry, signal: AbortSignal): Promise<void> {
    if (this.lockDelayMs === 0) return;
    if (await this.uncleanRemovalSinceRelease(signal)) await pause(this.lockDelayMs, signal);
  }

  /**
   * Whether any queue entry went, since the last clean release, other than by a clean release.
   * The queue's parent counts every child created or deleted (childrenVersion) and the children
   * there are (numChildren); between two revisions, deletions = (Δcounter − Δchildren) / 2. The
   * marker is read first, the parent after, so a release racing us only adds to the count (a
   * longer wait, never a shorter one). Unknown (history compacted, or the sums do not add up):
   * taken as unclean.
   */
  private async uncleanRemovalSinceRelease(signal: AbortSignal): Promise<boolean> {
    const marker = await this.client.get(`${this.path}/${RELEASED_MARKER}`, { signal });
    const now = await this.client.get(this.path, { signal });
    if (now === null) return true;
    let before = { childrenVersion: 0, numChildren: 0 };
    if (marker !== null) {
      try {
        const then = await this.client.get(this.path, { signal, revision: marker.stat.modRevision });
        if (then === null) return true;
        before = then.stat;
      } catch (error) {
        if (error instanceof WardenError && error.code === 'COMPACTED') return true;
        throw error;
      }
    }
    const steps = now.stat.childrenVersion - before.childrenVersion;
    const grown = now.stat.numChildren - before.numChildren;
    const deletions = (steps - grown) / 2;
    return !Number.isInteger(deletions) || deletions !== 0;
  }
}
