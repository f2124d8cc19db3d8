/**
 * The watch hub (State Watch): turns each applied revision into pushes for the watchers it
 * matches — a node, a node's children, or a whole subtree — on whichever member the client is
 * connected to. A watch may start in the past: its history is replayed from MVCC first
 * (replays.ts), then it follows live revisions, with nothing missed or repeated between the two.
 *
 * The guarantees, each pinned by a test: ordered (a watcher's revisions only go up), unique (no
 * event twice), reliable (no gap between its start and its cancel), atomic (a revision's events
 * arrive together: one frame, or consecutive fragments marked `more` with nothing between),
 * resumable (replay and live deliver a revision identically — one event per changed path, in
 * path order — so a client that resumes at last + 1 anywhere sees exactly what it missed),
 * bookmarkable (progress frames carry the current revision: everything at or below it has been
 * delivered).
 *
 * Bounded work: matching an event costs its path's depth (watched paths are indexed, subtree
 * roots in a trie), whatever else is registered. A replay reads history a slice at a time and
 * sends a bounded amount per turn of the event loop, and only while the connection takes it
 * (it waits for the reader to drain): a consumer is slow only if it does not read what it was
 * sent. A live watcher whose connection will not take more (its unsent bytes are over the
 * bound) is cancelled at once with a reason and the revision to resume from; the apply loop and
 * the other watchers never wait for it.
 *
 * Must never: block or throw into the apply loop; deliver a revision out of order or
 * interleaved with another; keep a watcher whose connection is gone; do unbounded work in one
 * turn for one watcher; deliver an event on a path its user may not read.
 */

import type { ErrorCode } from '../../shared/errors.js';
import { parentOf } from '../../shared/paths.js';
import type { Namespace } from '../state/namespace.js';
import type { ChangeEvent } from '../state/types.js';
import { PathTrie } from './path-trie.js';
import { Replays } from './replays.js';
import { passes, type Watcher, type WatchSink, type WatchSpec } from './watcher.js';
import { estimatedBytes, fragmentsOf, onePerPath, wireEvent } from './wire-events.js';

export type { WatchScope, WatchSink, WatchSpec } from './watcher.js';

export interface WatchLimits {
  readonly watchesPerConnectionMax: number;
  readonly watchesMax: number;
  /** A revision whose events pass this many bytes goes out in fragments of at most this (one event never split). */
  readonly fragmentBytesMax: number;
}

const UNLIMITED: WatchLimits = { watchesPerConnectionMax: Number.POSITIVE_INFINITY, watchesMax: Number.POSITIVE_INFINITY, fragmentBytesMax: 4 * 1024 * 1024 };

/** The slice read when a watch is answered (inside the request): small, so a flood of watches costs little. */
const FIRST_SLICE_EVENTS_MAX = 64;
const FIRST_SLICE_SCAN_MAX = 512;
/** Live frames one turn of the event loop pushes before the queued revisions left wait for the next. */
const FANOUT_FRAMES_PER_TURN = 20_000;

export type WatchStart =
  | { readonly ok: true; readonly revision: number }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly compactRevision?: number; readonly limit?: 'watchesPerConnectionMax' | 'watchesMax' };

export class WatchHub {
  private readonly bySink = new Map<WatchSink, Map<number, Watcher>>();
  private readonly byNode = new Map<string, Set<Watcher>>();
  private readonly byParent = new Map<string, Set<Watcher>>();
  private readonly bySubtree = new PathTrie<Watcher>();
  private count = 0;
  /** Per connection: the revision of its last bookmark round and how many watches it had been given. */
  private readonly bookmarked = new Map<WatchSink, { revision: number; watchesStarted: number }>();
  private readonly watchesStarted = new Map<WatchSink, number>();
  /** Applied revisions not yet fanned out: the apply loop only queues them (and its answers go first). */
  private pending: (readonly ChangeEvent[])[] = [];
  private flushScheduled = false;
  private readonly replays: Replays;

