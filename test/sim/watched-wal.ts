/**
 * The simulator's window on a member's write-ahead log: the real Wal, passed through whole, with
 * a record of what it has made durable (the hard state and the last index the last completed
 * sync covered) and of the terms it holds, for the safety checker. Entries are shown to the
 * checker once the sync that covers them returned, and those a restarted member recovers: a
 * batch a power cut took never existed (a lone voter may then lead the same term again, and
 * write other entries at the same indexes — seed 937), while one that landed is checked as it
 * comes back.
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
  /** Entries made durable (or recovered at start), with the term this log held before each when written (undefined: a gap). */
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
  /** Entries written since the last sync began, each batch with the term before its first entry. */
  private unsynced: { readonly entries: readonly Entry[]; readonly prevTerm: number | undefined }[] = [];

  constructor(
    private readonly wal: Wal,
    recovered: { readonly hardState: HardState; readonly base: { readonly meta: SnapshotMeta } | null; readonly entries: readonly Entry[]; readonly lastIndex: number },
    private readonly watcher: WalWatcher,
  ) {
    this.hardState = this.writtenHardState = recovered.hardState;
    this.durableLast = this.writtenLast = recovered.lastIndex;
    this.base = { index: recovered.base?.meta.index ?? 0, term: recovered.base?.meta.term ?? 0 };
    for (const entry of recovered.entries) this.terms.set(entry.index, entry.term);
    const first = recovered.entries[0];
    if (first !== undefined) watcher.persisting(recovered.entries, (index) => (index === first.index - 1 ? this.termBefore(first.index) : undefined));
  }

  /** The term this log holds just before `index` (undefined: a gap). */
  private termBefore(index: number): number | undefined {
    return index - 1 === this.base.index ? this.base.term : this.terms.get(index - 1);
  }

  lastIndex(): number {
    return this.durableLast;
  }

  get wantsSpare(): boolean {
    return this.wal.wantsSpare;
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    this.unsynced.push({ entries, prevTerm: this.termBefore(entries[0]!.index) });
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
    const covered = { hardState: this.writtenHardState, last: this.writtenLast, batches: this.unsynced.splice(0) };
    const bytes = await this.wal.syncAsync();
    this.becameDurable(covered);
    return bytes;
  }

  compact(meta: SnapshotMeta): number {
    const covered = { hardState: this.writtenHardState, last: this.writtenLast, batches: this.unsynced.splice(0) };
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

  private becameDurable(covered: { hardState: HardState; last: number; batches: WatchedWal['unsynced'] }): void {
    this.hardState = covered.hardState;
    this.durableLast = covered.last;
    for (const { entries, prevTerm } of covered.batches) {
      const before = entries[0]!.index - 1;
      this.watcher.persisting(entries, (index) => (index === before ? prevTerm : undefined));
    }
  }
}
