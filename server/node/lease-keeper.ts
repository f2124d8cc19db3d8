/**
 * The leader's lease clock (Lease, HeartBeat, Clock-Bound Wait): keep-alives arrive here, not in
 * the log, and set a lease's deadline on this member's monotonic clock; when a deadline passes,
 * the leader proposes the lease's expiry through the log, stamped with its term.
 *
 * Rules about time, each a way a coordination service has lost its users' leases:
 * - A new leader knows no deadlines. It first proposes `leaseRefreshAll` (its term becomes the
 *   lease epoch) and gives every lease a full TTL from when that entry is applied; it expires
 *   nothing before. A failover never expires a live client's lease.
 * - An expiry carries the proposer's term; the state machine refuses one from a term below the
 *   lease epoch. A leader that froze (SIGSTOP, a stuck fdatasync, a long GC) while another took
 *   over and refreshed the leases cannot get a single revocation applied on waking.
 * - A leader whose own clock jumped (a gap between ticks longer than the election timeout: it
 *   was not running) gives every lease a full TTL again: keep-alives sent meanwhile sit unread
 *   in its sockets, and their senders did nothing wrong.
 * - Followers never expire anything; their keepers stay empty.
 *
 * Must never: expire a lease before this leadership's refresh is applied; propose an expiry
 * anywhere but on this member (never forwarded); answer a keep-alive for a lease it is expiring.
 */

import type { LeaseId } from '../state/types.js';
import type { LeaseRequest } from './runtime-ports.js';
import type { LeaseTable } from '../state/leases.js';
import type { StateMachine, StateResult } from '../state/state-machine.js';

/** What a keep-alive or time-to-live answers for one lease. */
export type LeaseStatus =
  | { readonly id: LeaseId; readonly ok: true; readonly ttlMs: number; readonly remainingMs: number }
  | { readonly id: LeaseId; readonly ok: false; readonly code: 'LEASE_NOT_FOUND' | 'UNAVAILABLE' | 'PERMISSION_DENIED'; readonly message: string };

export interface LeaseKeeperDeps {
  readonly monotonicMs: () => number;
  readonly machine: () => StateMachine;
  /** Propose on this member only (never forwarded); resolves with the applied result. */
  readonly proposeHere: (command: { op: 'leaseRefreshAll'; term: number } | { op: 'leaseExpire'; leases: LeaseId[]; term: number }) => Promise<StateResult>;
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
}

/** Leases expired per proposal: a burst of expiries becomes a few entries, not thousands. */
const EXPIRE_BATCH_MAX = 1_000;

export class LeaseKeeper {
  /** The term this member leads in, or null when it does not lead. */
  private leadingTerm: number | null = null;
  /** Deadlines (monotonic ms) are kept only once this leadership's refresh is applied. */
  private armed = false;
  /** This leadership's refresh is proposed and not yet answered. */
  private refreshing = false;
  private readonly deadlines = new Map<LeaseId, number>();
  private readonly expiring = new Set<LeaseId>();
  /** The lease table (a snapshot install replaces it) and its version as last reconciled (every grant and revoke moves it). */
  private seenTable: LeaseTable | null = null;
  private seenVersion = -1;
  private lastTickMs: number | null = null;

  constructor(
    private readonly deps: LeaseKeeperDeps,
    /** A gap between ticks beyond this means this member was not running (the election timeout). */
    private readonly stallMs: number,
    /** The ephemeral nodes one expiry entry may delete (about), and their paths' bytes: a lease holds at most so much. */
    private readonly expireNodesMax = Number.POSITIVE_INFINITY,
    private readonly expirePathBytesMax = Number.POSITIVE_INFINITY,
    /**
     * A bug the simulator plants to prove it catches it: a deposed leader keeps its deadlines,
     * and when it leads again it expires by them at once, without a refresh. Never set by wardend.
     */
    private readonly plantedKeepDeadlines = false,
  ) {}

  /** This member became leader in `term`: announce the epoch, and keep time once it is applied. */
  becameLeader(term: number): void {
    this.leadingTerm = term;
    if (this.plantedKeepDeadlines && this.deadlines.size > 0) return;
    this.armed = false;
    this.deadlines.clear();
    this.expiring.clear();
    this.proposeRefresh();
  }

