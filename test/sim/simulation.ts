/**
 * The deterministic cluster simulator. One seed decides everything: the cluster's fault
 * profile, every message delay, drop, duplicate and partition, every crash, power cut, pause
 * and restart, every client operation. Every member is the production MemberRuntime
 * (sim-member.ts) over the in-memory twins of its disks, its clock running at its own rate, its
 * timers and turns events on the agenda, its peer link (messages, forwarded writes, snapshot
 * streams, lease requests) the simulated network. A run has a chaos phase (faults on) and a
 * healing phase (faults off, every member back) in which a leader must emerge and every client
 * operation must finish within a bound. Safety properties are checked after every step; the
 * recorded client history is checked for linearizability at the end, and every member's whole
 * state (namespace, sessions, leases) must be byte-identical once they converge.
 *
 * The run is one chain of promises that never yields to the event loop: the runtime's awaits
 * resolve as microtasks, which run in an order fixed by the seed; after each event the
 * simulator lets them run for a bounded number of turns. So no timer, socket or other test can
 * interleave with a run, and a seed replays exactly.
 *
 * Must never: read a real clock, real randomness or real timers (the run is wrapped so any
 * such leak throws), or let a member keep state across a crash that it did not persist.
 */

import type { Message, NodeId, PlantedBugs, SnapshotMessage } from '../../server/raft/index.js';
import type { LeaseRequest, PeerLink } from '../../server/node/runtime.js';
import type { RuntimeOptions, RuntimePlantedBugs } from '../../server/node/runtime-config.js';
import { RequestError } from '../../server/node/waiting-list.js';
import type { ChangeEvent } from '../../server/state/types.js';
import type { StateResult } from '../../server/state/state-machine.js';
import type { LeaseStatus } from '../../server/node/lease-keeper.js';
import type { History, Operation } from '../linearizability/history.js';
import { checkHistory } from '../linearizability/checker.js';
import { SimClient, type ClientReply, type ClientRequest } from './client.js';
import { SimLeaseHolder } from './lease-holder.js';
import { SimWatcher } from './watcher.js';
import type { WatchSink } from '../../server/watch/hub.js';
import { PowerCut } from '../../server/storage/memory-file-system.js';
import { EventQueue } from './event-queue.js';
import { SafetyChecker, Violation, type Property } from './invariants.js';
import { MemberDisks, SimMember, forgetVote } from './sim-member.js';
import { SimRandom } from './random.js';
import { withoutAmbientNondeterminism } from './determinism-guard.js';
import { describeMessage } from './trace.js';

export interface SimOptions {
  readonly seed: number;
  /** 3 or 5; when absent the seed chooses. */
  readonly nodes?: 3 | 5;
  /** Events processed in the chaos phase. */
  readonly steps?: number;
  readonly trace?: boolean;
  /** Bugs planted in the core (PlantedBugs), the disk (forgetVoteOnRestart) or the runtime (RuntimePlantedBugs). */
  readonly plantedBugs?: PlantedBugs & RuntimePlantedBugs & { readonly forgetVoteOnRestart?: boolean; readonly watchResumeOneEarly?: boolean };
}

export interface FaultCounts {
  dropped: number;
  duplicated: number;
  partitions: number;
  crashes: number;
  pauses: number;
  transfers: number;
}

/** What a run exercised: a green run that never elected, snapshotted or read from a follower proves little. */
export interface Coverage {
  elections: number;
  snapshotInstalled: number;
  leaderRead: number;
  followerRead: number;
  unknownOutcomes: number;
  /** Leases that ended (expired) while the run watched, and keep-alives answered as renewed. */
  leasesExpired: number;
  leaseRenewals: number;
  /** Revisions watchers received and checked, and watches resumed on another member or after a cancel. */
  watchedRevisions: number;
  watchResumes: number;
  /** Power cuts during a WAL sync, by what became of the batch; torn batches recovery cut away. */
  powerCuts: number;
  batchesTorn: number;
  tornTailsCut: number;
  walSegmentsDeleted: number;
}

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly steps: number;
  readonly virtualMs: number;
  readonly faults: FaultCounts;
  readonly coverage: Coverage;
  readonly operations: number;
  /** The client history, in the shared format, for the checker or a file. */
  readonly history: History;
  /** 'unknown' when the linearizability check ran out of time (not a violation, but a weak run). */
  readonly linearizability: 'ok' | 'illegal' | 'unknown' | 'not checked';
  readonly leaderAfterHealTicks: number | null;
  readonly clientsDoneAfterHealTicks: number | null;
  readonly violation: { readonly property: Property; readonly detail: string; readonly step: number; readonly atMs: number } | null;
  readonly trace: readonly string[];
}

type SimEvent =
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

/** Every seed draws its own weather: how lossy, how slow, how violent. */
interface FaultProfile {
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly delayMsMax: number;
  readonly nemesisEveryMsMax: number;
  readonly crashWeight: number;
  readonly partitionWeight: number;
  /** Crash a member and bring it back within a few ms: a process restart mid-election. */
  readonly bounceWeight: number;
  /** How often the nemesis aims at the current leader rather than anyone. */
  readonly leaderBias: number;
  /**
   * Crash the leader while it holds entries no majority has yet: the divergent, uncommitted
   * suffixes Raft's Figure 8 is made of.
   */
  readonly uncommittedCrashWeight: number;
  /** Share of messages held 100–1,500 ms: stale votes, acks and heartbeats from earlier terms. */
  readonly longDelayRate: number;
  /** Freeze a member (a GC pause, a stopped VM): it keeps its memory but handles nothing until it resumes. */
  readonly pauseWeight: number;
}

const TICK_MS = 10;
const ELECTION_TICKS = 10;
/** Liveness bounds, in ticks after the faults heal. */
export const LEADER_BOUND_TICKS = 20 * ELECTION_TICKS;
export const CLIENTS_BOUND_TICKS = 30 * ELECTION_TICKS;
/** After the clients finish, every member must apply up to the leader's commit within this. */
export const CONVERGE_BOUND_TICKS = 20 * ELECTION_TICKS;
const HEAL_STEPS_MAX = 500_000;
/** The slowest one-way delay once faults heal: a tenth of the shortest election timeout. */
const HEALTHY_DELAY_MS_MAX = 10;
/** Small WAL segments, so runs cut and compact away many of them. */
const WAL_SEGMENT_BYTES = 4096;
/** Microtask turns the runtime's awaits get after each event (a turn with a WAL sync takes about a dozen). */
const SETTLE_TURNS = 16;
/** A forwarded write or lease request with no answer by then fails, as the peer transport's does. */
const PEER_ASK_TIMEOUT_MS = 1_000;
/** Where the members' wall clocks start (log time). */
const WALL_EPOCH_MS = 1_800_000_000_000;
const decoder = new TextDecoder();
/** Lease holders' ids, after the clients' on the simulated network, and their leases' ids. */
const HOLDER_ID_BASE = 1_001;
const LEASE_ID_BASE = 7_001;

