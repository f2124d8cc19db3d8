/**
 * The write-ahead log on the real disk (NodeFileSystem: synchronous node:fs calls, and
 * fdatasync on the thread pool for syncAsync) in a fresh temporary directory per test, always
 * removed afterwards: the round trip, rollover with compaction, syncAsync with write() batches
 * between, torn tails made with fs calls (a truncated last segment, bytes overwritten in its
 * last batch, an empty segment left by a crash while cutting), and a refusal that changes no file.
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, openSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry, HardState } from '../../../server/raft/types.js';
import { NodeFileSystem } from '../../../server/storage/file-system.js';
import { readRecord, RecordType, entryIndexOf } from '../../../server/storage/wal/record.js';
import { WalCorruption, type RecoveredLog } from '../../../server/storage/wal/recover.js';
import { Wal } from '../../../server/storage/wal/wal.js';

const SEG = 4096;

let directory = '';

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'warden-wal-'));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

function entry(index: number, term: number, size = 40): Entry {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { index, term, type: (['normal', 'noop', 'config'] as const)[index % 3], data };
}

function run(from: number, to: number, term: number, size = 40): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term, size));
}

function view(entries: readonly Entry[]): string[] {
  return entries.map((e) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data).toString('hex')}`);
}

interface Opened {
  wal: Wal;
  log: RecoveredLog;
  warnings: Record<string, unknown>[];
}

function openWal(): Opened {
  const warnings: Record<string, unknown>[] = [];
  const { wal, log } = Wal.open(new NodeFileSystem(), directory, { segmentBytes: SEG, logger: { warn: (fields) => warnings.push(fields) } });
  return { wal, log, warnings };
}

function commitBatch(wal: Wal, entries: readonly Entry[], hardState?: HardState): void {
  wal.append(entries);
  if (hardState !== undefined) wal.setHardState(hardState);
  wal.sync();
}

function segmentNames(): string[] {
  return readdirSync(directory)
    .filter((n) => /^[0-9a-f]{16}\.wal$/.test(n))
    .sort();
}

const segName = (seq: number): string => `${seq.toString(16).padStart(16, '0')}.wal`;

/** Batch boundaries ([start, end) up to and including each COMMIT) of a segment file. */
function batchesOf(bytes: Uint8Array): { start: number; end: number }[] {
  const batches: { start: number; end: number }[] = [];
  let at = 0;
  let start = 0;
  for (;;) {
    const read = readRecord(bytes, at);
    if (read.kind !== 'record') return batches;
    if (read.type === RecordType.COMMIT) {
      batches.push({ start, end: read.next });
      start = read.next;
    }
    at = read.next;
  }
}

function entryIndexesIn(bytes: Uint8Array): number[] {
  const out: number[] = [];
  let at = 0;
  for (;;) {
    const read = readRecord(bytes, at);
    if (read.kind !== 'record') return out;
    if (read.type === RecordType.ENTRY) out.push(entryIndexOf(read.payload));
    at = read.next;
  }
}

/** Three batches of entries 1–9 with hard states, closed; returns the last segment's path and batches. */
function threeBatches(): { path: string; batches: { start: number; end: number }[] } {
  const { wal } = openWal();
  for (let i = 1; i <= 9; i += 3) commitBatch(wal, run(i, i + 2, 1, 200), { term: 1, vote: 'a', commit: i + 2 });
  wal.close();
  const path = join(directory, segName(0));
  return { path, batches: batchesOf(readFileSync(path)) };
}

