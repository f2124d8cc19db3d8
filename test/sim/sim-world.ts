/**
 * The state one simulated run shares between its parts (the cluster, the network, the nemesis,
 * the runtime properties and the run itself): the seeded random source, the agenda and its
 * events, virtual time, whether the faults have healed, the safety checker, the fault, coverage
 * and WAL counts, the trace, and a violation a callback found; and the timing constants more
 * than one part reads.
 *
 * Pattern: a context object, made once per run and passed explicitly to each part.
 *
 * Must never: hold a second random source or agenda (a seed replays only while every draw and
 * every push goes through the one instance, in the same order), or outlive its run.
 */

import type { Message, NodeId } from '../../server/raft/index.js';
import type { ClientReply, ClientRequest } from './client.js';
import { EventQueue } from './event-queue.js';
import { SafetyChecker } from './invariants.js';
import { SimRandom } from './random.js';
import type { Coverage, FaultCounts, SimOptions } from './simulation.js';

export type SimEvent =
  /** A member's timer or deferred turn (dropped if that incarnation died), or a delivery to a member (whichever incarnation is up). */
  | { readonly kind: 'run'; readonly member: NodeId; readonly incarnation: number | null; readonly run: () => void }
  | { readonly kind: 'raft'; readonly message: Message }
  /** Something outside the members (a watcher's frame arriving): never waits for a paused member. */
  | { readonly kind: 'call'; readonly run: () => void }
  | { readonly kind: 'request'; readonly member: NodeId; readonly request: ClientRequest }
  | { readonly kind: 'reply'; readonly clientId: number; readonly reply: ClientReply }
  | { readonly kind: 'client-wake'; readonly clientId: number; readonly token: number }
  | { readonly kind: 'nemesis' }
  | { readonly kind: 'restart'; readonly member: NodeId }
  /** A power cut armed for a member's next sync; if it has not synced by then, it crashes plainly. */
  | { readonly kind: 'power-cut-deadline'; readonly member: NodeId; readonly incarnation: number }
  | { readonly kind: 'heal-partition'; readonly generation: number };

export const TICK_MS = 10;
export const ELECTION_TICKS = 10;
/** The slowest one-way delay once faults heal: a tenth of the shortest election timeout. */
export const HEALTHY_DELAY_MS_MAX = 10;
/** Where the members' wall clocks start (log time). */
export const WALL_EPOCH_MS = 1_800_000_000_000;
/**
 * Members' wall clocks (log time) are NTP-disciplined: each is off by a fixed skew, at most this,
 * while their monotonic clocks (timers, deadlines) run at their own rates. (Wall clocks drifting
 * with the rates drifted apart by tens of seconds in a long run and expired client sessions.)
 */
export const WALL_SKEW_MS_MAX = 500;
/** Lease holders' ids, after the clients' on the simulated network, and their leases' ids. */
export const HOLDER_ID_BASE = 1_001;
export const LEASE_ID_BASE = 7_001;

/** How many members the nemesis may add over a run (fresh names: a removed name is never reused). */
export const SPARE_MEMBERS = 3;

export class SimWorld {
  readonly random: SimRandom;
  /**
   * The members the run has started (or is about to) and not retired: the initial cluster, then
   * any the nemesis added. Clients, watchers and partitions pick from this list, so it is changed
   * in place.
   */
  readonly nodeIds: NodeId[];
  /** The cluster the members were started as (`--initial-cluster`); a member outside it joins. */
  readonly initialIds: readonly NodeId[];
  /** Every name a member may have in this run: the initial ones, then the spares, in order. */
  readonly allIds: readonly NodeId[];
  /** Members removed from the cluster and then shut down for good, as an operator would. */
  readonly retired = new Set<NodeId>();
  /** The indexes of the configuration entries members applied: the membership changes committed. */
  readonly configIndexes = new Set<number>();
  readonly queue = new EventQueue<SimEvent>();
  readonly checker = new SafetyChecker();
  readonly faults: FaultCounts = { dropped: 0, duplicated: 0, partitions: 0, crashes: 0, pauses: 0, transfers: 0 };
  readonly coverage: Coverage = { elections: 0, snapshotInstalled: 0, leaderRead: 0, followerRead: 0, unknownOutcomes: 0, leasesExpired: 0, leaseRenewals: 0, watchedRevisions: 0, watchResumes: 0, powerCuts: 0, batchesTorn: 0, tornTailsCut: 0, walSegmentsDeleted: 0, membershipChanges: 0 };
  readonly walCounts = { lost: 0, kept: 0, torn: 0, tornTailsCut: 0, segmentsDeleted: 0 };
  readonly traceLines: string[] = [];
  now = 0;
  /** Faults off: no more drops, slow messages or nemesis strikes. */
  healing = false;
  /**
   * A violation a member's callback found: raised by the event loop after the step, not inside
   * the runtime, where the runtime could swallow it. The first one wins.
   */
  pendingViolation: Error | null = null;

  constructor(readonly options: SimOptions) {
    this.random = new SimRandom(options.seed);
    // The seed's first draw: the cluster's size.
    const nodes = options.nodes ?? this.random.pick([3, 5] as const);
    this.allIds = Array.from({ length: nodes + SPARE_MEMBERS }, (_, i) => `n${i + 1}`);
    this.initialIds = this.allIds.slice(0, nodes);
    this.nodeIds = [...this.initialIds];
  }

  trace(line: string): void {
    if (this.options.trace) this.traceLines.push(line);
  }

  raise(violation: Error): void {
    this.pendingViolation ??= violation;
  }
}