export async function runSimulation(options: SimOptions): Promise<SimResult> {
  const simulation = new Simulation(options);
  // The linearizability check runs after, outside the guard: its time budget reads a real clock.
  await withoutAmbientNondeterminism(() => simulation.run());
  return simulation.result();
}

class Simulation {
  private readonly random: SimRandom;
  private readonly nodeIds: NodeId[];
  private readonly profile: FaultProfile;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly checker = new SafetyChecker();
  private readonly disks = new Map<NodeId, MemberDisks>();
  private readonly members = new Map<NodeId, SimMember>();
  /** Bumped at every start and every crash: what a dead process still had in flight is dropped. */
  private readonly incarnations = new Map<NodeId, number>();
  /** A violation a member's callback found (raised by the event loop, not inside the runtime). */
  private pendingViolation: Error | null = null;
  private readonly walCounts = { lost: 0, kept: 0, torn: 0, tornTailsCut: 0, segmentsDeleted: 0 };
  private readonly clients: SimClient[] = [];
  /** Lease holders, by id (numbered from HOLDER_ID_BASE, beside the clients on the same network). */
  private readonly holders = new Map<number, SimLeaseHolder>();
  private readonly watchers: SimWatcher[] = [];
  /** Each revision's events (`kind path`), as the first member to apply it made them: the watchers' truth. */
  private readonly revisionEvents = new Map<number, string[]>();
  /** Watch connections open on each member: they close when it crashes. */
  private readonly watchConnections = new Map<NodeId, Set<{ readonly watcher: SimWatcher; readonly connection: number; lastAt: number; closed: boolean }>>();
  /** The leader's lease epoch as last seen, and when it was first seen (leases' TTLs restart at a refresh). */
  private leaseEpoch = { epoch: -1, seenAtMs: 0 };
  /** When every lease had ended after the heal (convergence is timed from then). */
  private leasesDoneAtTicks: number | null = null;
  private readonly history: Operation[] = [];
  private readonly blocked = new Set<string>();
  private partitionGeneration = 0;
  private readonly faults: FaultCounts = { dropped: 0, duplicated: 0, partitions: 0, crashes: 0, pauses: 0, transfers: 0 };
  private readonly coverage: Coverage = { elections: 0, snapshotInstalled: 0, leaderRead: 0, followerRead: 0, unknownOutcomes: 0, leasesExpired: 0, leaseRenewals: 0, watchedRevisions: 0, watchResumes: 0, powerCuts: 0, batchesTorn: 0, tornTailsCut: 0, walSegmentsDeleted: 0 };
  private readonly leaderTerms = new Set<number>();
  private readonly traceLines: string[] = [];
  private readonly chaosSteps: number;
  private now = 0;
  private step = 0;
  private healing = false;
  private linearizability: SimResult['linearizability'] = 'not checked';
  private healedAt = 0;
  private leaderAfterHealTicks: number | null = null;
  private clientsDoneAfterHealTicks: number | null = null;
  private readonly memberConfig: {
    maxEntriesPerAppend: number;
    maxInflightAppends: number;
    snapshotEvery: number;
    checkQuorum: boolean;
    preVote: boolean;
    heartbeatTicks: number;
    leaseReads: boolean;
  };
  /** Each member's clock runs at its own rate: a tick every tickMs of simulated time. */
  private readonly tickMs = new Map<NodeId, number>();
  /** A paused member handles nothing before this virtual time; its events wait. */
  private readonly pausedUntil = new Map<NodeId, number>();

  constructor(private readonly options: SimOptions) {
    this.random = new SimRandom(options.seed);
    const nodes = options.nodes ?? this.random.pick([3, 5] as const);
    this.nodeIds = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
    this.chaosSteps = options.steps ?? 2000;
    this.profile = {
      dropRate: this.random.pick([0, 0.01, 0.05, 0.1, 0.2]),
      duplicateRate: this.random.pick([0, 0.01, 0.05]),
      delayMsMax: this.random.pick([2, 5, 15, 40, 40, 80]),
      nemesisEveryMsMax: this.random.pick([40, 100, 300, 800]),
      crashWeight: this.random.pick([0, 1, 3]),
      partitionWeight: this.random.pick([0, 1, 3]),
      bounceWeight: this.random.pick([0, 1, 4]),
      leaderBias: this.random.pick([0.3, 0.7, 0.95]),
      longDelayRate: this.random.pick([0, 0.01, 0.03]),
      uncommittedCrashWeight: this.random.pick([0, 2, 6]),
      pauseWeight: this.random.pick([0, 1, 2]),
    };
    // Small appends, windows and snapshot intervals widen the windows where bugs hide.
    this.memberConfig = {
      maxEntriesPerAppend: this.random.pick([1, 1, 2, 4, 64]),
      maxInflightAppends: this.random.pick([1, 4, 64]),
      snapshotEvery: this.random.pick([3, 10, 50, 1_000_000]),
      // Check-quorum is a stability feature: safety must hold without it, so some seeds turn it off.
      checkQuorum: this.random.pick([true, true, true, false]),
      // So is pre-vote.
      preVote: this.random.pick([true, true, true, false]),
      heartbeatTicks: this.random.pick([1, 1, 2, 3]),
      // A third of the seeds serve lease reads (and so refuse votes for an election timeout after
      // each restart), with the drift allowance set to cover the members' clock rates.
      leaseReads: options.seed % 3 === 0,
    };
    for (const id of this.nodeIds) this.tickMs.set(id, this.random.between(TICK_MS - 3, TICK_MS + 3));
    this.trace(
      `seed ${options.seed}: ${nodes} members, profile ${JSON.stringify(this.profile)}, members ${JSON.stringify(this.memberConfig)}`,
    );
  }

