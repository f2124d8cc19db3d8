/**
 * The Cache's subtree in memory (the mirror half of Curator's CuratorCache, a Kubernetes
 * informer's store): nodes by path, child names by parent, a whole snapshot installed at once,
 * a revision's watch events applied at once, and the difference between what it holds and a
 * fresh snapshot. Pure data: no I/O, no clock.
 *
 * Derived stat: a child's coming or going changes its parent's `numChildren` and
 * `childrenVersion` without an event for the parent. The mirror keeps `numChildren` from its own
 * child names (always exact) and adds one to `childrenVersion` per child created or deleted,
 * unless the parent's own event of that revision already carried its final stat. The one case
 * no event shows — a transaction that creates and deletes the same child — leaves
 * `childrenVersion` low until the parent's next event or a rebuild.
 *
 * Must never: hold more than `maxNodes` nodes (TOO_LARGE instead, with nothing of the revision
 * applied); keep a node below one it deleted; report a `numChildren` other than its count of
 * children.
 */

import { WardenError, type WardenNode, type WatchEvent } from '../public.js';

/** One node's change as the mirror applied it: the node after it (null when deleted) and before it. */
export interface CacheChange<V = string> {
  readonly type: 'create' | 'put' | 'delete';
  readonly path: string;
  /** The revision the change came with (after a rebuild: the rebuild's revision). */
  readonly revision: number;
  readonly node: WardenNode<V> | null;
  readonly prevNode: WardenNode<V> | null;
}

interface Entry<V> {
  node: WardenNode<V>;
  /** The revision whose final stat `node` carries: a child's event of a later revision moves its children counts. */
  syncedAt: number;
}

export class SubtreeMirror<V> {
  private readonly entries = new Map<string, Entry<V>>();
  /** parent path → child names, for every held node with children. */
  private readonly childNames = new Map<string, Set<string>>();

