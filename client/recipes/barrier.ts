/**
 * Barriers (Curator's DistributedBarrier and DistributedDoubleBarrier; the ZooKeeper recipes).
 *
 * `Barrier`: one node holds everyone back. `set()` makes it (ephemeral when given a Session, so
 * a setter that dies does not hold the others forever), `remove()` deletes it, `wait()` resolves
 * once it does not exist — the watch starts before the read, so a removal is never missed.
 *
 * `DoubleBarrier(n)`: `enter()` makes this participant's ephemeral node and waits until n are
 * in; `leave()` deletes it and waits until every participant has left. The first to see n in
 * makes a persistent `ready` marker, so a participant that looks later (after some have already
 * left) still passes; the last one out deletes the marker. A marker older than every present
 * participant is a leftover of an earlier round (its last one died before tidying) and is
 * deleted instead of obeyed. A new round begins once everyone of the previous one has left.
 *
 * Must never: let `enter` pass before n participants were in at once (or a current round's
 * marker exists); let `leave` return while a participant's node exists; leave a failed enter's
 * node on a live session without retrying its delete; wait without a way out.
 */

import { cmp, op, WardenError, type CallOptions, type Session, type WardenClient, type WardenNode } from '../public.js';
import { childPath, childrenSnapshots, deadline, keepTrying, reasonOr, untilDeleted, type WaitOptions } from './waits.js';

const isNodeExists = (error: unknown): boolean => error instanceof WardenError && error.code === 'NODE_EXISTS';

export class Barrier {
  constructor(
    private readonly client: WardenClient,
    readonly path: string,
    /** When given, the barrier is ephemeral: it falls with this session. */
    private readonly session?: Session,
  ) {}

  /** Raise the barrier; false if it was already up. */
  async set(call: CallOptions = {}): Promise<boolean> {
    try {
      await this.client.create(this.path, '', { parents: true, ...(this.session === undefined ? {} : { lease: this.session.lease }), ...call });
      return true;
    } catch (error) {
      if (isNodeExists(error)) return false;
      throw error;
    }
  }

  /** Lower the barrier; false if it was not up. */
  async remove(call: CallOptions = {}): Promise<boolean> {
    try {
      return (await this.client.delete(this.path, call)).deleted > 0;
    } catch (error) {
      if (error instanceof WardenError && error.code === 'NO_NODE') return false;
      throw error;
    }
  }

  async isSet(call: CallOptions = {}): Promise<boolean> {
    return (await this.client.get(this.path, call)) !== null;
  }

  /** Resolves once the barrier is down (at once if it is not up). */
  async wait(options: WaitOptions = {}): Promise<void> {
    const wait = deadline(options, `wait on the barrier ${this.path}`);
    try {
      await untilDeleted(this.client, this.path, wait.signal);
    } finally {
      wait.done();
    }
  }
}

const READY = 'ready';
const PARTICIPANT_PREFIX = 'p-';
const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

export interface DoubleBarrierOptions {
  /** This participant's name among the others (default: random). */
  readonly id?: string;
}

export class DoubleBarrier {
  readonly id: string;
  private entered = false;
  /** A failed enter's delete still being retried (the next enter stops it: the node is its own again). */
  private withdrawal: { readonly stop: AbortController; readonly settled: Promise<unknown> } | null = null;

  constructor(
    private readonly client: WardenClient,
    readonly path: string,
    /** How many participants must be in before any may go on. */
    readonly participants: number,
    private readonly session: Session,
    options: DoubleBarrierOptions = {},
  ) {
    if (!Number.isInteger(participants) || participants < 1 || participants > 10_000) throw new WardenError('INVALID_ARGUMENT', `participants must be an integer in [1, 10000], got ${participants}`);
    this.id = options.id ?? globalThis.crypto.randomUUID();
    if (!ID_PATTERN.test(this.id)) throw new WardenError('INVALID_ARGUMENT', `a participant id is 1–128 of [A-Za-z0-9._-], got ${JSON.stringify(this.id)}`);
  }

  private get ownPath(): string {
    return childPath(this.path, PARTICIPANT_PREFIX + this.id);
  }

