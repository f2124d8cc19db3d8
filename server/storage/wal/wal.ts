/**
 * The write-ahead log (Write-Ahead Log, Segmented Log, Low-Water Mark): Raft's entries, hard
 * state and log base, appended to numbered segment files and made durable by one fdatasync per
 * turn of the update loop (Request Batch: group commit). Segments are preallocated with zeros,
 * so an append overwrites allocated blocks and fdatasync flushes data, not file-size metadata.
 * Compaction deletes whole segments below the low-water mark.
 *
 * Use: stage a turn's records (append, setHardState, setBase), then sync() or syncAsync() — one
 * write and one fdatasync for everything staged — before acting on them (sending messages,
 * applying); write() alone for a batch whose loss is harmless (the next sync covers it). A
 * failed write or sync throws and leaves the WAL unusable: the member must stop.
 *
 * Must never: report a sync before the data is durable; write into a segment it did not
 * recover or cut; delete a segment holding an entry above the low-water mark.
 */

import { randomInt } from 'node:crypto';
import type { Entry, HardState, SnapshotMeta } from '../../raft/types.js';
import type { WalFile, WalFileSystem } from '../file-system.js';
import {
  COMMIT_RECORD_BYTES,
  encodeBase,
  encodeHardState,
  encodeSegmentHeader,
  entryRecordBytes,
  HEADER_BYTES,
  RecordType,
  writeCommit,
  writeEntryRecord,
  writeRecord,
  type LogBase,
} from './record.js';
import { recover, type RecoveredLog } from './recover.js';

export const SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024;
const ZEROS = new Uint8Array(1024 * 1024);
const SECTOR_BYTES = 512;
const SEGMENT_NAME = /^([0-9a-f]{16})\.wal$/;
/** The next segment, zero-filled ahead of time; not a segment until a cut renames it. */
const SPARE_NAME = 'spare.wal.tmp';

export interface WalLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface WalOptions {
  /** Cut a new segment once this many bytes are written (64 MiB default). */
  readonly segmentBytes?: number;
  /** Recovery keeps entries from this index on (the state store's applied index); older ones are only checked. */
  readonly keepFrom?: number;
  readonly logger?: WalLogger;
  /** A new segment's COMMIT salt (32 bits); random by default. The simulator passes a seeded one. */
  readonly salt?: () => number;
}

interface Segment {
  readonly name: string;
  readonly seq: number;
  maxIndex: number;
}

type Staged = { readonly kind: 'entries'; readonly entries: readonly Entry[] } | { readonly kind: 'record'; readonly type: RecordType; readonly payload: Uint8Array };

export class Wal {
  private readonly segments: Segment[];
  private file: WalFile;
  private position: number;
  private staged: Staged[] = [];
  private stagedBytes = 0;
  /** Where the current segment's header batch ends: a segment with nothing after it is never cut again. */
  private headerEnd = 0;
  /** The hard state and base as last written (a new segment's header repeats them: never staged ones). */
  private hardState: HardState;
  private base: LogBase | null;
  private stagedHardState: HardState | null = null;
  /** The current segment's COMMIT salt. */
  private salt = 0;
  private stagedBase: LogBase | null = null;
  private broken: Error | null = null;
  /** A batch was written but not yet fdatasynced (write() without sync()). */
  private unsynced = false;
  /** The spare segment: none, being zero-filled off the loop, or ready for the next cut. */
  private spare: 'none' | 'preparing' | 'ready' = 'none';

  private constructor(
    private readonly fs: WalFileSystem,
    private readonly directory: string,
    private readonly segmentBytes: number,
    private readonly newSalt: () => number,
    recovered: RecoveredLog,
    file: WalFile,
    position: number,
  ) {
    this.segments = recovered.segments.map((s) => ({ name: s.name, seq: s.seq, maxIndex: s.maxIndex }));
    this.hardState = recovered.hardState;
    this.base = recovered.base;
    this.file = file;
    this.position = position;
  }