  constructor(
    /** The subtree's root (`/` for the whole namespace). */
    readonly root: string,
    readonly maxNodes: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(path: string): WardenNode<V> | null {
    return this.entries.get(path)?.node ?? null;
  }

  /** Child names in path order, or null when `path` is not held. */
  children(path: string): string[] | null {
    if (!this.entries.has(path)) return null;
    return [...(this.childNames.get(path) ?? [])].sort(comparePathText);
  }

  /** Every node, in path order. */
  nodes(): WardenNode<V>[] {
    return [...this.entries.values()].map((entry) => entry.node).sort((a, b) => comparePathText(a.path, b.path));
  }

  /** Whether `path` is the root or below it. */
  covers(path: string): boolean {
    return path === this.root || path.startsWith(this.root === '/' ? '/' : `${this.root}/`);
  }

  /** The TOO_LARGE error for holding `count` nodes. */
  tooMany(count: number): WardenError {
    return new WardenError('TOO_LARGE', `the cache of ${this.root} would hold ${count} nodes, more than its maxNodes (${this.maxNodes}); cache a smaller subtree or raise maxNodes`, {
      limit: { name: 'maxNodes', flag: 'maxNodes', value: this.maxNodes },
    });
  }

  clear(): void {
    this.entries.clear();
    this.childNames.clear();
  }

  /** Hold exactly `nodes` (a snapshot read at `revision`) from now on. */
  install(nodes: ReadonlyMap<string, WardenNode<V>>, revision: number): void {
    if (nodes.size > this.maxNodes) throw this.tooMany(nodes.size);
    this.clear();
    for (const [path, node] of nodes) {
      this.entries.set(path, { node, syncedAt: revision });
      if (path !== this.root) this.linkChild(path);
    }
  }

  /**
   * What changed between what is held and `nodes` (read at `revision`): deletes first, deepest
   * first; then creates and puts, parents first — applied in order, no node is ever orphaned. A
   * node deleted and made again in between is told as a delete and a create.
   */
  diff(nodes: ReadonlyMap<string, WardenNode<V>>, revision: number): CacheChange<V>[] {
    const deletes: CacheChange<V>[] = [];
    const writes: CacheChange<V>[] = [];
    for (const [path, entry] of this.entries) {
      if (!nodes.has(path)) deletes.push({ type: 'delete', path, revision, node: null, prevNode: entry.node });
    }
    for (const [path, node] of nodes) {
      const before = this.entries.get(path)?.node ?? null;
      if (before === null) writes.push({ type: 'create', path, revision, node, prevNode: null });
      else if (before.stat.createRevision !== node.stat.createRevision) {
        deletes.push({ type: 'delete', path, revision, node: null, prevNode: before });
        writes.push({ type: 'create', path, revision, node, prevNode: null });
      } else if (before.stat.modRevision !== node.stat.modRevision) writes.push({ type: 'put', path, revision, node, prevNode: before });
    }
    deletes.sort((a, b) => comparePathText(b.path, a.path));
    writes.sort((a, b) => comparePathText(a.path, b.path));
    return [...deletes, ...writes];
  }

  /**
   * One revision's events (in path order, as the member sends them), applied whole; answers the
   * changes as applied. A deleted node takes what is held below it along (told deepest first).
   * Throws TOO_LARGE, with nothing applied, if the revision would pass maxNodes.
   */
  apply(events: readonly WatchEvent<V>[]): CacheChange<V>[] {
    if (events.length === 0) return [];
    const revision = events[0]!.revision;
    let created = 0;
    let deleted = 0;
    for (const event of events) {
      const held = this.entries.has(event.path);
      if (event.node !== null && !held) created += 1;
      else if (event.node === null && held) deleted += 1;
    }
    // Deletes count here only as their own events (descendants taken along only lower the count further).
    if (this.entries.size + created - deleted > this.maxNodes) throw this.tooMany(this.entries.size + created - deleted);
    const changes: CacheChange<V>[] = [];
    for (const event of events) {
      const before = this.entries.get(event.path)?.node ?? null;
      if (event.node === null) {
        if (before !== null) this.removeSubtree(event.path, revision, changes);
        continue;
      }
      this.entries.set(event.path, { node: event.node, syncedAt: revision });
      if (before === null) {
        if (event.path !== this.root) this.linkChild(event.path);
        this.childrenMoved(event.path, revision, 1);
      } else if (before.stat.createRevision !== event.node.stat.createRevision) {
        this.childrenMoved(event.path, revision, 2); // deleted and made again within the revision
      }
      changes.push({ type: before === null ? 'create' : 'put', path: event.path, revision, node: event.node, prevNode: before });
    }
    if (this.entries.size > this.maxNodes) throw new Error(`SubtreeMirror: ${this.entries.size} nodes held, past maxNodes ${this.maxNodes}`);
    return changes;
  }

  /** `path` and everything held below it are gone (a recursive delete's own events then find nothing left). */
  private removeSubtree(path: string, revision: number, changes: CacheChange<V>[]): void {
    const before = this.entries.get(path)!.node;
    for (const name of [...(this.childNames.get(path) ?? [])].sort((a, b) => comparePathText(b, a))) this.removeSubtree(childPath(path, name), revision, changes);
    this.entries.delete(path);
    this.childNames.delete(path);
    if (path !== this.root) {
      this.childNames.get(parentPath(path))?.delete(path.slice(path.lastIndexOf('/') + 1));
      this.childrenMoved(path, revision, 1);
    }
    changes.push({ type: 'delete', path, revision, node: null, prevNode: before });
  }

  private linkChild(path: string): void {
    const parent = parentPath(path);
    let names = this.childNames.get(parent);
    if (names === undefined) this.childNames.set(parent, (names = new Set()));
    names.add(path.slice(path.lastIndexOf('/') + 1));
  }

  /** A child of `path`'s parent came or went at `revision`: the parent's children counts move, unless its own event of that revision set them. */
  private childrenMoved(path: string, revision: number, changes: number): void {
    if (path === this.root) return; // its parent is outside the subtree
    const parent = this.entries.get(parentPath(path));
    if (parent === undefined) return;
    const stat = parent.node.stat;
    const numChildren = this.childNames.get(parent.node.path)?.size ?? 0;
    const childrenVersion = parent.syncedAt >= revision ? stat.childrenVersion : stat.childrenVersion + changes;
    if (stat.numChildren === numChildren && stat.childrenVersion === childrenVersion) return;
    // A new object: nodes handed out earlier stay as they were.
    parent.node = { ...parent.node, stat: { ...stat, numChildren, childrenVersion } };
  }
}

function parentPath(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/**
 * The namespace's path order (shared/paths.ts `comparePaths`): segment by segment, by code
 * point, a path before its extensions — so `/a/b` sorts before `/a-b`, as members list them.
 */
export function comparePathText(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(j)!;
    if (ca !== cb) {
      if (ca === 0x2f) return -1; // a's segment ended first
      if (cb === 0x2f) return 1;
      return ca < cb ? -1 : 1;
    }
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return a.length - i - (b.length - j);
}