  /** The term this member leads in (null: it does not lead). */
  get term(): number | null {
    return this.leadingTerm;
  }

  /**
   * Announce this leadership's epoch. A refusal while it still leads (the core refuses
   * proposals during a leadership transfer, or with too many uncommitted entries) is tried
   * again on the next tick: without it, no lease would expire for the whole term.
   */
  private proposeRefresh(): void {
    const term = this.leadingTerm;
    if (term === null) return;
    this.refreshing = true;
    const done = (): void => {
      if (this.leadingTerm === term) this.refreshing = false;
    };
    this.deps.proposeHere({ op: 'leaseRefreshAll', term }).then(
      (result) => {
        done();
        if (this.leadingTerm !== term || !result.ok || result.op !== 'leaseRefreshAll') return;
        this.armed = true;
        this.refreshAll();
      },
      done,
    );
  }

  /** This member no longer leads: it forgets every deadline. */
  stoppedLeading(): void {
    this.leadingTerm = null;
    if (this.plantedKeepDeadlines) return;
    this.armed = false;
    this.refreshing = false;
    this.deadlines.clear();
    this.expiring.clear();
  }

  get leading(): boolean {
    return this.leadingTerm !== null;
  }

  /** A keep-alive for each lease: a full TTL from now. */
  /**
   * A lease request as its user may make it: another user's lease (auth on, the user no admin)
   * is neither kept alive nor described — PERMISSION_DENIED for it, the rest answered.
   */
  answer(request: LeaseRequest): LeaseStatus[] {
    const machine = this.deps.machine();
    const auth = machine.auth;
    const foreign = (id: LeaseId): boolean => {
      if (request.user === undefined || !auth.enabled) return false;
      const owner = machine.leases.get(id)?.owner;
      return owner !== undefined && owner !== request.user && !auth.isAdmin(request.user);
    };
    const denied = (id: LeaseId): LeaseStatus => ({ id, ok: false, code: 'PERMISSION_DENIED', message: `lease ${id} belongs to another user` });
    if (request.op === 'timeToLive') return [foreign(request.lease) ? denied(request.lease) : this.timeToLive(request.lease)];
    const mine = request.leases.filter((id) => !foreign(id));
    if (mine.length === request.leases.length) return this.keepAlive(request.leases);
    const kept = new Map(this.keepAlive(mine).map((status) => [status.id, status]));
    return request.leases.map((id) => kept.get(id) ?? denied(id));
  }

  keepAlive(ids: readonly LeaseId[]): LeaseStatus[] {
    const machine = this.deps.machine();
    const now = this.deps.monotonicMs();
    return ids.map((id) => {
      const lease = machine.leases.get(id);
      if (lease === undefined && this.takingOver()) return notYet(id);
      if (lease === undefined || this.expiring.has(id)) return notFound(id);
      if (this.armed) this.deadlines.set(id, now + lease.ttlMs);
      return { id, ok: true, ttlMs: lease.ttlMs, remainingMs: lease.ttlMs };
    });
  }

  /** A lease's granted TTL and the time it has left (a full TTL while this leadership is not yet armed). */
  timeToLive(id: LeaseId): LeaseStatus {
    const lease = this.deps.machine().leases.get(id);
    if (lease === undefined && this.takingOver()) return notYet(id);
    if (lease === undefined || this.expiring.has(id)) return notFound(id);
    this.reconcile();
    const deadline = this.deadlines.get(id);
    const remainingMs = deadline === undefined ? lease.ttlMs : Math.max(0, Math.round(deadline - this.deps.monotonicMs()));
    return { id, ok: true, ttlMs: lease.ttlMs, remainingMs };
  }

