/**
 * The watch hub (State Watch): turns each applied revision into pushes for the watchers it
 * matches — a node, a node's children, or a whole subtree — on whichever member the client is
 * connected to. A watch may start in the past: its history is replayed from MVCC first, then it
 * follows live revisions, with nothing missed or repeated between the two (both happen inside
 * one turn of the event loop).
 *
 * The guarantees, each pinned by a test: ordered (a watcher's revisions only go up), unique (no
 * event twice), reliable (no gap between its start and its cancel), atomic (a revision's events
 * arrive in one frame), resumable (replay and live deliver a revision identically — one event
 * per changed path, in path order — so a client that resumes at last + 1 anywhere sees exactly
 * what it missed), bookmarkable (progress frames carry the current revision: everything at or
 * below it has been delivered).
 *
 * A watcher whose connection will not take more (its unsent bytes are over the bound) is
 * cancelled at once with a reason and the revision to resume from; the apply loop and the other
 * watchers never wait for it.
 *
 * Must never: block or throw into the apply loop; deliver a revision in two frames or out of
 * order; keep a watcher whose connection is gone.
 */

import type { ErrorCode } from '../../shared/errors.js';
import { comparePaths, parentOf } from '../../shared/paths.js';
import type { Namespace } from '../state/namespace.js';
import type { ChangeEvent, NodeView } from '../state/types.js';

export type WatchScope = 'node' | 'children' | 'subtree';

export interface WatchSpec {
  readonly path: string;
  readonly scope: WatchScope;
  /** Replay from this revision (it must be above the compaction mark); default: from the next one. */
  readonly fromRevision?: number;
  readonly prevNode: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  /** Push a progress frame when the watch has had nothing to say for the progress interval. */
  readonly progressNotify: boolean;
}

/** A client connection's side: frames out, refused when its unsent bytes are over the bound. */
export interface WatchSink {
  /** Send a JSON text frame; false (and nothing sent) if the connection is over its bound, unless `force`. */
  push(frame: string, force?: boolean): boolean;
}

interface Watcher {
  readonly sink: WatchSink;
  readonly id: number;
  readonly spec: WatchSpec;
  /** The last revision delivered (events or progress): the next frame must be above it. */
  lastRevision: number;
  lastPushMs: number;
  /** History is being replayed: live revisions wait for the replay to catch up to them. */
  replaying: boolean;
}

/** A replay: the history read at watch time, covering every revision up to `upTo`. */
interface Replay {
  readonly events: readonly ChangeEvent[];
  readonly upTo: number;
}

export type WatchStart = { readonly ok: true; readonly revision: number } | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly compactRevision?: number };

export class WatchHub {
  private readonly bySink = new Map<WatchSink, Map<number, Watcher>>();
  private readonly byNode = new Map<string, Set<Watcher>>();
  private readonly byParent = new Map<string, Set<Watcher>>();
  private readonly bySubtree = new Map<string, Set<Watcher>>();
  /** Applied revisions not yet fanned out: the apply loop only queues them (and its answers go first). */
  private pending: (readonly ChangeEvent[])[] = [];
  private flushScheduled = false;

  constructor(
    private readonly namespace: () => Namespace,
    private readonly nowMs: () => number,
  ) {}

  get size(): number {
    let count = 0;
    for (const watchers of this.bySink.values()) count += watchers.size;
    return count;
  }

  /** Start watch `id` on `sink`: replay history from spec.fromRevision (if any), then follow live revisions. */
  watch(sink: WatchSink, id: number, spec: WatchSpec): WatchStart {
    this.flush();
    const namespace = this.namespace();
    const revision = namespace.revision;
    let watchers = this.bySink.get(sink);
    if (watchers?.has(id) === true) return { ok: false, code: 'INVALID_ARGUMENT', message: `watch ${id} already exists on this connection` };
    // A start above this member's revision (a client resuming here from a member further
    // ahead) begins there: nothing it already has is sent again, and no bookmark goes below it.
    const startAfter = spec.fromRevision !== undefined && spec.fromRevision > revision ? spec.fromRevision - 1 : revision;
    const watcher: Watcher = { sink, id, spec, lastRevision: startAfter, lastPushMs: this.nowMs(), replaying: false };
    if (spec.fromRevision !== undefined && spec.fromRevision <= revision) {
      const replay = namespace.changesSince(spec.fromRevision, spec.path, spec.scope);
      if (!replay.ok) return { ok: false, code: replay.code, message: replay.message, compactRevision: replay.compactRevision };
      watcher.lastRevision = spec.fromRevision - 1;
      watcher.replaying = true;
      // After the answer has gone out (a later turn of the event loop); revisions applied in
      // between are caught up from history by the replay itself.
      setImmediate(() => this.replay(watcher, { events: replay.events, upTo: revision }));
    }
    if (watchers === undefined) this.bySink.set(sink, (watchers = new Map()));
    watchers.set(id, watcher);
    this.index(watcher).add(watcher);
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
  }

