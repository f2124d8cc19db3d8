/**
 * The nemesis: the seed's fault profile (how lossy, how slow, how violent its weather is) and
 * the faults it strikes with during the chaos phase — partitions (split, isolated leader,
 * one-way, bridge), crashes and quick bounces, power cuts during a WAL sync, crashing a leader
 * that holds uncommitted entries, pauses, leadership hand-offs, and membership changes (the
 * operator, operator.ts: add, promote, remove — the leader too) — often aimed at the leader.
 *
 * Pattern: a strategy drawn once per seed (the profile's weights), then one seeded choice per
 * strike, each strike scheduling the next until the heal.
 *
 * Must never: strike after the heal, or draw from any random source but the run's one (a seed's
 * faults must replay exactly).
 */

import type { NodeId } from '../../server/raft/index.js';
import type { SimRandom } from './random.js';
import type { SimCluster } from './sim-cluster.js';
import type { NetworkWeather, SimNetwork } from './sim-network.js';
import type { SimWorld } from './sim-world.js';
import { SimOperator } from './operator.js';

/** Every seed draws its own weather: how lossy, how slow, how violent. */
export interface FaultProfile extends NetworkWeather {
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
  /** Freeze a member (a GC pause, a stopped VM): it keeps its memory but handles nothing until it resumes. */
  readonly pauseWeight: number;
  /** Membership changes: add a member, promote a learner, remove a voter (the leader, often) or a learner. */
  readonly membershipWeight: number;
}

/** The seed's profile. The draws' order, and the keys' (the trace prints them), are part of every seed's replay. */
export function drawFaultProfile(random: SimRandom): FaultProfile {
  return {
    dropRate: random.pick([0, 0.01, 0.05, 0.1, 0.2]),
    duplicateRate: random.pick([0, 0.01, 0.05]),
    delayMsMax: random.pick([2, 5, 15, 40, 40, 80]),
    nemesisEveryMsMax: random.pick([40, 100, 300, 800]),
    crashWeight: random.pick([0, 1, 3]),
    partitionWeight: random.pick([0, 1, 3]),
    bounceWeight: random.pick([0, 1, 4]),
    leaderBias: random.pick([0.3, 0.7, 0.95]),
    longDelayRate: random.pick([0, 0.01, 0.03]),
    uncommittedCrashWeight: random.pick([0, 2, 6]),
    pauseWeight: random.pick([0, 1, 2]),
    membershipWeight: random.pick([0, 1, 3]),
  };
}

export class Nemesis {
  /** Each partition's number: a heal scheduled for an earlier one must not end a later one. */
  private partitionGeneration = 0;
  private readonly operator: SimOperator;

  constructor(
    private readonly world: SimWorld,
    private readonly profile: FaultProfile,
    private readonly cluster: SimCluster,
    private readonly network: SimNetwork,
  ) {
    this.operator = new SimOperator(world, cluster, (leaderId) => {
      // Now and then the network splits just as a change goes out: the leader and one other
      // member on one side (what a change the leader should not have taken needs to commit).
      if (profile.membershipWeight > 0 && world.random.chance(0.5)) this.cutOffWithOne(leaderId);
    });
  }

  /** After the heal: members outside the committed configuration are shut down (operator.ts). */
  tidyAfterHeal(): void {
    this.operator.tidyAfterHeal();
  }

  /** The first strike, at a seeded moment. */
  start(): void {
    this.world.queue.push(this.world.random.between(1, this.profile.nemesisEveryMsMax), { kind: 'nemesis' });
  }

  /** A 'nemesis' event: strike, and schedule the next strike, until the heal. */
  onStrike(): void {
    const { world } = this;
    if (world.healing) return;
    this.strike();
    world.queue.push(world.now + world.random.between(10, this.profile.nemesisEveryMsMax), { kind: 'nemesis' });
  }

  /** An armed power cut's deadline: if the member has not synced since, it crashes plainly. */
  onPowerCutDeadline(id: NodeId, incarnation: number): void {
    const { world, cluster } = this;
    if (world.healing || cluster.incarnations.get(id) !== incarnation || !cluster.members.has(id)) return;
    cluster.crash(id, world.random.between(1, 200));
  }

