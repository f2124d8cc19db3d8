/**
 * The simulated cluster's members over the run: each member's disks, which incarnation of it is
 * up (if any), whether it is paused, its clock rate, and the seed's member configuration; how a
 * member starts on its disks with the simulator's clock, timers and randomness wired in, and how
 * it crashes. The network, the nemesis and the runtime properties are reached through ClusterIo.
 *
 * Pattern: a registry of member incarnations; every output of a member is tagged with the
 * incarnation that made it, so a dead process's leftovers are dropped.
 *
 * Must never: let an incarnation that died act or report (a message, an answer, a timer, a
 * check), or let a restarted member keep anything its disks did not.
 */

import type { NodeId } from '../../server/raft/index.js';
import type { PeerLink } from '../../server/node/runtime.js';
import type { RuntimeOptions } from '../../server/node/runtime-config.js';
import type { ChangeEvent } from '../../server/state/types.js';
import { PowerCut } from '../../server/storage/memory-file-system.js';
import type { ClientReply } from './client.js';
import { Violation } from './invariants.js';
import { MemberDisks, SimMember, forgetVote } from './sim-member.js';
import { ELECTION_TICKS, TICK_MS, WALL_EPOCH_MS, WALL_SKEW_MS_MAX, type SimWorld } from './sim-world.js';

/** Small WAL segments, so runs cut and compact away many of them. */
const WAL_SEGMENT_BYTES = 4096;

export interface MemberConfig {
  readonly maxEntriesPerAppend: number;
  readonly maxInflightAppends: number;
  readonly snapshotEvery: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTicks: number;
  readonly leaseReads: boolean;
}

/** What a member reaches outside the cluster. */
export interface ClusterIo {
  /** Member `id`'s peer link (the simulated network), live while `alive()`. */
  link(id: NodeId, alive: () => boolean): PeerLink;
  reply(from: NodeId, clientId: number, reply: ClientReply): void;
  /** What checks one incarnation's applied change events (its own memory of what it applied). */
  changesObserver(id: NodeId): (events: readonly ChangeEvent[]) => void;
  /** Member `id`, leading, renewed `lease`. */
  renewed(lease: number): void;
  /** Member `id` lost power during a WAL sync. */
  powerCut(id: NodeId): void;
  /** Member `id` crashed: its clients' connections end. */
  closeConnections(id: NodeId): void;
}

export class SimCluster {
  readonly disks = new Map<NodeId, MemberDisks>();
  readonly members = new Map<NodeId, SimMember>();
  /** Bumped at every start and every crash: what a dead process still had in flight is dropped. */
  readonly incarnations = new Map<NodeId, number>();
  /** A paused member handles nothing before this virtual time; its events wait. */
  readonly pausedUntil = new Map<NodeId, number>();
  /** Each member's clock runs at its own rate: a tick every tickMs of simulated time. */
  private readonly tickMs = new Map<NodeId, number>();
  readonly config: MemberConfig;

  constructor(
    private readonly world: SimWorld,
    private readonly io: ClusterIo,
  ) {
    const { random } = world;
    // Small appends, windows and snapshot intervals widen the windows where bugs hide.
    this.config = {
      maxEntriesPerAppend: random.pick([1, 1, 2, 4, 64]),
      maxInflightAppends: random.pick([1, 4, 64]),
      snapshotEvery: random.pick([3, 10, 50, 1_000_000]),
      // Check-quorum is a stability feature: safety must hold without it, so some seeds turn it off.
      checkQuorum: random.pick([true, true, true, false]),
      // So is pre-vote.
      preVote: random.pick([true, true, true, false]),
      heartbeatTicks: random.pick([1, 1, 2, 3]),
      // A third of the seeds serve lease reads (and so refuse votes for an election timeout after
      // each restart), with the drift allowance set to cover the members' clock rates.
      leaseReads: world.options.seed % 3 === 0,
    };
    // Spares too: the lease-read drift allowance must cover a member added later.
    for (const id of world.allIds) this.tickMs.set(id, random.between(TICK_MS - 3, TICK_MS + 3));
  }

  /** How fast this member's clock runs against simulated time (its ticks come every tickMs of its own). */
  clockRate(id: NodeId): number {
    return TICK_MS / this.tickMs.get(id)!;
  }

