/**
 * Where a member's state store lives, and how a leader's snapshot replaces it: on RocksDB in a
 * data directory (install into `<dir>.incoming`, swap, reopen), or in memory for tests and the
 * simulator. The runtime sees only StoreHome.
 *
 * Must never: let the runtime hold a store that was replaced (it reads `store` each time).
 */

import type { KvEngine } from '../state/kv-engine.js';
import { MemoryKvEngine } from '../state/memory-kv.js';
import type { StateMachineOptions } from '../state/state-machine.js';
import { StateStore } from '../state/state-store.js';
import { RocksKvEngine } from '../storage/rocks-kv.js';
import { frameChunks, openSnapshotStream, receiveSnapshot, recoverStateDirectory, swapInStaged, unframeChunks, writeSnapshotInto } from '../storage/snapshot.js';
import type { SnapshotMeta } from '../raft/types.js';
import type { StoreHome } from './runtime.js';

type Options = Omit<StateMachineOptions, 'trackChanges'>;

async function snapshotOf(engine: KvEngine): Promise<{ appliedIndex: number; bytes(base: SnapshotMeta): Promise<Uint8Array> }> {
  const stream = await openSnapshotStream(engine);
  return { appliedIndex: stream.appliedIndex, bytes: (base) => frameChunks(stream.chunks(base)) };
}

export class RocksStoreHome implements StoreHome {
  private constructor(
    private readonly directory: string,
    private readonly options: Options,
    public store: StateStore,
  ) {}

  /** Open the store in `directory`, first finishing or discarding an interrupted install. */
  static async open(directory: string, options: Options = {}): Promise<RocksStoreHome> {
    await recoverStateDirectory(directory);
    return new RocksStoreHome(directory, options, await StateStore.open(await RocksKvEngine.open(directory), options));
  }

  snapshot(): ReturnType<StoreHome['snapshot']> {
    return snapshotOf(this.store.engine);
  }

  async install(bytes: Uint8Array): Promise<void> {
    await receiveSnapshot(this.directory, unframeChunks(bytes));
    // The old store is replaced whole: close() lets its writes in flight land, nothing more is needed.
    await this.store.engine.close();
    await swapInStaged(this.directory);
    this.store = await StateStore.open(await RocksKvEngine.open(this.directory), this.options);
  }

  close(): Promise<void> {
    return this.store.engine.close();
  }
}

export class MemoryStoreHome implements StoreHome {
  private constructor(
    private readonly options: Options,
    public store: StateStore,
  ) {}

  static async open(options: Options = {}, engine: KvEngine = new MemoryKvEngine()): Promise<MemoryStoreHome> {
    return new MemoryStoreHome(options, await StateStore.open(engine, options));
  }

  snapshot(): ReturnType<StoreHome['snapshot']> {
    return snapshotOf(this.store.engine);
  }

  async install(bytes: Uint8Array): Promise<void> {
    const engine = new MemoryKvEngine();
    await writeSnapshotInto(engine, unframeChunks(bytes));
    this.store = await StateStore.open(engine, this.options);
  }
}