  /** A clock tick on the leader: propose the expiry of leases whose deadline passed. */
  tick(): void {
    const now = this.deps.monotonicMs();
    const last = this.lastTickMs;
    this.lastTickMs = now;
    if (this.leadingTerm === null) return;
    if (!this.armed) {
      if (!this.refreshing) this.proposeRefresh();
      return;
    }
    if (last !== null && now - last > this.stallMs) {
      this.deps.warn({ event: 'lease_clock_stalled', gapMs: Math.round(now - last) }, 'this member did not run for longer than an election timeout; every lease gets a full TTL again');
      this.refreshAll();
      return;
    }
    this.reconcile();
    // An expiry deletes its leases' nodes in one entry: a batch stops at about one write's
    // worth of nodes (at least one lease), so one entry's work stays bounded.
    const namespace = this.deps.machine().namespace;
    const due: LeaseId[] = [];
    let nodes = 0;
    let bytes = 0;
    for (const [id, deadline] of this.deadlines) {
      if (deadline > now || this.expiring.has(id)) continue;
      const held = namespace.leaseNodeCount(id);
      const heldBytes = namespace.leaseNodeBytes(id);
      if (due.length > 0 && (nodes + held > this.expireNodesMax || bytes + heldBytes > this.expirePathBytesMax)) break;
      due.push(id);
      nodes += held;
      bytes += heldBytes;
      if (due.length === EXPIRE_BATCH_MAX) break;
    }
    if (due.length === 0) return;
    due.sort((a, b) => a - b);
    for (const id of due) this.expiring.add(id);
    const term = this.leadingTerm;
    this.deps.proposeHere({ op: 'leaseExpire', leases: due, term }).then(
      (result) => {
        const stale = result.ok && result.op === 'leaseExpire' && 'stale' in result;
        if (stale) this.deps.warn({ event: 'lease_expiry_stale', term, leases: due.length }, 'an expiry from an older leadership was refused (a newer leader keeps the leases)');
        for (const id of due) {
          this.expiring.delete(id);
          // Only what this leadership really ended is forgotten; a lease the expiry did not end
          // keeps its deadline (and comes up again next tick if still overdue).
          if (this.leadingTerm === term && !stale && result.ok) this.deadlines.delete(id);
        }
      },
      () => {
        // Not committed (leadership lost, or the member is stopping): the next leader decides.
        for (const id of due) this.expiring.delete(id);
      },
    );
  }

  /**
   * A new leader whose refresh is not applied yet may not have applied a grant the old leader
   * committed: an id it does not know is not yet proof the lease is gone.
   */
  private takingOver(): boolean {
    return this.leadingTerm !== null && !this.armed;
  }

  /** Every lease gets a full TTL from now. */
  private refreshAll(): void {
    const now = this.deps.monotonicMs();
    const machine = this.deps.machine();
    this.deadlines.clear();
    for (const id of machine.leases.ids()) this.deadlines.set(id, now + machine.leases.get(id)!.ttlMs);
    this.seenTable = machine.leases;
    this.seenVersion = machine.leases.version;
  }

  /**
   * Follow the lease table: a lease granted (or granted again under its id) gets a full TTL from
   * now, an ended one is dropped. By the table's change list, not a scan — unless the list no
   * longer reaches back (or the table was replaced), then by a scan.
   */
  private reconcile(): void {
    if (!this.armed) return;
    const leases = this.deps.machine().leases;
    if (leases === this.seenTable && leases.version === this.seenVersion) return;
    const now = this.deps.monotonicMs();
    const changed = leases === this.seenTable ? leases.changesSince(this.seenVersion) : null;
    if (changed === null) {
      for (const id of this.deadlines.keys()) if (!leases.has(id)) this.deadlines.delete(id);
      for (const id of leases.ids()) if (!this.deadlines.has(id)) this.deadlines.set(id, now + leases.get(id)!.ttlMs);
    } else {
      for (const id of new Set(changed)) {
        const lease = leases.get(id);
        if (lease === undefined) this.deadlines.delete(id);
        else this.deadlines.set(id, now + lease.ttlMs);
      }
    }
    this.seenTable = leases;
    this.seenVersion = leases.version;
  }
}

function notYet(id: LeaseId): LeaseStatus {
  return { id, ok: false, code: 'UNAVAILABLE', message: `a new leader is taking over the leases; lease ${id} cannot be told apart from a lost one yet, retry` };
}

function notFound(id: LeaseId): LeaseStatus {
  return { id, ok: false, code: 'LEASE_NOT_FOUND', message: `lease ${id} does not exist (it expired or was revoked)` };
}
