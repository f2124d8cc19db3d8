/**
 * The in-memory twin of the KvEngine (the state machine's storage seam): a B+ tree over byte
 * keys with RocksDB's semantics — atomic batches, bytewise order, copies in and out — and a
 * crash switch for tests and the simulator: `crash()` forgets the batches written without sync since the last
 * synced one, as a power cut may (newest first, never a hole in the middle).
 *
 * Must never: keep a reference to a caller's buffer or hand out its own; apply half a batch.
 */

import { BTree } from './btree.js';
import { compareKeys, type KvEngine, type KvWrite, type KvWriteOptions } from './kv-engine.js';

export class MemoryKvEngine implements KvEngine {
  private readonly tree = new BTree<Uint8Array, Uint8Array>(undefined, compareKeys);
  /** Undo records of the batches written without sync since the last synced one, oldest first. */
  private unsynced: { key: Uint8Array; before: Uint8Array | undefined }[][] = [];
  private closed = false;

  async write(batch: readonly KvWrite[], options: KvWriteOptions): Promise<void> {
    this.writeNow(batch, options);
  }

  /** `write`, done before returning: the deterministic simulator drives the twin synchronously. */
  writeNow(batch: readonly KvWrite[], options: KvWriteOptions): void {
    this.checkOpen();
    const undo: { key: Uint8Array; before: Uint8Array | undefined }[] = [];
    for (const op of batch) {
      const key = op.key.slice();
      undo.push({ key, before: this.tree.get(key) });
      if (op.type === 'put') this.tree.set(key, op.value.slice());
      else this.tree.delete(key);
    }
    if (options.sync) this.unsynced = [];
    else this.unsynced.push(undo);
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.checkOpen();
    return this.tree.get(key)?.slice();
  }

  async *scan(range: { readonly gte: Uint8Array; readonly lt: Uint8Array }): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    this.checkOpen();
    // Collected first: a scan sees the state when it began, as a RocksDB iterator's snapshot does.
    const found: [Uint8Array, Uint8Array][] = [];
    this.tree.forRange(range.gte, range.lt, false, (key, value) => {
      found.push([key.slice(), value.slice()]);
    });
    yield* found;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** A power cut: the newest `lose` unsynced batches (default: all of them) are gone. */
  crash(lose = this.unsynced.length): void {
    const count = Math.min(lose, this.unsynced.length);
    for (let i = 0; i < count; i++) {
      const undo = this.unsynced.pop()!;
      for (let j = undo.length - 1; j >= 0; j--) {
        const { key, before } = undo[j]!;
        if (before === undefined) this.tree.delete(key);
        else this.tree.set(key, before);
      }
    }
    this.unsynced = [];
    this.closed = false;
  }

  /** An independent copy, unsynced batches included (what a crash of it would keep is the same). */
  clone(): MemoryKvEngine {
    const copy = new MemoryKvEngine();
    for (const [key, value] of this.tree.entries()) copy.tree.set(key.slice(), value.slice());
    copy.unsynced = this.unsynced.map((undo) => undo.map(({ key, before }) => ({ key: key.slice(), before: before?.slice() })));
    copy.closed = this.closed;
    return copy;
  }

  /** Every entry in key order, for comparing two engines byte for byte. */
  entries(): [Uint8Array, Uint8Array][] {
    return [...this.tree.entries()].map(([key, value]) => [key.slice(), value.slice()]);
  }

  get size(): number {
    return this.tree.size;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the key-value engine is closed');
  }
}