  /**
   * Open the WAL in `directory` (created, with a first segment, if empty): recover every segment,
   * repair a torn tail (zeroed from where the unfinished batch began, with a warning), and be
   * ready to append after the last complete batch. Throws WalCorruption on damage it must not repair.
   */
  static open(fs: WalFileSystem, directory: string, options: WalOptions = {}): { wal: Wal; log: RecoveredLog } {
    const segmentBytes = options.segmentBytes ?? SEGMENT_BYTES_DEFAULT;
    const newSalt = options.salt ?? (() => randomInt(0, 0x1_0000_0000));
    if (!Number.isInteger(segmentBytes) || segmentBytes < 4096) throw new RangeError(`segmentBytes must be an integer of at least 4096, got ${segmentBytes}`);
    fs.mkdirp(directory);
    // A spare left by a crash may be half written; it is not part of the log either way.
    if (fs.list(directory).includes(SPARE_NAME)) fs.remove(fs.join(directory, SPARE_NAME));
    const names = fs
      .list(directory)
      .filter((name) => SEGMENT_NAME.test(name))
      .sort();
    const log = recover(
      names.map((name) => ({ name, seq: parseInt(SEGMENT_NAME.exec(name)![1]!, 16), bytes: fs.read(fs.join(directory, name)) })),
      options.keepFrom ?? 0,
    );
    if (log.tornTail !== null) {
      options.logger?.warn({ event: 'wal_torn_tail_cut', file: log.tornTail.name, offset: log.tornTail.offset, reason: log.tornTail.reason }, 'cut a torn write at the end of the log (a crash during a write that was never acknowledged)');
      const path = fs.join(directory, log.tornTail.name);
      if (log.tornTail.offset === 0) {
        fs.remove(path);
        fs.syncDirectory(directory);
      } else {
        const file = fs.open(path, false);
        zeroFill(file, log.tornTail.offset, fs.read(path).length);
        file.sync();
        file.close();
      }
    }
    const last = log.segments[log.segments.length - 1];
    if (last === undefined) {
      const wal = new Wal(fs, directory, segmentBytes, newSalt, { ...log, segments: [] }, NO_FILE, 0);
      wal.cut(0);
      return { wal, log };
    }
    const wal = new Wal(fs, directory, segmentBytes, newSalt, log, fs.open(fs.join(directory, last.name), false), last.end);
    wal.salt = last.salt;
    return { wal, log };
  }

  /** Stage entries (an index at or below the last replaces that suffix). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    this.staged.push({ kind: 'entries', entries });
    for (const entry of entries) this.stagedBytes += entryRecordBytes(entry);
  }

  setHardState(hardState: HardState): void {
    // Only the newest staged hard state counts: one waiting for a sync is replaced, not piled on.
    const waiting = this.staged.findIndex((item) => item.kind === 'record' && item.type === RecordType.HARD_STATE);
    if (waiting >= 0) {
      const [dropped] = this.staged.splice(waiting, 1);
      if (dropped!.kind === 'record') this.stagedBytes -= HEADER_BYTES + dropped!.payload.length;
    }
    this.stage(RecordType.HARD_STATE, encodeHardState(hardState));
    this.stagedHardState = hardState;
  }

  /** Stage a log base: an installed snapshot (replacing the log) or a compaction point. */
  setBase(base: LogBase): void {
    this.stage(RecordType.BASE, encodeBase(base));
    this.stagedBase = { meta: base.meta, replacesLog: false };
  }

  /**
   * Write everything staged as one batch, without waiting for the disk: for a batch whose loss
   * at a power cut is harmless (a hard state that only moves the commit index, which the member
   * relearns from the leader). The next sync() makes it durable with everything after it.
   * Returns the bytes written.
   */
  write(): number {
    this.checkUsable();
    if (this.staged.length === 0) return 0;
    const size = this.stagedBytes + COMMIT_RECORD_BYTES;
    try {
      if (this.position + size > this.segmentBytes && this.position > this.headerEnd) this.cut(this.segments[this.segments.length - 1]!.seq + 1);
      const buffer = new Uint8Array(size);
      let at = 0;
      const segment = this.segments[this.segments.length - 1]!;
      for (const item of this.staged) {
        if (item.kind === 'record') {
          at = writeRecord(buffer, at, item.type, item.payload);
          continue;
        }
        for (const entry of item.entries) {
          at = writeEntryRecord(buffer, at, entry);
          segment.maxIndex = Math.max(segment.maxIndex, entry.index);
        }
      }
      writeCommit(buffer, 0, at, this.salt);
      this.file.write(buffer, this.position);
      this.unsynced = true;
      this.position += size;
      this.staged = [];
      this.stagedBytes = 0;
      if (this.stagedHardState !== null) this.hardState = this.stagedHardState;
      if (this.stagedBase !== null) this.base = this.stagedBase;
      this.stagedHardState = null;
      this.stagedBase = null;
      return size;
    } catch (error) {
      this.broken = error as Error;
      throw error;
    }
  }

  /** Write everything staged as one batch and fdatasync it (group commit). Returns the bytes written. */
  sync(): number {
    const size = this.write();
    if (!this.unsynced) return size;
    try {
      this.file.sync();
      this.unsynced = false;
      return size;
    } catch (error) {
      this.broken = error as Error;
      throw error;
    }
  }

