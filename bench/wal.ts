/**
 * `npm run bench:wal`: the disk's raw fdatasync rate and the write-ahead log's durable append
 * rates, in one run so they compare; then recovery time of a 1 GiB log. A benchmark, not a test:
 * it prints figures (a table, then one JSON line).
 *
 * Raw rate: write 4 KiB at the next offset of a preallocated file + fdatasync, in a loop —
 * the disk's best case for a synchronous commit, measured before and after the WAL cases (the
 * machine is shared; the mean is the reference). WAL: 256-byte entries, batch sizes 1, 8, 64
 * and 512, one sync() per batch (one write + one fdatasync, as one turn of the update loop).
 *
 * Flags: --seconds N per case (default 2), --recovery-gib N (default 1; 0 skips), --dir D.
 *
 * Must never: be used as a timed assertion; leave its files behind.
 */

import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Entry } from '../server/raft/types.js';
import { NodeFileSystem } from '../server/storage/file-system.js';
import { Wal } from '../server/storage/wal/wal.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, 'recovery-gib': { type: 'string', default: '1' }, dir: { type: 'string' } } });
const seconds = Number(values.seconds);
const recoveryGiB = Number(values['recovery-gib']);
const root = mkdtempSync(join(values.dir ?? tmpdir(), 'warden-bench-wal-'));
const fs = new NodeFileSystem();

function rawFdatasyncRate(): number {
  const path = join(root, 'raw');
  const fd = openSync(path, 'w+');
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < 64; i++) writeSync(fd, zeros);
  fdatasyncSync(fd);
  const block = Buffer.alloc(4096, 0xa5);
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    writeSync(fd, block, 0, block.length, (count * 4096) % (64 * 1024 * 1024));
    fdatasyncSync(fd);
    count += 1;
  }
  const rate = count / ((performance.now() - started) / 1000);
  closeSync(fd);
  rmSync(path);
  return rate;
}

function walRate(batch: number): { syncsPerSecond: number; entriesPerSecond: number } {
  const directory = join(root, `wal-${batch}`);
  const { wal } = Wal.open(fs, directory);
  const data = new Uint8Array(256).fill(0x5a);
  let index = 0;
  let syncs = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    const entries: Entry[] = [];
    for (let i = 0; i < batch; i++) entries.push({ index: ++index, term: 1, type: 'normal', data });
    wal.append(entries);
    wal.setHardState({ term: 1, vote: 'bench', commit: index - batch });
    wal.sync();
    syncs += 1;
  }
  const elapsed = (performance.now() - started) / 1000;
  wal.close();
  rmSync(directory, { recursive: true, force: true });
  return { syncsPerSecond: syncs / elapsed, entriesPerSecond: index / elapsed };
}

function recovery(gib: number): { bytes: number; entries: number; segments: number; writeSeconds: number; recoverSeconds: number } {
  const directory = join(root, 'recovery');
  const { wal } = Wal.open(fs, directory);
  const data = new Uint8Array(256).fill(0x33);
  const target = gib * 1024 * 1024 * 1024;
  let written = 0;
  let index = 0;
  const writeStarted = performance.now();
  while (written < target) {
    const entries: Entry[] = [];
    for (let i = 0; i < 8192; i++) entries.push({ index: ++index, term: 1, type: 'normal', data });
    wal.append(entries);
    wal.setHardState({ term: 1, vote: 'bench', commit: index });
    written += wal.sync();
  }
  const writeSeconds = (performance.now() - writeStarted) / 1000;
  const segments = wal.segmentCount;
  wal.close();
  const started = performance.now();
  // As a member starts: every segment read and checked, the entries after the applied index kept.
  const { wal: reopened, log } = Wal.open(fs, directory, { keepFrom: index - 10_000 });
  const recoverSeconds = (performance.now() - started) / 1000;
  if (log.lastIndex !== index || log.entries.length !== 10_001) throw new Error(`recovered ${log.lastIndex} / ${log.entries.length}, wrote ${index}`);
  reopened.close();
  rmSync(directory, { recursive: true, force: true });
  return { bytes: written, entries: index, segments, writeSeconds, recoverSeconds };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
try {
  const rawBefore = rawFdatasyncRate();
  const cases = [1, 8, 64, 512].map((batch) => ({ batch, ...walRate(batch) }));
  const rawAfter = rawFdatasyncRate();
  const raw = (rawBefore + rawAfter) / 2;
  process.stdout.write(`raw fdatasync (4 KiB write + fdatasync): ${fmt(raw)}/s (before ${fmt(rawBefore)}, after ${fmt(rawAfter)})\n\n`);
  process.stdout.write('batch   syncs/s   ratio to raw   entries/s\n');
  for (const c of cases) process.stdout.write(`${String(c.batch).padStart(5)} ${fmt(c.syncsPerSecond).padStart(9)} ${(c.syncsPerSecond / raw).toFixed(2).padStart(14)} ${fmt(c.entriesPerSecond).padStart(11)}\n`);
  const rec = recoveryGiB > 0 ? recovery(recoveryGiB) : null;
  if (rec !== null) {
    process.stdout.write(
      `\nrecovery: ${(rec.bytes / 2 ** 30).toFixed(2)} GiB, ${fmt(rec.entries)} entries in ${rec.segments} segments: checked in ${rec.recoverSeconds.toFixed(2)} s (${fmt(rec.bytes / 2 ** 20 / rec.recoverSeconds)} MiB/s; written in ${rec.writeSeconds.toFixed(1)} s)\n`,
    );
  }
  process.stdout.write(JSON.stringify({ benchmark: 'wal', rawFdatasyncPerSecond: raw, rawBefore, rawAfter, cases, recovery: rec }) + '\n');
} finally {
  rmSync(root, { recursive: true, force: true });
}