  fastestClockRate(): number {
    return Math.max(...this.world.allIds.map((id) => this.clockRate(id)));
  }

  slowestClockRate(): number {
    return Math.min(...this.world.allIds.map((id) => this.clockRate(id)));
  }

  /** The leader of the highest term among the members up, if any. */
  leader(): NodeId | null {
    let best: SimMember | null = null;
    for (const id of this.world.nodeIds) {
      const m = this.members.get(id);
      if (m !== undefined && m.status.role === 'leader' && (best === null || m.status.term > best.status.term)) best = m;
    }
    return best?.id ?? null;
  }

  hasStableLeader(): boolean {
    let maxTerm = 0;
    for (const m of this.members.values()) maxTerm = Math.max(maxTerm, m.status.term);
    for (const m of this.members.values()) if (m.status.role === 'leader' && m.status.term === maxTerm) return true;
    return false;
  }

  private runtimeOptions(id: NodeId): RuntimeOptions {
    const bugs = this.world.options.plantedBugs ?? {};
    const rates = this.world.allIds.map((n) => this.clockRate(n));
    // The allowance covers how much faster the fastest clock runs than the slowest.
    const driftPercent = Math.ceil((Math.max(...rates) / Math.min(...rates) - 1) * 100) + 1;
    return {
      id,
      // As `--initial-cluster`: the initial members. A member outside it joins an existing
      // cluster (`--initial-cluster-state existing`): not a voter until a configuration says so.
      peers: this.world.initialIds,
      tickMs: TICK_MS,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: this.config.heartbeatTicks,
      snapshotEvery: this.config.snapshotEvery,
      keepEntries: Math.min(this.config.snapshotEvery, 20),
      ...(this.config.leaseReads ? { leaseReads: { driftPercent } } : {}),
      core: {
        preVote: this.config.preVote,
        checkQuorum: this.config.checkQuorum,
        maxEntriesPerAppend: this.config.maxEntriesPerAppend,
        maxInflightAppends: this.config.maxInflightAppends,
        plantedBugs: { commitOldTermEntries: bugs.commitOldTermEntries === true, readIndexWithoutQuorum: bugs.readIndexWithoutQuorum === true, voteIgnoresLogCheck: bugs.voteIgnoresLogCheck === true, confChangeBeforeTermCommit: bugs.confChangeBeforeTermCommit === true },
      },
      plantedBugs: { sendBeforeSync: bugs.sendBeforeSync === true, applyBeforeCommit: bugs.applyBeforeCommit === true, stepBeforeStaged: bugs.stepBeforeStaged === true, deposedLeaderKeepsDeadlines: bugs.deposedLeaderKeepsDeadlines === true },
    };
  }