  constructor(
    private readonly namespace: () => Namespace,
    private readonly nowMs: () => number,
    private readonly limits: WatchLimits = UNLIMITED,
    /** Told when a stated invariant was about to break (the hub refused to break it): for the member's log. */
    private readonly onInvariantBroken?: (what: string) => void,
    /** Run soon, on a later turn of the event loop (the simulator injects its own). */
    private readonly defer: (run: () => void) => void = (run) => void setImmediate(run),
    /** A bug the simulator plants to prove it catches it: a resumed watch starts one revision early. Never set by wardend. */
    private readonly plantedResumeOneEarly = false,
  ) {
    this.replays = new Replays({
      namespace,
      defer,
      fragmentBytesMax: limits.fragmentBytesMax,
      deliver: (watcher, revision, eventsJson, more) => this.deliver(watcher, revision, eventsJson, more),
      cancelWith: (watcher, code, reason) => this.cancelWith(watcher, code, reason),
    });
  }

  get size(): number {
    return this.count;
  }

  /** Start watch `id` on `sink`: replay history from spec.fromRevision (if any), then follow live revisions. */
  watch(sink: WatchSink, id: number, spec: WatchSpec): WatchStart {
    this.flush();
    const namespace = this.namespace();
    const revision = namespace.revision;
    let watchers = this.bySink.get(sink);
    if (watchers?.has(id) === true) return { ok: false, code: 'INVALID_ARGUMENT', message: `watch ${id} already exists on this connection` };
    if ((watchers?.size ?? 0) >= this.limits.watchesPerConnectionMax) {
      return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `this connection has ${watchers!.size} watches open, the most one may`, limit: 'watchesPerConnectionMax' };
    }
    if (this.count >= this.limits.watchesMax) return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `this member has ${this.count} watches open, the most it keeps; try another member`, limit: 'watchesMax' };
    // A start above this member's revision (a client resuming here from a member further
    // ahead) begins there: nothing it already has is sent again, and no bookmark goes below it.
    const startAfter = spec.fromRevision !== undefined && spec.fromRevision > revision ? spec.fromRevision - 1 : revision;
    const watcher: Watcher = { sink, id, spec, lastRevision: startAfter, lastPushMs: this.nowMs(), replay: null, cancelled: false };
    if (spec.fromRevision !== undefined && spec.fromRevision <= revision) {
      // The first slice is read now, so the history it needs cannot be compacted before the
      // replay's turn; the rest is read slice by slice (a compaction that overtakes the replay
      // cancels it COMPACTED at the first revision it could not deliver).
      const from = this.plantedResumeOneEarly && spec.fromRevision > 1 ? spec.fromRevision - 1 : spec.fromRevision;
      const first = namespace.changesFrom(from, spec.path, spec.scope, { eventsMax: FIRST_SLICE_EVENTS_MAX, scanMax: FIRST_SLICE_SCAN_MAX });
      if (!first.ok) return { ok: false, code: first.code, message: first.message, compactRevision: first.compactRevision };
      watcher.lastRevision = from - 1;
      watcher.replay = { next: first.nextRevision, events: first.events.filter((e) => passes(spec, e)), at: 0, waiting: false, queued: false };
      // After the answer has gone out (a later turn of the event loop).
      this.replays.queue(watcher);
    }
    if (watchers === undefined) this.bySink.set(sink, (watchers = new Map()));
    watchers.set(id, watcher);
    this.count += 1;
    this.watchesStarted.set(sink, (this.watchesStarted.get(sink) ?? 0) + 1);
    this.index(watcher, true);
    return { ok: true, revision };
  }

  /** Cancel watch `id` on `sink`; false if there is none. */
  cancel(sink: WatchSink, id: number): boolean {
    const watcher = this.bySink.get(sink)?.get(id);
    if (watcher === undefined) return false;
    this.remove(watcher);
    return true;
  }

  /** The connection is gone: every watch on it ends. */
  closed(sink: WatchSink): void {
    for (const watcher of [...(this.bySink.get(sink)?.values() ?? [])]) this.remove(watcher);
    this.bookmarked.delete(sink);
    this.watchesStarted.delete(sink);
  }

  /**
   * A progress frame for every watch on `sink` (a bookmark the client asked for). Asked again
   * with nothing new — the same revision, no watch started since — the bookmarks already sent
   * stand: answered without pushing them all again (a flood of these costs no more than one).
   */
  progress(sink: WatchSink): number {
    this.flush(); // a bookmark at R promises every event at or below R was sent before it
    const revision = this.namespace().revision;
    const started = this.watchesStarted.get(sink) ?? 0;
    const last = this.bookmarked.get(sink);
    if (last !== undefined && last.revision === revision && last.watchesStarted === started) return revision;
    let whole = true;
    for (const watcher of this.bySink.get(sink)?.values() ?? []) {
      if (watcher.replay !== null) whole = false;
      else this.pushProgress(watcher, revision, true);
    }
    // Remembered only if every watch got its bookmark (a replaying one gets none yet).
    if (whole) this.bookmarked.set(sink, { revision, watchesStarted: started });
    else this.bookmarked.delete(sink);
    return revision;
  }

  /**
   * Called by the apply loop with one applied entry's events (all at one revision): queued, and
   * fanned out on the next turn of the event loop, in order.
   */
  publish(events: readonly ChangeEvent[]): void {
    if (events.length === 0 || this.bySink.size === 0) return;
    this.pending.push(events);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.defer(() => this.flush(FANOUT_FRAMES_PER_TURN));
  }

  /**
   * Fan out queued revisions, oldest first: all of them (a bookmark or a new watch needs every
   * revision out before it), or, from the event loop, until `framesMax` frames went out in this
   * turn — the rest go on the next turn, in order (10,000 watchers of one key and a burst of
   * revisions must not hold the loop).
   */
  flush(framesMax = Number.POSITIVE_INFINITY): void {
    this.flushScheduled = false;
    let frames = 0;
    let done = 0;
    while (done < this.pending.length && frames < framesMax) frames += this.fanOut(this.pending[done++]!);
    this.pending = done === this.pending.length ? [] : this.pending.slice(done);
    if (this.pending.length > 0) this.scheduleFlush();
  }

  /** Push one revision to the watchers it matches; answers how many frames went out. */
  private fanOut(events: readonly ChangeEvent[]): number {
    const revision = events[0]!.revision;
    const changes = onePerPath(events, this.namespace());
    const matched = new Map<Watcher, ChangeEvent[]>();
    const asked = new Set<Watcher>();
    for (const change of changes) {
      for (const watcher of this.matching(change.path)) {
        if (watcher.spec.allowed !== undefined && !asked.has(watcher)) {
          asked.add(watcher);
          const why = watcher.spec.allowed();
          if (why !== null) this.cancelWith(watcher, 'UNAUTHENTICATED', why);
        }
        if (watcher.cancelled || !passes(watcher.spec, change)) continue;
        let list = matched.get(watcher);
        if (list === undefined) matched.set(watcher, (list = []));
        list.push(change);
      }
    }
    if (matched.size === 0) return 0;
    let frames = 0;
    // The wire form of a revision's events is built once per shape, not once per watcher — when
    // it is one frame. A revision too big for one is built fragment by fragment for each
    // watcher, and no further than its connection takes.
    const shapes = new Map<string, string>();
    for (const [watcher, list] of matched) {
      if (watcher.cancelled || watcher.replay !== null || watcher.lastRevision >= revision) continue; // the replay will reach it
      const prevNode = watcher.spec.prevNode;
      if (estimatedBytes(list, prevNode) <= this.limits.fragmentBytesMax) {
        const key = `${prevNode ? 1 : 0}|${list.map((c) => c.path).join('\u0000')}`;
        let json = shapes.get(key);
        if (json === undefined) shapes.set(key, (json = `[${list.map((c) => JSON.stringify(wireEvent(c, prevNode))).join(',')}]`));
        this.deliver(watcher, revision, json, false);
        frames += 1;
        continue;
      }
      const fragments = fragmentsOf(list, prevNode, this.limits.fragmentBytesMax);
      let fragment = fragments.next();
      while (!fragment.done) {
        const following = fragments.next();
        frames += 1;
        if (!this.deliver(watcher, revision, fragment.value, !following.done)) break;
        fragment = following;
      }
    }
    return frames;
  }

  /** Periodic: a progress frame for each idle watch that asked for them. */
  tick(progressIntervalMs: number): void {
    if (this.bySink.size === 0) return;
    // Idle bookmarks can wait a tick: with revisions still queued (a burst being fanned out a
    // turn's worth at a time) none is due — a bookmark at R must follow every event up to R.
    this.flush(FANOUT_FRAMES_PER_TURN);
    if (this.pending.length > 0) return;
    const now = this.nowMs();
    const revision = this.namespace().revision;
    for (const watchers of this.bySink.values()) {
      for (const watcher of watchers.values()) {
        if (watcher.spec.progressNotify && now - watcher.lastPushMs >= progressIntervalMs) this.pushProgress(watcher, revision, false);
      }
    }
  }

  /**
   * This member's state jumped (a leader's snapshot replaced its store): the revisions between
   * were never applied here, so no watcher can be followed across the jump. Each is cancelled
   * with the revision to resume from (on this member, from history, or on another).
   */
  storeReplaced(): void {
    this.pending = []; // revisions of the store that is gone
    for (const watchers of [...this.bySink.values()]) {
      for (const watcher of [...watchers.values()]) this.cancelWith(watcher, 'UNAVAILABLE', 'this member caught up by a snapshot and cannot follow the revisions it skipped; resume from the revision given');
    }
  }

  /** Push one revision's events (or one fragment of them) to a watcher; on a full connection, cancel it instead. */
  private deliver(watcher: Watcher, revision: number, eventsJson: string, more: boolean): boolean {
    if (revision <= watcher.lastRevision) {
      // Ordered and unique: a revision at or below one already delivered would be a repeat or
      // go backwards. Never sent; the watch ends and its client resumes right after the last
      // revision it was given, and the breach is logged for the engineers.
      this.onInvariantBroken?.(`watch ${watcher.id} was about to get revision ${revision} after ${watcher.lastRevision}`);
      this.cancelWith(watcher, 'UNAVAILABLE', 'the member could not go on with this watch in order; resume from the revision given');
      return false;
    }
    const frame = `{"watch":${watcher.id},"revision":${revision},"events":${eventsJson}${more ? ',"more":true' : ''}}`;
    if (!watcher.sink.push(frame)) {
      this.cancelWith(watcher, 'SLOW_CONSUMER', 'the watcher did not read its events fast enough; resume from the revision given');
      return false;
    }
    if (!more) watcher.lastRevision = revision;
    watcher.lastPushMs = this.nowMs();
    return true;
  }

  private pushProgress(watcher: Watcher, revision: number, force: boolean): void {
    if (watcher.replay !== null || revision < watcher.lastRevision) return; // a replay is under way: nothing to bookmark yet
    if (!watcher.sink.push(JSON.stringify({ watch: watcher.id, revision, progress: true }), force)) return;
    watcher.lastRevision = revision;
    watcher.lastPushMs = this.nowMs();
  }

  private cancelWith(watcher: Watcher, code: ErrorCode, reason: string): void {
    this.remove(watcher);
    watcher.sink.push(JSON.stringify({ watch: watcher.id, canceled: true, code, reason, resumeRevision: watcher.lastRevision + 1 }), true);
  }

  private remove(watcher: Watcher): void {
    if (watcher.cancelled) return;
    watcher.cancelled = true;
    watcher.replay = null;
    this.count -= 1;
    const watchers = this.bySink.get(watcher.sink);
    watchers?.delete(watcher.id);
    if (watchers?.size === 0) this.bySink.delete(watcher.sink);
    this.index(watcher, false);
  }

  private index(watcher: Watcher, present: boolean): void {
    const { path, scope } = watcher.spec;
    if (scope === 'subtree') {
      if (present) this.bySubtree.add(path, watcher);
      else this.bySubtree.remove(path, watcher);
      return;
    }
    const map = scope === 'node' ? this.byNode : this.byParent;
    let set = map.get(path);
    if (present) {
      if (set === undefined) map.set(path, (set = new Set()));
      set.add(watcher);
    } else if (set !== undefined) {
      set.delete(watcher);
      if (set.size === 0) map.delete(path);
    }
  }

  /** Watchers whose scope holds `path`: the node itself, its parent's children, every subtree above it. */
  private *matching(path: string): Iterable<Watcher> {
    yield* this.byNode.get(path) ?? [];
    const parent = parentOf(path);
    if (parent !== null) yield* this.byParent.get(parent) ?? [];
    yield* this.bySubtree.alongPath(path);
  }
}

