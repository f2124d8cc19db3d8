/**
 * A readers–writer lock with fencing tokens: Curator's InterProcessReadWriteLock on Warden. One
 * fair queue under the lock's path holds both kinds (`read-…`, `write-…` sequential ephemeral
 * nodes): a reader is granted once no writer is ahead of it — so readers share, and a reader
 * that came after a waiting writer waits behind it (writers do not starve) — and a writer once
 * nothing at all is ahead of it. A reader watches only the nearest writer ahead; a writer only its
 * predecessor. Each side is a participant of its own (`readLock`, `writeLock`), with the same
 * `acquire` / `release` / `held` / `lost` / fenced writes as `Lock`; its token is the create
 * revision of its node.
 *
 * Must never: grant a reader while a writer is ahead of it, or a writer while anything is.
 */

import type { WardenClient } from '../public.js';
import { QueueLock, type EntryKind, type QueueEntry, type QueueLockOptions } from './queue.js';

export type ReadWriteLockOptions = QueueLockOptions;

/** Anything not a reader (a writer, or a kind this recipe does not know) excludes readers. */
const excludesReaders = (entry: QueueEntry): boolean => entry.kind !== 'read';

/** The shared side: held together with other readers, never with a writer. */
export class ReadLock extends QueueLock {
  protected readonly kind: EntryKind = 'read';

  protected blockers(queue: readonly QueueEntry[], index: number): readonly QueueEntry[] {
    for (let at = index - 1; at >= 0; at--) if (excludesReaders(queue[at]!)) return [queue[at]!];
    return [];
  }
}

/** The exclusive side: held alone. */
export class WriteLock extends QueueLock {
  protected readonly kind: EntryKind = 'write';

  protected blockers(queue: readonly QueueEntry[], index: number): readonly QueueEntry[] {
    return index === 0 ? [] : [queue[index - 1]!];
  }
}

/** A read side and a write side on one queue; each is a participant that holds once at a time. */
export class ReadWriteLock {
  readonly readLock: ReadLock;
  readonly writeLock: WriteLock;

  constructor(client: WardenClient, path: string, options: ReadWriteLockOptions = {}) {
    this.readLock = new ReadLock(client, path, options);
    this.writeLock = new WriteLock(client, path, options);
  }

  /** Release both sides and close their own sessions (a session passed in stays open). */
  async close(): Promise<void> {
    await Promise.all([this.readLock.close(), this.writeLock.close()]);
  }
}
