/**
 * Every path that has history, in subtree-contiguous order (shared/paths comparePaths), so a
 * subtree range read is one ordered walk. Backed by sorted-btree's B+ tree.
 *
 * Must never: order paths by plain string comparison ("/a-b" would split "/a"'s subtree).
 */

import sortedBtree from 'sorted-btree';
import { comparePaths } from '../../shared/paths.js';

// sorted-btree is CommonJS: Node's ESM loader hands over module.exports (the class is its
// `default`), while CommonJS-style interop hands over the class itself. Accept either.
type BTreeClass = typeof sortedBtree.default;
const loaded = sortedBtree as unknown as BTreeClass | { default: BTreeClass };
const BTree: BTreeClass = typeof loaded === 'function' ? loaded : loaded.default;

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

  /** Paths after `after` (exclusive) in order; stop by returning false from `visit`. */
  walkFrom(after: string, visit: (path: string) => boolean): void {
    let pair = this.tree.nextHigherPair(after);
    while (pair !== undefined) {
      if (!visit(pair[0])) return;
      pair = this.tree.nextHigherPair(pair[0]);
    }
  }
}
