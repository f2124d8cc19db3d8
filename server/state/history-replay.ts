/**
 * History read back as watch events, a slice at a time (State Watch replay): whole revisions,
 * in order, from the revision index, each revision's events in path order — the same events a
 * watcher following live revisions was sent. A slice ends once it holds enough events or has
 * looked at enough changes, so a replay of a long history is many small pieces of work, never
 * one that holds the member's event loop.
 *
 * Must never: split a revision between slices, or emit an event that was not a write of the
 * node itself (a parent's children count moving is not an event).
 */

import type { ErrorCode } from '../../shared/errors.js';
import { comparePaths, isAncestorOf, parentOf } from '../../shared/paths.js';
import type { RevisionIndex } from './revision-index.js';
import { eventKind, type ChangeEvent, type NodeView } from './types.js';

/** One state of a path, from revision `since` until the next version's `since`. */
export interface Version {
  readonly since: number;
  readonly node: NodeView | null; // null: the path did not exist
}

export interface ReplayBudget {
  /** A slice ends after the revision that brings it to this many events. */
  readonly eventsMax: number;
  /** ...or after the revision that brings it to this many changed paths looked at. */
  readonly scanMax: number;
}

export type ReplaySlice =
  | { readonly ok: true; readonly events: ChangeEvent[]; readonly nextRevision: number; readonly done: boolean }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly compactRevision: number };

/** What a replay reads of the namespace. */
export interface HistoryView {
  readonly revisions: RevisionIndex;
  versionsOf(path: string): readonly Version[] | undefined;
  /** The current revision. */
  readonly revision: number;
}

/** Whether a change at `changed` is in a watch's scope. */
function inScope(changed: string, path: string, scope: 'node' | 'children' | 'subtree'): boolean {
  if (scope === 'node') return changed === path;
  if (scope === 'children') return changed !== path && parentOf(changed) === path;
  return changed === path || isAncestorOf(path, changed);
}

/** The event `path`'s version at exactly `revision` makes, or null if it makes none. */
function eventAt(versions: readonly Version[], revision: number, path: string): ChangeEvent | null {
  let lo = 0;
  let hi = versions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const since = versions[mid]!.since;
    if (since === revision) {
      const version = versions[mid]!;
      const before = mid > 0 ? versions[mid - 1]!.node : null;
      // Only writes of the node itself are events: a version made because a child came or went
      // (its children counts moved, modRevision did not) is not, nor is the "delete" of a path
      // created and deleted within one revision.
      if (version.node !== null && version.node.stat.modRevision !== version.since) return null;
      if (version.node === null && before === null) return null;
      return { revision, kind: eventKind(version.node, before), path, node: version.node, prevNode: before };
    }
    if (since < revision) lo = mid + 1;
    else hi = mid - 1;
  }
  return null;
}

export function changesSlice(view: HistoryView, fromRevision: number, path: string, scope: 'node' | 'children' | 'subtree', budget: ReplayBudget): ReplaySlice {
  const { revisions } = view;
  const events: ChangeEvent[] = [];
  let position = revisions.seek(fromRevision);
  let scanned = 0;
  while (position < revisions.end) {
    const revision = revisions.revisionAt(position);
    const inRevision: ChangeEvent[] = [];
    for (; position < revisions.end && revisions.revisionAt(position) === revision; position++) {
      scanned += 1;
      const changed = revisions.pathAt(position);
      if (!inScope(changed, path, scope)) continue;
      const event = eventAt(view.versionsOf(changed) ?? [], revision, changed);
      if (event !== null) inRevision.push(event);
    }
    inRevision.sort((a, b) => comparePaths(a.path, b.path));
    for (const event of inRevision) events.push(event);
    if (events.length >= budget.eventsMax || scanned >= budget.scanMax) {
      const nextRevision = position < revisions.end ? revisions.revisionAt(position) : view.revision + 1;
      return { ok: true, events, nextRevision, done: nextRevision > view.revision };
    }
  }
  return { ok: true, events, nextRevision: view.revision + 1, done: true };
}