  /** A progress frame for every watch on `sink` (a bookmark the client asked for). */
  progress(sink: WatchSink): number {
    this.flush(); // a bookmark at R promises every event at or below R was sent before it
    const revision = this.namespace().revision;
    for (const watcher of this.bySink.get(sink)?.values() ?? []) this.pushProgress(watcher, revision, true);
    return revision;
  }

  /**
   * Called by the apply loop with one applied entry's events (all at one revision): queued, and
   * fanned out on the next turn of the event loop, in order.
   */
  publish(events: readonly ChangeEvent[]): void {
    if (events.length === 0 || this.bySink.size === 0) return;
    this.pending.push(events);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Fan out every queued revision, oldest first. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const batches = this.pending;
    this.pending = [];
    for (const events of batches) this.fanOut(events);
  }

  private fanOut(events: readonly ChangeEvent[]): void {
    const revision = events[0]!.revision;
    const changes = onePerPath(events, this.namespace());
    const matched = new Map<Watcher, ChangeEvent[]>();
    for (const change of changes) {
      for (const watcher of this.matching(change.path)) {
        if (!passes(watcher.spec, change)) continue;
        let list = matched.get(watcher);
        if (list === undefined) matched.set(watcher, (list = []));
        list.push(change);
      }
    }
    if (matched.size === 0) return;
    // The wire form of a revision's events is built once per shape, not once per watcher.
    const shapes = new Map<string, string>();
    for (const [watcher, list] of matched) {
      if (watcher.replaying || watcher.lastRevision >= revision) continue; // the replay will reach it
      const key = `${watcher.spec.prevNode ? 1 : 0}|${list.map((c) => c.path).join('\u0000')}`;
      let eventsJson = shapes.get(key);
      if (eventsJson === undefined) shapes.set(key, (eventsJson = JSON.stringify(list.map((c) => wireEvent(c, watcher.spec.prevNode)))));
      this.deliver(watcher, revision, eventsJson);
    }
  }

