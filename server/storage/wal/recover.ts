/**
 * Recovery of the write-ahead log: every segment read and checked, in order, into the hard
 * state, the log base and the entries after it. Pure: bytes in, a verdict out, so the WAL on a
 * real disk and on the fault-injecting twin obey the same rules.
 *
 * The rules:
 * - Segments are numbered; a gap in the numbers, a segment whose first record is not its own
 *   SEGMENT header, or entries that skip an index mean lost data: refuse.
 * - Records take effect a batch at a time (everything one fdatasync made durable, closed by a
 *   COMMIT record carrying the batch's length and CRC). Damage — a record failing its frame or
 *   checksum, a batch cut short or failing its COMMIT — is a torn write only when it is in the
 *   last segment and no complete batch follows it anywhere after: the unfinished batch is cut
 *   (the caller zeroes the file from there and logs a warning). Anywhere else it is corruption:
 *   refuse, naming the file and offset. (Damage to the very last batch of the log cannot be told
 *   from a torn write and is cut as one; every batch before it is protected.)
 * - An entry at or below the last index replaces that suffix: a follower's overwrite of a
 *   conflicting tail is an ordinary append, and durable like one.
 * - The hard state's commit index can never pass the end of the log; if it does, the end of
 *   the log is missing: refuse.
 *
 * Must never: accept a record whose checksum fails, or start on a log with a hole in it.
 */

import type { Entry, HardState } from '../../raft/types.js';
import {
  batchStartOf,
  commitHolds,
  decodeBase,
  decodeEntry,
  decodeHardState,
  decodeSegmentHeader,
  entryIndexOf,
  HEADER_BYTES,
  readRecord,
  readU32,
  RecordType,
  COMMIT_RECORD_BYTES,
  type LogBase,
} from './record.js';
import { crc32c } from '../crc32c.js';

export interface SegmentBytes {
  readonly name: string;
  readonly seq: number;
  readonly bytes: Uint8Array;
}

export interface RecoveredSegment {
  readonly name: string;
  readonly seq: number;
  /** Where the data ends: the next record goes here. */
  readonly end: number;
  /** The highest entry index in the segment (0: none). */
  readonly maxIndex: number;
  /** The segment's COMMIT salt, for appending to it. */
  readonly salt: number;
}

export interface RecoveredLog {
  readonly hardState: HardState;
  readonly base: LogBase | null;
  /** The entries after the base from `keepFrom` on, in order (those below were checked, not kept). */
  readonly entries: Entry[];
  /** The last index in the log (the base's index when no entry follows it). */
  readonly lastIndex: number;
  readonly segments: RecoveredSegment[];
  /** A torn tail that was cut: the caller must zero the file from `offset` (or drop it when 0). */
  readonly tornTail: { readonly name: string; readonly offset: number; readonly reason: string } | null;
}

/** The log cannot be trusted: the member must not start. */
export class WalCorruption extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    detail: string,
  ) {
    super(`write-ahead log ${file} is damaged at byte ${offset}: ${detail}. Warden will not start on a damaged log (see README, "When the log is damaged").`);
    this.name = 'WalCorruption';
  }
}

const EMPTY_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

