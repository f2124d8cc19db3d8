/**
 * The WAL's record format. Every record is framed as
 *
 *   crc32c u32 LE | length u32 LE | type u8 | payload (length bytes)
 *
 * where the CRC covers length, type and payload, so a damaged length is caught as surely as a
 * damaged payload. An all-zero header is never a valid record (the CRC of five zero bytes is
 * not zero): it marks the end of the data in a zero-filled, preallocated segment.
 *
 * Record types: SEGMENT opens every segment file (magic, format, the segment's sequence number,
 * and the hard state and log base in force when it was cut, so deleting older segments loses
 * neither); ENTRY is one Raft entry (index, term, type, data — binary, the hot path); HARD_STATE
 * is Raft's term, vote and commit; BASE says the log now starts after a snapshot (compaction
 * keeps the entries above it; an installed snapshot replaces the whole log). COMMIT closes a
 * batch — everything written for one fdatasync — with the batch's length and CRC: a batch counts
 * only whole. So a power cut that lands some sectors of the last batch and not others loses
 * that batch and nothing else, and a complete batch found after damage proves the damage is not
 * a torn tail. The COMMIT checksum starts from the segment's random salt (SQLite's WAL does the
 * same), so no client value can carry a COMMIT that would vouch for anything.
 *
 * Must never: change the meaning of a record without a new WAL_FORMAT (logs outlive the code);
 * decode a record whose CRC does not match.
 */

import { Decoder, Encoder } from '@msgpack/msgpack';
import type { Entry, EntryType, HardState, SnapshotMeta } from '../../raft/types.js';
import { crc32c } from '../crc32c.js';

export const WAL_FORMAT = 1;
export const WAL_MAGIC = 'warden-wal';
export const HEADER_BYTES = 9;
/** An entry's fixed part: index u64, term u64, type u8. */
const ENTRY_FIXED_BYTES = 17;
/** No record is larger: a length above this is damage, not data. */
export const RECORD_BYTES_MAX = 64 * 1024 * 1024;

export const RecordType = { SEGMENT: 1, ENTRY: 2, HARD_STATE: 3, BASE: 4, COMMIT: 5 } as const;
/** A COMMIT record's whole size: header + batch length u32 + batch CRC u32. */
export const COMMIT_RECORD_BYTES = HEADER_BYTES + 8;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'noop', 'config'];

export interface LogBase {
  readonly meta: SnapshotMeta;
  /** An installed snapshot replaces the whole log; a compaction keeps the entries above it. */
  readonly replacesLog: boolean;
}

export interface SegmentHeader {
  readonly seq: number;
  /**
   * Random per segment, the starting value of every COMMIT checksum in it, so bytes inside a
   * client's value can never pass for a COMMIT (which would make an ordinary torn write look
   * like corruption and stop the member). Absent (0) only in hand-built test segments.
   */
  readonly salt?: number;
  readonly hardState: HardState;
  readonly base: LogBase | null;
}

const encoder = new Encoder();
const decoder = new Decoder();

/** Bytes that a batch of records takes, to size one write buffer. */
export function entryRecordBytes(entry: Entry): number {
  return HEADER_BYTES + ENTRY_FIXED_BYTES + entry.data.length;
}

/** Frame `payload` as a record of `type` into `into` at `at`; returns the offset after it. */
export function writeRecord(into: Uint8Array, at: number, type: RecordType, payload: Uint8Array): number {
  into.set(payload, at + HEADER_BYTES);
  return seal(into, at, type, payload.length);
}

/** Write an entry record at `at` without an intermediate payload buffer. */
export function writeEntryRecord(into: Uint8Array, at: number, entry: Entry): number {
  const p = at + HEADER_BYTES;
  writeU64(into, p, entry.index);
  writeU64(into, p + 8, entry.term);
  into[p + 16] = ENTRY_TYPES.indexOf(entry.type);
  into.set(entry.data, p + ENTRY_FIXED_BYTES);
  return seal(into, at, RecordType.ENTRY, ENTRY_FIXED_BYTES + entry.data.length);
}