  onPartitionHealed(generation: number): void {
    if (generation !== this.partitionGeneration) return; // a newer partition replaced it
    if (this.network.blocked.size > 0) this.world.trace(`t=${this.world.now} PARTITION healed`);
    this.network.blocked.clear();
  }

  /**
   * The member lost power during a WAL sync: its unsynced WAL writes land whole, torn sector by
   * sector, or not at all (one fate for the batch); its state store keeps only synced batches.
   */
  powerCut(id: NodeId): void {
    const { world } = this;
    const disks = this.cluster.disks.get(id)!;
    disks.fs.powerCutAtNextSync = false;
    const chosen: { fate: 'lost' | 'kept' | 'torn' | null } = { fate: null };
    disks.fs.crash(
      // Torn more often than not: a torn batch is what recovery must cut away, and every CI batch must see some.
      () => (chosen.fate ??= world.random.pick(['lost', 'kept', 'torn', 'torn', 'torn'] as const)),
      () => world.random.chance(0.5),
    );
    if (chosen.fate !== null) world.walCounts[chosen.fate] += 1;
    disks.state.crash();
    world.trace(`t=${world.now} POWER CUT ${id} during a sync`);
    this.cluster.crash(id, world.random.between(1, 200));
  }

  private strike(): void {
    const { profile, world } = this;
    const choices: (() => void)[] = [() => undefined];
    for (let i = 0; i < profile.partitionWeight; i++) choices.push(() => this.partition());
    for (let i = 0; i < profile.crashWeight; i++) choices.push(() => this.crashSomeone(world.random.between(20, 400)));
    for (let i = 0; i < profile.bounceWeight; i++) choices.push(() => this.crashSomeone(world.random.between(1, 30)));
    for (let i = 0; i < profile.pauseWeight; i++) choices.push(() => this.pauseSomeone());
    for (let i = 0; i < profile.uncommittedCrashWeight; i++) choices.push(() => this.crashLeaderWithUncommittedEntries());
    for (let i = 0; i < profile.membershipWeight; i++) choices.push(() => this.operator.strike(profile.leaderBias));
    for (let i = 0; i < profile.membershipWeight; i++) {
      choices.push(() => this.operator.strikeLeaderMidChange());
      choices.push(() => this.leaderMidChangeCutOff());
    }
    choices.push(() => this.transferLeadership());
    world.random.pick(choices)();
  }

  private crashSomeone(restartAfterMs: number): void {
    const { world, cluster } = this;
    const up = world.nodeIds.filter((id) => cluster.members.has(id));
    if (up.length === 0) return;
    const leader = cluster.leader();
    const victim = leader !== null && world.random.chance(this.profile.leaderBias) ? leader : world.random.pick(up);
    if (world.random.chance(0.5)) {
      // The power goes while the member writes: at its next sync (or, if it writes nothing soon, plainly).
      cluster.disks.get(victim)!.fs.powerCutAtNextSync = true;
      world.queue.push(world.now + 50, { kind: 'power-cut-deadline', member: victim, incarnation: cluster.incarnations.get(victim)! });
      return;
    }
    cluster.crash(victim, restartAfterMs);
  }

  private crashLeaderWithUncommittedEntries(): void {
    const { cluster } = this;
    const leaderId = cluster.leader();
    const leader = leaderId === null ? undefined : cluster.members.get(leaderId);
    if (leader === undefined || leader.status.lastIndex <= leader.status.commitIndex) return;
    cluster.crash(leader.id, this.world.random.between(5, 200));
  }

  private pauseSomeone(): void {
    const { world, cluster } = this;
    const up = world.nodeIds.filter((id) => cluster.members.has(id) && !cluster.pausedUntil.has(id));
    if (up.length === 0) return;
    const leader = cluster.leader();
    const id = leader !== null && up.includes(leader) && world.random.chance(this.profile.leaderBias) ? leader : world.random.pick(up);
    // Some pauses outlast every lease's TTL (1–2 s): a leader frozen past the TTL must wake to find
    // the leases kept by its successor, and expire none of them.
    const durationMs = world.random.chance(0.2) ? world.random.between(1_000, 2_500) : world.random.between(20, 1_000);
    cluster.pausedUntil.set(id, world.now + durationMs);
    world.faults.pauses++;
    world.trace(`t=${world.now} PAUSE ${id} for ${durationMs} ms`);
  }

