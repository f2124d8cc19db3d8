/**
 * Snapshots of the state store (Low-Water Mark): a member streams its store, at the applied
 * index a scan sees, in CRC-checked chunks; a member that is too far behind, or new, installs
 * such a stream into a fresh store beside its own and swaps it in atomically.
 *
 * The stream: the first chunk carries the Raft snapshot base (index = the store's applied
 * index, the term of that entry, the voters); every chunk carries its sequence number, whether
 * it is the last, its pair count and a CRC32C of its body (length-prefixed key/value pairs).
 * The scan reads one RocksDB snapshot, and the store's meta record sorts first, so the applied
 * index is known before any data is sent and matches all of it.
 *
 * Installing: pairs go into `<dir>.incoming` (a new RocksDB); when the last chunk checks out
 * the store is synced and a COMPLETE marker written; only then is the live store swapped out
 * (`<dir>` → `<dir>.old`, `<dir>.incoming` → `<dir>`). `recoverStateDirectory` runs at start
 * and finishes or discards an interrupted install, so a crash at any point leaves either the
 * old store or the new one, whole.
 *
 * Must never: swap in a store whose stream was incomplete or failed a check; touch the live
 * store before the new one is durable.
 */

import { existsSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SnapshotMeta } from '../raft/types.js';
import type { KvEngine, KvWrite } from '../state/kv-engine.js';
import { INSTALLED_BASE_KEY, META_KEY, openValue, sealValue } from '../state/store-format.js';
import { crc32c } from './crc32c.js';
import { RocksKvEngine } from './rocks-kv.js';

export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 1024 * 1024;
/** The longest a snapshot stream reads records before it lets the event loop run. */
const SCAN_SLICE_MS = 4;
const CHUNK_FORMAT = 1;
/** format u8 | seq u32 | last u8 | pairs u32 | crc u32 (over the header before it and the body) */
const CHUNK_HEADER_BYTES = 14;
const CRC_AT = 10;
const COMPLETE_MARKER = 'COMPLETE';

const ALL = { gte: new Uint8Array([0x00]), lt: new Uint8Array([0xff]) };

export interface SnapshotStream {
  /** The store's applied index in this snapshot: the Raft snapshot's index. */
  readonly appliedIndex: number;
  /** The chunks, the first carrying `base` (whose index must be appliedIndex). Once only. */
  chunks(base: SnapshotMeta): AsyncIterable<Uint8Array>;
  /** End the scan without sending it (a stream whose chunks were never asked for holds it open). */
  close(): Promise<void>;
}

/** Sees every pair of the store as the stream sends it (the meta record first), e.g. to count them. */
export type PairObserver = (key: Uint8Array, value: Uint8Array) => void;

/**
 * How a scan shares the event loop: its clock, and how it lets the loop run. A member uses the
 * real ones; the simulator injects its own (a real clock there would make a seed unreplayable).
 */
export interface ScanPace {
  now(): number;
  pause(): Promise<void>;
}

const REAL_PACE: ScanPace = {
  now: () => performance.now(),
  pause: () => new Promise<void>((resume) => setImmediate(resume)),
};

/**
 * Whether a complete staged store is swapped in at start: only if the log names it as its base
 * (the core accepted it and its base was made durable before the swap) and it moves the state
 * forward. A stage the log does not name is one the core did not install — it had not taken it, or
 * declined it — and swapped in it left a store past the end of the log: a member that could not
 * start (simulator seed 9 with read-without-quorum planted). One no newer than the live store
 * (its install was overtaken) would roll the state back.
 */
export function finishesInstall(stagedApplied: number, liveApplied: number, logBaseIndex: number | null): boolean {
  return stagedApplied === logBaseIndex && stagedApplied > liveApplied;
}

/** The applied index a store's meta record holds (-1: an empty store). */
export async function appliedIndexOf(engine: KvEngine): Promise<number> {
  const meta = await engine.get(META_KEY);
  return meta === undefined ? -1 : ((openValue(meta) as unknown[])[1] as number);
}

/**
 * Begin a snapshot of `engine`: one scan, whose first pair (the meta record) gives the applied
 * index. `observe` sees each of the store's pairs as it goes into a chunk.
 */