describe('Wal on NodeFileSystem', () => {
  it('round-trips entries, hard state and last index through a real directory', () => {
    const first = openWal();
    expect(first.log.entries).toEqual([]);
    expect(segmentNames()).toEqual([segName(0)]);
    expect(statSync(join(directory, segName(0))).size).toBe(SEG);
    const entries = [...run(1, 4, 1), entry(5, 2, 0), entry(6, 2, 1000)];
    commitBatch(first.wal, entries.slice(0, 4), { term: 1, vote: 'nœud-🦊', commit: 2 });
    commitBatch(first.wal, entries.slice(4), { term: 2, vote: null, commit: 6 });
    first.wal.close();
    const { log, warnings, wal } = openWal();
    expect(view(log.entries)).toEqual(view(entries));
    expect(log.hardState).toEqual({ term: 2, vote: null, commit: 6 });
    expect(log.lastIndex).toBe(6);
    expect(log.tornTail).toBeNull();
    expect(warnings).toEqual([]);
    wal.close();
  });

  it('rolls over into numbered segments, recovers across them, and compaction removes whole files', () => {
    const { wal } = openWal();
    const entries = run(1, 120, 1, 150);
    for (let i = 0; i < entries.length; i += 4) commitBatch(wal, entries.slice(i, i + 4), { term: 1, vote: null, commit: i + 4 });
    const names = segmentNames();
    expect(names.length).toBeGreaterThanOrEqual(4);
    expect(names).toEqual(names.map((_, i) => segName(i)));
    for (const name of names) expect(statSync(join(directory, name)).size).toBe(SEG);
    const mark = Math.max(...entryIndexesIn(readFileSync(join(directory, names[1]!))));
    expect(wal.compact({ index: mark, term: 1, conf: { voters: ['a'] } })).toBe(2);
    expect(segmentNames()).toEqual(names.slice(2));
    wal.close();
    const { log, warnings, wal: reopened } = openWal();
    expect(warnings).toEqual([]);
    expect(log.base?.meta.index).toBe(mark);
    expect(view(log.entries)).toEqual(view(entries.slice(mark)));
    expect(log.lastIndex).toBe(120);
    reopened.close();
  });

  it('cuts a truncated last batch with a warning, zeroes from there, and takes appends that survive', () => {
    const { path, batches } = threeBatches();
    const last = batches[batches.length - 1]!;
    truncateSync(path, last.start + Math.floor((last.end - last.start) / 2));
    const { log, warnings, wal } = openWal();
    expect(view(log.entries)).toEqual(view(run(1, 6, 1, 200)));
    expect(log.hardState).toEqual({ term: 1, vote: 'a', commit: 6 });
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatchObject({ event: 'wal_torn_tail_cut', file: segName(0), offset: last.start });
    expect(readFileSync(path).subarray(last.start).every((b) => b === 0)).toBe(true);
    commitBatch(wal, run(7, 8, 2, 30), { term: 2, vote: null, commit: 8 });
    wal.close();
    const again = openWal();
    expect(again.warnings).toEqual([]);
    expect(view(again.log.entries)).toEqual(view([...run(1, 6, 1, 200), ...run(7, 8, 2, 30)]));
    expect(again.log.hardState).toEqual({ term: 2, vote: null, commit: 8 });
    again.wal.close();
  });

  it('cuts a last batch whose middle bytes were overwritten, and nothing before it', () => {
    const { path, batches } = threeBatches();
    const last = batches[batches.length - 1]!;
    const fd = openSync(path, 'r+');
    try {
      writeSync(fd, Buffer.from('torn torn torn'), 0, 14, last.start + 100);
    } finally {
      closeSync(fd);
    }
    const { log, warnings, wal } = openWal();
    expect(view(log.entries)).toEqual(view(run(1, 6, 1, 200)));
    expect(warnings.length).toBe(1);
    commitBatch(wal, run(7, 7, 2));
    wal.close();
    const again = openWal();
    expect(again.warnings).toEqual([]);
    expect(view(again.log.entries)).toEqual(view([...run(1, 6, 1, 200), ...run(7, 7, 2)]));
    again.wal.close();
  });

  it('drops an empty segment left by a crash while cutting it, and goes on', () => {
    const { wal } = openWal();
    commitBatch(wal, run(1, 3, 1));
    wal.close();
    writeFileSync(join(directory, segName(1)), new Uint8Array(0));
    const { log, warnings, wal: reopened } = openWal();
    expect(view(log.entries)).toEqual(view(run(1, 3, 1)));
    expect(warnings).toEqual([expect.objectContaining({ file: segName(1), offset: 0 })]);
    expect(segmentNames()).toEqual([segName(0)]);
    commitBatch(reopened, run(4, 4, 1));
    reopened.close();
    expect(view(openWal().log.entries)).toEqual(view(run(1, 4, 1)));
  });

  it('syncAsync() appends batches (across segments, after a write() batch too) that a reopen recovers', async () => {
    const { wal } = openWal();
    const entries = run(1, 60, 1, 150);
    for (let i = 0; i < entries.length; i += 3) {
      wal.append(entries.slice(i, i + 3));
      expect(await wal.syncAsync()).toBeGreaterThan(0);
      // The commit index moves in a batch of its own, written with write() alone: the next
      // syncAsync() (or the cut of the next segment) makes it durable.
      wal.setHardState({ term: 1, vote: 'a', commit: i + 3 });
      expect(wal.write()).toBeGreaterThan(0);
    }
    // The last write() batch has nothing after it: a syncAsync() with nothing staged makes it durable.
    await expect(wal.syncAsync()).resolves.toBe(0);
    const names = segmentNames();
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(names).toEqual(names.map((_, i) => segName(i)));
    wal.close();
    const { log, warnings, wal: reopened } = openWal();
    expect(warnings).toEqual([]);
    expect(view(log.entries)).toEqual(view(entries));
    expect(log.hardState).toEqual({ term: 1, vote: 'a', commit: 60 });
    expect(log.lastIndex).toBe(60);
    expect(log.tornTail).toBeNull();
    reopened.close();
  });

  it('prepares a spare segment on the real disk, zero-filled to size, and the next cut takes it', async () => {
    const { wal } = openWal();
    let index = 1;
    while (!wal.wantsSpare) {
      wal.append([entry(index, 1, 150)]);
      wal.sync();
      index += 1;
    }
    await wal.prepareSpare();
    const spare = join(directory, 'spare.wal.tmp');
    expect(statSync(spare).size).toBe(statSync(join(directory, segName(0))).size);
    expect(readFileSync(spare).every((byte) => byte === 0)).toBe(true);
    while (segmentNames().length < 2) {
      wal.append([entry(index, 1, 150)]);
      wal.sync();
      index += 1;
    }
    expect(readdirSync(directory)).not.toContain('spare.wal.tmp');
    wal.close();
    const { log, warnings, wal: reopened } = openWal();
    expect(warnings).toEqual([]);
    expect(log.lastIndex).toBe(index - 1);
    reopened.close();
  });

  it('refuses a flipped bit in a non-last segment and changes no file', () => {
    const { wal } = openWal();
    for (let i = 1; i <= 60; i += 3) commitBatch(wal, run(i, i + 2, 1, 150));
    wal.close();
    const names = segmentNames();
    expect(names.length).toBeGreaterThanOrEqual(2);
    const path = join(directory, names[0]!);
    const bytes = readFileSync(path);
    const offset = batchesOf(bytes)[1]!.start + 30;
    bytes[offset]! ^= 0x04;
    writeFileSync(path, bytes);
    const before = names.map((n) => readFileSync(join(directory, n)));
    let caught: unknown = null;
    try {
      openWal();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(WalCorruption);
    const error = caught as WalCorruption;
    expect(error.file).toBe(names[0]);
    expect(error.offset).toBeLessThanOrEqual(offset);
    expect(error.message).toContain(names[0]);
    expect(error.message).toContain(`byte ${error.offset}`);
    expect(segmentNames()).toEqual(names);
    names.forEach((n, i) => expect(readFileSync(join(directory, n)).equals(before[i]!)).toBe(true));
  });
});