  /** Periodic: a progress frame for each idle watch that asked for them. */
  tick(progressIntervalMs: number): void {
    if (this.bySink.size === 0) return;
    this.flush();
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

  private replay(watcher: Watcher, first: Replay): void {
    if (this.bySink.get(watcher.sink)?.get(watcher.id) !== watcher) return; // cancelled meanwhile
    if (!this.deliverHistory(watcher, first)) return;
    // Revisions applied while the replay waited for its turn were skipped for this watcher: read
    // them from history too (one read: nothing is applied while this runs), so the seam between
    // replay and live has no gap.
    this.flush();
    const now = this.namespace().revision;
    if (watcher.lastRevision < now) {
      const rest = this.namespace().changesSince(watcher.lastRevision + 1, watcher.spec.path, watcher.spec.scope);
      if (!rest.ok) {
        this.cancelWith(watcher, 'COMPACTED', rest.message);
        return;
      }
      if (!this.deliverHistory(watcher, { events: rest.events, upTo: now })) return;
    }
    watcher.replaying = false;
  }

  /** Deliver a replay's revisions above what the watcher has; then it has everything up to `upTo`. */
  private deliverHistory(watcher: Watcher, { events, upTo }: Replay): boolean {
    let start = 0;
    while (start < events.length) {
      const revision = events[start]!.revision;
      let end = start;
      while (end < events.length && events[end]!.revision === revision) end += 1;
      const list = events.slice(start, end).filter((change) => passes(watcher.spec, change));
      start = end;
      if (list.length === 0 || revision <= watcher.lastRevision) continue;
      if (!this.deliver(watcher, revision, JSON.stringify(list.map((c) => wireEvent(c, watcher.spec.prevNode))))) return false;
    }
    watcher.lastRevision = Math.max(watcher.lastRevision, upTo);
    return true;
  }

  /** Push one revision's events to a watcher; on a full connection, cancel it instead. */
  private deliver(watcher: Watcher, revision: number, eventsJson: string): boolean {
    const frame = `{"watch":${watcher.id},"revision":${revision},"events":${eventsJson}}`;
    if (!watcher.sink.push(frame)) {
      this.cancelWith(watcher, 'SLOW_CONSUMER', 'the watcher did not read its events fast enough; resume from the revision given');
      return false;
    }
    watcher.lastRevision = revision;
    watcher.lastPushMs = this.nowMs();
    return true;
  }

  private pushProgress(watcher: Watcher, revision: number, force: boolean): void {
    if (watcher.replaying || revision < watcher.lastRevision) return; // a replay is under way: nothing to bookmark yet
    if (!watcher.sink.push(JSON.stringify({ watch: watcher.id, revision, progress: true }), force)) return;
    watcher.lastRevision = revision;
    watcher.lastPushMs = this.nowMs();
  }

  private cancelWith(watcher: Watcher, code: ErrorCode, reason: string): void {
    this.remove(watcher);
    watcher.sink.push(JSON.stringify({ watch: watcher.id, canceled: true, code, reason, resumeRevision: watcher.lastRevision + 1 }), true);
  }

  private remove(watcher: Watcher): void {
    const watchers = this.bySink.get(watcher.sink);
    watchers?.delete(watcher.id);
    if (watchers?.size === 0) this.bySink.delete(watcher.sink);
    const set = this.index(watcher);
    set.delete(watcher);
    if (set.size === 0) this.indexMap(watcher.spec.scope).delete(watcher.spec.path);
  }

  private indexMap(scope: WatchScope): Map<string, Set<Watcher>> {
    return scope === 'node' ? this.byNode : scope === 'children' ? this.byParent : this.bySubtree;
  }

  private index(watcher: Watcher): Set<Watcher> {
    const map = this.indexMap(watcher.spec.scope);
    let set = map.get(watcher.spec.path);
    if (set === undefined) map.set(watcher.spec.path, (set = new Set()));
    return set;
  }

  /** Watchers whose scope holds `path`: the node itself, its parent's children, every subtree above it. */
  private *matching(path: string): Iterable<Watcher> {
    yield* this.byNode.get(path) ?? [];
    const parent = parentOf(path);
    if (parent !== null) yield* this.byParent.get(parent) ?? [];
    for (let at: string | null = path; at !== null; at = parentOf(at)) yield* this.bySubtree.get(at) ?? [];
  }
}

/**
 * One event per changed path (the node after the revision against the node before it), in path
 * order: how a revision reads when rebuilt from history, so live and replayed streams agree.
 */
function onePerPath(events: readonly ChangeEvent[], namespace: Namespace): ChangeEvent[] {
  const byPath = new Map<string, { first: ChangeEvent; last: ChangeEvent }>();
  for (const event of events) {
    const seen = byPath.get(event.path);
    if (seen === undefined) byPath.set(event.path, { first: event, last: event });
    else seen.last = event;
  }
  const out: ChangeEvent[] = [];
  for (const { first, last } of byPath.values()) {
    const prevNode = first.prevNode;
    // The node as the revision left it (a step's own event may predate a later step of the same
    // command, e.g. a child created under it); from history, which still holds the revision.
    const node = last.node === null ? null : nodeAt(namespace, last.path, last.revision) ?? last.node;
    if (prevNode === null && node === null) continue; // created and deleted within the revision: no version
    out.push({ revision: last.revision, kind: node === null ? 'delete' : prevNode === null ? 'create' : 'put', path: last.path, node, prevNode });
  }
  return out.sort((a, b) => comparePaths(a.path, b.path));
}

function nodeAt(namespace: Namespace, path: string, revision: number): NodeView | null {
  const got = namespace.get(path, revision);
  return got.ok && got.op === 'get' ? got.node : null;
}

function passes(spec: WatchSpec, change: ChangeEvent): boolean {
  if (change.kind === 'delete') return !spec.noDelete;
  return !spec.noPut;
}

function wireNode(node: NodeView): Record<string, unknown> {
  return { path: node.path, value: Buffer.from(node.value.buffer, node.value.byteOffset, node.value.byteLength).toString('base64'), stat: node.stat };
}

function wireEvent(change: ChangeEvent, withPrevNode: boolean): Record<string, unknown> {
  return {
    type: change.kind,
    path: change.path,
    ...(change.node === null ? {} : { node: wireNode(change.node) }),
    ...(withPrevNode && change.prevNode !== null ? { prevNode: wireNode(change.prevNode) } : {}),
  };
}
