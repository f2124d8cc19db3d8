/**
 * The fair queue every lock recipe stands on (ZooKeeper's lock recipe, as Curator's
 * InterProcessMutex, ReadWriteLock and Semaphore build it): a participant creates a sequential
 * ephemeral node under the lock's path, with its Session's lease, and is granted once the nodes
 * ahead of it allow (a recipe's `blockers`). It watches only those blockers — for a mutex, its
 * one predecessor — so a release wakes the next waiter, never the herd. The node's create
 * revision is the **fencing token**: `guard`, `fencedTxn` and `fencedPut` make a write that only
 * applies while the node still exists with that revision, so a holder that lost its lease (a
 * paused process, a partition) cannot write (Kleppmann's fencing; Chubby's sequencer).
 *
 * The queue itself (entry names, listing, the wait) is in queue-entries.ts. One instance is one
 * participant; `lost` and `signal` tell it when its hold ended without a release.
 *
 * An entry that a failed acquire could not remove at once must not stay in line on a session
 * the client keeps renewing (it would block everyone behind it): the recipe's own session is
 * closed (its keep-alive stops at once; the revoke, or else the TTL, takes the entry); on a
 * shared session the entry is swept in the background with backoff until it is gone or the
 * session ends, and `stranded` is emitted if that gives up.
 *
 * Must never: grant while a blocker that existed when it was listed still exists; leave its own
 * entry behind on a live session after a timeout, an abort or a failed acquire without retrying
 * its removal (or, past the bound, telling `stranded`); let a fenced write apply once its entry
 * is gone; wait or loop without a bound.
 */

import { cmp, op, TxnBuilder, WardenError, type CallOptions, type Session, type TxnOp, type TxnResult, type Value, type WardenClient, type WriteResult } from '../public.js';
import { awaitTurn, LockLostError, parseEntry, randomEntryId, sweepEntries, sweepUntilGone, type EntryKind, type QueueEntry } from './queue-entries.js';
import { deadline, reasonOr } from './waits.js';
import { fencedPutWith, fencedTxnBuilder, guardTxn } from './fence.js';

export { BLOCKER_WATCHES_MAX, LockLostError, QUEUE_ENTRIES_MAX, type EntryKind, type QueueEntry } from './queue-entries.js';
// The recipes' one pause is `pause` in waits.ts; this name stays while lock.ts imports it from here.

export interface QueueLockOptions {
  /**
   * The session whose lease the queue entries live on. Shared: the recipe never closes it, and a
   * lost session ends every hold on it. Without one the recipe makes its own on first acquire
   * (with `ttlMs`), makes a new one after a loss, and closes it in `close()`.
   */
  readonly session?: Session;
  /** The TTL of the recipe's own session (default 10,000 ms; the cluster's minimum applies). */
  readonly ttlMs?: number;
}

export interface AcquireOptions {
  readonly signal?: AbortSignal;
  /** Give up after this long (UNAVAILABLE, nothing held, the queue entry removed). */
  readonly timeoutMs?: number;
}

interface Hold {
  readonly entry: QueueEntry;
  readonly token: number;
  readonly session: Session;
  readonly ended: AbortController;
  offLost: () => void;
  lost: boolean;
  released: boolean;
}

const ABORTED = (() => {
  const controller = new AbortController();
  controller.abort(new LockLostError(null, null, 'not held'));
  return controller.signal;
})();

/**
 * The queue, its participant's hold and its fenced writes. A subclass says which entries block
 * it (`blockers`), and may delay a grant (`beforeGrant`) or add ops to a clean release.
 * One instance is one participant: it holds at most once at a time (not reentrant).
 */
export abstract class QueueLock {
  private hold: Hold | null = null;
  private acquiring: AbortController | null = null;
  private ownSession: Session | null = null;
  private readonly listeners = { lost: new Set<(error: WardenError) => void>(), stranded: new Set<(error: WardenError) => void>() };

  protected abstract readonly kind: EntryKind;

  /** Entries ahead that keep `queue[index]` waiting; watched for deletion. Empty: granted. */
  protected abstract blockers(queue: readonly QueueEntry[], index: number): readonly QueueEntry[];

  /** Runs once the entry is unblocked, before the grant (Lock's lock-delay). */
  protected beforeGrant(_entry: QueueEntry, _signal: AbortSignal): Promise<void> {
    return Promise.resolve();
  }

  /** More ops for a clean release's txn (Lock's release marker). */
  protected releaseOps(_entry: QueueEntry): TxnOp[] {
    return [];
  }

  constructor(
    protected readonly client: WardenClient,
    /** The lock's path: the queue's parent (`/locks/orders`). */
    readonly path: string,
    private readonly options: QueueLockOptions = {},
  ) {
    if (!path.startsWith('/') || path === '/' || path.endsWith('/')) throw new WardenError('INVALID_ARGUMENT', `a lock's path must be a node below the root, got ${JSON.stringify(path)}`);
  }

