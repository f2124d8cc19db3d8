/**
 * The member runtime's ports: what it is given (clock, timers, randomness, write-ahead log,
 * state store home, peer link, logger, hooks), as interfaces, so wardend, the runtime's tests
 * and the simulator each plug in their own (real, in-memory, simulated).
 *
 * Must never: hold logic; name a concrete implementation.
 */

import type { StateMachine, StateResult } from '../state/state-machine.js';
import type { StateStore } from '../state/state-store.js';
import type { PairObserver } from '../storage/snapshot.js';
import type { Entry, Message, NodeId, RandomSource, SnapshotMessage, SnapshotMeta } from '../raft/types.js';
import type { Wal } from '../storage/wal/wal.js';
import type { RecoveredLog } from '../storage/wal/recover.js';
import type { LeaseStatus } from './lease-keeper.js';
import type { ChangeEvent, LeaseId } from '../state/types.js';

/** A lease question only the leader can answer (it alone keeps lease deadlines). */
/** `user`: who asks (auth enabled): the leader answers only for that user's leases (or any, for an admin). */
export type LeaseRequest = ({ readonly op: 'keepAlive'; readonly leases: readonly LeaseId[] } | { readonly op: 'timeToLive'; readonly lease: LeaseId }) & { readonly user?: string };

export interface RuntimeClock {
  /** Milliseconds that never go back (for timers and deadlines). */
  monotonicMs(): number;
  /** Wall-clock milliseconds: the proposer's time carried in each entry (log time). */
  wallMs(): number;
}

export interface RuntimeTimers {
  setInterval(run: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** Run soon, after the current event (a turn of the update loop). */
  defer(run: () => void): void;
}

/** What the runtime asks of the write-ahead log (the Wal, or the simulator's watch over one). */
export type RuntimeWal = Pick<Wal, 'append' | 'setHardState' | 'setBase' | 'write' | 'syncAsync' | 'compact' | 'wantsSpare' | 'prepareSpare' | 'close'>;

/** The member's side of the peer channels. */
export interface PeerLink {
  /** Best effort: a message to a member that is down is dropped (Raft retries). */
  send(message: Message): void;
  /** A client write, as entry bytes, for the leader to propose; answers its result. */
  forward(to: NodeId, entry: Uint8Array): Promise<StateResult>;
  /**
   * Stream a snapshot to `message.to`: `message` (its data null) and then the chunks, paced by
   * the channel. Resolves once all are sent; rejects if the channel fails on the way.
   */
  sendSnapshot(message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** A lease keep-alive or time-to-live for the leader to answer. */
  leaseRequest(to: NodeId, request: LeaseRequest): Promise<LeaseStatus[]>;
  /** The members to talk to now, with their peer URLs (the configuration changed); absent: a fixed set. */
  setPeers?(peers: ReadonlyMap<NodeId, string>): void;
}

/** Where the state store lives: it can be replaced whole by an installed snapshot. */
export interface StoreHome {
  readonly store: StateStore;
  /** The store's snapshot now: its applied index, and its chunks (read once, first carrying `base`). */
  snapshot(options?: { readonly chunkBytes?: number; readonly observe?: PairObserver }): Promise<{ readonly appliedIndex: number; chunks(base: SnapshotMeta): AsyncIterable<Uint8Array>; close(): Promise<void> }>;
  /** Receive a snapshot stream beside the live store (staged, durable); answers its base. */
  receive(chunks: AsyncIterable<Uint8Array>): Promise<SnapshotMeta>;
  /** The base of the snapshot staged now and complete, or null. */
  stagedMeta(): SnapshotMeta | null;
  /** Replace the store with the staged snapshot (closed, swapped, reopened). */
  installStaged(): Promise<void>;
  /** Throw away a staged snapshot that will not be installed. */
  discardStaged(): Promise<void>;
}


export interface RuntimeLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}


export interface RuntimeDeps {
  readonly clock: RuntimeClock;
  readonly timers: RuntimeTimers;
  readonly random: RandomSource;
  readonly wal: RuntimeWal;
  readonly recovered: RecoveredLog;
  readonly home: StoreHome;
  readonly link: PeerLink;
  readonly logger: RuntimeLogger;
  /** The member's storage failed and it stopped (called once). */
  readonly onFatal?: (error: Error) => void;
  /** One applied entry's change events (all at one revision), for the watch hub. Must not throw or wait. */
  readonly onApplied?: (events: readonly ChangeEvent[]) => void;
  /** A leader's snapshot replaced the store: revisions were skipped here. */
  readonly onStoreReplaced?: () => void;
  /** Each committed entry as it is applied (the simulator checks every member applies the same). Must not throw or wait. */
  readonly onEntryApplied?: (entry: Entry) => void;
}

/** What a member counts as it runs, for its metrics (read at a scrape; only ever incremented). */
export interface RuntimeCounters {
  /** Proposals this member's core took that were then applied. */
  proposalsCommitted: number;
  /** Proposals this member's core took whose outcome became a failure (lost leadership, stopped). */
  proposalsFailed: number;
  /** Times the leader this member knows changed (to another member or to none). */
  leaderChanges: number;
}
