/**
 * The lease-read gate (Raft thesis §6.4.1, leader leases): a leader serving lease reads probes
 * its leadership each tick with a ReadIndex round of its own; when a quorum confirms a probe,
 * the leader may answer reads alone until the probe's issue time plus the lease (followers that
 * confirmed it will not vote for another within an election timeout, shortened by clock drift).
 * Any change of role, a term moving on, or a leadership hand-off closes the gate.
 *
 * Must never: count a lease from later than its probe was issued; stay open across a change
 * of role or term, or while leadership is being handed off.
 */

export interface LeaderView {
  readonly role: string;
  readonly term: number;
}

/** Probes a leader keeps out at once, at most (a quorum that stopped answering must not grow the table). */
const PROBES_MAX = 64;

export class LeaseReadGate {
  private readonly probes = new Map<string, { readonly issuedMs: number; readonly term: number }>();
  private untilMs = 0;
  private term = -1;
  private seq = 0;

  constructor(
    private readonly id: string,
    private readonly nowMs: () => number,
    /** How long after a confirmed probe's issue the lease holds. */
    private readonly leaseMs: () => number,
  ) {}

  /** Issue a probe (a ReadIndex of the leader's own) if this member leads and is not handing off. */
  probe(view: LeaderView, handingOff: boolean, readIndex: (requestId: string) => boolean): void {
    if (view.role !== 'leader' || handingOff || this.probes.size > PROBES_MAX) return;
    const requestId = `${this.id}/lease/${++this.seq}`;
    // Taken before the round's heartbeat is sent: the lease counts from no later than that.
    const issuedMs = this.nowMs();
    if (readIndex(requestId)) this.probes.set(requestId, { issuedMs, term: view.term });
  }

  /** A read state came back: true if it was one of the gate's probes (a client's read otherwise). */
  confirmed(requestId: string, view: LeaderView, handingOff: boolean): boolean {
    const probe = this.probes.get(requestId);
    if (probe === undefined) return false;
    this.probes.delete(requestId);
    // Confirmed: a quorum heard this leader after the probe was issued.
    if (probe.term === view.term && !handingOff) {
      this.untilMs = Math.max(this.untilMs, probe.issuedMs + this.leaseMs());
      this.term = probe.term;
    }
    return true;
  }

  /** Whether this member may answer a read alone now. */
  open(view: LeaderView, handingOff: boolean): boolean {
    return this.untilMs > 0 && !handingOff && view.role === 'leader' && view.term === this.term && this.nowMs() < this.untilMs;
  }

  /** Closed until a new probe is confirmed (a change of role; a hand-off beginning). */
  close(): void {
    this.untilMs = 0;
    this.probes.clear();
  }
}
