/**
 * Disaster recovery: a new member's data directory built from a snapshot file (`warden snapshot
 * restore`, run once per member of the new cluster). The store is the snapshot's, whole; the
 * write-ahead log holds only a base at the snapshot's index and term whose voters are the new
 * cluster's (from --initial-cluster), and a hard state at that term with no vote. Every member
 * restored from one file thus starts from the same state at the same index, and the first
 * election (term + 1) builds on it: the same data at the same revision, as one new cluster.
 *
 * The file is checked as it is read (every chunk's CRC, the header against the chunks' base,
 * the whole file's SHA-256 at its end); the store is staged beside its final place, swapped in
 * only when the file checked out, and loaded once as a member would load it; the log is written
 * last. A RESTORE-INCOMPLETE marker stands in the directory from the first write to the last,
 * and wardend refuses to start beside it: a failed or interrupted restore leaves no member that
 * could start.
 *
 * Must never: write into a directory that holds data already (a live member's, or another
 * restore's); leave a store in place for a file that failed a check; give the log a base whose
 * term the store's index did not have (a later leader's entries would not follow it).
 */

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readSnapshotFile, SnapshotFileError, type SnapshotFileHeader, type SnapshotFileTrailer } from '../shared/snapshot-file.js';
import { restoredClusterId, writeClusterId } from './cluster-id.js';
import { parseInitialCluster } from './server.js';
import { lockDataDir, RESTORE_MARKER } from './storage/data-dir-lock.js';
import { NodeFileSystem } from './storage/file-system.js';
import { RocksKvEngine } from './storage/rocks-kv.js';
import { chunkBase, discardStaged, receiveSnapshot, swapInStaged, syncDirectory } from './storage/snapshot.js';
import { StateStore } from './state/state-store.js';
import { Wal, type WalLogger } from './storage/wal/wal.js';
import { INSTALLED_BASE_KEY, sealValue } from './state/store-format.js';

export interface RestoreOptions {
  readonly file: string;
  readonly dataDir: string;
  /** This member's name, as --initial-cluster spells it. */
  readonly name: string;
  /** The new cluster: name=peerURL, comma-separated (as wardend takes it). */
  readonly initialCluster: string;
  /** Bytes of the file read so far, of `total`. */
  readonly onProgress?: (bytes: number, total: number) => void;
  readonly logger?: WalLogger;
}

export interface RestoreResult {
  readonly header: SnapshotFileHeader;
  readonly trailer: SnapshotFileTrailer;
  readonly sha256: string;
  readonly voters: readonly string[];
  readonly dataDir: string;
  /** The new cluster's identity: every member restored from this file into this --initial-cluster has it. */
  readonly clusterId: string;
}

/** The data directory's own lock file: the only entry a fresh directory may hold. */
const LOCK_FILE = 'wardend.lock';

/** The names in `directory` other than its lock file. */
function heldIn(directory: string): string[] {
  return existsSync(directory) ? readdirSync(directory).filter((entry) => entry !== LOCK_FILE) : [];
}

