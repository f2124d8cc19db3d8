/**
 * The changes one command makes over the namespace's live state, until it is committed at one
 * revision (all or nothing). Reads through it see the command's own earlier steps, so a
 * transaction's ops apply in order. It keeps, beside the changed nodes, which child names each
 * parent gained or lost and how many nodes each lease gained, so a recursive delete or a lease's
 * node count costs what the command touched, never a scan of everything it changed per step.
 *
 * Must never: change the live state (only Namespace.commit does), or answer children in any but
 * comparePaths order.
 */

import { comparePaths, parentOf, ROOT, utf8Bytes } from '../../shared/paths.js';
import type { ChildrenIndex } from './children-index.js';
import type { ChangeEvent, LeaseId, NodeView } from './types.js';

/** What a write set reads of the live state. */
export interface LiveView {
  liveNode(path: string): NodeView | null;
  readonly liveChildren: ChildrenIndex;
}

export class WriteSet {
  readonly changes = new Map<string, NodeView | null>();
  readonly events: { kind: ChangeEvent['kind']; path: string; node: NodeView | null }[] = [];
  /** parent → child name → present (true) or gone (false), relative to the live state. */
  private readonly childChanges = new Map<string, Map<string, boolean>>();
  /** Ephemeral nodes (and their paths' bytes) each lease gained in this command. */
  private readonly leaseGains = new Map<LeaseId, { nodes: number; pathBytes: number }>();
  /** Nodes this command created or deleted (a path's existence changed), and their paths' UTF-8 bytes, for the per-write bounds. */
  nodesChanged = 0;
  pathBytesChanged = 0;

  constructor(
    private readonly live: LiveView,
    readonly revision: number,
  ) {}

  node(path: string): NodeView | null {
    return this.changes.has(path) ? this.changes.get(path)! : this.live.liveNode(path);
  }

  /** Record `path`'s new state; `kind` names the event, or null for a parent's stat change. */
  set(path: string, node: NodeView | null, kind: ChangeEvent['kind'] | null): void {
    const before = this.node(path);
    this.changes.set(path, node);
    if (kind !== null) this.events.push({ kind, path, node });
    if ((before === null) === (node === null) || path === ROOT) return;
    this.nodesChanged += 1;
    this.pathBytesChanged += utf8Bytes(path);
    const parent = parentOf(path)!;
    const name = path.slice(parent === ROOT ? 1 : parent.length + 1);
    let names = this.childChanges.get(parent);
    if (names === undefined) this.childChanges.set(parent, (names = new Map()));
    const live = this.live.liveChildren.has(parent, name);
    if (live === (node !== null)) names.delete(name);
    else names.set(name, node !== null);
    if (node !== null && node.stat.lease !== null) {
      const gain = this.leaseGains.get(node.stat.lease) ?? { nodes: 0, pathBytes: 0 };
      this.leaseGains.set(node.stat.lease, { nodes: gain.nodes + 1, pathBytes: gain.pathBytes + utf8Bytes(path) });
    }
  }

  /** The child names of `path` as this command sees them, last first (comparePaths order reversed). */
  childNamesReversed(path: string): string[] {
    const changed = this.childChanges.get(path);
    if (changed === undefined || changed.size === 0) return [...this.live.liveChildren.namesReversed(path)];
    const names = new Set(this.live.liveChildren.names(path));
    for (const [name, present] of changed) {
      if (present) names.add(name);
      else names.delete(name);
    }
    return [...names].sort((a, b) => comparePaths(b, a));
  }

  /** Ephemeral nodes `lease` gained in this command, and their paths' bytes (deleted ones not subtracted: a bound, not a count). */
  leaseGain(lease: LeaseId): { readonly nodes: number; readonly pathBytes: number } {
    return this.leaseGains.get(lease) ?? { nodes: 0, pathBytes: 0 };
  }
}
