/**
 * Leases from the client's side (Lease): `grant` with an id the client picks (a retried grant
 * answers the same lease), `revoke`, `timeToLive`, `list`; and sessions — leases the client keeps
 * alive for as long as it lives. One keep-alive frame carries every kept lease, sent every third
 * of the shortest kept TTL through whichever member the client is connected to, and at once on
 * each new connection, so a session survives the loss of its member. A session is `lost` only
 * when a member says its lease is gone (LEASE_NOT_FOUND) — never because the client could not
 * reach anyone for a while; `renewed` reports each keep-alive the cluster took.
 *
 * Must never: report a live lease lost; keep alive a lease its session released; send more than
 * one keep-alive frame per round (up to the protocol's 10,000 leases in it).
 */

import { WardenError } from '../shared/errors.js';
import { Emitter } from './emitter.js';
import type { CallOptions, Requests } from './requests.js';
import type { ClientClock } from './transport.js';

export interface LeaseInfo {
  readonly id: number;
  readonly ttlMs: number;
}

export interface LeaseTimeToLive extends LeaseInfo {
  /** Time left before the lease expires, as the leader sees it. */
  readonly remainingMs: number;
  /** The ephemeral nodes the lease holds (when asked with `paths: true`). */
  readonly paths?: readonly string[];
}

export interface SessionEvents extends Record<string, unknown> {
  /** The lease is gone (expired, or revoked): ephemeral nodes under it were deleted. */
  lost: WardenError;
  /** The cluster took a keep-alive: the lease has `remainingMs` left. */
  renewed: { readonly remainingMs: number };
}

/** Keep-alive leases per frame, at most (the protocol's bound). */
const KEEPALIVE_BATCH_MAX = 10_000;
/** How soon a round follows one the cluster did not answer. */
const RETRY_ROUND_MS = 250;

/** A random lease id in [1, 2^53): a retried grant with it answers the first grant's lease. */
export function randomLeaseId(): number {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  const id = (words[0]! & 0x1f_ffff) * 2 ** 32 + words[1]!; // 53 random bits: at most 2^53 − 1
  return id === 0 ? 1 : id;
}

/** A lease the client keeps alive until `close()` (or until the cluster says it is gone). */
export class Session extends Emitter<SessionEvents> {
  private closedFlag = false;
  private lostError: WardenError | null = null;
  private readonly controller = new AbortController();
  /** The client clock's time of the last renewal the cluster confirmed. */
  lastRenewedAt: number;

  constructor(
    private readonly keeper: LeaseKeeper,
    /** The lease's id: pass it as `lease` to create nodes that die with the session. */
    readonly lease: number,
    readonly ttlMs: number,
    now: number,
  ) {
    super();
    this.lastRenewedAt = now;
  }

  /** Aborted when the session is lost or closed: hand it to work that must stop with it. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether the cluster said the lease is gone. */
  get lost(): boolean {
    return this.lostError !== null;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** @internal the keeper's news about the lease. */
  renewed(remainingMs: number, now: number): void {
    this.lastRenewedAt = now;
    this.emit('renewed', { remainingMs });
  }

  /** @internal */
  markLost(error: WardenError): void {
    if (this.lostError !== null || this.closedFlag) return;
    this.lostError = error;
    this.keeper.release(this);
    this.controller.abort(error);
    this.emit('lost', error);
  }

  /** @internal the client closed: the session is no longer kept (not lost: its lease lives out its TTL). */
  detach(reason: WardenError): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.controller.abort(reason);
  }

  /** Stop keeping the lease alive and revoke it (its ephemeral nodes are deleted now). */
  async close(call: CallOptions = {}): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.keeper.release(this);
    this.controller.abort(new WardenError('LEASE_NOT_FOUND', 'the session was closed'));
    if (this.lostError !== null) return;
    await this.keeper.revoke(this.lease, call);
  }
}

export class LeaseKeeper {
  private readonly kept = new Map<number, Session>();
  private timer: unknown = null;
  private inRound = false;
  private closed = false;

  constructor(
    private readonly requests: Requests,
    private readonly clock: ClientClock,
  ) {}

  get size(): number {
    return this.kept.size;
  }