export async function openSnapshotStream(engine: KvEngine, chunkBytes = SNAPSHOT_CHUNK_BYTES_DEFAULT, observe?: PairObserver, pace: ScanPace = REAL_PACE): Promise<SnapshotStream> {
  const iterator = engine.scan(ALL)[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done === true || first.value[0].length !== 1 || first.value[0][0] !== META_KEY[0]) {
    await iterator.return?.();
    throw new Error('snapshot: the store has no meta record to begin with');
  }
  const meta = openValue(first.value[1]) as unknown[];
  const appliedIndex = meta[1] as number;
  let used = false;
  return {
    appliedIndex,
    async close() {
      if (used) return; // the chunks' own `finally` ends the scan
      used = true;
      await iterator.return?.();
    },
    async *chunks(base: SnapshotMeta): AsyncIterable<Uint8Array> {
      // One scan, read once: a second pass would find it spent and send a "complete" empty store.
      if (used) throw new Error('snapshot: a stream can be sent once; open a new one to send again');
      used = true;
      if (base.index !== appliedIndex) {
        await iterator.return?.();
        throw new Error(`snapshot: base index ${base.index} is not the store's applied index ${appliedIndex}`);
      }
      let seq = 0;
      let pairs: (readonly [Uint8Array, Uint8Array])[] = [[INSTALLED_BASE_KEY, baseValue(base)], first.value];
      observe?.(first.value[0], first.value[1]);
      let bytes = 0;
      let sliceStarted = pace.now();
      try {
        for (let read = 0; ; read++) {
          // The scan hands over records in batches, and a batch of small ones resolves as one run
          // of microtasks: without a pause, a chunk of ten thousand records would hold the event
          // loop (every client and peer of this member) for tens of milliseconds.
          if ((read & 255) === 255 && pace.now() - sliceStarted >= SCAN_SLICE_MS) {
            await pace.pause();
            sliceStarted = pace.now();
          }
          const next = await iterator.next();
          if (next.done === true) break;
          if (next.value[0].length === 1 && next.value[0][0] === INSTALLED_BASE_KEY[0]) continue; // the sender's own, if it once installed one
          pairs.push(next.value);
          observe?.(next.value[0], next.value[1]);
          bytes += 8 + next.value[0].length + next.value[1].length;
          if (bytes >= chunkBytes) {
            yield encodeChunk(seq++, false, pairs);
            pairs = [];
            bytes = 0;
          }
        }
        yield encodeChunk(seq, true, pairs);
      } finally {
        await iterator.return?.();
      }
    },
  };
}

/** The Raft base chunk 0 carries (its first record). Throws if the chunk is not a whole chunk 0. */
export function chunkBase(chunk: Uint8Array): SnapshotMeta {
  const { writes } = decodeChunk(chunk, 0);
  const first = writes[0];
  if (first?.type !== 'put' || first.key.length !== 1 || first.key[0] !== INSTALLED_BASE_KEY[0]) throw new Error('snapshot: the first chunk does not begin with the snapshot base');
  return baseMeta(first.value);
}

/** Where a chunk stands in its stream: its sequence number, and whether it is the last. */
export function chunkPlace(chunk: Uint8Array): { readonly seq: number; readonly last: boolean } {
  if (chunk.length < CHUNK_HEADER_BYTES || chunk[0] !== CHUNK_FORMAT) throw new Error(`snapshot: not a format ${CHUNK_FORMAT} chunk`);
  return { seq: new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength).getUint32(1, true), last: chunk[5] === 1 };
}

function encodeChunk(seq: number, last: boolean, pairs: readonly (readonly [Uint8Array, Uint8Array])[]): Uint8Array {
  let size = CHUNK_HEADER_BYTES;
  for (const [key, value] of pairs) size += 8 + key.length + value.length;
  const chunk = new Uint8Array(size);
  const view = new DataView(chunk.buffer);
  let at = CHUNK_HEADER_BYTES;
  for (const [key, value] of pairs) {
    view.setUint32(at, key.length, true);
    view.setUint32(at + 4, value.length, true);
    chunk.set(key, at + 8);
    chunk.set(value, at + 8 + key.length);
    at += 8 + key.length + value.length;
  }
  chunk[0] = CHUNK_FORMAT;
  view.setUint32(1, seq, true);
  chunk[5] = last ? 1 : 0;
  view.setUint32(6, pairs.length, true);
  view.setUint32(CRC_AT, chunkCrc(chunk), true);
  return chunk;
}

