/**
 * Each live node's child names, kept sorted (code point order, as comparePaths orders siblings),
 * so listing children, paging them and deleting a subtree cost the names they touch, never a
 * sort of every sibling per request. A B+ tree per parent (sorted-btree); nodes without
 * children have none.
 *
 * Must never: order names other than by comparePaths (answers and events rely on that order);
 * keep an empty tree for a parent (memory grows with parents, not with deletes).
 */

import { comparePaths } from '../../shared/paths.js';
import { BTree } from './btree.js';

type NameTree = InstanceType<typeof BTree<string, undefined>>;

export class ChildrenIndex {
  private readonly byParent = new Map<string, NameTree>();

  add(parent: string, name: string): void {
    let names = this.byParent.get(parent);
    if (names === undefined) this.byParent.set(parent, (names = new BTree<string, undefined>(undefined, comparePaths)));
    names.set(name, undefined);
  }

  remove(parent: string, name: string): void {
    const names = this.byParent.get(parent);
    if (names === undefined) return;
    names.delete(name);
    if (names.size === 0) this.byParent.delete(parent);
  }

  has(parent: string, name: string): boolean {
    return this.byParent.get(parent)?.has(name) ?? false;
  }

  count(parent: string): number {
    return this.byParent.get(parent)?.size ?? 0;
  }

  /** Child names of `parent` in order (from `from` on, inclusive, if given). */
  *names(parent: string, from?: string): IterableIterator<string> {
    const names = this.byParent.get(parent);
    if (names !== undefined) yield* names.keys(from);
  }

  /** Child names of `parent` in reverse order. */
  *namesReversed(parent: string): IterableIterator<string> {
    const names = this.byParent.get(parent);
    if (names === undefined) return;
    for (const [name] of names.entriesReversed()) yield name;
  }
}
