/**
 * Leadership hand-off before a clean stop (SIGTERM): the leader asks the core to transfer
 * leadership to a voter (the core catches it up, then tells it to campaign at once), and the
 * stop waits until this member no longer leads, or until the time given runs out (the others
 * then elect as after a crash). While a hand-off is under way the leader serves no lease reads.
 *
 * Must never: leave a stop waiting past its deadline by more than a tick; start a second
 * hand-off while one is under way.
 */

export class LeadershipHandOff {
  private pending: { readonly deadline: number; readonly resolve: (handed: boolean) => void } | null = null;

  constructor(private readonly nowMs: () => number) {}

  /** Whether a hand-off is under way. */
  get active(): boolean {
    return this.pending !== null;
  }

  /**
   * Begin one: `transfer` asks the core (in the update loop). Resolves true once leadership
   * moved, false when the time ran out or none could begin (not leading, no other voter).
   */
  begin(leading: boolean, to: string | undefined, timeoutMs: number, transfer: (to: string) => void): Promise<boolean> {
    if (!leading || this.pending !== null || to === undefined) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      this.pending = { deadline: this.nowMs() + timeoutMs, resolve };
      transfer(to);
    });
  }

  /** Called on a change of role and each tick: settles the hand-off once leadership moved, the time ran out or the member stops. */
  settle(leading: boolean, stopping: boolean): void {
    const pending = this.pending;
    if (pending === null) return;
    if (leading && !stopping && this.nowMs() < pending.deadline) return;
    this.pending = null;
    pending.resolve(!leading);
  }
}
