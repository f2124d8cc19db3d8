/**
 * Every path that has history, in subtree-contiguous order (shared/paths comparePaths), so a
 * subtree range read is one ordered walk. Backed by sorted-btree's B+ tree.
 *
 * Must never: order paths by plain string comparison ("/a-b" would split "/a"'s subtree).
 */

import { comparePaths } from '../../shared/paths.js';
import { BTree } from './btree.js';

export class PathIndex {
  private readonly tree = new BTree<string, true>(undefined, comparePaths);

  add(path: string): void {
    this.tree.set(path, true);
  }

  remove(path: string): void {
    this.tree.delete(path);
  }

  get size(): number {
    return this.tree.size;
  }

  /** Every path, in order. */
  paths(): IterableIterator<string> {
    return this.tree.keys();
  }

  /** Paths after `after` (exclusive), in order. */
  *pathsAfter(after: string): IterableIterator<string> {
    for (const path of this.tree.keys(after)) if (path !== after) yield path;
  }
}
