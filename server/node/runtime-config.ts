/**
 * The runtime's settings: the options a member is started with (server.ts takes them from
 * wardend's flags; the simulator and tests pass their own) and the defaults, resolved once into
 * a frozen config, with the figures derived from them (the election timeout, the lease-read
 * window, the shortest lease TTL) computed in one place.
 *
 * Must never: change after the runtime starts (it is frozen); hold a default anywhere but here.
 */

import type { NodeId, RaftConfig } from '../raft/types.js';

/**
 * Bugs the simulator plants in the runtime to prove it catches them (test/sim/plant.ts). wardend
 * never sets them: server.ts builds its options field by field from its flags.
 */
export interface RuntimePlantedBugs {
  /** Send every message of a Ready before its WAL sync, even those the persisting contract holds back. */
  readonly sendBeforeSync?: boolean;
  /** A leader applies the entries it appends before they commit. */
  readonly applyBeforeCommit?: boolean;
  /** Step a leader's snapshot into the core before its stream is staged whole. */
  readonly stepBeforeStaged?: boolean;
  /** The lease keeper of a deposed leader keeps its deadlines and, leading again, expires by them without a refresh. */
  readonly deposedLeaderKeepsDeadlines?: boolean;
}

export interface RuntimeOptions {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  /** The first members' peer URLs (--initial-cluster): members added later bring theirs in the log. */
  readonly peerUrls?: ReadonlyMap<NodeId, string>;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  /** Make the store durable and move the log's low-water mark every this many applied entries. */
  readonly snapshotEvery?: number;
  /** Entries kept below the low-water mark, for followers a little behind. */
  readonly keepEntries?: number;
  /**
   * Bytes of applied entries between snapshots, whichever of this and `snapshotEvery` comes
   * first (default 64 MiB); at most half of it is kept below the mark. The log lives in memory
   * until it is compacted: with 1 MiB values, 10,000 entries would be 10 GiB.
   */
  readonly snapshotBytes?: number;
  /**
   * Node changes (plus one per entry) one turn applies before it lets the network in: the rest of
   * the committed entries are applied on the next turn (default 10,000).
   */
  readonly turnChangesMax?: number;
  /** Milliseconds one turn may spend taking inputs, and applying, before it yields (default 10; on the injected clock). */
  readonly turnApplyMsMax?: number;
  /** The nodes one write may create or delete (--max-write-nodes), and their paths' bytes: one lease expiry entry deletes about that much at most. */
  readonly writeNodesMax?: number;
  readonly writePathBytesMax?: number;
  /**
   * Lease-based linearizable reads on the leader (Clock-Bound Wait), off by default. The leader
   * serves a read from its own state, without a heartbeat round, while a quorum confirmed its
   * leadership within the lease: (electionTicks − 1) ticks shrunk by `driftPercent` (how much
   * faster any member's clock may run than this one's), less one tick. Every member of the
   * cluster must enable it (they then refuse votes for an election timeout after a restart).
   */
  readonly leaseReads?: { readonly driftPercent: number };
  /**
   * The core's knobs the simulator turns to widen the windows where bugs hide (one entry per
   * append, one append in flight, pre-vote or check-quorum off). wardend never sets them.
   */
  readonly core?: Pick<RaftConfig, 'preVote' | 'checkQuorum' | 'maxEntriesPerAppend' | 'maxInflightAppends' | 'plantedBugs'>;
  readonly plantedBugs?: RuntimePlantedBugs;
}

export interface RuntimeConfig {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotEvery: number;
  readonly keepEntries: number;
  readonly snapshotBytes: number;
  readonly turnChangesMax: number;
  readonly turnApplyMsMax: number;
  readonly writeNodesMax: number | undefined;
  readonly writePathBytesMax: number | undefined;
  readonly leaseReads: { readonly driftPercent: number } | null;
  readonly core: NonNullable<RuntimeOptions['core']>;
  readonly plantedBugs: RuntimePlantedBugs;
  /** The shortest election timeout, in ms. */
  readonly electionTimeoutMs: number;
  /**
   * How long after issuing a confirmed leadership probe the leader may serve reads alone (0:
   * lease reads are off). The followers that confirmed it will not vote for another for
   * (electionTicks − 1) of their ticks; their clocks may run faster by driftPercent.
   */
  readonly leaseReadMs: number;
  /**
   * The shortest lease TTL granted: twice the longest election timeout (elections take 1–2
   * timeouts), so a lease outlives the leaderless time a failover can take.
   */
  readonly leaseTtlMinMs: number;
}

export function resolveRuntimeConfig(options: RuntimeOptions): RuntimeConfig {
  const tickMs = options.tickMs ?? 100;
  const electionTicks = options.electionTicks ?? 10;
  const leaseReads = options.leaseReads ?? null;
  const electionTimeoutMs = electionTicks * tickMs;
  const leaseReadMs = leaseReads === null ? 0 : Math.max(0, Math.floor(((electionTicks - 1) * tickMs) / (1 + leaseReads.driftPercent / 100) - tickMs));
  return Object.freeze({
    id: options.id,
    peers: Object.freeze([...options.peers]),
    tickMs,
    electionTicks,
    heartbeatTicks: options.heartbeatTicks ?? 1,
    snapshotEvery: options.snapshotEvery ?? 10_000,
    keepEntries: options.keepEntries ?? 5_000,
    snapshotBytes: options.snapshotBytes ?? 64 * 1024 * 1024,
    turnChangesMax: options.turnChangesMax ?? 10_000,
    turnApplyMsMax: options.turnApplyMsMax ?? 10,
    writeNodesMax: options.writeNodesMax,
    writePathBytesMax: options.writePathBytesMax,
    leaseReads,
    core: Object.freeze({ ...options.core }),
    plantedBugs: Object.freeze({ ...options.plantedBugs }),
    electionTimeoutMs,
    leaseReadMs,
    leaseTtlMinMs: 2 * 2 * electionTimeoutMs,
  });
}
