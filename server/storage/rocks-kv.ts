/**
 * The KvEngine (the state machine's storage seam, server/state/kv-engine.ts) on RocksDB, through
 * the `rocksdb` package: an Adapter over its callback API, with the in-memory twin
 * (server/state/memory-kv.ts) as the reference the same contract suite holds both to.
 *
 * A write is one RocksDB WriteBatch, filled before `write` returns (the binding copies every
 * key and value into it then) and written with the caller's sync flag; batches are written one
 * after another in call order, because the binding runs each on a libuv pool thread and two
 * threads may reach RocksDB in either order. A scan is one RocksDB iterator (on a snapshot taken
 * when the scan begins) read in native chunks of up to 1 MiB or 1,000 entries, and ended however
 * the loop over it ends. Keys and values handed out are plain Uint8Array views, each over its own
 * freshly allocated memory: callers may keep and change them.
 *
 * Where it differs from the twin, because the binding does: an empty key is refused (the whole
 * batch with it); an empty batch is not written at all, so `sync` on one makes nothing durable;
 * a scan does not verify block checksums (the binding turns that off for iterators), a get does.
 *
 * Must never: call into the binding once closed (RocksDB's handle is gone and the process would
 * crash, not throw); hand the binding a Uint8Array that is not a Buffer (it would store its
 * String() spelling: "1,2,3"); leave an iterator open past the end of its scan or past close.
 */

import { mkdir } from 'node:fs/promises';
import rocksdb from 'rocksdb';
import { compareKeys, type KvEngine, type KvWrite, type KvWriteOptions } from '../state/kv-engine.js';

export interface RocksKvOptions {
  /** Create the directory (and its parents) and the database when missing. Default true. */
  readonly createIfMissing?: boolean;
  /** Refuse a directory that already holds a database. Default false. */
  readonly errorIfExists?: boolean;
}

/** Bytes one native iterator read gathers (the binding also stops at 1,000 entries). */
const SCAN_CHUNK_BYTES = 1 << 20;

interface OpenScan {
  readonly iterator: rocksdb.Iterator;
  ending: Promise<void> | undefined;
}