  /** Start a new incarnation of member `id` on its disks, as a restarted process would. */
  async start(id: NodeId): Promise<void> {
    const world = this.world;
    this.pausedUntil.delete(id);
    const incarnation = (this.incarnations.get(id) ?? 0) + 1;
    this.incarnations.set(id, incarnation);
    const alive = (): boolean => this.incarnations.get(id) === incarnation;
    const rate = this.clockRate(id);
    // A fixed wall-clock skew per member, from its rate (no extra draw): within ±WALL_SKEW_MS_MAX.
    const wallSkewMs = Math.round((rate - 1) * WALL_SKEW_MS_MAX);
    // A member the operator added starts on empty disks, the first time.
    if (!this.disks.has(id)) this.disks.set(id, new MemberDisks());
    const disks = this.disks.get(id)!;
    if (world.options.plantedBugs?.forgetVoteOnRestart === true && incarnation > 1) forgetVote(disks, WAL_SEGMENT_BYTES);
    const observeChanges = this.io.changesObserver(id);
    let member: SimMember;
    try {
      member = await SimMember.boot(
        this.runtimeOptions(id),
        disks,
        WAL_SEGMENT_BYTES,
        {
          clock: { monotonicMs: () => world.now * rate, wallMs: () => WALL_EPOCH_MS + world.now + wallSkewMs },
          timers: {
            setInterval: (run, ms) => this.every(id, incarnation, ms / rate, run),
            clearInterval: (handle) => void ((handle as { cancelled: boolean }).cancelled = true),
            defer: (run) => world.queue.push(world.now + world.random.between(0, 1), { kind: 'run', member: id, incarnation, run }),
          },
          random: world.random.fork(),
          link: this.io.link(id, alive),
          watcher: {
            persisting: (entries, termAt) => {
              if (alive()) world.checker.onPersistEntries(id, termAt, entries);
            },
            installing: (meta) => {
              if (alive()) world.checker.onInstallSnapshot(id, meta.index, meta.term);
            },
            compacted: (segments) => void (world.walCounts.segmentsDeleted += segments),
          },
          applied: (entry) => {
            if (!alive()) return;
            world.checker.onApply(id, entry);
            if (entry.type === 'config') world.configIndexes.add(entry.index);
          },
          changed: (events) => {
            if (alive()) observeChanges(events);
          },
          storeReplaced: () => void world.coverage.snapshotInstalled++,
          watchInvariantBroken: (what) => {
            if (alive()) world.raise(new Violation('runtime assertion', `${id}'s watch hub: ${what}`));
          },
          fatal: (error) => {
            if (!alive()) return;
            // A power cut is the weather; any other failure is the runtime refusing to go on.
            if (error instanceof PowerCut) this.io.powerCut(id);
            else if (error instanceof Violation) world.raise(error); // a check inside the turn (persist before send)
            else world.raise(new Violation('runtime assertion', `${id} stopped: ${error.message}`));
          },
          reply: (clientId, reply) => {
            if (alive()) this.io.reply(id, clientId, reply);
          },
          count: (what) => world.coverage[what]++,
          renewed: (lease) => this.io.renewed(lease),
        },
        () => void world.walCounts.tornTailsCut++,
        world.options.plantedBugs?.watchResumeOneEarly === true,
      );
    } catch (error) {
      if (error instanceof Violation) throw error;
      throw new Violation('recovery', `${id} could not start (incarnation ${incarnation}): ${(error as Error).message}`);
    }
    world.checker.onStart(id, member.status.commitIndex);
    this.members.set(id, member);
    world.trace(`t=${world.now} START ${id} (incarnation ${incarnation}) term=${member.status.term} commit=${member.status.commitIndex} last=${member.status.lastIndex}`);
  }

  /** A member's interval timer: every periodMs of simulated time, while its incarnation lives. */
  private every(id: NodeId, incarnation: number, periodMs: number, run: () => void): { cancelled: boolean } {
    const { queue, random } = this.world;
    const handle = { cancelled: false };
    const fire = (): void => {
      if (handle.cancelled) return;
      run();
      queue.push(this.world.now + periodMs, { kind: 'run', member: id, incarnation, run: fire });
    };
    queue.push(this.world.now + random.between(1, Math.max(1, Math.round(periodMs))), { kind: 'run', member: id, incarnation, run: fire });
    return handle;
  }

  /**
   * The operator shuts a member down for good (it was removed, or never made it into the
   * configuration): it crashes and never restarts, and clients stop choosing it.
   */
  retire(id: NodeId): void {
    const { world } = this;
    if (world.retired.has(id)) return;
    world.retired.add(id);
    const at = world.nodeIds.indexOf(id);
    if (at >= 0) world.nodeIds.splice(at, 1);
    if (this.members.has(id)) this.crash(id, 0);
    world.trace(`t=${world.now} RETIRE ${id}`);
  }

  /** A process crash (SIGKILL): what it wrote stays (the page cache survives); what it had in flight is gone. */
  crash(id: NodeId, restartAfterMs: number): void {
    if (!this.members.delete(id)) return;
    this.incarnations.set(id, this.incarnations.get(id)! + 1);
    const disks = this.disks.get(id)!;
    // An armed power cut dies with the process it was aimed at.
    disks.fs.powerCutAtNextSync = false;
    disks.detach();
    this.io.closeConnections(id);
    this.world.faults.crashes++;
    this.world.trace(`t=${this.world.now} CRASH ${id} (${this.world.retired.has(id) ? 'retired' : `back in ${restartAfterMs} ms`})`);
    if (!this.world.retired.has(id)) this.world.queue.push(this.world.now + restartAfterMs, { kind: 'restart', member: id });
  }
}
