/**
 * The lease table (Lease): time-bound grants that ephemeral nodes die with. Data only: the
 * clock is never read here. Every time comes from the log (the proposer's clock, carried in
 * the entry and made monotonic by the state machine), so every member expires the same lease
 * at the same entry.
 *
 * Must never: expire a lease on its own; revoke one whose expiry a later keep-alive moved past
 * the expiring entry's time; iterate leases in anything but id order.
 */

import type { ErrorCode } from '../../shared/errors.js';
import type { ChangeTracker } from './changes.js';
import type { LeaseId } from './types.js';

export interface Lease {
  readonly id: LeaseId;
  readonly ttlMs: number;
  /** Log time at which the lease runs out unless kept alive. */
  readonly expiresAtMs: number;
}

export const LEASE_TTL_MS_MIN = 1_000;
export const LEASE_TTL_MS_MAX = 24 * 60 * 60 * 1_000;
export const LEASES_MAX = 1_000_000;

export type LeaseAnswer = { readonly ok: true; readonly lease: Lease } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export class LeaseTable {
  private readonly leases = new Map<LeaseId, Lease>();
  private nextId = 1;

  /** `changes` records which leases changed, for the state store. */
  constructor(private readonly changes: ChangeTracker | null = null) {}

  /** A table rebuilt from what a state store held. */
  static restore(image: { readonly nextId: number; readonly leases: readonly Lease[] }, changes: ChangeTracker | null = null): LeaseTable {
    const table = new LeaseTable(changes);
    for (const lease of image.leases) table.leases.set(lease.id, lease);
    table.nextId = image.nextId;
    return table;
  }

  /** The id the next grant will get (kept by the state store). */
  get nextLeaseId(): number {
    return this.nextId;
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
    const lease: Lease = { id: this.nextId++, ttlMs, expiresAtMs: nowMs + ttlMs };
    this.leases.set(lease.id, lease);
    this.changes?.leases.add(lease.id);
    return { ok: true, lease };
  }

  keepAlive(id: LeaseId, nowMs: number): LeaseAnswer {
    const lease = this.leases.get(id);
    if (lease === undefined) return { ok: false, code: 'LEASE_NOT_FOUND', message: `lease ${id} does not exist` };
    const renewed: Lease = { ...lease, expiresAtMs: Math.max(lease.expiresAtMs, nowMs + lease.ttlMs) };
    this.leases.set(id, renewed);
    this.changes?.leases.add(id);
    return { ok: true, lease: renewed };
  }

  /** Remove the lease; the caller deletes its nodes. */
  revoke(id: LeaseId): boolean {
    this.changes?.leases.add(id);
    return this.leases.delete(id);
  }

  /**
   * A new leader's first act: give every lease a full TTL from now, so no client loses its lease
   * for the time it took to find the new leader (a failover never expires a live client's lease).
   */
  refreshAll(nowMs: number): void {
    for (const id of this.sortedIds()) {
      const lease = this.leases.get(id)!;
      const expiresAtMs = Math.max(lease.expiresAtMs, nowMs + lease.ttlMs);
      if (expiresAtMs === lease.expiresAtMs) continue;
      this.leases.set(id, { ...lease, expiresAtMs });
      this.changes?.leases.add(id);
    }
  }

  /** Leases whose time is up at `nowMs`, in id order: what a leader proposes to expire. */
  expiredAt(nowMs: number): LeaseId[] {
    return this.sortedIds().filter((id) => this.leases.get(id)!.expiresAtMs <= nowMs);
  }

  private sortedIds(): LeaseId[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  /** State for snapshots and for comparing replicas: every lease in id order, and the next id. */
  dump(): { readonly nextId: number; readonly leases: readonly Lease[] } {
    return { nextId: this.nextId, leases: this.sortedIds().map((id) => this.leases.get(id)!) };
  }
}
