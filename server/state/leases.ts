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

export interface Lease {
  readonly id: LeaseId;
  readonly ttlMs: number;
  /** Log time of the grant (for timeToLive and list; deadlines live on the leader). */
  readonly grantedAtMs: number;
}

export const LEASE_TTL_MS_MIN = 1_000;
export const LEASE_TTL_MS_MAX = 24 * 60 * 60 * 1_000;
export const LEASES_MAX = 1_000_000;

export type LeaseAnswer = { readonly ok: true; readonly lease: Lease } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export class LeaseTable {
  private readonly leases = new Map<LeaseId, Lease>();
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

  grant(ttlMs: number, nowMs: number): LeaseAnswer {
    if (!Number.isInteger(ttlMs) || ttlMs < LEASE_TTL_MS_MIN || ttlMs > LEASE_TTL_MS_MAX) {
      return { ok: false, code: 'INVALID_ARGUMENT', message: `ttlMs must be an integer from ${LEASE_TTL_MS_MIN} to ${LEASE_TTL_MS_MAX}` };
    }
    if (this.leases.size >= LEASES_MAX) return { ok: false, code: 'TOO_LARGE', message: `at most ${LEASES_MAX} leases may exist at once` };
    // Ids come from a counter in the replicated state: the same on every member, never reused.
    const lease: Lease = { id: this.nextId++, ttlMs, grantedAtMs: nowMs };
    this.leases.set(lease.id, lease);
    this.changes?.leases.add(lease.id);
    return { ok: true, lease };
  }

  /** Remove the lease; the caller deletes its nodes. */
  revoke(id: LeaseId): boolean {
    this.changes?.leases.add(id);
    return this.leases.delete(id);
  }

  /** A new leader's lease epoch (its term): from now on only its expiries count. Never goes back. */
  refresh(term: number): void {
    // The epoch is kept in the store's meta record, written with every batch.
    if (term > this.epochNow) this.epochNow = term;
  }

  /** Every lease id, in order. */
  ids(): LeaseId[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  /** State for snapshots and for comparing replicas: every lease in id order, the next id, the epoch. */
  dump(): { readonly nextId: number; readonly epoch: number; readonly leases: readonly Lease[] } {
    return { nextId: this.nextId, epoch: this.epochNow, leases: this.ids().map((id) => this.leases.get(id)!) };
  }
}