function seal(into: Uint8Array, at: number, type: RecordType, length: number): number {
  writeU32(into, at + 4, length);
  into[at + 8] = type;
  writeU32(into, at, crc32c(into.subarray(at + 4, at + HEADER_BYTES + length)));
  return at + HEADER_BYTES + length;
}

/** Close the batch that began at `batchStart` with a COMMIT record at `at`; returns the offset after it. */
export function writeCommit(into: Uint8Array, batchStart: number, at: number, salt = 0): number {
  writeU32(into, at + HEADER_BYTES, at - batchStart);
  writeU32(into, at + HEADER_BYTES + 4, crc32c(into.subarray(batchStart, at), salt));
  return seal(into, at, RecordType.COMMIT, 8);
}

/** Whether the COMMIT record whose payload is `payload`, ending a batch at `at` in `bytes`, vouches for that batch. */
export function commitHolds(bytes: Uint8Array, at: number, payload: Uint8Array, salt = 0): boolean {
  if (payload.length !== 8) return false;
  const length = readU32(payload, 0);
  if (length > at) return false;
  return crc32c(bytes.subarray(at - length, at), salt) === readU32(payload, 4);
}

/** Where the batch a COMMIT record closes begins. */
export function batchStartOf(at: number, payload: Uint8Array): number {
  return at - readU32(payload, 0);
}

export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  const fields = [WAL_MAGIC, WAL_FORMAT, header.seq, hardStateFields(header.hardState), header.base === null ? null : baseFields(header.base)];
  return encoder.encode(header.salt === undefined ? fields : [...fields, header.salt]);
}

export function encodeHardState(hardState: HardState): Uint8Array {
  return encoder.encode(hardStateFields(hardState));
}

export function encodeBase(base: LogBase): Uint8Array {
  return encoder.encode(baseFields(base));
}

/** What reading at an offset found. */
export type ReadResult =
  | { readonly kind: 'record'; readonly type: number; readonly payload: Uint8Array; readonly next: number }
  /** An all-zero header: no record was ever written here. */
  | { readonly kind: 'zero' }
  /** Too few bytes left for the header or the payload it announces. */
  | { readonly kind: 'truncated' }
  | { readonly kind: 'bad'; readonly reason: string };

/** Read the record at `at` in `bytes`, checking its frame and CRC. */
export function readRecord(bytes: Uint8Array, at: number): ReadResult {
  if (at + HEADER_BYTES > bytes.length) return allZero(bytes, at, bytes.length) ? { kind: 'zero' } : { kind: 'truncated' };
  if (allZero(bytes, at, at + HEADER_BYTES)) return { kind: 'zero' };
  const crc = readU32(bytes, at);
  const length = readU32(bytes, at + 4);
  const type = bytes[at + 8]!;
  if (length > RECORD_BYTES_MAX) return { kind: 'bad', reason: `a record length of ${length} bytes` };
  if (at + HEADER_BYTES + length > bytes.length) return { kind: 'truncated' };
  if (crc32c(bytes.subarray(at + 4, at + HEADER_BYTES + length)) !== crc) return { kind: 'bad', reason: 'a checksum mismatch' };
  if (type < RecordType.SEGMENT || type > RecordType.COMMIT) return { kind: 'bad', reason: `an unknown record type ${type}` };
  return { kind: 'record', type, payload: bytes.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length), next: at + HEADER_BYTES + length };
}

/** The entry in an ENTRY record's payload; its data is copied out of the segment's buffer. */
export function decodeEntry(payload: Uint8Array): Entry {
  if (payload.length < ENTRY_FIXED_BYTES) throw new Error('an entry record too short for its fields');
  const type = ENTRY_TYPES[payload[16]!];
  if (type === undefined) throw new Error(`an unknown entry type ${payload[16]!}`);
  return { index: readU64(payload, 0), term: readU64(payload, 8), type, data: new Uint8Array(payload.subarray(ENTRY_FIXED_BYTES)) };
}

