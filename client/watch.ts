/**
 * Watches as users see them (State Watch): an `AsyncIterable` of typed events that survives the
 * loss of its member. The client remembers, per watch, the last revision it received whole
 * (events of one revision arrive together, or as fragments it joins first), and when the
 * connection moves to another member — or the member cancels the watch SLOW_CONSUMER or
 * UNAVAILABLE — it subscribes again from the next revision: no gap, no duplicate. History
 * compacted past that point ends the iteration with WardenError COMPACTED (and
 * `compactRevision`): the caller reads afresh and watches from there.
 *
 * Flow control: a reader that falls behind makes the client cancel the watch at the member
 * (HIGH_WATER events waiting) and subscribe again from where it is once the reader drained to
 * LOW_WATER — the member holds nothing for a slow reader, and the client's memory stays bounded.
 *
 * Must never: deliver a revision twice or skip one; deliver part of a revision; hold more than
 * HIGH_WATER + one member frame of events for a reader that does not read.
 */

import { WardenError } from '../shared/errors.js';
import type { Answer, Channel } from './channel.js';
import { ChannelLost } from './channel.js';
import { errorOfAnswer, type Requests } from './requests.js';
import type { ClientClock } from './transport.js';
import { decodeNode, type ValueAs, type ValueOf, type WardenNode } from './values.js';

export type WatchScope = 'node' | 'children' | 'subtree';
export type EventType = 'create' | 'put' | 'delete';

export interface WatchEvent<V = string> {
  readonly type: EventType;
  readonly path: string;
  /** The revision of the write that made this change (a revision's events arrive together). */
  readonly revision: number;
  /** The node after the change (null for a delete). */
  readonly node: WardenNode<V> | null;
  /** The node before the change, when asked for with `prevNode: true`. */
  readonly prevNode?: WardenNode<V> | null;
}

export interface WatchOptions<A extends ValueAs = 'string'> {
  /** `node` (the default), `children` (direct children) or `subtree` (the node and all below). */
  readonly scope?: WatchScope;
  /** Replay history from this revision first (at or below the compaction mark: COMPACTED). */
  readonly fromRevision?: number;
  readonly prevNode?: boolean;
  readonly noPut?: boolean;
  readonly noDelete?: boolean;
  readonly as?: A;
  readonly signal?: AbortSignal;
}

/** Events waiting for the reader before the client pauses the watch at the member. */
export const HIGH_WATER = 10_000;
/** …and how far the reader must drain before it is resumed. */
export const LOW_WATER = 1_000;

type Waiter<V> = { resolve: (result: IteratorResult<WatchEvent<V>>) => void; reject: (error: unknown) => void };

/** The watches of one client, by the watch id each subscription has on the wire. */
export class WatchRegistry {
  private nextWatchId = 1;
  private readonly byWireId = new Map<number, Watch<unknown>>();
  readonly live = new Set<Watch<unknown>>();

  constructor(
    readonly channel: Channel,
    readonly requests: Requests,
    readonly clock: ClientClock,
  ) {}

  wireId(watch: Watch<unknown>): number {
    const id = this.nextWatchId;
    this.nextWatchId = this.nextWatchId >= 2 ** 31 - 1 ? 1 : this.nextWatchId + 1;
    this.byWireId.set(id, watch);
    return id;
  }

  forget(id: number): void {
    this.byWireId.delete(id);
  }

  push(frame: Record<string, unknown>): void {
    this.byWireId.get(frame['watch'] as number)?.pushed(frame);
  }

  /** A new socket: every live watch subscribes on it from where it is. */
  connected(): void {
    for (const watch of this.live) watch.subscribe();
  }
}

