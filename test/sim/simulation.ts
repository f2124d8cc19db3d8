/**
 * The deterministic cluster simulator: one run. One seed decides everything: the cluster's
 * fault profile, every message delay, drop, duplicate and partition, every crash, power cut,
 * pause and restart, every client operation. Every member is the production MemberRuntime
 * (sim-member.ts, started and crashed by sim-cluster.ts) over the in-memory twins of its disks,
 * its clock running at its own rate, its timers and turns events on the agenda, its peer link
 * the simulated network (sim-network.ts). A run has a chaos phase (the nemesis, nemesis.ts,
 * strikes) and a healing phase (faults off, every member back) in which a leader must emerge
 * and every client operation (workload.ts) must finish within a bound. Safety properties are
 * checked after every step (invariants.ts, runtime-properties.ts); the recorded client history
 * is checked for linearizability at the end, and every member's whole state (namespace,
 * sessions, leases) must be byte-identical once they converge. This module is the run itself:
 * setup, phases, the event loop, liveness and convergence, and the result.
 *
 * The run is one chain of promises that never yields to the event loop: the runtime's awaits
 * resolve as microtasks, which run in an order fixed by the seed; after each event the
 * simulator lets them run for a bounded number of turns. So no timer, socket or other test can
 * interleave with a run, and a seed replays exactly.
 *
 * Must never: read a real clock, real randomness or real timers (the run is wrapped so any
 * such leak throws), or let a member keep state across a crash that it did not persist.
 */

import type { NodeId, PlantedBugs } from '../../server/raft/index.js';
import type { RuntimePlantedBugs } from '../../server/node/runtime-config.js';
import type { History } from '../linearizability/history.js';
import { checkHistory } from '../linearizability/checker.js';
import { Violation, type Property } from './invariants.js';
import { MemberDisks } from './sim-member.js';
import { withoutAmbientNondeterminism } from './determinism-guard.js';
import { describeMessage } from './trace.js';
import { ELECTION_TICKS, SimWorld, TICK_MS, type SimEvent } from './sim-world.js';
import { SimCluster } from './sim-cluster.js';
import { SimNetwork } from './sim-network.js';
import { Nemesis, drawFaultProfile } from './nemesis.js';
import { RuntimeProperties } from './runtime-properties.js';
import { SimWorkload } from './workload.js';

export interface SimOptions {
  readonly seed: number;
  /** 3 or 5; when absent the seed chooses. */
  readonly nodes?: 3 | 4 | 5;
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
  /** Membership changes (add, promote, remove) committed: configuration entries applied. */
  membershipChanges: number;
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

/** Liveness bounds, in ticks after the faults heal. */
export const LEADER_BOUND_TICKS = 20 * ELECTION_TICKS;
export const CLIENTS_BOUND_TICKS = 30 * ELECTION_TICKS;
/** After the clients finish, every member must apply up to the leader's commit within this. */
export const CONVERGE_BOUND_TICKS = 20 * ELECTION_TICKS;
const HEAL_STEPS_MAX = 500_000;
/** Microtask turns the runtime's awaits get after each event (a turn with a WAL sync takes about a dozen). */
const SETTLE_TURNS = 16;

export async function runSimulation(options: SimOptions): Promise<SimResult> {
  const simulation = new Simulation(options);
  // The linearizability check runs after, outside the guard: its time budget reads a real clock.
  await withoutAmbientNondeterminism(() => simulation.run());
  return simulation.result();
}

class Simulation {
  private readonly world: SimWorld;
  private readonly cluster: SimCluster;
  private readonly network: SimNetwork;
  private readonly nemesis: Nemesis;
  private readonly properties: RuntimeProperties;
  private readonly workload: SimWorkload;
  /** When every lease had ended after the heal (convergence is timed from then). */
  private leasesDoneAtTicks: number | null = null;
  private readonly leaderTerms = new Set<number>();
  private readonly chaosSteps: number;
  private step = 0;
  private linearizability: SimResult['linearizability'] = 'not checked';
  private healedAt = 0;
  private leaderAfterHealTicks: number | null = null;
  private clientsDoneAfterHealTicks: number | null = null;
  private violation: SimResult['violation'] = null;

