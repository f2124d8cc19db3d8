/**
 * A watch as the hub keeps it: what the client asked for (WatchSpec), where its frames go
 * (WatchSink), how far it has been given (lastRevision) and its replay of history, if one is under
 * way. Shared by the hub (hub.ts: registration, live fan-out) and the replays (replays.ts).
 *
 * Must never: hold anything but a watch's own state (no I/O, no timers).
 */

import type { ChangeEvent } from '../state/types.js';

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
  /**
   * Whether the watcher's user may read a path now (auth enabled): events on other paths are
   * left out, live and replayed alike. Asked per event, so a permission revoked takes effect at
   * once.
   */
  readonly mayRead?: (path: string) => boolean;
  /**
   * Why the watch may no longer run (its connection's identity expired or was revoked, or auth
   * was turned on under an anonymous one), or null: asked once per revision it would be sent,
   * and before each replay step; a reason cancels it with UNAUTHENTICATED.
   */
  readonly allowed?: () => string | null;
}

/** A client connection's side: frames out, refused when its unsent bytes are over the bound. */
export interface WatchSink {
  /** Send a JSON text frame; false (and nothing sent) if the connection is over its bound, unless `force`. */
  push(frame: string, force?: boolean): boolean;
  /** Whether a replay may send more now (little unsent); absent: always. */
  writable?(): boolean;
  /** Call `resume` once, when the connection has drained enough to be writable again. */
  whenWritable?(resume: () => void): void;
}

/** A replay under way: the history from `next` on is still to be read; `events[at..]` read and not yet sent. */
export interface Replay {
  next: number;
  events: ChangeEvent[];
  at: number;
  /** Waiting for the connection to drain (a resume is registered). */
  waiting: boolean;
  /** In the hub's queue of replays to run. */
  queued: boolean;
}

export interface Watcher {
  readonly sink: WatchSink;
  readonly id: number;
  readonly spec: WatchSpec;
  /** The last revision delivered whole (events or progress): the next frame must be above it. */
  lastRevision: number;
  lastPushMs: number;
  /** History is being replayed: live revisions wait for the replay, which reads them from history. */
  replay: Replay | null;
  cancelled: boolean;
}

/** Whether `change` is one `spec` wants (its user may read the path; puts and deletes as asked). */
export function passes(spec: WatchSpec, change: ChangeEvent): boolean {
  if (spec.mayRead !== undefined && !spec.mayRead(change.path)) return false;
  if (change.kind === 'delete') return !spec.noDelete;
  return !spec.noPut;
}