/** The CRC32C of a chunk's header fields and body (everything but the CRC field itself). */
function chunkCrc(chunk: Uint8Array): number {
  return crc32c(chunk.subarray(CHUNK_HEADER_BYTES), crc32c(chunk.subarray(0, CRC_AT)));
}

function decodeChunk(chunk: Uint8Array, expectedSeq: number): { last: boolean; writes: KvWrite[] } {
  if (chunk.length < CHUNK_HEADER_BYTES || chunk[0] !== CHUNK_FORMAT) throw new Error(`snapshot chunk ${expectedSeq}: not a format ${CHUNK_FORMAT} chunk`);
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const seq = view.getUint32(1, true);
  if (chunkCrc(chunk) !== view.getUint32(CRC_AT, true)) throw new Error(`snapshot chunk ${expectedSeq}: checksum mismatch`);
  if (seq !== expectedSeq) throw new Error(`snapshot chunk ${seq} arrived where ${expectedSeq} was expected`);
  const count = view.getUint32(6, true);
  const writes: KvWrite[] = [];
  let at = CHUNK_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + 8 > chunk.length) throw new Error(`snapshot chunk ${seq}: pair ${i} cut short`);
    const keyLength = view.getUint32(at, true);
    const valueLength = view.getUint32(at + 4, true);
    const end = at + 8 + keyLength + valueLength;
    if (end > chunk.length) throw new Error(`snapshot chunk ${seq}: pair ${i} cut short`);
    writes.push({ type: 'put', key: chunk.subarray(at + 8, at + 8 + keyLength), value: chunk.subarray(at + 8 + keyLength, end) });
    at = end;
  }
  if (at !== chunk.length) throw new Error(`snapshot chunk ${seq}: bytes after its last pair`);
  return { last: chunk[5] === 1, writes };
}

/**
 * Receive a snapshot stream into `<directory>.incoming`, durably, and mark it complete. The live
 * store at `directory` is not touched: close it, then call `swapInStaged` (or restart, and
 * `recoverStateDirectory` does it). Throws, leaving nothing staged, if the stream fails a check
 * or ends before its last chunk.
 */
export async function receiveSnapshot(directory: string, chunks: AsyncIterable<Uint8Array>): Promise<SnapshotMeta> {
  const incoming = `${directory}.incoming`;
  await discardStaged(incoming);
  const engine = await RocksKvEngine.open(incoming, { errorIfExists: true });
  try {
    const base = await writeSnapshotInto(engine, chunks);
    await engine.close();
    const marker = await open(`${incoming}/${COMPLETE_MARKER}`, 'w');
    await marker.sync();
    await marker.close();
    await syncDirectory(incoming);
    return base;
  } catch (error) {
    await engine.close();
    await discardStaged(incoming);
    throw error;
  }
}

/**
 * Write a snapshot stream into an empty engine, checking every chunk; the last batch is synced.
 * Throws if the stream fails a check or ends before its last chunk (the engine then holds part
 * of it and must be thrown away).
 */
export async function writeSnapshotInto(engine: KvEngine, chunks: AsyncIterable<Uint8Array>): Promise<SnapshotMeta> {
  let base: { meta: SnapshotMeta; write: KvWrite } | null = null;
  let done = false;
  let seq = 0;
  for await (const chunk of chunks) {
    if (done) throw new Error('snapshot: a chunk after the last');
    const { last, writes } = decodeChunk(chunk, seq++);
    if (seq === 1) {
      const [first, meta] = writes;
      if (first?.type !== 'put' || first.key.length !== 1 || first.key[0] !== INSTALLED_BASE_KEY[0]) throw new Error('snapshot: the first chunk does not begin with the snapshot base');
      const baseRead = baseMeta(first.value);
      const { index } = baseRead;
      base = { meta: baseRead, write: first };
      if (meta?.type !== 'put' || meta.key.length !== 1 || meta.key[0] !== META_KEY[0]) throw new Error('snapshot: the meta record of the store does not follow the base');
      const applied = (openValue(meta.value) as unknown[])[1];
      if (applied !== index) throw new Error(`snapshot: the base says index ${index}, the store's meta ${String(applied)}`);
      writes.shift();
    }
    // The base goes in with the last batch: that batch is then never empty (the binding skips
    // an empty batch, sync and all), and its presence means the whole stream landed.
    await engine.write(last ? [...writes, base!.write] : writes, { sync: last });
    done = last;
  }
  if (!done || base === null) throw new Error('snapshot: the stream ended before its last chunk');
  return base.meta;
}

