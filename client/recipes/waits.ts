/**
 * What the recipes wait with: deadlines (a caller's `signal` and `timeoutMs`, a session's end,
 * joined into one AbortSignal whose reason is a WardenError), "until this node is gone" (State
 * Watch on the node, read at the revision the watch starts after, so no delete falls between
 * the read and the watch), and a subtree's direct children as a series of snapshots — a read at
 * one revision, then the children watch from that revision, one snapshot per revision (a
 * revision's events are applied together, so no state that never existed is shown), never older
 * than what the client has already seen, read afresh by itself when history is compacted.
 *
 * Must never: wait without a way out (every wait ends with its signal); show a snapshot that
 * mixes two revisions; lose a change between the read and the watch; hold more than the stated
 * number of children (RESOURCE_EXHAUSTED past it). `pause` is the recipes' only timer-based
 * wait, for backoff and lock-delay.
 */

import { WardenError, type WardenClient, type WardenNode } from '../public.js';

/** How every recipe wait is bounded: the caller's signal and/or a deadline. */
export interface WaitOptions {
  readonly signal?: AbortSignal;
  /** Give up after this many ms (the recipe undoes what it started: nothing is left behind). */
  readonly timeoutMs?: number;
}

/** Snapshots rebuilt after a compaction, at most, before a children view gives up. */
const RESYNCS_MAX = 16;

/** Children a view holds, by default, at most. */
export const CHILDREN_MAX_DEFAULT = 10_000;

/** Fail loudly where a recipe's invariant would break (a bug, not a cluster condition). */
export function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`recipe invariant broken: ${message}`);
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

export function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function parentPathOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}