  private violation: SimResult['violation'] = null;

  async run(): Promise<void> {
    try {
      await this.boot();
      while (this.step < this.chaosSteps) await this.processNext();
      await this.heal();
      while (!this.livenessReached()) {
        if (this.step > this.chaosSteps + HEAL_STEPS_MAX) throw new Violation('liveness: client operations', 'the healed cluster ran out of steps');
        await this.processNext();
      }
    } catch (error) {
      this.violation = this.toViolation(error);
      this.trace(`VIOLATION ${this.violation.property}: ${this.violation.detail}`);
    }
  }

  /** The run's figures, once the client history is checked for linearizability (if the run found nothing else). */
  result(): SimResult {
    if (this.violation === null) {
      const verdict = checkHistory(this.history as History, { timeoutMs: 20_000 });
      this.linearizability = verdict.verdict;
      if (verdict.verdict === 'illegal') {
        this.violation = { property: 'linearizability', detail: `key ${verdict.key}: ${verdict.explanation}`, step: this.step, atMs: this.now };
        this.trace(`VIOLATION linearizability: ${this.violation.detail}`);
      }
    }
    const violation = this.violation;
    return {
      seed: this.options.seed,
      nodes: this.nodeIds.length,
      steps: this.step,
      virtualMs: this.now,
      faults: this.faults,
      coverage: {
        ...this.coverage,
        unknownOutcomes: this.history.filter((op) => op.returnTime === null).length,
        leasesExpired: [...this.holders.values()].filter((h) => h.gone).length,
        leaseRenewals: [...this.holders.values()].reduce((sum, h) => sum + h.renewals, 0),
        watchedRevisions: this.watchers.reduce((sum, w) => sum + w.revisionsReceived, 0),
        watchResumes: this.watchers.reduce((sum, w) => sum + w.resumes, 0), powerCuts: this.walCounts.lost + this.walCounts.kept + this.walCounts.torn, batchesTorn: this.walCounts.torn, tornTailsCut: this.walCounts.tornTailsCut, walSegmentsDeleted: this.walCounts.segmentsDeleted },
      operations: this.history.length,
      history: this.history,
      linearizability: this.linearizability,
      leaderAfterHealTicks: this.leaderAfterHealTicks,
      clientsDoneAfterHealTicks: this.clientsDoneAfterHealTicks,
      violation,
      trace: this.traceLines,
    };
  }

