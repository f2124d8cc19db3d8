/**
 * The storage seam of the state machine: an ordered key-value engine with atomic write batches
 * and ordered scans, which RocksDB backs in a running member (server/storage) and an in-memory
 * twin backs in tests and the simulator (memory-kv.ts). Keys and values are bytes; keys sort
 * bytewise, which is RocksDB's default comparator.
 *
 * Must never: apply part of a batch (a batch is all or nothing, even across a crash), reorder
 * two writes (a later write's batch never lands before an earlier one's), or hand out a buffer
 * the engine will change afterwards.
 */

export type KvWrite =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

export interface KvWriteOptions {
  /** Durable (fsynced) before the promise resolves. Unsynced batches may be lost at a power cut, newest first. */
  readonly sync: boolean;
}

export interface KvEngine {
  /** Apply every put and delete of the batch atomically. */
  write(batch: readonly KvWrite[], options: KvWriteOptions): Promise<void>;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Every entry with gte <= key < lt, in key order. */
  scan(range: { readonly gte: Uint8Array; readonly lt: Uint8Array }): AsyncIterable<readonly [Uint8Array, Uint8Array]>;
  close(): Promise<void>;
}

/** Bytewise order, shorter first on a common prefix: the order of every KvEngine. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
