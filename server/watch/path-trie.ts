/**
 * Items kept at paths, found by walking a changed path's segments from the root: the subtree
 * watchers whose root is the changed path or one of its ancestors. The walk stops at the first
 * segment no watched root continues with, so it costs at most the path's depth — and only as
 * deep as watched roots go — whatever else is registered (a scan of the watchers per ancestor
 * cost depth × watchers, and each ancestor a copy of the path).
 *
 * Must never: hold an empty node (removal prunes back to the root), or visit a node twice.
 */

import { ROOT } from '../../shared/paths.js';

interface TrieNode<T> {
  readonly children: Map<string, TrieNode<T>>;
  items: Set<T> | null;
}

export class PathTrie<T> {
  private readonly root: TrieNode<T> = { children: new Map(), items: null };

  add(path: string, item: T): void {
    let node = this.root;
    for (const segment of segmentsOf(path)) {
      let next = node.children.get(segment);
      if (next === undefined) node.children.set(segment, (next = { children: new Map(), items: null }));
      node = next;
    }
    (node.items ??= new Set()).add(item);
  }

  remove(path: string, item: T): void {
    const trail: [TrieNode<T>, string][] = [];
    let node = this.root;
    for (const segment of segmentsOf(path)) {
      const next = node.children.get(segment);
      if (next === undefined) return;
      trail.push([node, segment]);
      node = next;
    }
    node.items?.delete(item);
    if (node.items?.size === 0) node.items = null;
    // Prune the nodes left holding nothing, deepest first.
    for (let i = trail.length - 1; i >= 0; i--) {
      const [parent, segment] = trail[i]!;
      const child = parent.children.get(segment)!;
      if (child.items !== null || child.children.size > 0) break;
      parent.children.delete(segment);
    }
  }

  /** The items at `path` and at each of its ancestors that has any, root first. */
  *alongPath(path: string): IterableIterator<T> {
    let node = this.root;
    if (node.items !== null) yield* node.items;
    if (path === ROOT || node.children.size === 0) return;
    let start = 1;
    while (start <= path.length) {
      let end = path.indexOf('/', start);
      if (end < 0) end = path.length;
      const next = node.children.get(path.slice(start, end));
      if (next === undefined) return;
      node = next;
      if (node.items !== null) yield* node.items;
      if (node.children.size === 0) return;
      start = end + 1;
    }
  }
}

function segmentsOf(path: string): string[] {
  return path === ROOT ? [] : path.slice(1).split('/');
}
