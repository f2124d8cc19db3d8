/**
 * sorted-btree's B+ tree class, loaded the same way however this module is run. The package is
 * CommonJS: Node's ESM loader hands over module.exports (the class is its `default`), while
 * CommonJS-style interop (tsx, bundlers) hands over the class itself. Accept either.
 *
 * Must never: hold state; this is only the import.
 */

import sortedBtree from 'sorted-btree';

export type BTreeClass = typeof sortedBtree.default;

const loaded = sortedBtree as unknown as BTreeClass | { default: BTreeClass };
export const BTree: BTreeClass = typeof loaded === 'function' ? loaded : loaded.default;
