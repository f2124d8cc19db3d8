/**
 * The deterministic cluster simulator. One seed decides everything: the cluster's fault
 * profile, every message delay, drop, duplicate and partition, every crash and restart, every
 * client operation. A run has a chaos phase (faults on) and a healing phase (faults off, every
 * member back) in which a leader must emerge and every client operation must finish within a
 * bound. Safety properties are checked after every step; the recorded client history is
 * checked for linearizability at the end.
 *
 * Must never: read a real clock, real randomness or real timers (the run is wrapped so any
 * such leak throws), or let a member keep state across a crash that it did not persist.
 */

import type { Message, NodeId, PlantedBugs } from '../../server/raft/index.js';
import type { History, Operation } from '../linearizability/history.js';
import { checkHistory } from '../linearizability/checker.js';
import { SimClient } from './client.js';
import { PowerCut } from '../../server/storage/memory-file-system.js';
import { SimDisk } from './disk.js';
import { EventQueue } from './event-queue.js';
import { SafetyChecker, Violation, type Property } from './invariants.js';
import { SimMember, type ClientReply, type ClientRequest } from './member.js';
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
  readonly plantedBugs?: PlantedBugs & { readonly forgetVoteOnRestart?: boolean; readonly sendBeforePersist?: boolean };
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
  | { readonly kind: 'tick'; readonly member: NodeId; readonly incarnation: number }
  | { readonly kind: 'loop'; readonly member: NodeId; readonly incarnation: number }
  | { readonly kind: 'raft'; readonly message: Message }
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

export function runSimulation(options: SimOptions): SimResult {
  return withoutAmbientNondeterminism(() => new Simulation(options).run());
}