  /**
   * sync() with the fdatasync off the event loop. Nothing else may touch the WAL until it
   * settles (the update loop awaits it inside its turn).
   */
  async syncAsync(): Promise<number> {
    const size = this.write();
    if (!this.unsynced) return size;
    try {
      await this.file.syncAsync();
      this.unsynced = false;
      return size;
    } catch (error) {
      this.broken = error as Error;
      throw error;
    }
  }

  /**
   * Move the low-water mark to `meta` (the state store holds everything up to meta.index
   * durably): record it, then delete the oldest segments holding nothing above it. Returns how
   * many segments went.
   */
  compact(meta: SnapshotMeta): number {
    this.setBase({ meta, replacesLog: false });
    this.sync();
    let removed = 0;
    // Only a prefix, oldest first, never the segment being written; each removal is made durable
    // before the next, so a crash can never leave a younger segment gone and an older one there
    // (a gap in the numbering, which recovery refuses).
    while (this.segments.length > 1 && this.segments[0]!.maxIndex <= meta.index) {
      this.fs.remove(this.fs.join(this.directory, this.segments.shift()!.name));
      this.fs.syncDirectory(this.directory);
      removed += 1;
    }
    return removed;
  }

  /** Whether the next segment should be prepared now: the current one is half full and there is no spare. */
  get wantsSpare(): boolean {
    return this.spare === 'none' && this.broken === null && this.position > this.segmentBytes / 2;
  }

  /**
   * Zero-fill the next segment off the event loop (a 64 MiB fill and fdatasync takes 40–180 ms
   * here: done in the cut, it stalled every request). A failure only means the cut fills its
   * own segment, as before.
   */
  async prepareSpare(): Promise<void> {
    if (this.spare !== 'none' || this.broken !== null) return;
    this.spare = 'preparing';
    const path = this.fs.join(this.directory, SPARE_NAME);
    try {
      await this.fs.createZeroFilled(path, this.segmentBytes);
      this.spare = 'ready';
    } catch (error) {
      this.spare = 'none';
      try {
        this.fs.remove(path);
      } catch {
        // Removed at the next open.
      }
      throw error;
    }
  }

  close(): void {
    this.file.close();
    this.broken = new Error('the WAL is closed');
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Start segment `seq`: zero-filled to its full size, its header batch durable, the directory too. */
  private cut(seq: number): void {
    // A batch left unsynced in the old segment must be durable before a newer segment holds
    // anything: recovery accepts a torn batch only at the very end of the log.
    if (this.unsynced) this.file.sync();
    this.unsynced = false;
    this.file.close();
    const name = `${seq.toString(16).padStart(16, '0')}.wal`;
    const path = this.fs.join(this.directory, name);
    let file: WalFile;
    if (this.spare === 'ready') {
      // Renamed whole: a crash before its header lands leaves an all-zero last segment, which
      // recovery reads as a segment cut just before the crash.
      this.spare = 'none';
      this.fs.rename(this.fs.join(this.directory, SPARE_NAME), path);
      file = this.fs.open(path, false);
    } else {
      file = this.fs.open(path, true);
      zeroFill(file, 0, this.segmentBytes);
    }
    const salt = this.newSalt() >>> 0;
    const header = encodeSegmentHeader({ seq, salt, hardState: this.hardState, base: this.base });
    const batch = new Uint8Array(HEADER_BYTES + header.length + COMMIT_RECORD_BYTES);
    writeCommit(batch, 0, writeRecord(batch, 0, RecordType.SEGMENT, header), salt);
    // A header batch within one sector is written all or not at all, which recovery relies on
    // to tell a segment cut just before a crash (all zeros) from a damaged header (refused).
    if (batch.length > SECTOR_BYTES) throw new Error(`a segment header of ${batch.length} bytes does not fit one ${SECTOR_BYTES}-byte sector (too many or too long member ids)`);
    file.write(batch, 0);
    file.sync();
    this.fs.syncDirectory(this.directory);
    this.segments.push({ name, seq, maxIndex: 0 });
    this.file = file;
    this.salt = salt;
    this.position = batch.length;
    this.headerEnd = batch.length;
  }

  private stage(type: RecordType, payload: Uint8Array): void {
    this.staged.push({ kind: 'record', type, payload });
    this.stagedBytes += HEADER_BYTES + payload.length;
  }

  private checkUsable(): void {
    if (this.broken !== null) throw new Error(`the WAL cannot be used after an earlier failure: ${this.broken.message}`);
  }
}

function zeroFill(file: WalFile, from: number, to: number): void {
  for (let at = from; at < to; at += ZEROS.length) file.write(ZEROS.subarray(0, Math.min(ZEROS.length, to - at)), at);
}

const NO_FILE: WalFile = { write() {}, sync() {}, syncAsync: async () => undefined, close() {} };