  async grant(ttlMs: number, call: CallOptions & { readonly id?: number } = {}): Promise<LeaseInfo> {
    const id = call.id ?? randomLeaseId();
    const answer = await this.requests.read({ type: 'leaseGrant', ttlMs, lease: id }, call, { idempotent: true });
    const lease = answer['lease'] as { id: number; ttlMs: number } | number | undefined;
    if (typeof lease === 'object' && lease !== null) return { id: lease.id, ttlMs: lease.ttlMs };
    return { id: typeof lease === 'number' ? lease : id, ttlMs: (answer['ttlMs'] as number | undefined) ?? ttlMs };
  }

  /** Revoke `lease`; a lease already gone (or revoked by an earlier try of this call) is fine. */
  async revoke(lease: number, call: CallOptions = {}): Promise<void> {
    try {
      await this.requests.read({ type: 'leaseRevoke', lease }, call, { idempotent: true });
    } catch (error) {
      if (!(error instanceof WardenError && error.code === 'LEASE_NOT_FOUND')) throw error;
    }
  }

  async session(ttlMs: number, call: CallOptions = {}): Promise<Session> {
    const granted = await this.grant(ttlMs, call);
    const session = new Session(this, granted.id, granted.ttlMs, this.clock.now());
    this.kept.set(granted.id, session);
    this.schedule();
    return session;
  }

  release(session: Session): void {
    if (this.kept.get(session.lease) === session) this.kept.delete(session.lease);
  }

  /** A new connection: keep everything alive at once (the previous member may have been frozen for a while). */
  connected(): void {
    if (this.kept.size > 0) void this.round();
  }

  /**
   * The next round: a third of the shortest TTL after a round the cluster answered; soon after
   * one it did not (a round that failed must not leave a whole TTL between renewals).
   */
  private schedule(afterFailure = false): void {
    if (this.closed || this.timer !== null || this.kept.size === 0) return;
    let shortest = Number.POSITIVE_INFINITY;
    for (const session of this.kept.values()) shortest = Math.min(shortest, session.ttlMs);
    const every = Math.max(50, Math.floor(shortest / 3));
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = null;
        void this.round().then((answered) => this.schedule(!answered));
      },
      afterFailure ? Math.min(every, RETRY_ROUND_MS) : every,
    );
  }

  /** One keep-alive frame (per 10,000 leases) for every kept lease; answers whether the cluster answered every frame. */
  private async round(): Promise<boolean> {
    if (this.closed || this.inRound || this.kept.size === 0) return true;
    this.inRound = true;
    let answered = true;
    try {
      const ids = [...this.kept.keys()];
      let shortest = Number.POSITIVE_INFINITY;
      for (const session of this.kept.values()) shortest = Math.min(shortest, session.ttlMs);
      // A member that does not answer within a quarter TTL is left, with time to ask another.
      const attemptMs = Math.max(250, Math.floor(shortest / 4));
      for (let at = 0; at < ids.length; at += KEEPALIVE_BATCH_MAX) {
        const batch = ids.slice(at, at + KEEPALIVE_BATCH_MAX);
        let answer;
        // Renewed as of when the keep-alive left, not when its answer came: the estimate errs early.
        const sentAt = this.clock.now();
        try {
          answer = await this.requests.read({ type: 'leaseKeepAlive', leases: batch }, { timeoutMs: Math.max(attemptMs, Math.floor(shortest / 3)) }, { attemptMs, urgent: true });
        } catch {
          answered = false;
          continue; // no member answered in time: the next round, soon, tries again (the lease is not lost for that)
        }
        const now = sentAt;
        for (const result of (answer['leases'] as Record<string, unknown>[] | undefined) ?? []) {
          const session = this.kept.get(result['id'] as number);
          if (session === undefined) continue;
          if (result['ok'] === true) session.renewed(result['remainingMs'] as number, now);
          else if (result['code'] === 'LEASE_NOT_FOUND') session.markLost(new WardenError('LEASE_NOT_FOUND', `the session's lease ${session.lease} is gone (expired or revoked)`));
        }
      }
    } finally {
      this.inRound = false;
    }
    return answered;
  }

  /** The client closed: no more rounds, and every kept session ends (its lease expires after its TTL). */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    for (const session of [...this.kept.values()]) session.detach(new WardenError('UNAVAILABLE', 'the client is closed: the session is no longer kept alive'));
    this.kept.clear();
  }
}