export class RocksKvEngine implements KvEngine {
  /** Settles when the last write called has; never rejects, so a failed write does not stop the next. */
  private writeTail: Promise<void> = Promise.resolve();
  private readonly scans = new Set<OpenScan>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly db: rocksdb.RocksDB,
    /** Where the database lives, for messages. */
    readonly directory: string,
  ) {}

  /** Open (by default creating) the database in `directory`. One engine per directory: RocksDB locks it. */
  static async open(directory: string, options: RocksKvOptions = {}): Promise<RocksKvEngine> {
    const createIfMissing = options.createIfMissing ?? true;
    // RocksDB creates the database's own directory but not its parents.
    if (createIfMissing) await mkdir(directory, { recursive: true });
    const db = rocksdb(directory);
    try {
      await callback((done) => db.open({ createIfMissing, errorIfExists: options.errorIfExists ?? false }, done));
    } catch (error) {
      throw new Error(`cannot open the RocksDB store at ${directory}: ${(error as Error).message}`, { cause: error });
    }
    return new RocksKvEngine(db, directory);
  }

  /**
   * Not an async function: the WriteBatch must be filled before returning, so that a caller
   * reusing its buffers afterwards changes nothing, even while an earlier write is in flight.
   */
  write(batch: readonly KvWrite[], options: KvWriteOptions): Promise<void> {
    let native: rocksdb.ChainedBatch;
    try {
      this.checkOpen();
      native = this.db.batch();
      for (const op of batch) {
        if (op.type === 'put') native.put(asBuffer(op.key), asBuffer(op.value));
        else native.del(asBuffer(op.key));
      }
    } catch (error) {
      // An unwritten WriteBatch is dropped whole (the binding frees it), so nothing of it lands.
      return Promise.reject(error);
    }
    const written = this.writeTail.then(() => callback((done) => native.write({ sync: options.sync }, done)));
    this.writeTail = written.catch(() => undefined);
    return written;
  }

  /**
   * Compact the whole key range in RocksDB's own threads (the event loop goes on): what deletes
   * and history compaction left as tombstones is dropped and the disk space given back — the
   * space quota's way out of its alarm, with no stop-the-world defragmentation.
   */
  compactAll(): Promise<void> {
    this.checkOpen();
    return callback((done) => this.db.compactRange(Buffer.from([0x00]), Buffer.alloc(64, 0xff), done));
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.checkOpen();
    return new Promise((resolve, reject) => {
      this.db.get(asBuffer(key), { asBuffer: true }, (error, value) => {
        if (!error) resolve(asView(value!));
        else if (error.message.startsWith('NotFound')) resolve(undefined);
        else reject(error);
      });
    });
  }

  async *scan(range: { readonly gte: Uint8Array; readonly lt: Uint8Array }): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    this.checkOpen();
    // Also covers an empty lt, which the binding would read as no upper bound at all.
    if (compareKeys(range.gte, range.lt) >= 0) return;
    const scan: OpenScan = {
      iterator: this.db.iterator({ gte: asBuffer(range.gte), lt: asBuffer(range.lt), keyAsBuffer: true, valueAsBuffer: true, highWaterMark: SCAN_CHUNK_BYTES }),
      ending: undefined,
    };
    this.scans.add(scan);
    try {
      for (;;) {
        // close() ends the iterator under a scan the consumer still holds, or one awaiting a chunk.
        this.checkOpen();
        const entry = await next(scan.iterator);
        this.checkOpen();
        if (entry === undefined) return;
        yield [asView(entry[0]), asView(entry[1])];
      }
    } finally {
      // Runs on return, throw and a consumer's break alike (for-await calls return()).
      await this.endScan(scan);
    }
  }

  /**
   * Refuse new calls, let the writes already called land, end the scans still open, then close
   * RocksDB. Calling it again answers the same promise.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.writeTail;
      await Promise.allSettled([...this.scans].map((scan) => this.endScan(scan)));
      await callback((done) => this.db.close(done));
    })();
    return this.closing;
  }

  /**
   * A RocksDB property, for metrics and diagnostics: "rocksdb.stats" (its "Cumulative WAL" line
   * counts writes and syncs), "rocksdb.num-snapshots" (one per open scan), "rocksdb.estimate-num-keys".
   * An unknown name answers "".
   */
  property(name: string): string {
    this.checkOpen();
    return this.db.getProperty(name);
  }

  /**
   * Each iterator is ended once, here. close() ends every open scan itself before closing RocksDB:
   * RocksDB's own close ends them natively, and the binding never answers an end() after that.
   */
  private endScan(scan: OpenScan): Promise<void> {
    scan.ending ??= callback((done) => scan.iterator.end(done)).finally(() => this.scans.delete(scan));
    return scan.ending;
  }

  private checkOpen(): void {
    if (this.closing !== undefined) throw new Error(`the key-value engine at ${this.directory} is closed`);
  }
}

function next(iterator: rocksdb.Iterator): Promise<[Buffer, Buffer] | undefined> {
  return new Promise((resolve, reject) => {
    iterator.next((error, key, value) => {
      if (error) reject(error);
      else resolve(key === undefined ? undefined : [key, value!]);
    });
  });
}

/** The same bytes as a Buffer, without copying: the binding copies them itself before returning. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A plain Uint8Array over the binding's Buffer, the type the in-memory twin hands out: values
 * decoded from the store are subarrays of what it gives, and deep equality tells a Buffer from a
 * Uint8Array of the same bytes, so a machine reloaded from RocksDB would not equal its original.
 * No copy: the binding allocates each Buffer fresh (napi_create_buffer_copy, not the pool), so no
 * other key or value shares its memory.
 */
function asView(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function callback(start: (done: (error: Error | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => start((error) => (error ? reject(error) : resolve())));
}
