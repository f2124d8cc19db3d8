/**
 * The operator: membership changes during the chaos phase, made the way a person or a script
 * makes them with `warden member` — add a new machine as a learner and start it (joining an
 * existing cluster, on empty disks), promote a learner, remove a voter (often the leader) or a
 * learner and shut the removed member down once the removal is committed. A refused change is
 * tried again soon, on whoever leads then, so changes land right after elections and while
 * another is pending: where the single-server change rules (one at a time, a commit in the
 * leader's own term first) are what keeps two majorities from deciding apart.
 *
 * After the heal it tidies up as an operator would: a member outside the leader's committed
 * configuration (removed, or added by a proposal that never committed) is shut down.
 *
 * Pattern: an actor on the run's agenda; each attempt schedules the next, with a bound.
 *
 * Must never: add a name that was used before (names are never reused), shut down a member the
 * committed configuration still holds, draw from any random source but the run's one, or act
 * after the heal except to tidy up.
 */

import type { ConfChange } from '../../server/raft/conf.js';
import { membersOf } from '../../server/raft/conf.js';
import type { ConfState, NodeId } from '../../server/raft/index.js';
import type { SimCluster } from './sim-cluster.js';
import type { SimWorld } from './sim-world.js';

/** Attempts per change before the operator gives up on it (a refused change costs nothing). */
const ATTEMPTS_MAX = 30;
/** At least this many voters stay (a removal from two would leave one member deciding alone). */
const VOTERS_MIN = 2;

export class SimOperator {
  /** The next spare name to add (an index into world.allIds past the initial members). */
  private nextSpare: number;

  constructor(
    private readonly world: SimWorld,
    private readonly cluster: SimCluster,
    /** A leader took a change into its log (not yet committed): the nemesis may strike at that moment. */
    private readonly changeTaken: (leaderId: NodeId) => void = () => undefined,
  ) {
    this.nextSpare = world.initialIds.length;
  }

  /** One change, chosen from the leader's configuration (nothing when no member leads). */
  strike(leaderBias: number): void {
    const { world, cluster } = this;
    const leaderId = cluster.leader();
    if (leaderId === null) return;
    const change = this.choose(leaderId, world.random.chance(leaderBias));
    if (change !== null) this.attempt(change, ATTEMPTS_MAX);
  }

  /**
   * The leader dies in the middle of a change: it takes one, and crashes a moment later (the
   * entry on few members, or none); the operator then removes the dead member through whoever
   * leads next. Its restart races the removal: the old leader's configuration against the new
   * leader's (what Ongaro's correction is about).
   */
  strikeLeaderMidChange(): void {
    const { world, cluster } = this;
    const leaderId = cluster.leader();
    if (leaderId === null) return;
    const change = this.choose(leaderId, false);
    if (change === null) return;
    this.attempt(change, 1);
    const incarnation = cluster.incarnations.get(leaderId);
    world.queue.push(world.now + world.random.between(1, 10), {
      kind: 'call',
      run: () => {
        if (world.healing || cluster.incarnations.get(leaderId) !== incarnation || !cluster.members.has(leaderId)) return;
        cluster.crash(leaderId, world.random.between(20, 300));
        this.attempt({ op: 'remove', id: leaderId }, ATTEMPTS_MAX);
      },
    });
  }

  /** A change that applies to the leader's configuration: add, promote, remove (the leader itself when `removeLeader`). */
  private choose(leaderId: NodeId, removeLeader: boolean): ConfChange | null {
    const { world, cluster } = this;
    const conf = cluster.members.get(leaderId)!.runtime.raft.configuration;
    const learners = conf.learners ?? [];
    const choices: (() => ConfChange)[] = [];
    if (this.nextSpare < world.allIds.length && membersOf(conf).length < world.initialIds.length + 2) {
      choices.push(() => this.addMember());
    }
    for (const id of learners) choices.push(() => ({ op: 'promote', id }));
    if (conf.voters.length > VOTERS_MIN) {
      choices.push(() => ({ op: 'remove', id: removeLeader ? leaderId : world.random.pick(conf.voters.filter((id) => id !== leaderId)) }));
    }
    for (const id of learners) choices.push(() => ({ op: 'remove', id }));
    return choices.length === 0 ? null : world.random.pick(choices)();
  }

  /**
   * After the heal: once the leader's configuration is committed, shut down every member it does
   * not hold (they would otherwise wait forever for a leader that no longer sends to them).
   */
  tidyAfterHeal(): void {
    const { world, cluster } = this;
    const leaderId = cluster.leader();
    if (leaderId === null) return;
    const { raft } = cluster.members.get(leaderId)!.runtime;
    const conf = raft.configuration;
    if (!sameConf(conf, raft.confAt(raft.status.commitIndex))) return;
    const members = membersOf(conf);
    if (!members.includes(leaderId)) return; // a removed leader about to step down
    for (const id of [...world.nodeIds]) if (!members.includes(id)) cluster.retire(id);
  }

  /** A new machine: `member add` names it, then it starts on empty disks and joins. */
  private addMember(): ConfChange {
    const { world } = this;
    const id = world.allIds[this.nextSpare++]!;
    world.nodeIds.push(id);
    world.queue.push(world.now + world.random.between(0, 300), { kind: 'restart', member: id });
    return { op: 'addLearner', id };
  }

  private attempt(change: ConfChange, attemptsLeft: number): void {
    const { world, cluster } = this;
    if (world.healing) return;
    const retry = (): void => {
      if (attemptsLeft > 1) world.queue.push(world.now + world.random.between(1, 20), { kind: 'call', run: () => this.attempt(change, attemptsLeft - 1) });
    };
    const leaderId = cluster.leader();
    if (leaderId === null) return retry();
    world.trace(`t=${world.now} MEMBER ${change.op} ${change.id} asked of ${leaderId}`);
    const { runtime } = cluster.members.get(leaderId)!;
    const confBefore = runtime.raft.configuration;
    // The proposal enters the core in the member's next turn: look once the step has settled.
    world.queue.push(world.now, { kind: 'call', run: () => void (cluster.members.get(leaderId)?.runtime === runtime && runtime.raft.configuration !== confBefore && this.changeTaken(leaderId)) });
    runtime.proposeConfChange(change).then(
      () => {
        world.trace(`t=${world.now} MEMBER ${change.op} ${change.id} committed`);
        // The removed member is shut down later, as a person would after the command returned —
        // soon, or after a while: until then it runs on, with whatever its log says.
        if (change.op === 'remove') {
          const afterMs = world.random.chance(0.5) ? world.random.between(0, 500) : world.random.between(1_000, 5_000);
          world.queue.push(world.now + afterMs, { kind: 'call', run: () => cluster.retire(change.id) });
        }
      },
      (error: Error) => {
        world.trace(`t=${world.now} MEMBER ${change.op} ${change.id} refused: ${error.message}`);
        retry();
      },
    );
  }
}

function sameConf(a: ConfState, b: ConfState): boolean {
  return membersOf(a).join() === membersOf(b).join() && [...a.voters].sort().join() === [...b.voters].sort().join();
}