export class Watch<V = string> implements AsyncIterable<WatchEvent<V>> {
  /** Every revision at or below this has been received whole (or had no event for this watch). */
  private received: number;
  private wireId: number | null = null;
  private subscribing = false;
  private paused = false;
  private ended = false;
  private failure: unknown = null;
  private readonly queue: WatchEvent<V>[] = [];
  private queueHead = 0;
  private readonly waiters: Waiter<V>[] = [];
  /** Fragments of one revision (`more: true`), joined before delivery. */
  private fragments: WatchEvent<V>[] = [];
  private startedResolve!: (revision: number) => void;
  private startedReject!: (error: unknown) => void;
  /** Resolves with the revision the watch starts after, once a member accepted it (rejects if it never does). */
  readonly started: Promise<number>;

  constructor(
    private readonly registry: WatchRegistry,
    readonly path: string,
    private readonly options: WatchOptions<ValueAs>,
  ) {
    this.received = options.fromRevision === undefined ? -1 : options.fromRevision - 1;
    this.started = new Promise((resolve, reject) => {
      this.startedResolve = resolve;
      this.startedReject = reject;
    });
    this.started.catch(() => undefined);
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    registry.live.add(this as Watch<unknown>);
    this.subscribe();
  }

  /** The last revision delivered whole to this watch's queue (−1 before the member accepted it). */
  get revision(): number {
    return this.received;
  }

  /** Subscribe on the current connection (again), from the revision after the last one received. */
  subscribe(): void {
    if (this.ended || this.subscribing || this.paused) return;
    this.subscribing = true;
    void this.subscribeLoop().finally(() => {
      this.subscribing = false;
    });
  }

  private async subscribeLoop(): Promise<void> {
    const { channel, requests } = this.registry;
    for (let attempt = 0; !this.ended && !this.paused; attempt++) {
      if (this.wireId !== null) this.registry.forget(this.wireId);
      const wireId = this.registry.wireId(this as Watch<unknown>);
      this.wireId = wireId;
      this.fragments = [];
      const frame: Record<string, unknown> = {
        type: 'watch',
        watchId: wireId,
        path: this.path,
        scope: this.options.scope ?? 'node',
        ...(this.received >= 0 ? { fromRevision: this.received + 1 } : {}),
        ...(this.options.prevNode === true ? { prevNode: true } : {}),
        ...(this.options.noPut === true ? { noPut: true } : {}),
        ...(this.options.noDelete === true ? { noDelete: true } : {}),
      };
      let answer: Answer & { generation: number };
      try {
        answer = await channel.request(frame, Number.POSITIVE_INFINITY, { urgent: true });
      } catch (error) {
        // The socket went: the registry subscribes again when the next one opens.
        if (error instanceof ChannelLost && !channel.isClosed) return;
        this.fail(error instanceof ChannelLost ? new WardenError('UNAVAILABLE', 'the client is closed') : error);
        return;
      }
      if (this.wireId !== wireId) return;
      if (answer.ok) {
        requests.saw(answer['revision']);
        if (this.received < 0) this.received = answer['revision'] as number;
        this.startedResolve(this.received);
        return;
      }
      const error = errorOfAnswer(answer);
      if (!error.retryable) {
        this.fail(error);
        return;
      }
      // UNAVAILABLE or RESOURCE_EXHAUSTED: try again on this member in a little while, or another.
      if (error.code === 'UNAVAILABLE' || error.code === 'NOT_LEADER') channel.leave(answer.generation, error.message);
      await new Promise((resolve) => this.registry.clock.setTimeout(() => resolve(undefined), Math.min(1_000, 25 * 2 ** attempt)));
      if (channel.url === null) return;
    }
  }