/** Read `segments` (sorted by seq) into the log they hold; entries below `keepFrom` are checked but not kept. */
export function recover(segments: readonly SegmentBytes[], keepFrom = 0): RecoveredLog {
  let hardState = EMPTY_HARD_STATE;
  let base: LogBase | null = null;
  let entries: Entry[] = [];
  let lastIndex = 0;
  let hasEntries = false;
  /** After an installed snapshot the log restarts exactly after it. */
  let strictStart = false;
  /** Where the kept log began, if it began above the base known at the time. */
  let logStart: number | null = null;
  let tornTail: RecoveredLog['tornTail'] = null;
  const recovered: RecoveredSegment[] = [];

  const baseIndex = (): number => base?.meta.index ?? 0;
  const dropFrom = (index: number): void => {
    // Entries are kept in index order, so the suffix from `index` is a tail of the array.
    let keep = entries.length;
    while (keep > 0 && entries[keep - 1]!.index >= index) keep -= 1;
    entries.length = keep;
  };

  let currentSeq = 0;
  segments.forEach((segment, i) => {
    const isLast = i === segments.length - 1;
    currentSeq = segment.seq;
    if (i > 0 && segment.seq !== segments[i - 1]!.seq + 1) {
      throw new WalCorruption(segment.name, 0, `segment ${segments[i - 1]!.seq + 1} is missing (found ${segments[i - 1]!.name} then ${segment.name})`);
    }
    const bytes = segment.bytes;
    let at = 0;
    let batchStart = 0;
    let batch: { type: number; payload: Uint8Array; at: number }[] = [];
    let maxIndex = 0;
    /** The segment's COMMIT salt, from its header (null until the header is read). */
    let salt: number | null = null;
    /** Damage at the batch that began at `from`: a torn tail, or corruption. */
    const damaged = (from: number, where: number, reason: string): void => {
      // Without the header's salt nothing after it can be vouched for; but then the header itself
      // is damaged, and a header (one sector, written atomically) is never torn: refuse.
      if (isLast && salt !== null && !completeBatchAfter(bytes, from, salt)) {
        tornTail = { name: segment.name, offset: from, reason };
        return;
      }
      throw new WalCorruption(segment.name, where, reason);
    };
    for (;;) {
      const read = readRecord(bytes, at);
      if (read.kind === 'zero' && isZeroFrom(bytes, at)) {
        if (batch.length > 0) damaged(batchStart, at, 'a batch without its commit record');
        else if (at === 0) {
          // A segment whose header never reached the disk: only the last can be one (a crash while cutting it).
          if (!isLast) throw new WalCorruption(segment.name, 0, 'the segment holds no header');
          tornTail = { name: segment.name, offset: 0, reason: 'a segment cut just before a crash, holding nothing' };
        }
        break;
      }
      if (read.kind !== 'record') {
        damaged(batchStart, at, read.kind === 'bad' ? read.reason : read.kind === 'truncated' ? 'a record cut short' : 'data after an empty record header');
        break;
      }
      if (at === 0 && read.type === RecordType.SEGMENT) {
        try {
          salt = decodeSegmentHeader(read.payload).salt ?? 0;
        } catch (error) {
          throw new WalCorruption(segment.name, 0, (error as Error).message);
        }
      }
      if (read.type !== RecordType.COMMIT) {
        batch.push({ type: read.type, payload: read.payload, at });
        at = read.next;
        continue;
      }
      if (salt === null || batchStartOf(at, read.payload) !== batchStart || !commitHolds(bytes, at, read.payload, salt)) {
        damaged(batchStart, at, 'a batch that does not match its commit record');
        break;
      }
      for (const record of batch) {
        try {
          maxIndex = Math.max(maxIndex, applyRecord(record.type, record.payload, record.at));
        } catch (error) {
          if (error instanceof WalCorruption) throw error;
          throw new WalCorruption(segment.name, record.at, (error as Error).message);
        }
      }
      batch = [];
      at = read.next;
      batchStart = at;
    }
    // A dropped empty segment is not recovered at all; the one before it is the last.
    if (!(tornTail !== null && tornTail.name === segment.name && tornTail.offset === 0)) {
      recovered.push({ name: segment.name, seq: segment.seq, end: tornTail?.name === segment.name ? tornTail.offset : at, maxIndex, salt: salt ?? 0 });
    }
  });

  if (logStart !== null && logStart > baseIndex() + 1) {
    const first = recovered[0];
    throw new WalCorruption(first?.name ?? '(no segment)', 0, `the log begins at entry ${logStart} but the snapshot base covers only up to ${baseIndex()}: entries ${baseIndex() + 1}–${logStart - 1} are missing (an older segment was removed?)`);
  }
  const end = hasEntries ? lastIndex : baseIndex();
  if (hardState.commit > end) {
    const last = recovered[recovered.length - 1];
    throw new WalCorruption(last?.name ?? '(no segment)', last?.end ?? 0, `the commit index ${hardState.commit} is past the end of the log (${end}): the end of the log is missing`);
  }
  return { hardState, base, entries, lastIndex: end, segments: recovered, tornTail };

  /** Apply one record of a complete batch; returns the entry index it wrote (0 for none). */
  function applyRecord(type: number, payload: Uint8Array, at: number): number {
    if (at === 0) {
      if (type !== RecordType.SEGMENT) throw new Error('the segment does not begin with its header');
      const header = decodeSegmentHeader(payload);
      if (header.seq !== currentSeq) throw new Error(`the header says segment ${header.seq}, the file name ${currentSeq}`);
      hardState = header.hardState;
      if (header.base !== null && header.base.meta.index > baseIndex()) applyCompaction(header.base);
      return 0;
    }
    switch (type) {
      case RecordType.ENTRY: {
        const index = entryIndexOf(payload);
        if (index <= baseIndex()) return 0; // covered by the base
        if (!hasEntries && !strictStart && logStart === null) {
          // The oldest segment kept after a compaction may begin anywhere: the base that makes
          // that whole can be in a later segment. Checked once everything is read. Only the very
          // first entry read may do this; every later one must follow the last or the base.
          logStart ??= index;
          lastIndex = index - 1;
          hasEntries = true;
        }
        const expected = hasEntries ? lastIndex + 1 : baseIndex() + 1;
        if (index > expected) throw new Error(`entry ${index} follows ${expected - 1}: entries ${expected}–${index - 1} are missing`);
        if (index < expected) dropFrom(index);
        if (index >= keepFrom) entries.push(decodeEntry(payload));
        lastIndex = index;
        hasEntries = true;
        return index;
      }
      case RecordType.HARD_STATE:
        hardState = decodeHardState(payload);
        return 0;
      case RecordType.BASE: {
        const next = decodeBase(payload);
        if (next.replacesLog) {
          base = next;
          entries = [];
          lastIndex = next.meta.index;
          hasEntries = false;
          strictStart = true;
          logStart = null;
        } else if (next.meta.index > baseIndex()) {
          applyCompaction(next);
        }
        return 0;
      }
      default:
        throw new Error('a segment header in the middle of a segment');
    }
  }

  function applyCompaction(next: LogBase): void {
    base = { meta: next.meta, replacesLog: false };
    entries = entries.filter((e) => e.index > next.meta.index);
    if (!hasEntries || lastIndex < next.meta.index) {
      lastIndex = next.meta.index;
      hasEntries = false;
    }
  }
}

function isZeroFrom(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Whether a complete batch (a COMMIT record, salted as the segment's, that vouches for it) lies anywhere after `from`. */
function completeBatchAfter(bytes: Uint8Array, from: number, salt: number): boolean {
  for (let at = from + 1; at + COMMIT_RECORD_BYTES <= bytes.length; at++) {
    if (bytes[at + 8] !== RecordType.COMMIT || readU32(bytes, at + 4) !== 8) continue;
    if (crc32c(bytes.subarray(at + 4, at + COMMIT_RECORD_BYTES)) !== readU32(bytes, at)) continue;
    const payload = bytes.subarray(at + HEADER_BYTES, at + COMMIT_RECORD_BYTES);
    if (batchStartOf(at, payload) > from && commitHolds(bytes, at, payload, salt)) return true;
  }
  return false;
}