class Simulation {
  private readonly random: SimRandom;
  private readonly nodeIds: NodeId[];
  private readonly profile: FaultProfile;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly checker = new SafetyChecker();
  private readonly disks = new Map<NodeId, SimDisk>();
  private readonly members = new Map<NodeId, SimMember>();
  private readonly incarnations = new Map<NodeId, number>();
  private readonly loopScheduled = new Set<NodeId>();
  private readonly clients: SimClient[] = [];
  private readonly history: Operation[] = [];
  private readonly blocked = new Set<string>();
  private partitionGeneration = 0;
  private readonly faults: FaultCounts = { dropped: 0, duplicated: 0, partitions: 0, crashes: 0, pauses: 0, transfers: 0 };
  private readonly coverage: Coverage = { elections: 0, snapshotInstalled: 0, leaderRead: 0, followerRead: 0, unknownOutcomes: 0, powerCuts: 0, batchesTorn: 0, tornTailsCut: 0, walSegmentsDeleted: 0 };
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
    quietAfterStart: boolean;
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
      // A third of the seeds run members that refuse votes for an election timeout after each
      // (re)start, as a cluster serving lease reads does (from the seed, not the random stream,
      // so every other seed replays as before).
      quietAfterStart: options.seed % 3 === 0,
    };
    for (const id of this.nodeIds) this.tickMs.set(id, this.random.between(TICK_MS - 3, TICK_MS + 3));
    this.trace(
      `seed ${options.seed}: ${nodes} members, profile ${JSON.stringify(this.profile)}, members ${JSON.stringify(this.memberConfig)}`,
    );
  }

  run(): SimResult {
    let violation: SimResult['violation'] = null;
    try {
      this.boot();
      while (this.step < this.chaosSteps) this.processNext();
      this.heal();
      while (!this.livenessReached()) {
        if (this.step > this.chaosSteps + HEAL_STEPS_MAX) throw new Violation('liveness: client operations', 'the healed cluster ran out of steps');
        this.processNext();
      }
      const verdict = checkHistory(this.history as History, { timeoutMs: 20_000 });
      this.linearizability = verdict.verdict;
      if (verdict.verdict === 'illegal') throw new Violation('linearizability', `key ${verdict.key}: ${verdict.explanation}`);
    } catch (error) {
      violation = this.toViolation(error);
      this.trace(`VIOLATION ${violation.property}: ${violation.detail}`);
    }
    return {
      seed: this.options.seed,
      nodes: this.nodeIds.length,
      steps: this.step,
      virtualMs: this.now,
      faults: this.faults,
      coverage: { ...this.coverage, unknownOutcomes: this.history.filter((op) => op.returnTime === null).length, ...this.walCoverage() },
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

  private boot(): void {
    const forgetVote = this.options.plantedBugs?.forgetVoteOnRestart === true;
    for (const id of this.nodeIds) {
      this.disks.set(id, new SimDisk(forgetVote, WAL_SEGMENT_BYTES));
      this.startMember(id);
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
    this.queue.push(this.random.between(1, this.profile.nemesisEveryMsMax), { kind: 'nemesis' });
  }

  private heal(): void {
    this.healing = true;
    // Faults off means off: a power cut still armed would strike after the heal.
    for (const disk of this.disks.values()) disk.disarmPowerCut();
    this.healedAt = this.now;
    this.blocked.clear();
    this.pausedUntil.clear();
    for (const id of this.nodeIds) if (!this.members.has(id)) this.startMember(id);
    for (const client of this.clients) client.finish();
    this.trace(`t=${this.now} HEAL: faults off, every member up; clients finish their operations`);
  }

  private livenessReached(): boolean {
    const ticks = Math.floor((this.now - this.healedAt) / TICK_MS);
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
    return this.converged(ticks - this.clientsDoneAfterHealTicks);
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
    const caughtUp = leader !== undefined && members.every((m) => m.machineAppliedIndex === commit);
    if (caughtUp) {
      const state = leader.machineState();
      for (const m of members) {
        if (m.machineState() !== state) throw new Violation('state machine safety', `${m.id} and ${leader.id} both applied ${commit} but hold different state`);
      }
      return true;
    }
    if (ticksSinceClientsDone > CONVERGE_BOUND_TICKS) {
      const behind = members.filter((m) => m.machineAppliedIndex !== commit).map((m) => `${m.id}@${m.machineAppliedIndex}`);
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

  private startMember(id: NodeId): void {
    this.pausedUntil.delete(id);
    const incarnation = (this.incarnations.get(id) ?? 0) + 1;
    this.incarnations.set(id, incarnation);
    const member = new SimMember(
      {
        id,
        peers: this.nodeIds,
        electionTicks: ELECTION_TICKS,
        ...this.memberConfig,
        plantedBugs: this.options.plantedBugs ?? {},
        sendBeforePersist: this.options.plantedBugs?.sendBeforePersist === true,
      },
      this.disks.get(id)!,
      this.random.fork(),
      this.checker,
      {
        send: (m) => this.sendRaft(m),
        reply: (clientId, reply) => this.sendToClient(id, clientId, reply),
        count: (what) => this.coverage[what]++,
      },
    );
    this.members.set(id, member);
    this.loopScheduled.delete(id);
    this.trace(`t=${this.now} START ${id} (incarnation ${incarnation}) term=${member.status.term} commit=${member.status.commitIndex} last=${member.status.lastIndex}`);
    this.queue.push(this.now + this.random.between(1, TICK_MS), { kind: 'tick', member: id, incarnation });
  }

  private crash(id: NodeId, restartAfterMs: number): void {
    if (!this.members.delete(id)) return;
    // An armed power cut dies with the process it was aimed at.
    this.disks.get(id)!.disarmPowerCut();
    this.faults.crashes++;
    this.trace(`t=${this.now} CRASH ${id} (back in ${restartAfterMs} ms)`);
    this.queue.push(this.now + restartAfterMs, { kind: 'restart', member: id });
  }

  private afterInput(member: SimMember): void {
    if (this.loopScheduled.has(member.id) || !member.raft.hasReady()) return;
    this.loopScheduled.add(member.id);
    this.queue.push(this.now + this.random.between(0, 2), { kind: 'loop', member: member.id, incarnation: this.incarnations.get(member.id)! });
  }

  // ─── the event loop ────────────────────────────────────────────────────────────────────────

  private processNext(): void {
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
    this.handle(next.event);
    for (const m of this.members.values()) {
      if (m.status.role === 'leader' && !this.leaderTerms.has(m.status.term)) {
        this.leaderTerms.add(m.status.term);
        this.coverage.elections++;
        this.trace(`t=${this.now} LEADER ${m.id} term ${m.status.term} (log ${m.status.lastIndex}, commit ${m.status.commitIndex})`);
      }
    }
    this.checker.afterStep(
      [...this.members.values()].map((m) => ({ id: m.id, status: m.status, termAt: (i: number) => m.raft.termAt(i), appliedIndex: m.machineAppliedIndex })),
    );
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'tick': {
        const member = this.members.get(event.member);
        if (member === undefined || this.incarnations.get(event.member) !== event.incarnation) return;
        member.raft.tick();
        this.afterInput(member);
        this.queue.push(this.now + this.tickMs.get(event.member)!, event);
        return;
      }
      case 'loop': {
        const member = this.members.get(event.member);
        if (member === undefined || this.incarnations.get(event.member) !== event.incarnation) return;
        this.loopScheduled.delete(event.member);
        try {
          member.processReady();
        } catch (error) {
          if (!(error instanceof PowerCut)) throw error;
          this.powerCut(event.member);
          return;
        }
        this.afterInput(member);
        return;
      }
      case 'raft': {
        const member = this.members.get(event.message.to);
        if (member === undefined) return;
        if (this.options.trace) this.trace(`t=${this.now} ${describeMessage(event.message)}`);
        member.raft.step(event.message);
        this.afterInput(member);
        return;
      }
      case 'request': {
        const member = this.members.get(event.member);
        if (member === undefined) return;
        member.onClientRequest(event.request);
        this.afterInput(member);
        return;
      }
      case 'reply':
        this.clients[event.clientId - 1]!.onReply(event.reply);
        return;
      case 'client-wake':
        this.clients[event.clientId - 1]!.onWake(event.token);
        return;
      case 'nemesis':
        if (!this.healing) {
          this.nemesis();
          this.queue.push(this.now + this.random.between(10, this.profile.nemesisEveryMsMax), { kind: 'nemesis' });
        }
        return;
      case 'restart':
        if (!this.members.has(event.member)) this.startMember(event.member);
        return;
      case 'power-cut-deadline':
        if (this.healing || this.incarnations.get(event.member) !== event.incarnation || !this.members.has(event.member)) return;
        this.disks.get(event.member)!.disarmPowerCut();
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
      this.disks.get(victim)!.armPowerCut();
      this.queue.push(this.now + 50, { kind: 'power-cut-deadline', member: victim, incarnation: this.incarnations.get(victim)! });
      return;
    }
    this.crash(victim, restartAfterMs);
  }

  /** The member lost power during a WAL sync: the unsynced batch lands whole, torn or not at all. */
  private powerCut(id: NodeId): void {
    const disk = this.disks.get(id)!;
    disk.powerCut(
      () => this.random.pick(['lost', 'kept', 'torn'] as const),
      () => this.random.chance(0.5),
    );
    this.trace(`t=${this.now} POWER CUT ${id} during a sync`);
    this.crash(id, this.random.between(1, 200));
  }

  private walCoverage(): Pick<Coverage, 'powerCuts' | 'batchesTorn' | 'tornTailsCut' | 'walSegmentsDeleted'> {
    const sum = { powerCuts: 0, batchesTorn: 0, tornTailsCut: 0, walSegmentsDeleted: 0 };
    for (const disk of this.disks.values()) {
      const c = disk.walCounts;
      sum.powerCuts += c.lost + c.kept + c.torn;
      sum.batchesTorn += c.torn;
      sum.tornTailsCut += c.tornTailsCut;
      sum.walSegmentsDeleted += c.segmentsDeleted;
    }
    return sum;
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
    const durationMs = this.random.between(20, 1000);
    this.pausedUntil.set(id, this.now + durationMs);
    this.faults.pauses++;
    this.trace(`t=${this.now} PAUSE ${id} for ${durationMs} ms`);
  }

  private transferLeadership(): void {
    const leader = this.leader();
    if (leader === null) return;
    const to = this.random.pick(this.nodeIds.filter((id) => id !== leader));
    this.faults.transfers++;
    this.trace(`t=${this.now} TRANSFER ${leader} → ${to}`);
    this.members.get(leader)!.raft.transferLeadership(to);
    this.afterInput(this.members.get(leader)!);
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
    case 'tick':
    case 'loop':
    case 'request':
    case 'power-cut-deadline':
      return event.member;
    case 'raft':
      return event.message.to;
    default:
      return null;
  }
}