  private transferLeadership(): void {
    const { world } = this;
    const leader = this.cluster.leader();
    if (leader === null) return;
    world.faults.transfers++;
    world.trace(`t=${world.now} HAND-OFF from ${leader}`);
    // As a clean SIGTERM does: the runtime picks the transferee; the member goes on running.
    void this.cluster.members.get(leader)!.runtime.handOffLeadership(world.random.between(50, 500));
  }

  /**
   * The leader takes a change while cut off from all but at most one member, and dies: the change
   * lives on a minority, which may elect it again once the network heals — against whatever
   * the majority's next leader decided meanwhile (Ongaro's single-server change scenario).
   */
  /** A partition: leader `id` and one other voter of its configuration (chosen by the seed) against the rest. */
  private cutOffWithOne(id: NodeId): void {
    const { world } = this;
    const others = world.nodeIds.filter((other) => other !== id);
    const voters = (this.cluster.members.get(id)?.status.voters ?? []).filter((other) => other !== id && others.includes(other));
    if (others.length < 2 || voters.length === 0) return;
    const partner = world.random.pick(voters);
    const blocked = this.network.blocked;
    blocked.clear();
    for (const a of [id, partner]) {
      for (const b of others) {
        if (b === partner) continue;
        blocked.add(`${a}>${b}`);
        blocked.add(`${b}>${a}`);
      }
    }
    world.faults.partitions++;
    world.trace(`t=${world.now} PARTITION split ${id},${partner} | the rest, as a change goes out`);
    world.queue.push(world.now + world.random.between(50, 1000), { kind: 'heal-partition', generation: ++this.partitionGeneration });
  }

  private leaderMidChangeCutOff(): void {
    const { world } = this;
    const leader = this.cluster.leader();
    if (leader === null) return;
    const blocked = this.network.blocked;
    blocked.clear();
    const others = world.nodeIds.filter((id) => id !== leader);
    const reached = world.random.chance(0.5) && others.length > 0 ? world.random.pick(others) : null;
    for (const id of others) {
      if (id === reached) continue;
      blocked.add(`${leader}>${id}`);
      blocked.add(`${id}>${leader}`);
    }
    world.faults.partitions++;
    world.trace(`t=${world.now} PARTITION ${leader} cut off${reached === null ? '' : ` but from ${reached}`}, mid-change`);
    world.queue.push(world.now + world.random.between(50, 1000), { kind: 'heal-partition', generation: ++this.partitionGeneration });
    this.operator.strikeLeaderMidChange();
  }

  private partition(): void {
    const { world } = this;
    const blocked = this.network.blocked;
    blocked.clear();
    const ids = world.random.shuffled(world.nodeIds);
    const leader = this.cluster.leader();
    const kind = world.random.pick(['split', 'isolate-leader', 'one-way', 'bridge'] as const);
    const cut = (a: NodeId, b: NodeId): void => {
      blocked.add(`${a}>${b}`);
      blocked.add(`${b}>${a}`);
    };
    let description: string;
    if (kind === 'split') {
      const minority = ids.slice(0, world.random.between(1, Math.floor(ids.length / 2)));
      const majority = ids.filter((id) => !minority.includes(id));
      for (const a of minority) for (const b of majority) cut(a, b);
      description = `split ${minority.join(',')} | ${majority.join(',')}`;
    } else if (kind === 'isolate-leader') {
      const isolated = leader ?? ids[0]!;
      for (const b of ids) if (b !== isolated) cut(isolated, b);
      description = `isolate ${isolated}`;
    } else if (kind === 'one-way') {
      // One member can send but not hear (or hear but not send) from the others.
      const victim = leader !== null && world.random.chance(this.profile.leaderBias) ? leader : ids[0]!;
      const deaf = world.random.chance(0.5);
      for (const b of ids) if (b !== victim) blocked.add(deaf ? `${b}>${victim}` : `${victim}>${b}`);
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
    world.faults.partitions++;
    world.trace(`t=${world.now} PARTITION ${description}`);
    world.queue.push(world.now + world.random.between(50, 1000), { kind: 'heal-partition', generation: ++this.partitionGeneration });
  }
}
