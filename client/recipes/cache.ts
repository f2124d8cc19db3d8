/**
 * A local, read-only mirror of one subtree (Curator's CuratorCache; a Kubernetes informer's
 * list-then-watch; the book's State Watch used as a Consistent Core's replica on the client).
 * `start()` reads the subtree whole at one revision R (the root with `get`, everything below
 * with a paged `range`, both pinned to R), then watches the subtree from R + 1: every revision
 * after R is applied whole, in order, so the mirror always equals the cluster's subtree at
 * `revision`. The client's watch resumes across members by itself (no gap, no duplicate);
 * when history was compacted past the cache's revision the watch ends COMPACTED and the cache
 * rebuilds itself from a fresh read at a new revision, tells its listeners what changed in
 * between (as `change` events) and then `resync`, and goes on watching.
 *
 * The nodes live in a SubtreeMirror (cache-tree.ts), which also keeps parents' children counts.
 *
 * Bounded: at most `maxNodes` nodes (the cache stops with TOO_LARGE past it); during a rebuild
 * the old and the new snapshot are both held (twice maxNodes at most); consecutive rebuilds that
 * make no progress are bounded by `rebuildAttempts`.
 *
 * Must never: show a revision partly applied to a reader of `get`/`children`/`revision`; answer
 * from a state it knows to be incomplete (once stopped, reads throw the reason); hold more than
 * `maxNodes` nodes in its live view.
 */

import { WardenError, type ValueAs, type WardenClient, type WardenNode, type Watch, type WatchEvent } from '../public.js';
import { Emitter } from '../public.js';
import { SubtreeMirror, type CacheChange } from './cache-tree.js';

export { comparePathText, type CacheChange } from './cache-tree.js';

type ValueOf<A extends ValueAs> = A extends 'bytes' ? Uint8Array : string;

export interface CacheOptions<A extends ValueAs = 'string'> {
  /** Values as `string` (UTF-8, the default) or `bytes` (Uint8Array). */
  readonly as?: A;
  /** The most nodes the cache holds (the subtree's root included); past it the cache stops with TOO_LARGE. Default 100,000. */
  readonly maxNodes?: number;
  /** Nodes per range page while (re)building (default 1,000). */
  readonly pageSize?: number;
  /** Each read of a (re)build, retries included (the client's timeoutMs by default). */
  readonly timeoutMs?: number;
  /** Rebuilds in a row, each ended COMPACTED again before its watch started, before the cache gives up (default 5). */
  readonly rebuildAttempts?: number;
  /** Aborting it closes the cache. */
  readonly signal?: AbortSignal;
}

export interface CacheResync {
  /** The revision the cache was rebuilt at. */
  readonly revision: number;
  /** Where the cluster's history starts now (the reason for the rebuild), when it said. */
  readonly compactRevision: number | null;
  /** How many `change` events the rebuild emitted just before this. */
  readonly changes: number;
}

export interface CacheEvents<V> extends Record<string, unknown> {
  /**
   * A node changed; emitted once its whole revision is applied (the cache reads as that revision).
   * A deleted subtree is told deepest first, a created one parents first: a listener applying
   * the changes in order never holds a node without its parent.
   */
  change: CacheChange<V>;
  /** History was compacted past the cache's revision: it was read afresh (the `change` events before this say what differed). */
  resync: CacheResync;
  /** The cache stopped following the cluster (too many nodes, the client closed, a refused watch); its reads throw this from now on. */
  error: WardenError;
}

type CacheState = 'new' | 'starting' | 'live' | 'failed' | 'closed';

interface Snapshot<V> {
  readonly revision: number;
  readonly nodes: Map<string, WardenNode<V>>;
}

const DEFAULT_MAX_NODES = 100_000;
const DEFAULT_REBUILD_ATTEMPTS = 5;
/** The most waiters `whenRevision` keeps at once. */
const REVISION_WAITERS_MAX = 10_000;

export class Cache<A extends ValueAs = 'string'> extends Emitter<CacheEvents<ValueOf<A>>> {
  private readonly mirror: SubtreeMirror<ValueOf<A>>;
  private revisionNow = -1;
  private state: CacheState = 'new';
  private failure: WardenError | null = null;
  private watch: Watch<ValueOf<A>> | null = null;
  private starting: Promise<void> | null = null;
  private readonly controller = new AbortController();
  private readonly revisionWaiters = new Set<{ revision: number; settle: (error: WardenError | null) => void }>();

