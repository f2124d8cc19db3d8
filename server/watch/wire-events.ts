/**
 * A revision's changes as watchers receive them: one event per changed path (the node after the
 * revision against the node before it), in path order — how a revision reads when rebuilt from
 * history, so live and replayed streams agree — and their JSON, in fragments no bigger than a
 * bound, with an upper estimate of their size before any is built.
 *
 * Must never: split one event between fragments; under-estimate a revision's size.
 */

import { comparePaths } from '../../shared/paths.js';
import { jsonStringBytes, nodeWireBytes } from '../../shared/wire-size.js';
import type { Namespace } from '../state/namespace.js';
import { eventKind, type ChangeEvent, type NodeView } from '../state/types.js';

/**
 * One event per changed path (the node after the revision against the node before it), in path
 * order: how a revision reads when rebuilt from history, so live and replayed streams agree.
 */
export function onePerPath(events: readonly ChangeEvent[], namespace: Namespace): ChangeEvent[] {
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
    out.push({ revision: last.revision, kind: eventKind(node, prevNode), path: last.path, node, prevNode });
  }
  return out.sort((a, b) => comparePaths(a.path, b.path));
}

function nodeAt(namespace: Namespace, path: string, revision: number): NodeView | null {
  const got = namespace.get(path, revision);
  return got.ok && got.op === 'get' ? got.node : null;
}


/** A revision's events as JSON arrays of at most `bytesMax` each (one event is never split), built as they are taken. */
export function* fragmentsOf(list: readonly ChangeEvent[], withPrevNode: boolean, bytesMax: number): Generator<string, void> {
  let parts: string[] = [];
  let bytes = 0;
  for (const change of list) {
    const json = JSON.stringify(wireEvent(change, withPrevNode));
    if (parts.length > 0 && bytes + json.length > bytesMax) {
      yield `[${parts.join(',')}]`;
      parts = [];
      bytes = 0;
    }
    parts.push(json);
    bytes += json.length + 1;
  }
  yield `[${parts.join(',')}]`;
}

/** An upper bound of a revision's events in JSON. */
export function estimatedBytes(list: readonly ChangeEvent[], withPrevNode: boolean): number {
  let bytes = 2;
  for (const change of list) {
    bytes += 40 + jsonStringBytes(change.path);
    if (change.node !== null) bytes += nodeWireBytes(change.node);
    if (withPrevNode && change.prevNode !== null) bytes += nodeWireBytes(change.prevNode);
  }
  return bytes;
}

function wireNode(node: NodeView): Record<string, unknown> {
  return { path: node.path, value: Buffer.from(node.value.buffer, node.value.byteOffset, node.value.byteLength).toString('base64'), stat: node.stat };
}

export function wireEvent(change: ChangeEvent, withPrevNode: boolean): Record<string, unknown> {
  return {
    type: change.kind,
    path: change.path,
    ...(change.node === null ? {} : { node: wireNode(change.node) }),
    ...(withPrevNode && change.prevNode !== null ? { prevNode: wireNode(change.prevNode) } : {}),
  };
}