  /** Join, and wait until `participants` are in. On failure (timeout, abort, lost session) this participant is out again. */
  async enter(options: WaitOptions = {}): Promise<void> {
    if (this.entered) throw new WardenError('INVALID_ARGUMENT', `${this.id} is already in ${this.path}`);
    const withdrawal = this.withdrawal;
    if (withdrawal !== null) {
      withdrawal.stop.abort();
      await withdrawal.settled; // a delete in flight must not take the node this enter is about to own
    }
    const wait = deadline(options, `enter the double barrier ${this.path}`, [this.session.signal]);
    try {
      await this.join(wait.signal);
      this.entered = true;
      for await (const { children } of childrenSnapshots(this.client, this.path, wait.signal, this.participants * 4 + 16)) {
        const present = participantsOf(children);
        // Gone from under us (the lease expired before the session heard of it): not in, so not through.
        if (!present.some((p) => p.path === this.ownPath)) throw new WardenError('NO_NODE', `${this.ownPath} is gone (the session's lease expired or the node was deleted)`);
        const marker = children.get(READY);
        if (marker !== undefined) {
          if (present.some((p) => p.stat.createRevision < marker.stat.createRevision)) return;
          await this.deleteMarker(marker, wait.signal); // a leftover of an earlier round
          continue;
        }
        if (present.length >= this.participants) {
          await this.makeMarker(wait.signal);
          return;
        }
      }
      throw reasonOr(wait.signal, new WardenError('UNAVAILABLE', `watching ${this.path} ended`));
    } catch (error) {
      this.entered = false;
      await this.withdraw();
      throw reasonOr(wait.signal, error);
    } finally {
      wait.done();
    }
  }

  /** Go, and wait until every participant has gone. */
  async leave(options: WaitOptions = {}): Promise<void> {
    const wait = deadline(options, `leave the double barrier ${this.path}`);
    try {
      await this.client.delete(this.ownPath, { signal: wait.signal }).catch((error: unknown) => {
        if (!(error instanceof WardenError && error.code === 'NO_NODE')) throw error;
      });
      this.entered = false;
      for await (const { children } of childrenSnapshots(this.client, this.path, wait.signal, this.participants * 4 + 16)) {
        if (participantsOf(children).length > 0) continue;
        const marker = children.get(READY);
        if (marker !== undefined) await this.deleteMarker(marker, wait.signal); // the last one out tidies up
        return;
      }
      throw reasonOr(wait.signal, new WardenError('UNAVAILABLE', `watching ${this.path} ended`));
    } catch (error) {
      throw reasonOr(wait.signal, error);
    } finally {
      wait.done();
    }
  }

  /** Not cut short by the caller's signal: an aborted create landing after the withdrawal would count a participant that left. */
  private async join(signal: AbortSignal): Promise<void> {
    try {
      await this.client.create(this.ownPath, '', { lease: this.session.lease, parents: true });
    } catch (error) {
      if (!isNodeExists(error)) throw error;
      const node = await this.client.get(this.ownPath, { signal });
      if (node?.stat.lease !== this.session.lease) throw new WardenError('NODE_EXISTS', `another participant is in ${this.path} as ${this.id}`);
    }
  }

  /** Out again after a failed enter: a node left on a live session would count as one of the n. */
  private async withdraw(): Promise<void> {
    const gone = async (): Promise<boolean> => {
      await this.client.delete(this.ownPath).catch((error: unknown) => {
        if (!(error instanceof WardenError && error.code === 'NO_NODE')) throw error;
      });
      return true;
    };
    if (await gone().catch(() => false)) return;
    // In the background, until done, the session ends (its lease takes the node) or a new enter makes the node its own.
    const stop = new AbortController();
    const until = deadline({}, `withdraw ${this.ownPath}`, [this.session.signal, stop.signal]);
    const withdrawal = {
      stop,
      settled: keepTrying(gone, until.signal).finally(() => {
        until.done();
        if (this.withdrawal === withdrawal) this.withdrawal = null;
      }),
    };
    this.withdrawal = withdrawal;
  }

  private async makeMarker(signal: AbortSignal): Promise<void> {
    await this.client.create(childPath(this.path, READY), '', { signal }).catch((error: unknown) => {
      if (!isNodeExists(error)) throw error;
    });
  }

  private async deleteMarker(marker: WardenNode, signal: AbortSignal): Promise<void> {
    await this.client.txn().if(cmp.createRevision(marker.path, '=', marker.stat.createRevision)).do(op.delete(marker.path)).commit({ signal });
  }
}

function participantsOf(children: ReadonlyMap<string, WardenNode>): WardenNode[] {
  const present: WardenNode[] = [];
  for (const [name, node] of children) if (name.startsWith(PARTICIPANT_PREFIX)) present.push(node);
  return present;
}
