/**
 * A simulated lease holder: the client side of a session lock. It grants a lease (with its own
 * id, so a retried grant is the same lease), attaches an ephemeral node to it, then sends
 * keep-alives every quarter TTL to one member, moving to another when one goes unanswered. At a
 * seeded moment it may die (it stops sending); at the heal every holder stops.
 *
 * It records, for the lease properties, when it sent the last keep-alive (or grant) that was
 * answered as renewed: the lease must live at least a TTL (on the fastest clock) after that.
 *
 * Must never: count a renewal it did not see answered, or a grant's retry as a later renewal.
 */

import type { NodeId } from '../../server/raft/index.js';
import type { LeaseId } from '../../server/state/types.js';
import type { ClientReply, ClientRequest } from './client.js';
import type { SimRandom } from './random.js';

export interface LeaseHolderIo {
  now(): number;
  send(holderId: number, member: NodeId, request: ClientRequest): void;
  wakeAt(at: number, holderId: number, token: number): void;
}

type Phase = 'granting' | 'attaching' | 'renewing' | 'stopped';

export class SimLeaseHolder {
  private phase: Phase = 'granting';
  private target: NodeId;
  private wakeToken = 0;
  private attempt = 0;
  private requestId = '';
  /** When the current request left (a keep-alive's renewal counts from here). */
  private sentAt = 0;
  /** When the first grant attempt left: any attempt applied was applied after it. */
  private firstGrantAt: number | null = null;
  /** The send time of the last grant or keep-alive answered as renewed; null before the grant is answered. */
  lastRenewedSentAt: number | null = null;
  /** When a leader last renewed this lease (a keep-alive may arrive long after it was sent). */
  renewedAtLeaderMs = 0;
  /** Keep-alives answered as renewed. */
  renewals = 0;
  /** When this holder stopped sending keep-alives (null: still renewing). */
  stoppedAt: number | null = null;
  /** The lease ended (its node deleted, or a keep-alive answered "not found"). */
  gone = false;

  constructor(
    readonly id: number,
    readonly lease: LeaseId,
    readonly ttlMs: number,
    private readonly members: readonly NodeId[],
    private readonly random: SimRandom,
    private readonly io: LeaseHolderIo,
    /** Die (stop renewing) at this time, or never. */
    private readonly dieAt: number | null,
  ) {
    this.target = random.pick(members);
  }

  get path(): string {
    return `/e/h${this.id}`;
  }

  get renewing(): boolean {
    return this.phase === 'renewing' || this.phase === 'attaching';
  }

  start(): void {
    this.send();
  }

  /** Stop sending (a client that died, or the heal). */
  stop(): void {
    if (this.phase === 'stopped') return;
    this.phase = 'stopped';
    this.stoppedAt = this.io.now();
    this.wakeToken++;
  }

  onWake(token: number): void {
    if (token !== this.wakeToken || this.phase === 'stopped') return;
    if (this.dieAt !== null && this.io.now() >= this.dieAt) {
      this.stop();
      return;
    }
    this.send();
  }

  onReply(reply: ClientReply): void {
    if (reply.requestId !== this.requestId || this.phase === 'stopped') return;
    switch (reply.kind) {
      case 'granted':
        this.lastRenewedSentAt = this.firstGrantAt;
        this.phase = 'attaching';
        this.next(0);
        return;
      case 'attached':
        this.phase = 'renewing';
        this.next(this.ttlMs / 4);
        return;
      case 'alive':
        this.lastRenewedSentAt = this.sentAt;
        this.renewals += 1;
        this.next(this.ttlMs / 4);
        return;
      case 'gone':
        this.gone = true;
        this.stop();
        return;
      default:
        // An error: try again soon, at the member it names or another.
        this.target = reply.kind === 'error' && reply.leaderHint !== null ? reply.leaderHint : this.random.pick(this.members);
        this.next(this.random.between(1, 20));
    }
  }

  private next(afterMs: number): void {
    this.io.wakeAt(this.io.now() + Math.max(1, Math.round(afterMs)), this.id, ++this.wakeToken);
  }

  private send(): void {
    this.attempt++;
    this.requestId = `h${this.id}:${this.attempt}`;
    this.sentAt = this.io.now();
    if (this.phase === 'granting') this.firstGrantAt ??= this.sentAt;
    const base = { clientId: this.id, requestId: this.requestId };
    const request: ClientRequest =
      this.phase === 'granting'
        ? { ...base, kind: 'leaseGrant', lease: this.lease, ttlMs: this.ttlMs }
        : this.phase === 'attaching'
          ? { ...base, kind: 'leaseAttach', lease: this.lease, path: this.path }
          : { ...base, kind: 'keepAlive', lease: this.lease };
    this.io.send(this.id, this.target, request);
    // Unanswered within a quarter TTL: this member may be down, frozen or cut off; try another.
    const timeoutToken = ++this.wakeToken;
    this.io.wakeAt(this.io.now() + Math.round(this.ttlMs / 4), this.id, timeoutToken);
    this.target = this.random.pick(this.members);
  }
}
