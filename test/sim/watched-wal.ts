/**
 * The simulator's window on a member's write-ahead log: the real Wal, passed through whole, with
 * a record of what it has made durable (the hard state and the last index the last completed
 * sync covered) and of the terms it holds, for the safety checker. Entries are shown to the
 * checker as they are written, before the sync.
 *
 * Must never: change what reaches the Wal, or count a write as durable before its sync returned.
 */

import type { Entry, HardState, SnapshotMeta } from '../../server/raft/index.js';
import type { RuntimeWal } from '../../server/node/runtime.js';
import type { LogBase } from '../../server/storage/wal/record.js';
import type { Wal } from '../../server/storage/wal/wal.js';

/** What a member's disk holds for sure, as the checker's persisting contract sees it. */
export interface DurableView {
  readonly hardState: HardState;
  lastIndex(): number;
}

export interface WalWatcher {
  /** Entries about to be written, with the term this log holds before each (undefined: a gap). */
  persisting(entries: readonly Entry[], termAt: (index: number) => number | undefined): void;
  /** A leader's snapshot became this log's base. */
  installing(meta: SnapshotMeta): void;
  /** The low-water mark moved and `segments` whole segments were deleted. */
  compacted(segments: number): void;
}

export class WatchedWal implements RuntimeWal, DurableView {
  hardState: HardState;
  private durableLast: number;
  private writtenHardState: HardState;
  private writtenLast: number;
  /** The written log's terms above its base, by index; the base's own. */
  private readonly terms = new Map<number, number>();
  private base: { index: number; term: number };

  constructor(
    private readonly wal: Wal,
    recovered: { readonly hardState: HardState; readonly base: { readonly meta: SnapshotMeta } | null; readonly entries: readonly Entry[]; readonly lastIndex: number },
    private readonly watcher: WalWatcher,
  ) {
    this.hardState = this.writtenHardState = recovered.hardState;
    this.durableLast = this.writtenLast = recovered.lastIndex;
    this.base = { index: recovered.base?.meta.index ?? 0, term: recovered.base?.meta.term ?? 0 };
    for (const entry of recovered.entries) this.terms.set(entry.index, entry.term);
  }

  lastIndex(): number {
    return this.durableLast;
  }

  get wantsSpare(): boolean {
    return this.wal.wantsSpare;
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    this.watcher.persisting(entries, (index) => (index === this.base.index ? this.base.term : this.terms.get(index)));
    this.wal.append(entries);
    for (let index = entries[0]!.index; index <= this.writtenLast; index++) this.terms.delete(index);
    for (const entry of entries) this.terms.set(entry.index, entry.term);
    this.writtenLast = entries[entries.length - 1]!.index;
  }

  setHardState(hardState: HardState): void {
    this.wal.setHardState(hardState);
    this.writtenHardState = hardState;
  }

  setBase(base: LogBase): void {
    if (base.replacesLog) {
      this.watcher.installing(base.meta);
      this.terms.clear();
      this.writtenLast = base.meta.index;
    }
    this.base = { index: base.meta.index, term: base.meta.term };
    this.wal.setBase(base);
  }

  write(): number {
    return this.wal.write();
  }

  async syncAsync(): Promise<number> {
    const covered = { hardState: this.writtenHardState, last: this.writtenLast };
    const bytes = await this.wal.syncAsync();
    this.becameDurable(covered);
    return bytes;
  }

  compact(meta: SnapshotMeta): number {
    const covered = { hardState: this.writtenHardState, last: this.writtenLast };
    const removed = this.wal.compact(meta);
    this.becameDurable(covered);
    this.watcher.compacted(removed);
    for (const index of this.terms.keys()) if (index <= meta.index) this.terms.delete(index);
    this.base = { index: meta.index, term: meta.term };
    return removed;
  }

  prepareSpare(): Promise<void> {
    return this.wal.prepareSpare();
  }

  close(): void {
    this.wal.close();
  }

  private becameDurable(covered: { hardState: HardState; last: number }): void {
    this.hardState = covered.hardState;
    this.durableLast = covered.last;
  }
}
