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
import { discardStaged, openSnapshotStream, receiveSnapshot, recoverStateDirectory, swapInStaged, writeSnapshotInto } from '../storage/snapshot.js';
import type { SnapshotMeta } from '../raft/types.js';
import type { StoreHome } from './runtime.js';

type Options = Omit<StateMachineOptions, 'trackChanges'>;


export class RocksStoreHome implements StoreHome {
  private staged: SnapshotMeta | null = null;

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

  snapshot(options: Parameters<StoreHome['snapshot']>[0] = {}): ReturnType<StoreHome['snapshot']> {
    return openSnapshotStream(this.store.engine, options.chunkBytes, options.observe);
  }

  async receive(chunks: AsyncIterable<Uint8Array>): Promise<SnapshotMeta> {
    this.staged = null; // receiving replaces whatever was staged
    const base = await receiveSnapshot(this.directory, chunks);
    this.staged = base;
    return base;
  }

  stagedMeta(): SnapshotMeta | null {
    return this.staged;
  }

  async discardStaged(): Promise<void> {
    this.staged = null;
    await discardStaged(`${this.directory}.incoming`);
  }

  async installStaged(): Promise<void> {
    this.staged = null;
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
  private staged: { readonly engine: MemoryKvEngine; readonly base: SnapshotMeta } | null = null;

  private constructor(
    private readonly options: Options,
    public store: StateStore,
  ) {}

  static async open(options: Options = {}, engine: KvEngine = new MemoryKvEngine()): Promise<MemoryStoreHome> {
    return new MemoryStoreHome(options, await StateStore.open(engine, options));
  }

  snapshot(options: Parameters<StoreHome['snapshot']>[0] = {}): ReturnType<StoreHome['snapshot']> {
    return openSnapshotStream(this.store.engine, options.chunkBytes, options.observe);
  }

  async receive(chunks: AsyncIterable<Uint8Array>): Promise<SnapshotMeta> {
    this.staged = null;
    const engine = new MemoryKvEngine();
    const base = await writeSnapshotInto(engine, chunks);
    this.staged = { engine, base };
    return base;
  }

  stagedMeta(): SnapshotMeta | null {
    return this.staged?.base ?? null;
  }

  async discardStaged(): Promise<void> {
    this.staged = null;
  }

  async installStaged(): Promise<void> {
    if (this.staged === null) throw new Error('no staged snapshot to install');
    this.store = await StateStore.open(this.staged.engine, this.options);
    this.staged = null;
  }
}
