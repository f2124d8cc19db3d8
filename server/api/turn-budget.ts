/**
 * How much answer one turn of the event loop may build, member-wide. Reads released together
 * (a ReadIndex round confirms every read of a turn at once) and answers of writes applied
 * together would otherwise all be served and serialised in one macrotask: thousands of
 * pipelined range pages, each up to the answer bound, would hold the loop for seconds. Past the
 * budget, the rest wait for the next turn (in arrival order), and sockets and timers run between.
 *
 * Must never: keep a waiter past the turn after the one that filled the budget's last slot (it
 * wakes every waiter at each turn, oldest first); block: it only defers.
 */

export class TurnBudget {
  private spent = 0;
  private resetScheduled = false;
  private waiting: (() => void)[] = [];

  constructor(private readonly bytesPerTurn: number) {}

  /** Resolves once this turn has room left (at once when it has). */
  room(): Promise<void> | null {
    if (this.spent < this.bytesPerTurn) return null;
    this.scheduleReset();
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** `bytes` of answer were built in this turn. */
  charge(bytes: number): void {
    this.spent += bytes;
    this.scheduleReset();
  }

  private scheduleReset(): void {
    if (this.resetScheduled) return;
    this.resetScheduled = true;
    setImmediate(() => {
      this.resetScheduled = false;
      this.spent = 0;
      const waiting = this.waiting;
      this.waiting = [];
      // Oldest first; those that find the new turn's room gone wait again, behind none.
      for (const wake of waiting) wake();
    });
  }
}