/** A signal that aborts with the first of: the caller's signal, the deadline, any of `also`. Call `done()` when finished. */
export function deadline(options: WaitOptions, what: string, also: readonly AbortSignal[] = []): { readonly signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const cleanups: (() => void)[] = [];
  const stop = (reason: unknown): void => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const follow = (signal: AbortSignal, reasonOf: (signal: AbortSignal) => unknown): void => {
    if (signal.aborted) return stop(reasonOf(signal));
    const onAbort = (): void => stop(reasonOf(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => signal.removeEventListener('abort', onAbort));
  };
  if (options.signal !== undefined) follow(options.signal, () => new WardenError('UNAVAILABLE', `${what}: aborted by the caller`));
  for (const signal of also) follow(signal, (s) => (s.reason instanceof WardenError ? s.reason : new WardenError('UNAVAILABLE', `${what}: ${String(s.reason)}`)));
  if (options.timeoutMs !== undefined && !controller.signal.aborted) {
    const timeoutMs = options.timeoutMs;
    const timer = globalThis.setTimeout(() => stop(new WardenError('UNAVAILABLE', `${what}: not done within ${timeoutMs} ms`)), Math.max(0, timeoutMs));
    cleanups.push(() => globalThis.clearTimeout(timer));
  }
  return {
    signal: controller.signal,
    done: () => {
      for (const cleanup of cleanups.splice(0)) cleanup();
    },
  };
}

/**
 * Resolve after `ms`; reject with the signal's reason if it aborts first. The recipes' one timed
 * pause (lock-delay, backoff between retries): never a way to wait for a state.
 */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      globalThis.clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = globalThis.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Capped exponential backoff before retry `attempt` (0 = the first): 100 ms, doubling, at most `capMs`. */
export function backoffMs(attempt: number, capMs = 5_000): number {
  return Math.min(capMs, 100 * 2 ** Math.min(Math.max(attempt, 0), 16));
}

/** Tries `keepTrying` makes at most (backoff capped at 5 s: about five minutes in all). */
export const KEEP_TRYING_MAX = 64;

/**
 * Retry a cleanup (`attempt` answers true once done) after backoff, until it is done or `until`
 * aborts (a session's end, which does the cleanup by itself), at most `tries` times. True when
 * done (or made moot); false when it gave up.
 */
export async function keepTrying(attempt: () => Promise<boolean>, until: AbortSignal, tries = KEEP_TRYING_MAX): Promise<boolean> {
  for (let round = 0; round < tries; round++) {
    try {
      await pause(backoffMs(round), until);
    } catch {
      return true;
    }
    if (await attempt().catch(() => false)) return true;
  }
  return until.aborted;
}

/** The error to throw once `signal` is aborted: its reason if a WardenError, else `error`. */
export function reasonOr(signal: AbortSignal, error: unknown): unknown {
  return signal.aborted && signal.reason instanceof WardenError ? signal.reason : error;
}

/** `promise`, or the signal's reason if it aborts first. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

const isCompacted = (error: unknown): boolean => error instanceof WardenError && error.code === 'COMPACTED';

/** Resolves once `path` does not exist; rejects with the signal's reason when it aborts first. */
export async function untilDeleted(client: WardenClient, path: string, signal: AbortSignal): Promise<void> {
  for (let resync = 0; resync <= RESYNCS_MAX; resync++) {
    const watch = client.watch(path, { scope: 'node', noPut: true, signal });
    try {
      const startedAfter = await abortable(watch.started, signal);
      // Absent at the watch's start, and absent now: gone. (Absent at the start but here now: a
      // member a little behind started the watch before the node was made; its delete is still ahead.)
      if ((await client.get(path, { revision: startedAfter, signal })) === null && (await client.get(path, { signal })) === null) return;
      for await (const event of watch) if (event.type === 'delete') return;
      throw new WardenError('UNAVAILABLE', `the watch on ${path} ended`);
    } catch (error) {
      if (signal.aborted) throw reasonOr(signal, error);
      if (!isCompacted(error)) throw error;
    } finally {
      await watch.cancel();
    }
  }
  throw new WardenError('UNAVAILABLE', `the watch on ${path} was compacted away ${RESYNCS_MAX} times in a row`);
}

/** The direct children of a path at one revision, by name. */
export interface ChildrenSnapshot {
  readonly revision: number;
  /** Valid until the iteration goes on (copy what you keep). */
  readonly children: ReadonlyMap<string, WardenNode>;
}

/**
 * The direct children of `path` (with values and stats), first as read, then after each revision
 * that changed them: snapshot + watch from its revision, resumed across members by the client's
 * watch and read afresh after a compaction. No snapshot is older than the client's revision when
 * it was read, and revisions only go forward. Ends quietly when `signal` aborts.
 */
export async function* childrenSnapshots(client: WardenClient, path: string, signal: AbortSignal, childrenMax = CHILDREN_MAX_DEFAULT): AsyncGenerator<ChildrenSnapshot, void, undefined> {
  const children = new Map<string, WardenNode>();
  // A read afresh may land on a member a little behind: states at or before one already shown are applied, not shown again.
  let shown = -1;
  const put = (node: WardenNode): void => {
    if (parentPathOf(node.path) !== path) return;
    children.set(nameOf(node.path), node);
    if (children.size > childrenMax) throw new WardenError('RESOURCE_EXHAUSTED', `${path} has more than ${childrenMax} children (the recipe's bound)`);
  };
  for (let resync = 0; resync <= RESYNCS_MAX && !signal.aborted; resync++) {
    const watch = client.watch(path, { scope: 'children', signal });
    try {
      let startedAfter: number;
      try {
        startedAfter = await abortable(watch.started, signal);
      } catch (error) {
        if (signal.aborted) return;
        throw error;
      }
      // Never older than what this client has already seen (its own writes included): a member a
      // little behind may start the watch earlier; the read is then at the later revision, and the
      // events up to it, applied on top, end where the read began (each sets a node whole).
      const readAt = Math.max(startedAfter, shown, client.revision);
      children.clear();
      for await (const node of client.range(path, { revision: readAt, signal })) put(node);
      if (readAt > shown) {
        shown = readAt;
        yield { revision: readAt, children };
      }
      for (;;) {
        const batch = await watch.nextRevision();
        if (batch === null) return; // cancelled: the signal aborted
        for (const event of batch) {
          if (event.type === 'delete') children.delete(nameOf(event.path));
          else if (event.node !== null) put(event.node);
        }
        resync = 0; // a compaction after progress is a fresh start, not a loop
        const revision = batch[0]!.revision;
        if (revision <= shown) continue;
        shown = revision;
        yield { revision, children };
      }
    } catch (error) {
      if (signal.aborted) return;
      if (!isCompacted(error)) throw error;
    } finally {
      await watch.cancel();
    }
  }
  if (!signal.aborted) throw new WardenError('UNAVAILABLE', `the children of ${path} could not be followed: compacted ${RESYNCS_MAX} times in a row`);
}