  constructor(
    private readonly client: WardenClient,
    /** The root of the mirrored subtree (`/` for all of it). */
    readonly path: string,
    private readonly options: CacheOptions<A> = {},
  ) {
    super();
    if (typeof path !== 'string' || !path.startsWith('/') || (path !== '/' && path.endsWith('/'))) throw new WardenError('INVALID_ARGUMENT', `Cache: ${String(path)} is not a path`);
    const maxNodes = options.maxNodes ?? DEFAULT_MAX_NODES;
    if (!Number.isInteger(maxNodes) || maxNodes < 1) throw new WardenError('INVALID_ARGUMENT', `Cache: maxNodes must be a positive integer, got ${String(options.maxNodes)}`);
    this.mirror = new SubtreeMirror(path, maxNodes);
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /** Read the subtree and start following it. Resolves once the cache holds the subtree at `revision`; a second call answers the first's promise. */
  start(): Promise<void> {
    if (this.starting !== null) return this.starting;
    if (this.state === 'closed') return Promise.reject(new WardenError('UNAVAILABLE', 'the cache is closed'));
    this.state = 'starting';
    this.starting = (async () => {
      let snapshot: Snapshot<ValueOf<A>>;
      try {
        snapshot = await this.snapshot();
        if (this.isStopped()) throw this.failure ?? new WardenError('UNAVAILABLE', 'the cache was closed while it started');
        this.mirror.install(snapshot.nodes, snapshot.revision);
      } catch (error) {
        throw this.fail(asWardenError(error));
      }
      this.revisionNow = snapshot.revision;
      this.state = 'live';
      void this.follow();
    })();
    this.starting.catch(() => undefined);
    return this.starting;
  }

  /** Every revision at or below this is reflected whole (−1 before `start()` resolved). */
  get revision(): number {
    return this.revisionNow;
  }

  /** Nodes held now. */
  get size(): number {
    return this.mirror.size;
  }

  /** Whether the cache follows the cluster (started, not closed, not stopped by an error). */
  get live(): boolean {
    return this.state === 'live';
  }

  /** The node at `path` as of `revision`, or null if it does not exist. `path` must be in the subtree. */
  get(path: string): WardenNode<ValueOf<A>> | null {
    this.checkReadable(path);
    return this.mirror.get(path);
  }

  /** The child names of `path` in path order, or null if `path` does not exist. `path` must be in the subtree. */
  children(path: string): string[] | null {
    this.checkReadable(path);
    return this.mirror.children(path);
  }

  /** Every cached node, in path order (the subtree's root first, when it exists). */
  nodes(): WardenNode<ValueOf<A>>[] {
    this.checkReadable(this.path);
    return this.mirror.nodes();
  }

  /**
   * Resolves once the cache reflects `revision` (e.g. a write's revision). The cache's revision
   * moves only with changes in its subtree: pass revisions of writes there. Rejects UNAVAILABLE
   * after `timeoutMs` (default 10,000) or on `signal`, or with the cache's failure.
   */
  whenRevision(revision: number, options: { readonly timeoutMs?: number; readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.state === 'closed') return Promise.reject(new WardenError('UNAVAILABLE', 'the cache is closed'));
    if (this.revisionNow >= revision) return Promise.resolve();
    if (this.revisionWaiters.size >= REVISION_WAITERS_MAX) return Promise.reject(new WardenError('RESOURCE_EXHAUSTED', `more than ${REVISION_WAITERS_MAX} waiters on one cache`));
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const waiter = {
        revision,
        settle: (error: WardenError | null): void => {
          globalThis.clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          this.revisionWaiters.delete(waiter);
          if (error === null) resolve();
          else reject(error);
        },
      };
      const onAbort = (): void => waiter.settle(new WardenError('UNAVAILABLE', 'aborted by the caller'));
      const timer = globalThis.setTimeout(() => waiter.settle(new WardenError('UNAVAILABLE', `the cache did not reach revision ${revision} within ${timeoutMs} ms (it is at ${this.revisionNow})`)), timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.revisionWaiters.add(waiter);
    });
  }