/**
 * Remove a staged store, marker first and durably: a crash in the middle of removing the rest
 * must not leave a COMPLETE marker beside a partial store.
 */
export async function discardStaged(incoming: string): Promise<void> {
  if (!existsSync(incoming)) return;
  await rm(`${incoming}/${COMPLETE_MARKER}`, { force: true });
  await syncDirectory(incoming);
  await rm(incoming, { recursive: true, force: true });
}

/** Swap a complete staged store in for the live one (closed by the caller). */
export async function swapInStaged(directory: string): Promise<void> {
  const incoming = `${directory}.incoming`;
  if (!existsSync(`${incoming}/${COMPLETE_MARKER}`)) throw new Error(`snapshot: nothing complete is staged at ${incoming}`);
  const old = `${directory}.old`;
  if (existsSync(directory)) {
    await rm(old, { recursive: true, force: true });
    await rename(directory, old);
  }
  await rename(incoming, directory);
  await syncDirectory(dirname(directory));
  await rm(`${directory}/${COMPLETE_MARKER}`, { force: true });
  await rm(old, { recursive: true, force: true });
}

/**
 * At start, before opening the store: finish an install that completed staging, discard one
 * that did not, and bring back the old store if a crash fell between the two renames.
 * Returns what it did, for the log.
 */
export async function recoverStateDirectory(directory: string, logBaseIndex: number | null): Promise<'finished-install' | 'discarded-partial-install' | 'restored-old' | 'nothing'> {
  await mkdir(dirname(directory), { recursive: true });
  const incoming = `${directory}.incoming`;
  const old = `${directory}.old`;
  if (existsSync(`${incoming}/${COMPLETE_MARKER}`)) {
    const live = existsSync(directory) ? await appliedIndexAt(directory) : -1;
    if (finishesInstall(await appliedIndexAt(incoming), live, logBaseIndex)) {
      await swapInStaged(directory);
      return 'finished-install';
    }
  }
  let outcome: 'discarded-partial-install' | 'restored-old' | 'nothing' = 'nothing';
  if (existsSync(incoming)) {
    await discardStaged(incoming);
    outcome = 'discarded-partial-install';
  }
  if (existsSync(old)) {
    if (existsSync(directory)) {
      // The swap finished; only the clean-up did not.
      await rm(`${directory}/${COMPLETE_MARKER}`, { force: true });
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(old, directory);
      await syncDirectory(dirname(directory));
      outcome = 'restored-old';
    }
  }
  return outcome;
}

/** The Raft snapshot base an installed store came with, or null if it never received one. */
export async function installedBase(engine: KvEngine): Promise<SnapshotMeta | null> {
  const value = await engine.get(INSTALLED_BASE_KEY);
  if (value === undefined) return null;
  return baseMeta(value);
}

/** The snapshot base as the store keeps it: [index, term, voters] and learners when there are any. */
export function baseValue(meta: SnapshotMeta): Uint8Array {
  const learners = meta.conf.learners ?? [];
  return sealValue(learners.length === 0 ? [meta.index, meta.term, meta.conf.voters] : [meta.index, meta.term, meta.conf.voters, learners]);
}

function baseMeta(value: Uint8Array): SnapshotMeta {
  const [index, term, voters, learners] = openValue(value) as [number, number, string[], string[] | undefined];
  return { index, term, conf: learners === undefined || learners.length === 0 ? { voters } : { voters, learners } };
}

/** The applied index of the store in `directory` (-1 if it holds none). */
async function appliedIndexAt(directory: string): Promise<number> {
  const engine = await RocksKvEngine.open(directory, { createIfMissing: false });
  try {
    return await appliedIndexOf(engine);
  } finally {
    await engine.close();
  }
}

/** fsync a directory (or file): a rename, creation or removal in it survives a crash once this resolves. */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
