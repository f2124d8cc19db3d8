/**
 * How much answer one turn of the event loop may build, member-wide, and who builds it when
 * there is more than a turn's worth. Reads released together (a ReadIndex round confirms every
 * read of a turn at once) and answers of writes applied together would otherwise all be served
 * and serialised in one macrotask: thousands of pipelined range pages, each up to the answer
 * bound, would hold the loop for seconds. Past the budget, the rest wait for the next turn and
 * sockets and timers run between.
 *
 * Pattern: fair queueing. What waits is queued per owner (a client connection), and each turn
 * serves the owners in turn, one piece of work each per round, until the turn's budget is spent:
 * a client that pipelines 2,000 range pages gets its share of every turn, and another client's
 * status answer waits at most one round, not behind all 2,000.
 *
 * Must never: run work for an owner ahead of that owner's older work (per-owner FIFO); keep work
 * waiting while a turn has budget left (a reset serves at once, and only a spent budget queues);
 * wake work that will not run (a turn runs exactly what its budget admits, no re-queueing).
 */

export class TurnBudget {
  private spent = 0;
  private resetScheduled = false;
  /** Waiting work per owner, oldest first; the Map's order is the round-robin order. */
  private readonly queues = new Map<object, (() => void)[]>();

  /** `onError`: a queued piece of work threw (it runs from a timer, with no caller to tell). */
  constructor(
    private readonly bytesPerTurn: number,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  /**
   * Run `work` now if this turn has room (synchronously, before this returns), else in a later
   * turn, in `owner`'s turn. `work` charges what it built before it returns.
   */
  whenRoom(owner: object, work: () => void): void {
    if (this.spent < this.bytesPerTurn) {
      work();
      return;
    }
    const queue = this.queues.get(owner);
    if (queue === undefined) this.queues.set(owner, [work]);
    else queue.push(work);
    this.scheduleReset();
  }

  /** `whenRoom` for work that answers: resolves with what it returned, rejects with what it threw. */
  serve<T>(owner: object, work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.whenRoom(owner, () => {
        try {
          resolve(work());
        } catch (error) {
          reject(error);
        }
      }),
    );
  }

  /** `bytes` of answer were built in this turn. */
  charge(bytes: number): void {
    this.spent += bytes;
    this.scheduleReset();
  }

  /** Owners with work waiting (for tests and metrics). */
  get waitingOwners(): number {
    return this.queues.size;
  }

  private scheduleReset(): void {
    if (this.resetScheduled) return;
    this.resetScheduled = true;
    setImmediate(() => {
      this.resetScheduled = false;
      this.spent = 0;
      this.drain();
    });
  }

  /** One round-robin pass after another, one piece of work per owner, until the budget is spent. */
  private drain(): void {
    while (this.spent < this.bytesPerTurn && this.queues.size > 0) {
      const [owner, queue] = this.queues.entries().next().value as [object, (() => void)[]];
      const work = queue.shift()!;
      // To the back of the round (or out, with nothing left) before running: work may queue more.
      this.queues.delete(owner);
      if (queue.length > 0) this.queues.set(owner, queue);
      try {
        work();
      } catch (error) {
        this.onError(error);
      }
    }
    if (this.queues.size > 0) this.scheduleReset();
  }
}