  /** Stop following the cluster and forget the nodes. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.controller.abort();
    const watch = this.watch;
    this.watch = null;
    this.settleWaiters(new WardenError('UNAVAILABLE', 'the cache is closed'));
    this.mirror.clear();
    await watch?.cancel();
  }

  // ─── reading the subtree whole ───────────────────────────────────────────────────────────

  /** The subtree at one revision: no older than anything this client has seen (a linearizable read moves that to now). */
  private async snapshot(): Promise<Snapshot<ValueOf<A>>> {
    const call = { signal: this.controller.signal, ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }) };
    const as = (this.options.as ?? 'string') as A;
    await this.client.get(this.path, call);
    const revision = this.client.revision;
    const nodes = new Map<string, WardenNode<ValueOf<A>>>();
    const root = await this.client.get(this.path, { ...call, as, revision });
    if (root !== null) nodes.set(root.path, root as WardenNode<ValueOf<A>>);
    // range lists what is strictly below the path, pinned to the same revision as the root's get.
    for await (const node of this.client.range(this.path, { ...call, as, revision, ...(this.options.pageSize === undefined ? {} : { pageSize: this.options.pageSize }) })) {
      if (nodes.size >= this.mirror.maxNodes) throw this.mirror.tooMany(nodes.size + 1);
      nodes.set(node.path, node as WardenNode<ValueOf<A>>);
      if (this.isStopped()) break;
    }
    return { revision, nodes };
  }

  /** After COMPACTED: read afresh, tell what differs from what the cache held, and go on from there. */
  private async rebuild(compactRevision: number | null): Promise<void> {
    const snapshot = await this.snapshot();
    if (this.isStopped()) return;
    const changes = this.mirror.diff(snapshot.nodes, snapshot.revision);
    this.mirror.install(snapshot.nodes, snapshot.revision);
    this.revisionNow = snapshot.revision;
    for (const change of changes) this.emit('change', change);
    this.emit('resync', { revision: snapshot.revision, compactRevision, changes: changes.length });
    this.settleWaiters(null);
  }

  // ─── following the subtree ───────────────────────────────────────────────────────────────

  private async follow(): Promise<void> {
    let fruitlessRebuilds = 0;
    const attempts = this.options.rebuildAttempts ?? DEFAULT_REBUILD_ATTEMPTS;
    while (this.state === 'live') {
      const watch = this.client.watch(this.path, { scope: 'subtree', fromRevision: this.revisionNow + 1, as: this.options.as ?? 'string', signal: this.controller.signal }) as Watch<ValueOf<A>>;
      this.watch = watch;
      let ended: unknown = null;
      try {
        await this.consume(watch);
      } catch (error) {
        ended = error;
      }
      const progressed = await watch.started.then(
        () => true,
        () => false,
      );
      if (this.state !== 'live') return;
      if (!(ended instanceof WardenError && ended.code === 'COMPACTED')) {
        this.fail(ended instanceof WardenError ? ended : new WardenError('UNAVAILABLE', `the cache's watch of ${this.path} ended (${ended === null ? 'the client closed it' : String(ended)})`));
        return;
      }
      fruitlessRebuilds = progressed ? 1 : fruitlessRebuilds + 1;
      if (fruitlessRebuilds > attempts) {
        this.fail(new WardenError('COMPACTED', `history was compacted past the cache's revision ${attempts} times in a row before it could watch again; the cluster compacts faster than the cache can read ${this.path}`, ended.details));
        return;
      }
      try {
        await this.rebuild(ended.details.compactRevision ?? null);
      } catch (error) {
        const failure = asWardenError(error);
        if (failure.code === 'COMPACTED' && fruitlessRebuilds < attempts) continue; // compacted again mid-read: read again
        this.fail(failure);
        return;
      }
    }
  }

  /** Apply the watch's events a whole revision at a time until it ends (throws its error). */
  private async consume(watch: Watch<ValueOf<A>>): Promise<void> {
    for (;;) {
      const batch = await watch.nextRevision();
      if (batch === null || this.state !== 'live') return;
      this.applyRevision(batch);
    }
  }

  private applyRevision(events: readonly WatchEvent<ValueOf<A>>[]): void {
    if (this.state !== 'live') return;
    let changes: CacheChange<ValueOf<A>>[];
    try {
      changes = this.mirror.apply(events);
    } catch (error) {
      this.fail(asWardenError(error));
      return;
    }
    this.revisionNow = Math.max(this.revisionNow, events[0]!.revision);
    for (const change of changes) this.emit('change', change);
    this.settleWaiters(null);
  }

  // ─── stopping ────────────────────────────────────────────────────────────────────────────

  /** Stop following: reads throw `error` from now on. Answers it. */
  private fail(error: WardenError): WardenError {
    if (this.state === 'closed' || this.state === 'failed') return this.failure ?? error;
    this.state = 'failed';
    this.failure = error;
    this.controller.abort();
    const watch = this.watch;
    this.watch = null;
    void watch?.cancel();
    this.mirror.clear();
    this.settleWaiters(error);
    this.emit('error', error);
    return error;
  }

  private isStopped(): boolean {
    return this.state === 'closed' || this.state === 'failed';
  }

  private settleWaiters(error: WardenError | null): void {
    for (const waiter of [...this.revisionWaiters]) if (error !== null || this.revisionNow >= waiter.revision) waiter.settle(error);
  }

  private checkReadable(path: string): void {
    if (this.failure !== null) throw this.failure;
    if (this.state === 'closed') throw new WardenError('UNAVAILABLE', 'the cache is closed');
    if (this.revisionNow < 0) throw new WardenError('UNAVAILABLE', 'the cache has not started yet (await start())');
    if (!this.mirror.covers(path)) throw new WardenError('INVALID_ARGUMENT', `${path} is outside the cached subtree ${this.path}`);
  }
}

function asWardenError(error: unknown): WardenError {
  return error instanceof WardenError ? error : new WardenError('UNAVAILABLE', error instanceof Error ? error.message : String(error));
}
