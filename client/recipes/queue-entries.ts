/**
 * The lock queue's entries and its wait (ZooKeeper's lock recipe): listing the sequential
 * ephemeral nodes under a lock's path in queue order, and waiting — watching only the entries
 * that block us, never the whole queue — until none is left. QueueLock (queue.ts) builds the
 * recipes on these.
 *
 * Entry names are `KIND-ID-SEQUENCE` (`lock-3f9a…-0000000007`): ID is random per acquire, so an
 * entry whose create had an unknown outcome can be found and removed (Curator's protected mode);
 * SEQUENCE (the parent's children counter when it was made) orders the queue. Names starting
 * with `.` are the recipes' markers, never entries.
 *
 * Must never: report the turn come while a blocker that existed when it was listed still exists
 * (the watch starts at or below the listing's revision, so no deletion is missed); list a queue
 * only in part; report an entry swept when a listing or a delete failed; wait or loop without a
 * bound.
 */

import { WardenError, type WardenClient } from '../public.js';
import { keepTrying } from './waits.js';

/** Entries a queue may hold; a longer queue is refused (RESOURCE_EXHAUSTED), never listed in part. */
export const QUEUE_ENTRIES_MAX = 10_000;
/** Blockers watched one watch each; more (a wide semaphore) share one children watch of the queue. */
export const BLOCKER_WATCHES_MAX = 8;
/** Relistings after history was compacted under a wait, before the acquire gives up. */
const COMPACTED_RETRIES_MAX = 8;

export type EntryKind = 'lock' | 'read' | 'write' | 'permit';

/** One participant in the queue, as its name tells. */
export interface QueueEntry {
  readonly name: string;
  readonly path: string;
  readonly kind: string;
  /** Random per acquire: finds an entry whose create's answer was lost. */
  readonly id: string;
  /** The queue order (the parent's children counter when it was created). */
  readonly sequence: number;
}

const ENTRY_NAME = /^([a-z]+)-([0-9a-f]{16})-(\d{10})$/;

export function parseEntry(dir: string, name: string): QueueEntry | null {
  const match = ENTRY_NAME.exec(name);
  if (match === null) return null;
  return { name, path: `${dir}/${name}`, kind: match[1]!, id: match[2]!, sequence: Number(match[3]) };
}

/** A fenced write was refused, or a hold is gone: the lock is not (or no longer) held by this participant. */
export class LockLostError extends WardenError {
  constructor(
    /** The queue entry the hold stood on (null when there was never one). */
    readonly entryPath: string | null,
    /** The fencing token of the hold that was lost (null when there was none). */
    readonly token: number | null,
    message: string,
  ) {
    super('NO_NODE', message);
    this.name = 'LockLostError';
  }
}

