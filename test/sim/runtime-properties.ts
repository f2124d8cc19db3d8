/**
 * The properties of what the runtime adds to Raft, checked as the run goes: exactly-once
 * (no stamped write applied twice), lease safety (no lease ends within a TTL, on the fastest
 * clock, of a keep-alive answered as renewed), lease liveness once healed (every lease ends
 * within its bound), and the watchers' truth (each revision's events, as the first member to
 * apply it made them, which every watcher frame is checked against).
 *
 * Pattern: an observer of the members' applied change events; what it finds is raised on the
 * run's context, for the event loop to report after the step.
 *
 * Must never: change what it observes, or hold a member to a property the run's configuration
 * does not promise (lease safety without check-quorum).
 */

import type { NodeId } from '../../server/raft/index.js';
import type { ChangeEvent } from '../../server/state/types.js';
import { Violation } from './invariants.js';
import type { SimLeaseHolder } from './lease-holder.js';
import type { SimCluster } from './sim-cluster.js';
import { ELECTION_TICKS, HEALTHY_DELAY_MS_MAX, HOLDER_ID_BASE, LEASE_ID_BASE, TICK_MS, WALL_EPOCH_MS, WALL_SKEW_MS_MAX, type SimWorld } from './sim-world.js';

const decoder = new TextDecoder();

export class RuntimeProperties {
  /** Each revision's events (`kind path`), as the first member to apply it made them: the watchers' truth. */
  private readonly revisionEvents = new Map<number, string[]>();
  /** The leader's lease epoch as last seen, and when it was first seen (leases' TTLs restart at a refresh). */
  private leaseEpoch = { epoch: -1, seenAtMs: 0 };

  constructor(
    private readonly world: SimWorld,
    private readonly cluster: SimCluster,
    /** Lease holders, by id (numbered from HOLDER_ID_BASE, beside the clients on the same network). */
    private readonly holders: ReadonlyMap<number, SimLeaseHolder>,
  ) {}

  /** A revision's events as every member must send them to a watcher (undefined: no member applied it yet). */
  revisionTruth(revision: number): readonly string[] | undefined {
    return this.revisionEvents.get(revision);
  }

  /**
   * What checks the change events one incarnation of member `id` applies. Exactly-once is per
   * incarnation: a restart replays what its disk held, which is not a second application.
   */
  changesObserver(id: NodeId): (events: readonly ChangeEvent[]) => void {
    const valuesPut = new Set<string>();
    return (events) => {
      const revision = events[0]!.revision;
      if (!this.revisionEvents.has(revision)) this.revisionEvents.set(revision, events.map((event) => `${event.kind} ${event.path}`));
      this.checkExactlyOnce(id, valuesPut, events);
      this.checkLeaseExpiry(events);
    };
  }

  /** A leader renewed `lease`: a keep-alive may arrive long after it was sent, and its TTL runs from here. */
  renewedAtLeader(lease: number): void {
    const holder = this.holders.get(lease - LEASE_ID_BASE + HOLDER_ID_BASE);
    if (holder !== undefined) holder.renewedAtLeaderMs = this.world.now;
  }

  /** Exactly-once: a stamped write applied twice would put its value (unique to it) twice. */
  private checkExactlyOnce(id: NodeId, valuesPut: Set<string>, events: readonly ChangeEvent[]): void {
    for (const event of events) {
      if (event.node === null) continue;
      const value = decoder.decode(event.node.value);
      if (!value.startsWith('v')) continue;
      if (valuesPut.has(value)) this.world.raise(new Violation('exactly once', `${id} applied the write of ${value} to ${event.path} twice (revision ${event.revision})`));
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
    const { world } = this;
    for (const event of events) {
      if (event.node !== null || !event.path.startsWith('/e/h')) continue;
      const holder = this.holders.get(Number(event.path.slice('/e/h'.length)));
      if (holder === undefined || holder.gone) continue;
      holder.gone = true;
      world.trace(`t=${world.now} LEASE ${holder.lease} of holder ${holder.id} ended (last renewal sent at ${holder.lastRenewedSentAt}, stopped at ${holder.stoppedAt})`);
      if (!this.cluster.config.checkQuorum || holder.lastRenewedSentAt === null) continue;
      const earliest = holder.lastRenewedSentAt + holder.ttlMs / this.cluster.fastestClockRate();
      if (world.now < earliest) {
        world.raise(new Violation('lease safety', `lease ${holder.lease} ended at ${world.now} ms, ${Math.round(earliest - world.now)} ms before its TTL of ${holder.ttlMs} ms from the keep-alive sent at ${holder.lastRenewedSentAt} ms (answered as renewed)`));
      }
    }
  }

  /**
   * Lease liveness, once healed: every holder stopped at the heal, so each lease ends within a
   * TTL and an election timeout on the slowest clock (plus a round to commit the expiry) after
   * the later of its holder's stop and the leader's lease refresh (a new leader gives every lease
   * a full TTL from its refresh, seen here as the lease epoch changing).
   */
  leasesExpired(): boolean {
    const { world } = this;
    const leaderId = this.cluster.leader();
    if (leaderId === null) return false;
    const machine = this.cluster.members.get(leaderId)!.runtime.machine;
    if (machine.leases.epoch !== this.leaseEpoch.epoch) this.leaseEpoch = { epoch: machine.leases.epoch, seenAtMs: world.now };
    const slowest = this.cluster.slowestClockRate();
    let expired = true;
    for (const holder of this.holders.values()) {
      const lease = machine.leases.get(holder.lease);
      if (lease === undefined) continue;
      expired = false;
      // A grant sent before the heal may land long after it (a held message): its TTL runs from
      // then. Its log time is the proposer's wall clock, off simulated time by at most the skew.
      const grantedAt = lease.grantedAtMs - WALL_EPOCH_MS + WALL_SKEW_MS_MAX + 2 * HEALTHY_DELAY_MS_MAX;
      const from = Math.max(holder.stoppedAt ?? world.now, this.leaseEpoch.seenAtMs, holder.renewedAtLeaderMs, grantedAt);
      const deadline = from + (holder.ttlMs + (ELECTION_TICKS + 2) * TICK_MS) / slowest + 5 * HEALTHY_DELAY_MS_MAX;
      if (world.now > deadline) {
        throw new Violation('liveness: lease expiry', `lease ${holder.lease} (TTL ${holder.ttlMs} ms) still lives at ${world.now} ms; its holder stopped at ${holder.stoppedAt} ms, a leader last renewed it at ${holder.renewedAtLeaderMs} ms, and the leader's refresh (epoch ${this.leaseEpoch.epoch}) was seen at ${this.leaseEpoch.seenAtMs} ms`);
      }
    }
    return expired;
  }
}