export async function restoreSnapshot(options: RestoreOptions): Promise<RestoreResult> {
  const cluster = parseInitialCluster(options.initialCluster);
  if (!cluster.has(options.name)) throw new Error(`--initial-cluster does not name this member (${options.name})`);
  const voters = [...cluster.keys()].sort();
  if (!existsSync(options.file)) throw new Error(`no such file: ${options.file}`);
  const dataDir = resolve(options.dataDir);
  const mustBeEmpty = (): void => {
    const held = heldIn(dataDir);
    if (held.length > 0) throw new Error(`${options.dataDir} is not empty (${held.slice(0, 3).join(', ')}${held.length > 3 ? ', …' : ''}): a restore builds a new member's data into an empty directory`);
  };
  mustBeEmpty();
  const lock = await lockDataDir(dataDir);
  try {
    mustBeEmpty(); // again, under the lock: another restore may have begun between
    await writeFile(join(dataDir, RESTORE_MARKER), `a restore of ${options.file} began at ${new Date().toISOString()}\n`);
    await syncDirectory(dataDir);
    const total = statSync(options.file).size;
    let read = 0;
    const source = (async function* () {
      for await (const block of createReadStream(options.file, { highWaterMark: 1024 * 1024 })) {
        const bytes = block as Buffer;
        read += bytes.length;
        options.onProgress?.(read, total);
        yield new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      }
    })();
    const sha = createHash('sha256');
    const parts = readSnapshotFile(source, { update: (bytes) => sha.update(bytes), digest: () => new Uint8Array(sha.digest()) });
    const first = await parts.next();
    if (first.done === true || first.value.kind !== 'header') throw new SnapshotFileError('the file has no header');
    const header = first.value.header;
    let end: { trailer: SnapshotFileTrailer; sha256: string } | null = null;
    // The chunks, then the trailer and checksum: the store's last write waits for both (the
    // stream must end before receiveSnapshot marks the store complete).
    const chunks = (async function* () {
      for await (const part of parts) {
        if (part.kind === 'chunk') {
          // The header must agree with the base the chunks carry before the last chunk lands
          // (receiveSnapshot marks the store complete once it has).
          if (part.seq === 0) checkBase(part.bytes, header);
          yield part.bytes;
        } else if (part.kind === 'end') end = { trailer: part.trailer, sha256: part.sha256 };
      }
    })();
    const stateDir = join(dataDir, 'state');
    const base = await receiveSnapshot(stateDir, chunks);
    const checked = end as { trailer: SnapshotFileTrailer; sha256: string } | null;
    if (checked === null) {
      await discardStaged(`${stateDir}.incoming`);
      throw new SnapshotFileError('the file ended without its trailer');
    }
    await swapInStaged(stateDir);
    // The base the store came with names the old cluster's voters; the new one's go in its place.
    const engine = await RocksKvEngine.open(stateDir, { createIfMissing: false });
    try {
      await engine.write([{ type: 'put', key: INSTALLED_BASE_KEY, value: sealValue([base.index, base.term, voters]) }], { sync: true });
      // Load it as a member will: every record's own checksum read, the state rebuilt. A store
      // that cannot be loaded fails here, not when the new cluster starts.
      const loaded = await StateStore.open(engine);
      if (loaded.machine.appliedIndex !== base.index) throw new SnapshotFileError(`the store loads at index ${loaded.machine.appliedIndex}, not the snapshot's ${base.index}: the file is damaged`);
    } finally {
      await engine.close();
    }
    // Last: a member starts only with a log, and the log says where the store begins.
    const { wal } = Wal.open(new NodeFileSystem(), join(dataDir, 'wal'), options.logger === undefined ? {} : { logger: options.logger });
    try {
      wal.setHardState({ term: base.term, vote: null, commit: base.index });
      wal.setBase({ meta: { index: base.index, term: base.term, conf: { voters } }, replacesLog: true });
      wal.sync();
    } finally {
      wal.close();
    }
    // A cluster of its own: members restored from another file, or an old cluster under the same names, are refused.
    const clusterId = restoredClusterId(cluster, checked.sha256);
    await writeClusterId(dataDir, clusterId);
    await rm(join(dataDir, RESTORE_MARKER));
    await syncDirectory(dataDir);
    return { header, trailer: checked.trailer, sha256: checked.sha256, voters, dataDir, clusterId };
  } finally {
    lock.release();
  }
}

/** Chunk 0's base against the file's header: the same index and term, or the file is damaged. */
function checkBase(chunk: Uint8Array, header: SnapshotFileHeader): void {
  const base = chunkBase(chunk);
  if (base.index !== header.appliedIndex || base.term !== header.term) {
    throw new SnapshotFileError(`the header says index ${header.appliedIndex} term ${header.term}, the chunks ${base.index} term ${base.term}: the file is damaged`);
  }
}