  /** Whether this participant holds now, as far as it knows (the fence, not this flag, protects writes). */
  get held(): boolean {
    return this.hold !== null && !this.hold.lost && !this.hold.released;
  }

  /** The fencing token of the current (or lost, not yet released) hold: its queue node's create revision. */
  get token(): number | null {
    return this.hold?.token ?? null;
  }

  /** The queue node of the current hold. */
  get entryPath(): string | null {
    return this.hold?.entry.path ?? null;
  }

  /** Aborted when the hold ends (lost or released); already aborted when nothing is held. */
  get signal(): AbortSignal {
    return this.hold?.ended.signal ?? ABORTED;
  }

  /**
   * `lost`: the hold ended without a release (its session died, or a fenced write found its node
   * gone). `stranded`: a failed acquire's entry, on a shared session, could not be removed even
   * by the background sweeps; it stays in line (blocking those behind it) until the session ends.
   */
  on(event: 'lost' | 'stranded', listener: (error: WardenError) => void): () => void {
    if (event !== 'lost' && event !== 'stranded') throw new WardenError('INVALID_ARGUMENT', `unknown event ${String(event)}`);
    const set = this.listeners[event];
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Wait for the turn; resolves with the fencing token. A rejection removes its queue entry (at once, or in the background when the cluster cannot be reached). */
  async acquire(options: AcquireOptions = {}): Promise<number> {
    if (this.hold !== null && this.hold.lost) this.clearHold(this.hold);
    if (this.hold !== null || this.acquiring !== null) {
      throw new WardenError('INVALID_ARGUMENT', `${this.path}: this participant already ${this.acquiring !== null ? 'waits' : 'holds'}; release() first (a participant holds once at a time)`);
    }
    const cancel = new AbortController(); // release() gives up a pending acquire through it
    this.acquiring = cancel;
    const what = `acquire ${this.path}`;
    const outer = deadline(options, what, [cancel.signal]);
    let waiting: ReturnType<typeof deadline> | null = null;
    let entry: (QueueEntry & { readonly token: number }) | null = null;
    let session: Session | null = null;
    try {
      session = await this.sessionFor(outer.signal);
      waiting = deadline({}, what, [outer.signal, session.signal]);
      const signal = waiting.signal;
      entry = await this.enqueue(session);
      signal.throwIfAborted();
      const token = entry.token;
      await awaitTurn(this.client, this.path, entry, (queue, index) => this.blockers(queue, index), signal);
      await this.beforeGrant(entry, signal);
      signal.throwIfAborted();
      this.grant(entry, token, session);
      return token;
    } catch (error) {
      if (entry !== null && session !== null) await this.withdraw(entry, session);
      throw reasonOr(waiting?.signal ?? outer.signal, error);
    } finally {
      waiting?.done();
      outer.done();
      this.acquiring = null;
    }
  }

  /**
   * Release the hold (or give up a pending acquire): its queue node is deleted in a txn that
   * only applies while the node is still ours. Idempotent. Resolves with the release's revision,
   * or null when there was nothing left to release (never held, already released, or lost).
   */
  async release(call: CallOptions = {}): Promise<number | null> {
    this.acquiring?.abort(new WardenError('UNAVAILABLE', `release() was called while waiting for ${this.path}; its queue entry was removed`));
    const hold = this.hold;
    if (hold === null) return null;
    hold.released = true;
    if (!hold.ended.signal.aborted) hold.ended.abort(new LockLostError(hold.entry.path, hold.token, `${this.path} was released`));
    hold.offLost();
    if (hold.lost) {
      this.clearHold(hold);
      return null;
    }
    // On a failure the hold stays (released, no longer `held`) so that release() can be called again.
    const result = await this.client
      .txn()
      .if(cmp.createRevision(hold.entry.path, '=', hold.token))
      .do(op.delete(hold.entry.path), ...this.releaseOps(hold.entry))
      .commit(call);
    this.clearHold(hold);
    return result.succeeded ? result.revision : null;
  }

  /** Release, stop waiting, and close the recipe's own session (a session passed in stays open). */
  async close(): Promise<void> {
    try {
      await this.release();
    } finally {
      const own = this.ownSession;
      this.ownSession = null;
      await own?.close();
    }
  }

  /**
   * Fence a txn: it also compares "my queue node exists with my token as its create revision",
   * and its else branch reads that node. A txn fenced out is refused whole (NO_NODE for the
   * queue node; nothing applies, not even its else ops) — `fencedTxn` turns that into
   * LockLostError. A txn whose own compares fail answers `succeeded: false` with one extra
   * result at the end (the node read).
   */
  guard<B extends TxnBuilder<unknown>>(txn: B): B {
    const hold = this.requireHold();
    return guardTxn(txn, { path: hold.entry.path, token: hold.token });
  }

  /** A txn builder whose commit is fenced: LockLostError (nothing applied) when the hold is gone. */
  fencedTxn(): TxnBuilder<TxnResult> {
    return fencedTxnBuilder({
      client: this.client,
      current: () => {
        const hold = this.requireHold();
        return { path: hold.entry.path, token: hold.token, hold };
      },
      fencedOut: (node) => this.fencedOut(node.hold),
    });
  }

  /** Put `value` at `path` only while this hold stands; LockLostError (nothing written) otherwise. */
  fencedPut(path: string, value: Value, call: CallOptions = {}): Promise<WriteResult> {
    return fencedPutWith(this.fencedTxn(), path, value, call);
  }

  private requireHold(): Hold {
    const hold = this.hold;
    if (hold === null || hold.released) throw new LockLostError(hold?.entry.path ?? null, hold?.token ?? null, `${this.path} is not held by this participant (acquire() first)`);
    // A hold known lost still goes to the cluster: the fence there, not this flag, decides.
    return hold;
  }

  private fencedOut(hold: Hold): LockLostError {
    const error = new LockLostError(hold.entry.path, hold.token, `fenced: ${hold.entry.path} (token ${hold.token}) is gone, so ${this.path} is no longer held; nothing was written`);
    this.markLost(hold, error);
    return error;
  }

  private markLost(hold: Hold, error: WardenError): void {
    if (hold.lost || hold.released || this.hold !== hold) return;
    hold.lost = true;
    hold.offLost();
    hold.ended.abort(error);
    this.tell('lost', error);
  }

  private tell(event: 'lost' | 'stranded', error: WardenError): void {
    for (const listener of [...this.listeners[event]]) {
      try {
        listener(error);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  private clearHold(hold: Hold): void {
    hold.offLost();
    if (this.hold === hold) this.hold = null;
  }

  private grant(entry: QueueEntry, token: number, session: Session): void {
    if (session.signal.aborted) throw new WardenError('LEASE_NOT_FOUND', `the session (lease ${session.lease}) ended while waiting for ${this.path}`);
    const hold: Hold = { entry, token, session, ended: new AbortController(), offLost: () => undefined, lost: false, released: false };
    this.hold = hold;
    const off = session.on('lost', (error) => this.markLost(hold, error));
    hold.offLost = off;
  }

  private async sessionFor(signal: AbortSignal): Promise<Session> {
    if (this.options.session !== undefined) {
      if (this.options.session.signal.aborted) throw new WardenError('LEASE_NOT_FOUND', `the session given for ${this.path} (lease ${this.options.session.lease}) has ended`);
      return this.options.session;
    }
    if (this.ownSession !== null && !this.ownSession.signal.aborted) return this.ownSession;
    this.ownSession = await this.client.session({ ttlMs: this.options.ttlMs ?? 10_000, signal });
    return this.ownSession;
  }

  /** Create the entry. Not cut short by the caller's signal: an entry must not be made unseen. */
  private async enqueue(session: Session): Promise<QueueEntry & { readonly token: number }> {
    const id = randomEntryId();
    try {
      const made = await this.client.create(`${this.path}/${this.kind}-${id}-`, '', { sequential: true, lease: session.lease, parents: true });
      const name = made.path.slice(this.path.length + 1);
      const entry = parseEntry(this.path, name);
      if (entry === null || entry.id !== id) throw new WardenError('INVALID_ARGUMENT', `the queue entry was made as ${made.path}, not a name this recipe reads`);
      return { ...entry, token: made.stat.createRevision };
    } catch (error) {
      if (error instanceof WardenError && error.outcomeUnknown && !(await sweepEntries(this.client, this.path, id))) this.abandon(session, id);
      throw error;
    }
  }

  /** Delete our entry after a failed or abandoned acquire (bounded by the client's deadline). */
  private async withdraw(entry: QueueEntry, session: Session): Promise<void> {
    try {
      await this.client.delete(entry.path);
    } catch (error) {
      if (error instanceof WardenError && error.code === 'NO_NODE') return;
      if (!(await sweepEntries(this.client, this.path, entry.id))) this.abandon(session, entry.id); // once more, by id
    }
  }

  /**
   * Acquire `id`'s entry could not be removed now, and must not stay in line on a session kept
   * alive. Our own session is closed (this participant holds nothing on it: it is acquiring);
   * a shared one is swept in the background until the entry is gone or the session ends.
   */
  private abandon(session: Session, id: string): void {
    if (session.signal.aborted) return; // the lease is gone or revoked: so is the entry
    if (session === this.ownSession) {
      this.ownSession = null; // the next acquire makes a new one
      void session.close().catch(() => undefined); // the keep-alive stops at once, so the lease ends within its TTL even if the revoke fails
      return;
    }
    void sweepUntilGone(this.client, this.path, id, session.signal).then((gone) => {
      if (!gone) this.tell('stranded', new WardenError('UNAVAILABLE', `a queue entry of ${this.path} (acquire ${id}) could not be removed; it stays in line until the session (lease ${session.lease}) ends`));
    });
  }
}