  pushed(frame: Record<string, unknown>): void {
    if (this.ended || this.paused) return;
    if (frame['canceled'] === true) {
      if (this.wireId !== null) this.registry.forget(this.wireId);
      this.wireId = null;
      const code = frame['code'];
      if (code === 'SLOW_CONSUMER' || code === 'UNAVAILABLE') {
        const resume = frame['resumeRevision'];
        if (typeof resume === 'number' && resume - 1 > this.received) this.received = resume - 1;
        this.subscribe();
        return;
      }
      this.fail(errorOfAnswer({ ok: false, error: { code, message: frame['message'] ?? `the watch was cancelled: ${String(code)}`, ...(typeof frame['compactRevision'] === 'number' ? { compactRevision: frame['compactRevision'] } : {}) } }));
      return;
    }
    const revision = frame['revision'] as number;
    this.registry.requests.saw(revision);
    if (frame['progress'] === true) {
      if (this.fragments.length === 0 && revision > this.received) this.received = revision;
      return;
    }
    if (revision <= this.received) return; // already delivered (a replay that overlapped)
    const as = this.options.as ?? 'string';
    for (const wire of frame['events'] as Record<string, unknown>[]) {
      this.fragments.push({
        type: wire['type'] as EventType,
        path: wire['path'] as string,
        revision,
        node: wire['node'] === undefined || wire['node'] === null ? null : (decodeNode(wire['node'], as) as WardenNode<V>),
        ...(wire['prevNode'] === undefined ? {} : { prevNode: wire['prevNode'] === null ? null : (decodeNode(wire['prevNode'], as) as WardenNode<V>) }),
      });
    }
    if (frame['more'] === true) return;
    const events = this.fragments;
    this.fragments = [];
    this.received = revision;
    for (const event of events) this.deliver(event);
    if (this.queue.length - this.queueHead >= HIGH_WATER) this.pause();
  }

  private deliver(event: WatchEvent<V>): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter.resolve({ value: event, done: false });
    else this.queue.push(event);
  }

  /** The reader fell behind: stop the member sending, resume from `received` once it drained. */
  private pause(): void {
    this.paused = true;
    this.cancelAtMember();
  }

  private cancelAtMember(): void {
    const wireId = this.wireId;
    this.wireId = null;
    if (wireId === null) return;
    this.registry.forget(wireId);
    // Bounded: a member that never answers is left by the channel, failing this with it.
    this.registry.channel.request({ type: 'cancelWatch', watchId: wireId }, Number.POSITIVE_INFINITY, { urgent: true }).catch(() => undefined);
  }

  private fail(error: unknown): void {
    if (this.ended) return;
    this.failure = error;
    this.startedReject(error);
    this.end();
  }

  private readonly onAbort = (): void => void this.cancel();

  private end(): void {
    this.ended = true;
    // A long-lived signal outlives many watches: an ended one must not stay reachable through it.
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.registry.live.delete(this as Watch<unknown>);
    this.cancelAtMember();
    if (this.queue.length - this.queueHead === 0) this.flushWaiters();
  }

  private flushWaiters(): void {
    for (const waiter of this.waiters.splice(0)) {
      if (this.failure !== null) waiter.reject(this.failure);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  /** Stop the watch: the iteration ends after the events already received. */
  async cancel(): Promise<void> {
    if (this.ended) return;
    this.startedReject(new WardenError('WATCH_NOT_FOUND', 'the watch was cancelled'));
    this.end();
  }

  next(): Promise<IteratorResult<WatchEvent<V>>> {
    if (this.queueHead < this.queue.length) return Promise.resolve({ value: this.takeQueued(), done: false });
    if (this.ended) return this.failure !== null ? Promise.reject(this.failure) : Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * The next revision's events, all of them (a revision reaches the queue whole), or null when
   * the watch ended; throws the watch's error. For callers that apply a revision at a time.
   */
  async nextRevision(): Promise<WatchEvent<V>[] | null> {
    const first = await this.next();
    if (first.done === true) return null;
    const batch = [first.value];
    while (this.queueHead < this.queue.length && this.queue[this.queueHead]!.revision === first.value.revision) batch.push(this.takeQueued());
    return batch;
  }

  private takeQueued(): WatchEvent<V> {
    const value = this.queue[this.queueHead++]!;
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    if (this.paused && this.queue.length - this.queueHead <= LOW_WATER) {
      this.paused = false;
      this.subscribe();
    }
    return value;
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent<V>> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.cancel();
        return { value: undefined, done: true };
      },
    };
  }
}

export type WatchOf<A extends ValueAs> = Watch<ValueOf<A>>;
