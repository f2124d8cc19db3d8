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
import { appliedIndexOf, discardStaged, finishesInstall, openSnapshotStream, receiveSnapshot, recoverStateDirectory, swapInStaged, writeSnapshotInto, type ScanPace } from '../storage/snapshot.js';
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

  /** Give back the disk space deletes and history compaction freed (RocksDB compacts in its own threads). */
  reclaimSpace(): Promise<void> {
    return (this.store.engine as RocksKvEngine).compactAll();
  }

  /**
   * Open the store in `directory`, first finishing or discarding an interrupted install: finished
   * only if `logBaseIndex` (the recovered WAL's base) names it.
   */
  static async open(directory: string, logBaseIndex: number | null, options: Options = {}): Promise<RocksStoreHome> {
    await recoverStateDirectory(directory, logBaseIndex);
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

/**
 * A member's state directory in memory, as RocksStoreHome keeps it on disk: the live store, and
 * the one staged beside it (`<dir>.incoming`), complete once its last chunk landed synced. A
 * power cut (`crash`) costs each store its unsynced batches; opening a home on it finishes or
 * discards a staged install by the same rule as the real directory's recovery.
 */
export class MemoryStateDisk {
  /** The staged store, and its base once its last chunk landed (complete). */
  incoming: { readonly engine: MemoryKvEngine; base: SnapshotMeta | null } | null = null;

  constructor(public live: MemoryKvEngine = new MemoryKvEngine()) {}

  /** A power cut: each store keeps only what it synced. */
  crash(): void {
    this.live.crash();
    this.incoming?.engine.crash();
  }

  /** An independent copy (for a restarted member, while the dead one's writes in flight land in the old). */
  clone(): MemoryStateDisk {
    const copy = new MemoryStateDisk(this.live.clone());
    if (this.incoming !== null) copy.incoming = { engine: this.incoming.engine.clone(), base: this.incoming.base };
    return copy;
  }
}

export class MemoryStoreHome implements StoreHome {
  private constructor(
    private readonly options: Options,
    private readonly disk: MemoryStateDisk,
    public store: StateStore,
    private readonly pace: ScanPace | undefined,
  ) {}

  /**
   * Open the store on `disk` (a fresh one by default), first finishing or discarding an
   * interrupted install, by the same rule as RocksStoreHome (`logBaseIndex`: the WAL's base).
   */
  static async open(options: Options = {}, disk: MemoryStateDisk | MemoryKvEngine = new MemoryStateDisk(), pace?: ScanPace, logBaseIndex: number | null = null): Promise<MemoryStoreHome> {
    const state = disk instanceof MemoryStateDisk ? disk : new MemoryStateDisk(disk);
    const incoming = state.incoming;
    if (incoming !== null && incoming.base !== null && finishesInstall(await appliedIndexOf(incoming.engine), await appliedIndexOf(state.live), logBaseIndex)) state.live = incoming.engine;
    state.incoming = null;
    return new MemoryStoreHome(options, state, await StateStore.open(state.live, options), pace);
  }

  snapshot(options: Parameters<StoreHome['snapshot']>[0] = {}): ReturnType<StoreHome['snapshot']> {
    return openSnapshotStream(this.store.engine, options.chunkBytes, options.observe, this.pace);
  }

  async receive(chunks: AsyncIterable<Uint8Array>): Promise<SnapshotMeta> {
    const staging: { readonly engine: MemoryKvEngine; base: SnapshotMeta | null } = { engine: new MemoryKvEngine(), base: null };
    this.disk.incoming = staging; // receiving replaces whatever was staged
    const base = await writeSnapshotInto(staging.engine, chunks);
    if (this.disk.incoming !== staging) throw new Error('snapshot: another stream replaced this one while it was staged');
    staging.base = base;
    return base;
  }

  stagedMeta(): SnapshotMeta | null {
    return this.disk.incoming?.base ?? null;
  }

  async discardStaged(): Promise<void> {
    this.disk.incoming = null;
  }

  async installStaged(): Promise<void> {
    const incoming = this.disk.incoming;
    if (incoming === null || incoming.base === null) throw new Error('no complete staged snapshot to install');
    this.disk.live = incoming.engine;
    this.disk.incoming = null;
    this.store = await StateStore.open(incoming.engine, this.options);
  }
}
