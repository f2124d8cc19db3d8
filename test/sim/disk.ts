/**
 * A member's in-memory disk: what survives a crash. The member writes a Ready's hard state,
 * snapshot and entries here before it sends anything; a restart sees only this. The simulator
 * and the core's unit-test harness both use it.
 *
 * In the simulator the disk is the real write-ahead log (server/storage/wal) on the in-memory
 * fault-injecting file system: each Ready is one WAL batch and one sync, a crash may cut power
 * during a sync (the batch then lands whole, torn sector by sector, or not at all), and a
 * restart reads back only what the WAL's recovery accepts. The fields below mirror what was
 * written, for the safety checker; on restart they are rebuilt from the WAL alone. Snapshot
 * bytes live beside the WAL, as the state store does for a member: durable before the WAL
 * records the base that points at them.
 *
 * Must never: keep anything a crash would lose; hold more log than the member persisted.
 */

import type { Entry, HardState, PersistedState, Ready, Snapshot, SnapshotMeta } from '../../server/raft/index.js';
import { MemoryFileSystem } from '../../server/storage/memory-file-system.js';
import { Wal } from '../../server/storage/wal/wal.js';

const WAL_DIRECTORY = '/wal';

/** What a crash chose for each unsynced write, and what recovery found, for coverage. */
export interface WalCounts {
  /** Batches a power cut interrupted, by what became of them. */
  lost: number;
  kept: number;
  torn: number;
  /** Unfinished batches recovery cut away. */
  tornTailsCut: number;
  segmentsDeleted: number;
}

export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export class SimDisk {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  snapshot: StoredSnapshot | null = null;
  /** The log after the snapshot, contiguous. */
  entries: Entry[] = [];

  private readonly fs: MemoryFileSystem | null;
  private wal: Wal | null = null;
  /** The snapshots the state store holds, by index: the WAL names the one in force. */
  private readonly snapshots = new Map<number, StoredSnapshot>();
  readonly walCounts: WalCounts = { lost: 0, kept: 0, torn: 0, tornTailsCut: 0, segmentsDeleted: 0 };

  /**
   * forgetVoteOnRestart plants a bug: recover() loses the vote. With `walSegmentBytes` the disk
   * is a real WAL on the fault-injecting file system.
   */
  constructor(
    private readonly forgetVoteOnRestart = false,
    private readonly walSegmentBytes: number | null = null,
  ) {
    this.fs = walSegmentBytes === null ? null : new MemoryFileSystem();
    if (this.fs !== null) this.wal = Wal.open(this.fs, WAL_DIRECTORY, this.walOptions()).wal;
  }

  /** The next sync loses power part-way (a crash must follow: see powerCut). */
  armPowerCut(): void {
    if (this.fs !== null) this.fs.powerCutAtNextSync = true;
  }

  disarmPowerCut(): void {
    if (this.fs !== null) this.fs.powerCutAtNextSync = false;
  }

  /**
   * The crash after a power cut: each write not yet synced is lost, kept or torn (each 512-byte
   * sector kept or not), as `choose` and `keepSector` decide (the simulator's seeded random).
   */
  powerCut(choose: () => 'lost' | 'kept' | 'torn', keepSector: () => boolean): void {
    if (this.fs === null) return;
    this.fs.powerCutAtNextSync = false;
    // One batch at most is unsynced (each Ready syncs), and it meets one fate.
    const chosen: { fate: 'lost' | 'kept' | 'torn' | null } = { fate: null };
    this.fs.crash(() => (chosen.fate ??= choose()), keepSector);
    if (chosen.fate !== null) this.walCounts[chosen.fate] += 1;
    this.wal = null;
  }

  /** Make everything written since the last sync durable: one WAL batch (a no-op without a WAL). */
  sync(): void {
    this.wal?.sync();
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
    this.wal?.setHardState(hardState);
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
    this.sync();
  }

  /** A snapshot from the leader replaces the whole log. */
  installSnapshot(snapshot: Snapshot): void {
    if (snapshot.data === null) throw new Error('sim: a snapshot to persist arrived without data');
    this.snapshot = { meta: snapshot.meta, data: snapshot.data };
    this.entries = [];
    this.keepSnapshot(this.snapshot);
    this.wal?.setBase({ meta: snapshot.meta, replacesLog: true });
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
    this.wal?.append(entries);
  }

  /** The member saved a snapshot of its own state machine at meta.index. */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    const base = this.snapshotIndex();
    this.entries = this.entries.slice(meta.index - base);
    this.snapshot = { meta, data };
    this.keepSnapshot(this.snapshot);
    if (this.wal !== null) this.walCounts.segmentsDeleted += this.wal.compact(meta);
  }

  /** The state store keeps the snapshot the WAL names and the newer ones; older ones go. */
  private keepSnapshot(snapshot: StoredSnapshot): void {
    if (this.fs === null) return;
    this.snapshots.set(snapshot.meta.index, snapshot);
    const inForce = Math.min(...[...this.snapshots.keys()].slice(-3));
    for (const index of this.snapshots.keys()) if (index < inForce) this.snapshots.delete(index);
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
    if (this.fs !== null) this.recoverFromWal();
    const hardState = this.forgetVoteOnRestart ? { ...this.hardState, vote: null } : this.hardState;
    return { hardState, snapshot: this.snapshot?.meta ?? null, entries: [...this.entries] };
  }

  /** Segment salts from a counter, not the real WAL's crypto randomness: a seed must replay. */
  private walOptions(): { segmentBytes: number; salt: () => number } {
    return { segmentBytes: this.walSegmentBytes!, salt: () => (this.salts = (this.salts + 0x9e3779b9) >>> 0) };
  }

  private salts = 0;

  /** Rebuild the mirror from what the WAL's recovery accepts, as a restarted member would. */
  private recoverFromWal(): void {
    let tornTail = false;
    const { wal, log } = Wal.open(this.fs!, WAL_DIRECTORY, { ...this.walOptions(), logger: { warn: () => void (tornTail = true) } });
    if (tornTail) this.walCounts.tornTailsCut += 1;
    this.wal = wal;
    this.hardState = log.hardState;
    this.entries = log.entries;
    if (log.base === null) {
      this.snapshot = null;
      return;
    }
    const stored = this.snapshots.get(log.base.meta.index);
    if (stored === undefined) throw new Error(`sim: the WAL's base ${log.base.meta.index} names a snapshot the store does not hold`);
    this.snapshot = { meta: log.base.meta, data: stored.data };
  }
}
