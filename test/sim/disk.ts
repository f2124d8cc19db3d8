/**
 * The Raft core's unit-test harness disk (test/server/raft): what a member persisted — hard
 * state, snapshot and the log after it — written whole at each Ready, kept across a restart.
 * (The simulator's members persist through the real WAL and state store: sim-member.ts.)
 *
 * Must never: keep anything a crash would lose; hold more log than the member persisted.
 */

import type { Entry, HardState, PersistedState, Ready, Snapshot, SnapshotMeta } from '../../server/raft/index.js';

export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export class SimDisk {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  snapshot: StoredSnapshot | null = null;
  /** The log after the snapshot, contiguous. */
  entries: Entry[] = [];

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /** A disk that already holds `persisted` (with `snapshotData` as the snapshot's bytes). */
  static from(persisted: PersistedState, snapshotData: Uint8Array): SimDisk {
    const disk = new SimDisk();
    disk.hardState = persisted.hardState;
    disk.snapshot = persisted.snapshot === null ? null : { meta: persisted.snapshot, data: snapshotData };
    disk.entries = [...persisted.entries];
    return disk;
  }

  /** Step 1 of the Ready contract, whole: hard state, snapshot, entries. */
  persist(rd: Ready): void {
    if (rd.snapshot !== null) this.installSnapshot(rd.snapshot);
    this.appendEntries(rd.entries);
    if (rd.hardState !== null) this.setHardState(rd.hardState);
  }

  /** A snapshot from the leader replaces the whole log. */
  installSnapshot(snapshot: Snapshot): void {
    if (snapshot.data === null) throw new Error('sim: a snapshot to persist arrived without data');
    this.snapshot = { meta: snapshot.meta, data: snapshot.data };
    this.entries = [];
  }

  /** Append entries, dropping any persisted suffix from entries[0].index on. */
  appendEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first > this.lastIndex() + 1) throw new Error(`sim: persisting ${first} leaves a gap after ${this.lastIndex()}`);
    if (first <= this.snapshotIndex()) throw new Error(`sim: persisting ${first} inside the snapshot`);
    this.entries.length = first - this.snapshotIndex() - 1;
    for (const e of entries) {
      if (e.index !== this.lastIndex() + 1) throw new Error(`sim: entries to persist are not contiguous at ${e.index}`);
      this.entries.push(e);
    }
  }

  /** The member saved a snapshot of its own state machine at meta.index. */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    const base = this.snapshotIndex();
    this.entries = this.entries.slice(meta.index - base);
    this.snapshot = { meta, data };
  }

  snapshotIndex(): number {
    return this.snapshot?.meta.index ?? 0;
  }

  lastIndex(): number {
    return this.snapshotIndex() + this.entries.length;
  }

  termAt(index: number): number | undefined {
    const base = this.snapshotIndex();
    if (index === base) return this.snapshot?.meta.term ?? 0;
    if (index < base || index > this.lastIndex()) return undefined;
    return this.entries[index - base - 1]!.term;
  }

  recover(): PersistedState {
    return { hardState: this.hardState, snapshot: this.snapshot?.meta ?? null, entries: [...this.entries] };
  }
}
