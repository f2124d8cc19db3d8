/**
 * The part of the `rocksdb` package (5.x, an abstract-leveldown 7 store) that rocks-kv.ts uses;
 * the package ships no types. Written from its leveldown.js, iterator.js and binding.cc.
 *
 * Must never: declare more than rocks-kv.ts calls (what is not declared here has not been read).
 */

declare module 'rocksdb' {
  function rocksdb(location: string): rocksdb.RocksDB;

  namespace rocksdb {
    type ErrorCallback = (error: Error | null | undefined) => void;

    interface OpenOptions {
      /** Default true. */
      createIfMissing?: boolean;
      /** Default false. */
      errorIfExists?: boolean;
    }

    interface GetOptions {
      /** Default true; false answers a UTF-8 string. */
      asBuffer?: boolean;
    }

    interface IteratorOptions {
      /** A zero-length bound counts as absent: no bound at all. */
      gte?: Buffer;
      /** A zero-length bound counts as absent: no bound at all. */
      lt?: Buffer;
      /** Default true. */
      keyAsBuffer?: boolean;
      /** Default true. */
      valueAsBuffer?: boolean;
      /** Bytes one native read gathers before answering (default 16 KiB; at most 1,000 entries either way). */
      highWaterMark?: number;
    }

    interface Iterator {
      /** Answers no key and no value once past the range. */
      next(callback: (error: Error | null | undefined, key?: Buffer, value?: Buffer) => void): void;
      /** Releases the native iterator and its snapshot. Only the first call is ever answered. */
      end(callback: ErrorCallback): void;
    }

    interface ChainedBatch {
      /** Copies key and value into the native WriteBatch before returning. Throws on an empty key. */
      put(key: Buffer, value: Buffer): this;
      del(key: Buffer): this;
      write(options: { sync: boolean }, callback: ErrorCallback): void;
    }

    interface RocksDB {
      open(options: OpenOptions, callback: ErrorCallback): void;
      close(callback: ErrorCallback): void;
      /** Compact the keys in [start, end] (RocksDB's own threads), then call back. */
      compactRange(start: Buffer, end: Buffer, callback: ErrorCallback): void;
      /** A missing key answers an Error whose message begins "NotFound". */
      get(key: Buffer, options: GetOptions, callback: (error: Error | null | undefined, value?: Buffer) => void): void;
      /** A chained batch, written as one RocksDB WriteBatch. */
      batch(): ChainedBatch;
      iterator(options: IteratorOptions): Iterator;
      /** A RocksDB property ("rocksdb.stats", "rocksdb.num-snapshots", ...); "" for an unknown one. */
      getProperty(name: string): string;
    }
  }

  export = rocksdb;
}