/** 16 random hex digits, from the platform's crypto (Node and browsers alike). */
export function randomEntryId(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/** The queue under `dir` in order (markers and foreign names skipped). */
export async function listQueue(client: WardenClient, dir: string, signal?: AbortSignal): Promise<QueueEntry[]> {
  const names = await client.children(dir, { limit: QUEUE_ENTRIES_MAX + 1, ...(signal === undefined ? {} : { signal }) });
  if (names.length > QUEUE_ENTRIES_MAX) throw new WardenError('RESOURCE_EXHAUSTED', `the queue of ${dir} holds more than ${QUEUE_ENTRIES_MAX} entries`);
  const entries: QueueEntry[] = [];
  for (const name of names) {
    const entry = parseEntry(dir, name);
    if (entry !== null) entries.push(entry);
  }
  return entries.sort((a, b) => a.sequence - b.sequence);
}

/**
 * Delete every entry of acquire `id` under `dir` (one whose create may have been applied unseen,
 * or whose delete failed). True when none is left as far as one listing shows; false when the
 * cluster could not be asked or a delete failed.
 */
export async function sweepEntries(client: WardenClient, dir: string, id: string): Promise<boolean> {
  try {
    for (const entry of await listQueue(client, dir)) {
      if (entry.id !== id) continue;
      await client.delete(entry.path).catch((error: unknown) => {
        if (!(error instanceof WardenError && error.code === 'NO_NODE')) throw error;
      });
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Keep sweeping acquire `id`'s entries, with backoff, until none is left or the session ends (its
 * lease takes them): an entry left on a live session would block everyone behind it. False when
 * it gave up (the entry may still stand, until the session ends).
 */
export function sweepUntilGone(client: WardenClient, dir: string, id: string, session: AbortSignal): Promise<boolean> {
  return keepTrying(() => sweepEntries(client, dir, id), session);
}

/**
 * List, find the blockers, watch them for deletion, again — until none is left. Each round ends
 * with the deletion of an entry that was ahead when we were enqueued (new entries only join
 * behind), so the rounds are bounded by the queue's length.
 */
export async function awaitTurn(
  client: WardenClient,
  dir: string,
  entry: QueueEntry,
  blockers: (queue: readonly QueueEntry[], index: number) => readonly QueueEntry[],
  signal: AbortSignal,
): Promise<void> {
  let compactedRounds = 0;
  for (let round = 0; round <= QUEUE_ENTRIES_MAX + COMPACTED_RETRIES_MAX; round++) {
    signal.throwIfAborted();
    // Read before the listing: the listing's state is at least this new, so a blocker in it is
    // deleted after this revision, and a watch from the next one cannot miss that.
    const listedAfter = client.revision;
    const queue = await listQueue(client, dir, signal);
    const index = queue.findIndex((e) => e.name === entry.name);
    if (index < 0) throw new LockLostError(entry.path, null, `the queue entry ${entry.path} is gone (its session ended, or it was deleted)`);
    const blocking = blockers(queue, index);
    if (blocking.length === 0) return;
    if (blocking.some((b) => b.sequence >= entry.sequence)) throw new WardenError('INVALID_ARGUMENT', `a recipe named an entry behind ${entry.name} as its blocker`);
    const outcome = await awaitDeletion(client, dir, blocking, listedAfter + 1, signal);
    if (outcome === 'compacted' && ++compactedRounds > COMPACTED_RETRIES_MAX) throw new WardenError('COMPACTED', `history under ${dir} kept being compacted while waiting`);
  }
  throw new WardenError('UNAVAILABLE', `waited more rounds for ${dir} than its queue can hold entries`);
}

/**
 * Resolve once any of `blocking` is deleted at or after `fromRevision` ('deleted'), or when the
 * history from there is gone ('compacted': list again). One watch per blocker, or one children
 * watch of the queue for more than BLOCKER_WATCHES_MAX of them.
 */
export async function awaitDeletion(client: WardenClient, dir: string, blocking: readonly QueueEntry[], fromRevision: number, signal: AbortSignal): Promise<'deleted' | 'compacted'> {
  const wanted = new Set(blocking.map((b) => b.path));
  const stop = new AbortController();
  const watches =
    blocking.length > BLOCKER_WATCHES_MAX
      ? [client.watch(dir, { scope: 'children', fromRevision, noPut: true, signal: stop.signal })]
      : blocking.map((b) => client.watch(b.path, { fromRevision, noPut: true, signal: stop.signal }));
  let onAbort = (): void => undefined;
  try {
    return await new Promise<'deleted' | 'compacted'>((resolve, reject) => {
      onAbort = (): void => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      for (const watch of watches) {
        void (async () => {
          for await (const event of watch) {
            if (event.type === 'delete' && wanted.has(event.path)) return resolve('deleted');
          }
          // Ended without our stop: the client was closed under the wait.
          if (!stop.signal.aborted) reject(new WardenError('UNAVAILABLE', `the watch on ${watch.path} ended while waiting for ${dir} (is the client closed?)`));
        })().catch((error: unknown) => {
          if (error instanceof WardenError && error.code === 'COMPACTED') resolve('compacted');
          else if (!stop.signal.aborted) reject(error);
        });
      }
    });
  } finally {
    signal.removeEventListener('abort', onAbort);
    stop.abort(); // cancels every watch of this wait
  }
}