  constructor(private readonly options: SimOptions) {
    // The seed's draws, in this order: the cluster's size, the fault profile, the members'
    // configuration and clock rates.
    const world = (this.world = new SimWorld(options));
    this.chaosSteps = options.steps ?? 2000;
    const profile = drawFaultProfile(world.random);
    // The parts call each other only once the run starts, so each can be built before those it calls.
    this.cluster = new SimCluster(world, {
      link: (id, alive) => this.network.linkFor(id, alive),
      reply: (from, clientId, reply) => this.network.sendToClient(from, clientId, reply),
      changesObserver: (id) => this.properties.changesObserver(id),
      renewed: (lease) => this.properties.renewedAtLeader(lease),
      powerCut: (id) => this.nemesis.powerCut(id),
      closeConnections: (id) => this.network.closeWatchConnections(id),
    });
    this.network = new SimNetwork(world, profile, this.cluster, (lease) => this.properties.renewedAtLeader(lease));
    this.nemesis = new Nemesis(world, profile, this.cluster, this.network);
    this.workload = new SimWorkload(world, this.network, (revision) => this.properties.revisionTruth(revision));
    this.properties = new RuntimeProperties(world, this.cluster, this.workload.holders);
    world.trace(
      `seed ${options.seed}: ${world.nodeIds.length} members, profile ${JSON.stringify(profile)}, members ${JSON.stringify(this.cluster.config)}`,
    );
  }

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
      this.world.trace(`VIOLATION ${this.violation.property}: ${this.violation.detail}`);
    }
  }

  /** The run's figures, once the client history is checked for linearizability (if the run found nothing else). */
  result(): SimResult {
    const { world } = this;
    if (this.violation === null) {
      const verdict = checkHistory(this.workload.history as History, { timeoutMs: 20_000 });
      this.linearizability = verdict.verdict;
      if (verdict.verdict === 'illegal') {
        this.violation = { property: 'linearizability', detail: `key ${verdict.key}: ${verdict.explanation}`, step: this.step, atMs: world.now };
        world.trace(`VIOLATION linearizability: ${this.violation.detail}`);
      }
    }
    const violation = this.violation;
    const walCounts = world.walCounts;
    return {
      seed: this.options.seed,
      nodes: world.initialIds.length,
      steps: this.step,
      virtualMs: world.now,
      faults: world.faults,
      coverage: {
        ...world.coverage,
        ...this.workload.coverage(),
        powerCuts: walCounts.lost + walCounts.kept + walCounts.torn,
        batchesTorn: walCounts.torn,
        tornTailsCut: walCounts.tornTailsCut,
        walSegmentsDeleted: walCounts.segmentsDeleted,
        membershipChanges: world.configIndexes.size,
      },
      operations: this.workload.history.length,
      history: this.workload.history,
      linearizability: this.linearizability,
      leaderAfterHealTicks: this.leaderAfterHealTicks,
      clientsDoneAfterHealTicks: this.clientsDoneAfterHealTicks,
      violation,
      trace: world.traceLines,
    };
  }

  private toViolation(error: unknown): NonNullable<SimResult['violation']> {
    if (error instanceof Violation) return { property: error.property, detail: error.detail, step: this.step, atMs: this.world.now };
    const detail = error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error);
    return { property: 'core assertion', detail, step: this.step, atMs: this.world.now };
  }

  // ─── setup and phases ──────────────────────────────────────────────────────────────────────

  private async boot(): Promise<void> {
    const { world, cluster } = this;
    for (const id of world.nodeIds) {
      cluster.disks.set(id, new MemberDisks());
      await cluster.start(id);
    }
    this.workload.start();
    this.nemesis.start();
  }

  private async heal(): Promise<void> {
    const { world, cluster } = this;
    world.healing = true;
    // Faults off means off: a power cut still armed would strike after the heal.
    for (const disks of cluster.disks.values()) disks.fs.powerCutAtNextSync = false;
    // A frozen member wakes when its pause ends (its events wait for it, already queued): the
    // liveness bounds count from the last wake, not from now.
    this.healedAt = Math.max(world.now, ...cluster.pausedUntil.values());
    this.network.blocked.clear();
    for (const id of world.nodeIds) if (!cluster.members.has(id)) await cluster.start(id);
    this.workload.finish();
    world.trace(`t=${world.now} HEAL: faults off, every member up; clients finish their operations`);
  }

  private livenessReached(): boolean {
    this.nemesis.tidyAfterHeal();
    const ticks = Math.max(0, Math.floor((this.world.now - this.healedAt) / TICK_MS));
    if (this.leaderAfterHealTicks === null) {
      if (this.cluster.hasStableLeader()) this.leaderAfterHealTicks = ticks;
      else if (ticks > LEADER_BOUND_TICKS) throw new Violation('liveness: leader', `no leader ${ticks} ticks after the faults healed; ${this.memberStates()}`);
    }
    if (this.clientsDoneAfterHealTicks === null) {
      const { clients } = this.workload;
      if (clients.every((c) => !c.busy)) this.clientsDoneAfterHealTicks = ticks;
      else if (ticks > CLIENTS_BOUND_TICKS) {
        const stuck = clients.filter((c) => c.busy).map((c) => c.id);
        throw new Violation('liveness: client operations', `clients ${stuck.join(',')} still waiting ${ticks} ticks after the faults healed`);
      }
    }
    if (this.leaderAfterHealTicks === null || this.clientsDoneAfterHealTicks === null) return false;
    if (this.leasesDoneAtTicks === null) {
      if (!this.properties.leasesExpired()) return false;
      this.leasesDoneAtTicks = ticks;
    }
    return this.converged(ticks - Math.max(this.clientsDoneAfterHealTicks, this.leasesDoneAtTicks));
  }

  /** Each member's role, term, log and configuration, for a liveness failure's report. */
  private memberStates(): string {
    return [...this.cluster.members.values()]
      .map(({ id, status: s }) => `${id}: ${s.role} t${s.term} leader=${s.leaderId ?? '-'} last=${s.lastIndex} commit=${s.commitIndex} voters=${s.voters.join(',')}${s.learners.length > 0 ? ` learners=${s.learners.join(',')}` : ''}`)
      .join('; ');
  }

  /**
   * Every member has applied everything the leader committed, and holds the same state. A
   * follower stuck (say, waiting forever for a snapshot) fails here even if clients finished.
   */
  private converged(ticksSinceClientsDone: number): boolean {
    const leaderId = this.cluster.leader();
    const leader = leaderId === null ? undefined : this.cluster.members.get(leaderId);
    const members = [...this.cluster.members.values()];
    const commit = leader?.status.commitIndex ?? -1;
    const revision = leader?.runtime.machine.revision ?? -1;
    const caughtUp = leader !== undefined && members.every((m) => m.appliedIndex === commit) && this.workload.watchersAt(revision);
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

  // ─── the event loop ────────────────────────────────────────────────────────────────────────

  private async processNext(): Promise<void> {
    const { world, cluster } = this;
    const next = world.queue.pop();
    if (next === undefined) throw new Error('sim: the agenda ran dry');
    world.now = next.at;
    const target = eventTarget(next.event);
    const resumeAt = target === null ? undefined : cluster.pausedUntil.get(target);
    if (resumeAt !== undefined && resumeAt > world.now) {
      // Frozen: the event waits, in order, for the member to wake (not counted as a step).
      world.queue.push(resumeAt, next.event);
      return;
    }
    this.step++;
    await this.handle(next.event);
    // The runtime's awaits (a WAL sync, a store write) go on as microtasks, in seeded order.
    for (let turn = 0; turn < SETTLE_TURNS; turn++) await null;
    if (world.pendingViolation !== null) throw world.pendingViolation;
    for (const m of cluster.members.values()) {
      if (m.status.role === 'leader' && !this.leaderTerms.has(m.status.term)) {
        this.leaderTerms.add(m.status.term);
        world.coverage.elections++;
        world.trace(`t=${world.now} LEADER ${m.id} term ${m.status.term} (log ${m.status.lastIndex}, commit ${m.status.commitIndex})`);
      }
    }
    world.checker.afterStep(cluster.members.values());
  }

  private async handle(event: SimEvent): Promise<void> {
    const { world, cluster } = this;
    switch (event.kind) {
      case 'run': {
        if (!cluster.members.has(event.member)) return;
        if (event.incarnation !== null && cluster.incarnations.get(event.member) !== event.incarnation) return;
        event.run();
        return;
      }
      case 'call':
        event.run();
        return;
      case 'raft': {
        const member = cluster.members.get(event.message.to);
        if (member === undefined) return;
        // A link cut while the message was on its way loses it, as a pulled cable loses what was in flight.
        if (this.network.blocked.has(`${event.message.from}>${event.message.to}`)) return;
        if (this.options.trace) world.trace(`t=${world.now} ${describeMessage(event.message)}`);
        member.runtime.step(event.message);
        return;
      }
      case 'request': {
        const member = cluster.members.get(event.member);
        if (member === undefined) return;
        member.onClientRequest(event.request);
        return;
      }
      case 'reply':
        this.workload.onReply(event.clientId, event.reply);
        return;
      case 'client-wake':
        this.workload.onWake(event.clientId, event.token);
        return;
      case 'nemesis':
        this.nemesis.onStrike();
        return;
      case 'restart':
        if (!cluster.members.has(event.member) && !world.retired.has(event.member)) await cluster.start(event.member);
        return;
      case 'power-cut-deadline':
        this.nemesis.onPowerCutDeadline(event.member, event.incarnation);
        return;
      case 'heal-partition':
        this.nemesis.onPartitionHealed(event.generation);
        return;
    }
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