  private toViolation(error: unknown): NonNullable<SimResult['violation']> {
    if (error instanceof Violation) return { property: error.property, detail: error.detail, step: this.step, atMs: this.now };
    const detail = error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error);
    return { property: 'core assertion', detail, step: this.step, atMs: this.now };
  }

  // ─── setup and phases ──────────────────────────────────────────────────────────────────────

  private async boot(): Promise<void> {
    for (const id of this.nodeIds) {
      this.disks.set(id, new MemberDisks());
      await this.startMember(id);
    }
    const clientCount = this.random.between(2, 6);
    const keys = Array.from({ length: this.random.between(1, 4) }, (_, i) => `k${i}`);
    for (let c = 1; c <= clientCount; c++) {
      const client = new SimClient(
        c,
        this.nodeIds,
        {
          keys,
          thinkMsMax: this.random.pick([0, 10, 50]),
          timeoutMs: this.random.pick([100, 300, 600]),
          abandonAfterAttempts: this.random.pick([0, 5, 20]),
          abandonMax: 3,
          // Some reads go anywhere, e.g. to a leader that has not committed in its term yet.
          readAnywhere: this.random.pick([0, 0.3]),
        },
        this.random.fork(),
        {
          now: () => this.now,
          send: (clientId, member, request) => this.sendToMember(clientId, member, request),
          wakeAt: (at, clientId, token) => this.queue.push(at, { kind: 'client-wake', clientId, token }),
          record: (op) => this.history.push(op),
        },
      );
      this.clients.push(client);
      client.start();
    }
    // Session locks: leases kept alive, each with an ephemeral node; some holders die midway.
    const holderCount = this.random.pick([0, 1, 2, 3]);
    for (let k = 0; k < holderCount; k++) {
      const id = HOLDER_ID_BASE + k;
      const holder = new SimLeaseHolder(
        id,
        LEASE_ID_BASE + k,
        this.random.between(1_000, 2_000),
        this.nodeIds,
        this.random.fork(),
        {
          now: () => this.now,
          send: (holderId, member, request) => this.sendToMember(holderId, member, request),
          wakeAt: (at, holderId, token) => this.queue.push(at, { kind: 'client-wake', clientId: holderId, token }),
        },
        this.random.chance(0.5) ? this.random.between(500, 10_000) : null,
      );
      this.holders.set(id, holder);
      holder.start();
    }
    // Watchers of the whole namespace, from the start of history or from now.
    const watcherCount = this.random.pick([0, 1, 2]);
    for (let k = 0; k < watcherCount; k++) {
      const watcher = new SimWatcher(k + 1, this.nodeIds, (from) => this.random.pick(from), (revision) => this.revisionEvents.get(revision), {
        now: () => this.now,
        connect: (w, member, fromRevision) => this.connectWatcher(w, member, fromRevision),
        wakeAt: (at, run) => this.queue.push(at, { kind: 'call', run }),
        trace: (line) => this.trace(line),
      });
      this.watchers.push(watcher);
      watcher.start(this.random.chance(0.5));
    }
    this.queue.push(this.random.between(1, this.profile.nemesisEveryMsMax), { kind: 'nemesis' });
  }

  private async heal(): Promise<void> {
    this.healing = true;
    // Faults off means off: a power cut still armed would strike after the heal.
    for (const disks of this.disks.values()) disks.fs.powerCutAtNextSync = false;
    // A frozen member wakes when its pause ends (its events wait for it, already queued): the
    // liveness bounds count from the last wake, not from now.
    this.healedAt = Math.max(this.now, ...this.pausedUntil.values());
    this.blocked.clear();
    for (const id of this.nodeIds) if (!this.members.has(id)) await this.startMember(id);
    for (const client of this.clients) client.finish();
    // Every holder stops: each lease must then expire within its bound.
    for (const holder of this.holders.values()) holder.stop();
    this.trace(`t=${this.now} HEAL: faults off, every member up; clients finish their operations`);
  }

  private livenessReached(): boolean {
    const ticks = Math.max(0, Math.floor((this.now - this.healedAt) / TICK_MS));
    if (this.leaderAfterHealTicks === null) {
      if (this.hasStableLeader()) this.leaderAfterHealTicks = ticks;
      else if (ticks > LEADER_BOUND_TICKS) throw new Violation('liveness: leader', `no leader ${ticks} ticks after the faults healed`);
    }
    if (this.clientsDoneAfterHealTicks === null) {
      if (this.clients.every((c) => !c.busy)) this.clientsDoneAfterHealTicks = ticks;
      else if (ticks > CLIENTS_BOUND_TICKS) {
        const stuck = this.clients.filter((c) => c.busy).map((c) => c.id);
        throw new Violation('liveness: client operations', `clients ${stuck.join(',')} still waiting ${ticks} ticks after the faults healed`);
      }
    }
    if (this.leaderAfterHealTicks === null || this.clientsDoneAfterHealTicks === null) return false;
    if (this.leasesDoneAtTicks === null) {
      if (!this.leasesExpired()) return false;
      this.leasesDoneAtTicks = ticks;
    }
    return this.converged(ticks - Math.max(this.clientsDoneAfterHealTicks, this.leasesDoneAtTicks));
  }

  /**
   * Every member has applied everything the leader committed, and holds the same state. A
   * follower stuck (say, waiting forever for a snapshot) fails here even if clients finished.
   */
  private converged(ticksSinceClientsDone: number): boolean {
    const leaderId = this.leader();
    const leader = leaderId === null ? undefined : this.members.get(leaderId);
    const members = [...this.members.values()];
    const commit = leader?.status.commitIndex ?? -1;
    const revision = leader?.runtime.machine.revision ?? -1;
    const caughtUp = leader !== undefined && members.every((m) => m.appliedIndex === commit) && this.watchers.every((w) => w.lastRevision >= revision);
    if (caughtUp) {
      // The state hash: namespace, history, sessions, leases and meta, byte for byte.
      const state = leader.stateImage();
      for (const m of members) {
        if (m.stateImage() !== state) throw new Violation('state machine safety', `${m.id} and ${leader.id} both applied ${commit} but hold different state`);
      }
      return true;
    }
    if (ticksSinceClientsDone > CONVERGE_BOUND_TICKS) {
      const behind = members.filter((m) => m.appliedIndex !== commit).map((m) => `${m.id}@${m.appliedIndex}`);
      throw new Violation('liveness: convergence', `${ticksSinceClientsDone} ticks after clients finished, ${behind.join(', ')} still behind the leader's commit ${commit}`);
    }
    return false;
  }

  private hasStableLeader(): boolean {
    let maxTerm = 0;
    for (const m of this.members.values()) maxTerm = Math.max(maxTerm, m.status.term);
    for (const m of this.members.values()) if (m.status.role === 'leader' && m.status.term === maxTerm) return true;
    return false;
  }

  // ─── members ───────────────────────────────────────────────────────────────────────────────

  /** How fast this member's clock runs against simulated time (its ticks come every tickMs of its own). */
  private clockRate(id: NodeId): number {
    return TICK_MS / this.tickMs.get(id)!;
  }

  private runtimeOptions(id: NodeId): RuntimeOptions {
    const bugs = this.options.plantedBugs ?? {};
    const rates = this.nodeIds.map((n) => this.clockRate(n));
    // The allowance covers how much faster the fastest clock runs than the slowest.
    const driftPercent = Math.ceil((Math.max(...rates) / Math.min(...rates) - 1) * 100) + 1;
    return {
      id,
      peers: this.nodeIds,
      tickMs: TICK_MS,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: this.memberConfig.heartbeatTicks,
      snapshotEvery: this.memberConfig.snapshotEvery,
      keepEntries: Math.min(this.memberConfig.snapshotEvery, 20),
      ...(this.memberConfig.leaseReads ? { leaseReads: { driftPercent } } : {}),
      core: {
        preVote: this.memberConfig.preVote,
        checkQuorum: this.memberConfig.checkQuorum,
        maxEntriesPerAppend: this.memberConfig.maxEntriesPerAppend,
        maxInflightAppends: this.memberConfig.maxInflightAppends,
        plantedBugs: { commitOldTermEntries: bugs.commitOldTermEntries === true, readIndexWithoutQuorum: bugs.readIndexWithoutQuorum === true, voteIgnoresLogCheck: bugs.voteIgnoresLogCheck === true },
      },
      plantedBugs: { sendBeforeSync: bugs.sendBeforeSync === true, applyBeforeCommit: bugs.applyBeforeCommit === true, stepBeforeStaged: bugs.stepBeforeStaged === true, deposedLeaderKeepsDeadlines: bugs.deposedLeaderKeepsDeadlines === true },
    };
  }

  private async startMember(id: NodeId): Promise<void> {
    this.pausedUntil.delete(id);
    const incarnation = (this.incarnations.get(id) ?? 0) + 1;
    this.incarnations.set(id, incarnation);
    const alive = (): boolean => this.incarnations.get(id) === incarnation;
    const rate = this.clockRate(id);
    const disks = this.disks.get(id)!;
    if (this.options.plantedBugs?.forgetVoteOnRestart === true && incarnation > 1) forgetVote(disks, WAL_SEGMENT_BYTES);
    const valuesPut = new Set<string>();
    let member: SimMember;
    try {
      member = await SimMember.boot(
        this.runtimeOptions(id),
        disks,
        WAL_SEGMENT_BYTES,
        {
          clock: { monotonicMs: () => this.now * rate, wallMs: () => WALL_EPOCH_MS + this.now * rate },
          timers: {
            setInterval: (run, ms) => this.every(id, incarnation, ms / rate, run),
            clearInterval: (handle) => void ((handle as { cancelled: boolean }).cancelled = true),
            defer: (run) => this.queue.push(this.now + this.random.between(0, 1), { kind: 'run', member: id, incarnation, run }),
          },
          random: this.random.fork(),
          link: this.linkFor(id, alive),
          watcher: {
            persisting: (entries, termAt) => {
              if (alive()) this.checker.onPersistEntries(id, termAt, entries);
            },
            installing: (meta) => {
              if (alive()) this.checker.onInstallSnapshot(id, meta.index, meta.term);
            },
            compacted: (segments) => void (this.walCounts.segmentsDeleted += segments),
          },
          applied: (entry) => {
            if (alive()) this.checker.onApply(id, entry);
          },
          changed: (events) => {
            if (!alive()) return;
            const revision = events[0]!.revision;
            if (!this.revisionEvents.has(revision)) this.revisionEvents.set(revision, events.map((event) => `${event.kind} ${event.path}`));
            this.checkExactlyOnce(id, valuesPut, events);
            this.checkLeaseExpiry(events);
          },
          storeReplaced: () => void this.coverage.snapshotInstalled++,
          watchInvariantBroken: (what) => {
            if (alive()) this.pendingViolation ??= new Violation('runtime assertion', `${id}'s watch hub: ${what}`);
          },
          fatal: (error) => {
            if (!alive()) return;
            // A power cut is the weather; any other failure is the runtime refusing to go on.
            if (error instanceof PowerCut) this.powerCut(id);
            else if (error instanceof Violation) this.pendingViolation ??= error; // a check inside the turn (persist before send)
            else this.pendingViolation ??= new Violation('runtime assertion', `${id} stopped: ${error.message}`);
          },
          reply: (clientId, reply) => {
            if (alive()) this.sendToClient(id, clientId, reply);
          },
          count: (what) => this.coverage[what]++,
          renewed: (lease) => this.renewedAtLeader(lease),
        },
        () => void this.walCounts.tornTailsCut++,
        this.options.plantedBugs?.watchResumeOneEarly === true,
      );
    } catch (error) {
      if (error instanceof Violation) throw error;
      throw new Violation('recovery', `${id} could not start (incarnation ${incarnation}): ${(error as Error).message}`);
    }
    this.checker.onStart(id, member.status.commitIndex);
    this.members.set(id, member);
    this.trace(`t=${this.now} START ${id} (incarnation ${incarnation}) term=${member.status.term} commit=${member.status.commitIndex} last=${member.status.lastIndex}`);
  }

  /** A member's interval timer: every periodMs of simulated time, while its incarnation lives. */
  private every(id: NodeId, incarnation: number, periodMs: number, run: () => void): { cancelled: boolean } {
    const handle = { cancelled: false };
    const fire = (): void => {
      if (handle.cancelled) return;
      run();
      this.queue.push(this.now + periodMs, { kind: 'run', member: id, incarnation, run: fire });
    };
    this.queue.push(this.now + this.random.between(1, Math.max(1, Math.round(periodMs))), { kind: 'run', member: id, incarnation, run: fire });
    return handle;
  }

  /** Exactly-once: a stamped write applied twice would put its value (unique to it) twice. */
  private checkExactlyOnce(id: NodeId, valuesPut: Set<string>, events: readonly ChangeEvent[]): void {
    for (const event of events) {
      if (event.node === null) continue;
      const value = decoder.decode(event.node.value);
      if (!value.startsWith('v')) continue;
      if (valuesPut.has(value)) this.pendingViolation ??= new Violation('exactly once', `${id} applied the write of ${value} to ${event.path} twice (revision ${event.revision})`);
      valuesPut.add(value);
    }
  }

  /**
   * Lease safety: a lease ends (its ephemeral node deleted) no sooner than a TTL, on the fastest
   * clock, after its holder sent the last keep-alive (or grant) answered as renewed. A leader that
   * lost its quorum keeps answering until check-quorum deposes it, so seeds with check-quorum
   * off (never wardend's configuration) are not held to it.
   */
  private checkLeaseExpiry(events: readonly ChangeEvent[]): void {
    for (const event of events) {
      if (event.node !== null || !event.path.startsWith('/e/h')) continue;
      const holder = this.holders.get(Number(event.path.slice('/e/h'.length)));
      if (holder === undefined || holder.gone) continue;
      holder.gone = true;
      this.trace(`t=${this.now} LEASE ${holder.lease} of holder ${holder.id} ended (last renewal sent at ${holder.lastRenewedSentAt}, stopped at ${holder.stoppedAt})`);
      if (!this.memberConfig.checkQuorum || holder.lastRenewedSentAt === null) continue;
      const earliest = holder.lastRenewedSentAt + holder.ttlMs / this.fastestClockRate();
      if (this.now < earliest) {
        this.pendingViolation ??= new Violation('lease safety', `lease ${holder.lease} ended at ${this.now} ms, ${Math.round(earliest - this.now)} ms before its TTL of ${holder.ttlMs} ms from the keep-alive sent at ${holder.lastRenewedSentAt} ms (answered as renewed)`);
      }
    }
  }

  private renewedAtLeader(lease: number): void {
    const holder = this.holders.get(lease - LEASE_ID_BASE + HOLDER_ID_BASE);
    if (holder !== undefined) holder.renewedAtLeaderMs = this.now;
  }

  private fastestClockRate(): number {
    return Math.max(...this.nodeIds.map((id) => this.clockRate(id)));
  }

  /**
   * Lease liveness, once healed: every holder stopped at the heal, so each lease ends within a
   * TTL and an election timeout on the slowest clock (plus a round to commit the expiry) after
   * the later of its holder's stop and the leader's lease refresh (a new leader gives every lease
   * a full TTL from its refresh, seen here as the lease epoch changing).
   */
  private leasesExpired(): boolean {
    const leaderId = this.leader();
    if (leaderId === null) return false;
    const machine = this.members.get(leaderId)!.runtime.machine;
    if (machine.leases.epoch !== this.leaseEpoch.epoch) this.leaseEpoch = { epoch: machine.leases.epoch, seenAtMs: this.now };
    const slowest = Math.min(...this.nodeIds.map((id) => this.clockRate(id)));
    let expired = true;
    for (const holder of this.holders.values()) {
      const lease = machine.leases.get(holder.lease);
      if (lease === undefined) continue;
      expired = false;
      // A grant sent before the heal may land long after it (a held message): its TTL runs from
      // then. Its log time is the proposer's wall clock, which ran no slower than the slowest.
      const grantedAt = (lease.grantedAtMs - WALL_EPOCH_MS) / slowest + 2 * HEALTHY_DELAY_MS_MAX;
      const from = Math.max(holder.stoppedAt ?? this.now, this.leaseEpoch.seenAtMs, holder.renewedAtLeaderMs, grantedAt);
      const deadline = from + (holder.ttlMs + (ELECTION_TICKS + 2) * TICK_MS) / slowest + 5 * HEALTHY_DELAY_MS_MAX;
      if (this.now > deadline) {
        throw new Violation('liveness: lease expiry', `lease ${holder.lease} (TTL ${holder.ttlMs} ms) still lives at ${this.now} ms; its holder stopped at ${holder.stoppedAt} ms, a leader last renewed it at ${holder.renewedAtLeaderMs} ms, and the leader's refresh (epoch ${this.leaseEpoch.epoch}) was seen at ${this.leaseEpoch.seenAtMs} ms`);
      }
    }
    return expired;
  }

  /** A process crash (SIGKILL): what it wrote stays (the page cache survives); what it had in flight is gone. */
  private crash(id: NodeId, restartAfterMs: number): void {
    if (!this.members.delete(id)) return;
    this.incarnations.set(id, this.incarnations.get(id)! + 1);
    const disks = this.disks.get(id)!;
    // An armed power cut dies with the process it was aimed at.
    disks.fs.powerCutAtNextSync = false;
    disks.detach();
    // Its clients' connections end: each watcher hears it after the frames already on the way.
    for (const connection of this.watchConnections.get(id) ?? []) {
      connection.closed = true;
      this.queue.push(Math.max(connection.lastAt, this.now + 1), { kind: 'call', run: () => connection.watcher.onClosed(connection.connection) });
    }
    this.watchConnections.delete(id);
    this.faults.crashes++;
    this.trace(`t=${this.now} CRASH ${id} (back in ${restartAfterMs} ms)`);
    this.queue.push(this.now + restartAfterMs, { kind: 'restart', member: id });
  }

  // ─── the event loop ────────────────────────────────────────────────────────────────────────

  private async processNext(): Promise<void> {
    const next = this.queue.pop();
    if (next === undefined) throw new Error('sim: the agenda ran dry');
    this.now = next.at;
    const target = eventTarget(next.event);
    const resumeAt = target === null ? undefined : this.pausedUntil.get(target);
    if (resumeAt !== undefined && resumeAt > this.now) {
      // Frozen: the event waits, in order, for the member to wake (not counted as a step).
      this.queue.push(resumeAt, next.event);
      return;
    }
    this.step++;
    await this.handle(next.event);
    // The runtime's awaits (a WAL sync, a store write) go on as microtasks, in seeded order.
    for (let turn = 0; turn < SETTLE_TURNS; turn++) await null;
    if (this.pendingViolation !== null) throw this.pendingViolation;
    for (const m of this.members.values()) {
      if (m.status.role === 'leader' && !this.leaderTerms.has(m.status.term)) {
        this.leaderTerms.add(m.status.term);
        this.coverage.elections++;
        this.trace(`t=${this.now} LEADER ${m.id} term ${m.status.term} (log ${m.status.lastIndex}, commit ${m.status.commitIndex})`);
      }
    }
    this.checker.afterStep(this.members.values());
  }

  private async handle(event: SimEvent): Promise<void> {
    switch (event.kind) {
      case 'run': {
        if (!this.members.has(event.member)) return;
        if (event.incarnation !== null && this.incarnations.get(event.member) !== event.incarnation) return;
        event.run();
        return;
      }
      case 'call':
        event.run();
        return;
      case 'raft': {
        const member = this.members.get(event.message.to);
        if (member === undefined) return;
        if (this.options.trace) this.trace(`t=${this.now} ${describeMessage(event.message)}`);
        member.runtime.step(event.message);
        return;
      }
      case 'request': {
        const member = this.members.get(event.member);
        if (member === undefined) return;
        member.onClientRequest(event.request);
        return;
      }
      case 'reply':
        if (event.clientId >= HOLDER_ID_BASE) this.holders.get(event.clientId)!.onReply(event.reply);
        else this.clients[event.clientId - 1]!.onReply(event.reply);
        return;
      case 'client-wake':
        if (event.clientId >= HOLDER_ID_BASE) this.holders.get(event.clientId)!.onWake(event.token);
        else this.clients[event.clientId - 1]!.onWake(event.token);
        return;
      case 'nemesis':
        if (!this.healing) {
          this.nemesis();
          this.queue.push(this.now + this.random.between(10, this.profile.nemesisEveryMsMax), { kind: 'nemesis' });
        }
        return;
      case 'restart':
        if (!this.members.has(event.member)) await this.startMember(event.member);
        return;
      case 'power-cut-deadline':
        if (this.healing || this.incarnations.get(event.member) !== event.incarnation || !this.members.has(event.member)) return;
        this.crash(event.member, this.random.between(1, 200));
        return;
      case 'heal-partition':
        if (event.generation !== this.partitionGeneration) return; // a newer partition replaced it
        if (this.blocked.size > 0) this.trace(`t=${this.now} PARTITION healed`);
        this.blocked.clear();
        return;
    }
  }

  // ─── the network ───────────────────────────────────────────────────────────────────────────

  private deliverAfter(): number {
    if (this.lossy() && this.random.chance(this.profile.longDelayRate)) return this.now + this.random.between(100, 1500);
    // Healed means healthy: Raft promises liveness only while a round trip is well under an
    // election timeout, so slow-network weather ends with the other faults.
    const delayMsMax = this.healing ? Math.min(this.profile.delayMsMax, HEALTHY_DELAY_MS_MAX) : this.profile.delayMsMax;
    return this.now + this.random.between(1, delayMsMax);
  }

  private lossy(): boolean {
    return !this.healing;
  }

  private sendRaft(message: Message): void {
    if (this.blocked.has(`${message.from}>${message.to}`)) return;
    if (this.lossy() && this.random.chance(this.profile.dropRate)) {
      this.faults.dropped++;
      return;
    }
    this.queue.push(this.deliverAfter(), { kind: 'raft', message });
    if (this.lossy() && this.random.chance(this.profile.duplicateRate)) {
      this.faults.duplicated++;
      this.queue.push(this.deliverAfter(), { kind: 'raft', message });
    }
  }

  /**
   * A watcher opens a connection to `memberId` and starts its watch there. Frames come back in
   * order, each after a network delay; a member down when the request arrives (or that never
   * answers) refuses it after a while, and the watcher tries elsewhere.
   */
  private connectWatcher(watcher: SimWatcher, memberId: NodeId, fromRevision: number | undefined): void {
    const connection = { watcher, connection: watcher.connection, lastAt: this.now, closed: false };
    let opened = false;
    const toWatcher = (run: () => void): void => {
      connection.lastAt = Math.max(connection.lastAt, this.deliverAfter());
      this.queue.push(connection.lastAt, { kind: 'call', run });
    };
    this.queue.push(this.deliverAfter(), {
      kind: 'run',
      member: memberId,
      incarnation: null,
      run: () => {
        const member = this.members.get(memberId)!;
        const incarnation = this.incarnations.get(memberId);
        const sink: WatchSink = {
          push: (frame) => {
            if (!connection.closed && this.incarnations.get(memberId) === incarnation) toWatcher(() => watcher.onFrame(connection.connection, frame));
            return true;
          },
        };
        const started = member.watch(sink, watcher.id, fromRevision);
        opened = true;
        if (!started.ok) {
          toWatcher(() => watcher.onRefused(connection.connection));
          return;
        }
        toWatcher(() => watcher.onFrame(connection.connection, JSON.stringify({ started: started.revision })));
        let open = this.watchConnections.get(memberId);
        if (open === undefined) this.watchConnections.set(memberId, (open = new Set()));
        open.add(connection);
      },
    });
    this.queue.push(this.now + 2_000, { kind: 'call', run: () => void (opened || watcher.onRefused(connection.connection)) });
  }

  /** Run `run` on member `to` after a network delay, unless the link from `from` is cut or drops it; answers whether it left. */
  private deliver(from: NodeId, to: NodeId, run: () => void): boolean {
    if (this.blocked.has(`${from}>${to}`)) return false;
    if (this.lossy() && this.random.chance(this.profile.dropRate)) {
      this.faults.dropped++;
      return false;
    }
    this.queue.push(this.deliverAfter(), { kind: 'run', member: to, incarnation: null, run });
    return true;
  }

  /**
   * Member `id`'s peer link, as the peer transport behaves: messages best effort; a forwarded
   * write or lease request answered over the network, or failed at a timeout (a write's outcome
   * then unknown); a snapshot stream read whole, then delivered, or failed if it cannot be.
   */
  private linkFor(id: NodeId, alive: () => boolean): PeerLink {
    const ask = <T>(to: NodeId, isWrite: boolean, answer: (member: SimMember) => Promise<T>): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        let settled = false;
        const settle = (done: () => void): void => {
          if (settled || !alive()) return;
          settled = true;
          done();
        };
        const failure = new RequestError(isWrite ? 'OUTCOME_UNKNOWN' : 'UNAVAILABLE', `no answer from ${to} within ${PEER_ASK_TIMEOUT_MS} ms`, null);
        this.queue.push(this.now + PEER_ASK_TIMEOUT_MS, { kind: 'run', member: id, incarnation: this.incarnations.get(id)!, run: () => settle(() => reject(failure)) });
        this.deliver(id, to, () => {
          let answered: Promise<T>;
          try {
            answered = answer(this.members.get(to)!);
          } catch (error) {
            answered = Promise.reject(error);
          }
          answered.then(
            (value) => void this.deliver(to, id, () => settle(() => resolve(value))),
            (error: unknown) => void this.deliver(to, id, () => settle(() => reject(error))),
          );
        });
      });
    return {
      send: (message: Message) => {
        if (!alive()) return;
        this.checker.onSend(id, this.members.get(id)!.wal, message);
        this.sendRaft(message);
      },
      forward: (to, entry): Promise<StateResult> => ask(to, true, (member) => member.runtime.proposeForwarded(entry)),
      leaseRequest: (to, request: LeaseRequest): Promise<LeaseStatus[]> =>
        ask(to, false, async (member) => {
          const statuses = await member.runtime.answerLeaseRequest(request);
          for (const status of statuses) if (status.ok) this.renewedAtLeader(status.id);
          return statuses;
        }),
      sendSnapshot: async (message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> => {
        const all: Uint8Array[] = [];
        for await (const chunk of chunks) all.push(chunk);
        if (!alive()) throw new Error('the sender died');
        this.checker.onSend(id, this.members.get(id)!.wal, message);
        await new Promise<void>((resolve, reject) => {
          const sent = this.deliver(id, message.to, () => {
            // The message first, then each chunk a network delay later: staging takes time.
            const chunkArrives = (): Promise<void> => new Promise<void>((arrived) => this.queue.push(this.deliverAfter(), { kind: 'run', member: message.to, incarnation: null, run: arrived }));
            const stream = async function* (): AsyncIterable<Uint8Array> {
              for (const chunk of all) {
                await chunkArrives();
                yield chunk;
              }
            };
            this.members.get(message.to)!.runtime.receiveSnapshot(message, stream()).catch(() => undefined);
            resolve();
          });
          if (!sent) reject(new Error(`the snapshot stream to ${message.to} was cut`));
          // Delivered to a member that was down, or not at all: the sender gives up at the timeout.
          this.queue.push(this.now + PEER_ASK_TIMEOUT_MS, { kind: 'run', member: id, incarnation: null, run: () => reject(new Error(`the snapshot stream to ${message.to} went unanswered`)) });
        });
      },
    };
  }

  private sendToMember(clientId: number, member: NodeId, request: ClientRequest): void {
    if (this.options.trace) this.trace(`t=${this.now} c${clientId} → ${member} ${JSON.stringify(request)}`);
    if (this.lossy() && this.random.chance(this.profile.dropRate)) return;
    this.queue.push(this.deliverAfter(), { kind: 'request', member, request });
  }

  private sendToClient(from: NodeId, clientId: number, reply: ClientReply): void {
    if (this.options.trace) this.trace(`t=${this.now} ${from} → c${clientId} ${JSON.stringify(reply)}`);
    if (this.lossy() && this.random.chance(this.profile.dropRate)) return;
    this.queue.push(this.deliverAfter(), { kind: 'reply', clientId, reply });
  }

  // ─── faults ────────────────────────────────────────────────────────────────────────────────

  private nemesis(): void {
    const choices: (() => void)[] = [() => undefined];
    for (let i = 0; i < this.profile.partitionWeight; i++) choices.push(() => this.partition());
    for (let i = 0; i < this.profile.crashWeight; i++) choices.push(() => this.crashSomeone(this.random.between(20, 400)));
    for (let i = 0; i < this.profile.bounceWeight; i++) choices.push(() => this.crashSomeone(this.random.between(1, 30)));
    for (let i = 0; i < this.profile.pauseWeight; i++) choices.push(() => this.pauseSomeone());
    for (let i = 0; i < this.profile.uncommittedCrashWeight; i++) choices.push(() => this.crashLeaderWithUncommittedEntries());
    choices.push(() => this.transferLeadership());
    this.random.pick(choices)();
  }

  private leader(): NodeId | null {
    let best: SimMember | null = null;
    for (const id of this.nodeIds) {
      const m = this.members.get(id);
      if (m !== undefined && m.status.role === 'leader' && (best === null || m.status.term > best.status.term)) best = m;
    }
    return best?.id ?? null;
  }

  private crashSomeone(restartAfterMs: number): void {
    const up = this.nodeIds.filter((id) => this.members.has(id));
    if (up.length === 0) return;
    const leader = this.leader();
    const victim = leader !== null && this.random.chance(this.profile.leaderBias) ? leader : this.random.pick(up);
    if (this.random.chance(0.5)) {
      // The power goes while the member writes: at its next sync (or, if it writes nothing soon, plainly).
      this.disks.get(victim)!.fs.powerCutAtNextSync = true;
      this.queue.push(this.now + 50, { kind: 'power-cut-deadline', member: victim, incarnation: this.incarnations.get(victim)! });
      return;
    }
    this.crash(victim, restartAfterMs);
  }

  /**
   * The member lost power during a WAL sync: its unsynced WAL writes land whole, torn sector by
   * sector, or not at all (one fate for the batch); its state store keeps only synced batches.
   */
  private powerCut(id: NodeId): void {
    const disks = this.disks.get(id)!;
    disks.fs.powerCutAtNextSync = false;
    const chosen: { fate: 'lost' | 'kept' | 'torn' | null } = { fate: null };
    disks.fs.crash(
      () => (chosen.fate ??= this.random.pick(['lost', 'kept', 'torn'] as const)),
      () => this.random.chance(0.5),
    );
    if (chosen.fate !== null) this.walCounts[chosen.fate] += 1;
    disks.state.crash();
    this.trace(`t=${this.now} POWER CUT ${id} during a sync`);
    this.crash(id, this.random.between(1, 200));
  }

  private crashLeaderWithUncommittedEntries(): void {
    const leaderId = this.leader();
    const leader = leaderId === null ? undefined : this.members.get(leaderId);
    if (leader === undefined || leader.status.lastIndex <= leader.status.commitIndex) return;
    this.crash(leader.id, this.random.between(5, 200));
  }

  private pauseSomeone(): void {
    const up = this.nodeIds.filter((id) => this.members.has(id) && !this.pausedUntil.has(id));
    if (up.length === 0) return;
    const leader = this.leader();
    const id = leader !== null && up.includes(leader) && this.random.chance(this.profile.leaderBias) ? leader : this.random.pick(up);
    // Some pauses outlast every lease's TTL (1–2 s): a leader frozen past the TTL must wake to find
    // the leases kept by its successor, and expire none of them.
    const durationMs = this.random.chance(0.2) ? this.random.between(1_000, 2_500) : this.random.between(20, 1_000);
    this.pausedUntil.set(id, this.now + durationMs);
    this.faults.pauses++;
    this.trace(`t=${this.now} PAUSE ${id} for ${durationMs} ms`);
  }

  private transferLeadership(): void {
    const leader = this.leader();
    if (leader === null) return;
    this.faults.transfers++;
    this.trace(`t=${this.now} HAND-OFF from ${leader}`);
    // As a clean SIGTERM does: the runtime picks the transferee; the member goes on running.
    void this.members.get(leader)!.runtime.handOffLeadership(this.random.between(50, 500));
  }

  private partition(): void {
    this.blocked.clear();
    const ids = this.random.shuffled(this.nodeIds);
    const leader = this.leader();
    const kind = this.random.pick(['split', 'isolate-leader', 'one-way', 'bridge'] as const);
    const cut = (a: NodeId, b: NodeId): void => {
      this.blocked.add(`${a}>${b}`);
      this.blocked.add(`${b}>${a}`);
    };
    let description: string;
    if (kind === 'split') {
      const minority = ids.slice(0, this.random.between(1, Math.floor(ids.length / 2)));
      const majority = ids.filter((id) => !minority.includes(id));
      for (const a of minority) for (const b of majority) cut(a, b);
      description = `split ${minority.join(',')} | ${majority.join(',')}`;
    } else if (kind === 'isolate-leader') {
      const isolated = leader ?? ids[0]!;
      for (const b of ids) if (b !== isolated) cut(isolated, b);
      description = `isolate ${isolated}`;
    } else if (kind === 'one-way') {
      // One member can send but not hear (or hear but not send) from the others.
      const victim = leader !== null && this.random.chance(this.profile.leaderBias) ? leader : ids[0]!;
      const deaf = this.random.chance(0.5);
      for (const b of ids) if (b !== victim) this.blocked.add(deaf ? `${b}>${victim}` : `${victim}>${b}`);
      description = `one-way: ${victim} ${deaf ? 'cannot hear' : 'cannot speak to'} the others`;
    } else {
      // The bridge: two halves that cannot see each other, and one member that sees both.
      const bridge = ids[0]!;
      const rest = ids.slice(1);
      const left = rest.slice(0, Math.ceil(rest.length / 2));
      const right = rest.slice(Math.ceil(rest.length / 2));
      for (const a of left) for (const b of right) cut(a, b);
      description = `bridge ${bridge} between ${left.join(',')} and ${right.join(',')}`;
    }
    this.faults.partitions++;
    this.trace(`t=${this.now} PARTITION ${description}`);
    this.queue.push(this.now + this.random.between(50, 1000), { kind: 'heal-partition', generation: ++this.partitionGeneration });
  }

  private trace(line: string): void {
    if (this.options.trace) this.traceLines.push(line);
  }
}

/** The member an event is delivered to, if any: a paused member's events wait for it. */
function eventTarget(event: SimEvent): NodeId | null {
  switch (event.kind) {
    case 'run':
    case 'request':
    case 'power-cut-deadline':
      return event.member;
    case 'raft':
      return event.message.to;
    default:
      return null;
  }
}