/** Only the index of an ENTRY record (recovery skips decoding entries it will not keep). */
export function entryIndexOf(payload: Uint8Array): number {
  if (payload.length < ENTRY_FIXED_BYTES) throw new Error('an entry record too short for its fields');
  return readU64(payload, 0);
}

export function decodeSegmentHeader(payload: Uint8Array): SegmentHeader {
  const fields = decoder.decode(payload);
  if (!Array.isArray(fields) || fields[0] !== WAL_MAGIC) throw new Error('not a Warden WAL segment (no magic)');
  if (fields[1] !== WAL_FORMAT) throw new Error(`WAL format ${String(fields[1])} is not ${WAL_FORMAT}, which this version of Warden reads`);
  if (!Number.isInteger(fields[2])) throw new Error('a segment header without a sequence number');
  const salt = fields[5] ?? 0;
  if (!Number.isInteger(salt) || (salt as number) < 0 || (salt as number) > 0xffff_ffff) throw new Error('a segment header with a bad salt');
  const header = { seq: fields[2] as number, hardState: hardStateFrom(fields[3]), base: fields[4] === null ? null : baseFrom(fields[4]) };
  return fields.length > 5 ? { ...header, salt: salt as number } : header;
}

export function decodeHardState(payload: Uint8Array): HardState {
  return hardStateFrom(decoder.decode(payload));
}

export function decodeBase(payload: Uint8Array): LogBase {
  return baseFrom(decoder.decode(payload));
}

function hardStateFields(hs: HardState): unknown[] {
  return [hs.term, hs.vote, hs.commit];
}

function hardStateFrom(fields: unknown): HardState {
  if (!Array.isArray(fields) || fields.length !== 3) throw new Error('a malformed hard state');
  const [term, vote, commit] = fields as unknown[];
  if (!Number.isInteger(term) || !Number.isInteger(commit) || (vote !== null && typeof vote !== 'string')) throw new Error('a malformed hard state');
  return { term: term as number, vote: vote as string | null, commit: commit as number };
}

/** [index, term, voters, replacesLog] and, when there are learners, [… , learners] (a base from before learners has four fields). */
function baseFields(base: LogBase): unknown[] {
  const fields = [base.meta.index, base.meta.term, base.meta.conf.voters, base.replacesLog];
  const learners = base.meta.conf.learners ?? [];
  return learners.length === 0 ? fields : [...fields, learners];
}

function baseFrom(fields: unknown): LogBase {
  if (!Array.isArray(fields) || (fields.length !== 4 && fields.length !== 5)) throw new Error('a malformed log base');
  const [index, term, voters, replacesLog, learners] = fields as unknown[];
  const names = (list: unknown): list is string[] => Array.isArray(list) && list.every((v) => typeof v === 'string');
  if (!Number.isInteger(index) || !Number.isInteger(term) || !names(voters) || typeof replacesLog !== 'boolean' || (learners !== undefined && !names(learners))) {
    throw new Error('a malformed log base');
  }
  const conf = learners === undefined || learners.length === 0 ? { voters } : { voters, learners };
  return { meta: { index: index as number, term: term as number, conf }, replacesLog };
}

function allZero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

// Little-endian integers by hand: a DataView per record was a measurable share of recovery.
export function writeU32(into: Uint8Array, at: number, n: number): void {
  into[at] = n & 0xff;
  into[at + 1] = (n >>> 8) & 0xff;
  into[at + 2] = (n >>> 16) & 0xff;
  into[at + 3] = (n >>> 24) & 0xff;
}

export function readU32(from: Uint8Array, at: number): number {
  return (from[at]! | (from[at + 1]! << 8) | (from[at + 2]! << 16) | (from[at + 3]! << 24)) >>> 0;
}

function writeU64(into: Uint8Array, at: number, n: number): void {
  writeU32(into, at, n >>> 0);
  writeU32(into, at + 4, Math.floor(n / 0x1_0000_0000));
}

function readU64(from: Uint8Array, at: number): number {
  return readU32(from, at) + readU32(from, at + 4) * 0x1_0000_0000;
}
