/**
 * The lease table (Lease): time-bound grants that ephemeral nodes die with. What is replicated
 * is that a lease exists and its TTL; its deadline is not. Keep-alives go to the leader alone,
 * which tracks deadlines on its own monotonic clock (server/node) and expires a lease by
 * proposing its end through the log. A new leader gives every lease a full TTL and announces
 * its lease epoch (its term) first; an expiry proposed under an older epoch — by a leader that
 * stalled while another took over — is refused when it is applied.
 *
 * Must never: read a clock; end a lease on an expiry whose epoch a newer leader superseded;
 * iterate leases in anything but id order.
 */

import type { ErrorCode } from '../../shared/errors.js';
import type { ChangeTracker } from './changes.js';
import type { LeaseId } from './types.js';
import { BTree } from './btree.js';

export interface Lease {
  readonly id: LeaseId;
  readonly ttlMs: number;
  /** Log time of the grant (for timeToLive and list; deadlines live on the leader). */
  readonly grantedAtMs: number;
  /** The user that granted it (auth enabled), absent: only that user (or an admin) may keep it alive, revoke it or attach nodes to it. */
  readonly owner?: string;
}

export const LEASE_TTL_MS_MIN = 1_000;
export const LEASE_TTL_MS_MAX = 24 * 60 * 60 * 1_000;
/** The most leases a table holds whatever a proposer asks (the ceiling of --max-leases). */
export const LEASES_MAX = 1_000_000;

export type LeaseAnswer = { readonly ok: true; readonly lease: Lease; readonly existing: boolean } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** Grants and revokes remembered for changesSince (older ones: the follower rescans the table). */
const RECENT_CHANGES_MAX = 65_536;

export class LeaseTable {
  /**
   * Leases granted or ended, in order, since `recentBase` changes ago (`version` counts them all):
   * what lets the leader's keeper follow the table without scanning it. In memory only, not
   * replicated state (a restarted keeper rescans).
   */
  private recent: LeaseId[] = [];
  private recentBase = 0;
  private versionNow = 0;
  /** By id, in id order (a B+ tree: a page of leaseList costs its page, not a sort of all). */
  private readonly leases = new BTree<LeaseId, Lease>();
  private nextId = 1;
  private epochNow = 0;

  /** `changes` records which leases changed, for the state store. */
  constructor(private readonly changes: ChangeTracker | null = null) {}

  /** A table rebuilt from what a state store held. */
  static restore(image: { readonly nextId: number; readonly epoch: number; readonly leases: readonly Lease[] }, changes: ChangeTracker | null = null): LeaseTable {
    const table = new LeaseTable(changes);
    for (const lease of image.leases) table.leases.set(lease.id, lease);
    table.nextId = image.nextId;
    table.epochNow = image.epoch;
    return table;
  }

  /** The id the next grant will get (kept by the state store). */
  get nextLeaseId(): number {
    return this.nextId;
  }

  /** The term of the leader whose lease refresh was applied last: expiries from older terms are stale. */
  get epoch(): number {
    return this.epochNow;
  }

  has(id: LeaseId): boolean {
    return this.leases.has(id);
  }

  get(id: LeaseId): Lease | undefined {
    return this.leases.get(id);
  }

  get size(): number {
    return this.leases.size;
  }

  /**
   * A new lease, under `id` if the client chose one (a grant retried with it answers the lease
   * the first one made, `existing`), else the next free id of the counter. Refused
   * RESOURCE_EXHAUSTED when `leasesMax` (the proposer's bound, never above LEASES_MAX) exist.
   */
  grant(ttlMs: number, nowMs: number, id?: LeaseId, leasesMax = LEASES_MAX, owner?: string): LeaseAnswer {
    if (!Number.isInteger(ttlMs) || ttlMs < LEASE_TTL_MS_MIN || ttlMs > LEASE_TTL_MS_MAX) {
      return { ok: false, code: 'INVALID_ARGUMENT', message: `ttlMs must be an integer from ${LEASE_TTL_MS_MIN} to ${LEASE_TTL_MS_MAX}` };
    }
    if (id !== undefined) {
      const granted = this.leases.get(id);
      if (granted !== undefined) {
        // Another user's id: not a retry of this user's grant. (One made while auth was off
        // belongs to no one: a retry of it after auth came on is answered as the grant it was.)
        if (granted.owner !== undefined && granted.owner !== owner) return { ok: false, code: 'PERMISSION_DENIED', message: `lease ${id} belongs to another user` };
        return { ok: true, lease: granted, existing: true };
      }
    }
    const max = Math.min(leasesMax, LEASES_MAX);
    if (this.leases.size >= max) return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `${this.leases.size} leases exist, the most this cluster keeps (${max})` };
    // Ids come from a counter in the replicated state: the same on every member, never reused;
    // it steps over ids clients chose (each is stepped over once).
    if (id === undefined) {
      while (this.leases.has(this.nextId)) this.nextId += 1;
    }
    const lease: Lease = { id: id ?? this.nextId++, ttlMs, grantedAtMs: nowMs, ...(owner === undefined ? {} : { owner }) };
    this.leases.set(lease.id, lease);
    this.changes?.leases.add(lease.id);
    this.noteChange(lease.id);
    return { ok: true, lease, existing: false };
  }

  /** How many grants and revokes this table has seen (in this process). */
  get version(): number {
    return this.versionNow;
  }

  /** The ids granted or ended since `version` (in order, maybe repeated), or null if that is no longer remembered. */
  changesSince(version: number): readonly LeaseId[] | null {
    if (version < this.recentBase || version > this.versionNow) return null;
    return this.recent.slice(version - this.recentBase);
  }

  private noteChange(id: LeaseId): void {
    this.recent.push(id);
    this.versionNow += 1;
    if (this.recent.length > RECENT_CHANGES_MAX) {
      const drop = this.recent.length - RECENT_CHANGES_MAX / 2;
      this.recent = this.recent.slice(drop);
      this.recentBase += drop;
    }
  }

  /** Up to `limit` lease ids above `after`, in order (a page of leaseList). */
  idsAfter(after: LeaseId, limit: number): LeaseId[] {
    const ids: LeaseId[] = [];
    for (const id of this.leases.keys(after + 1)) {
      if (ids.length === limit) break;
      ids.push(id);
    }
    return ids;
  }

  /** Remove the lease; the caller deletes its nodes. */
  revoke(id: LeaseId): boolean {
    this.changes?.leases.add(id);
    this.noteChange(id);
    return this.leases.delete(id);
  }

  /** A new leader's lease epoch (its term): from now on only its expiries count. Never goes back. */
  refresh(term: number): void {
    // The epoch is kept in the store's meta record, written with every batch.
    if (term > this.epochNow) this.epochNow = term;
  }

  /** Every lease id, in order. */
  ids(): LeaseId[] {
    return [...this.leases.keys()];
  }

  /** State for snapshots and for comparing replicas: every lease in id order, the next id, the epoch. */
  dump(): { readonly nextId: number; readonly epoch: number; readonly leases: readonly Lease[] } {
    return { nextId: this.nextId, epoch: this.epochNow, leases: this.ids().map((id) => this.leases.get(id)!) };
  }
}
