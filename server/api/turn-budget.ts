/**
 * How much answer one turn of the event loop may build, member-wide, and who builds it when
 * there is more than a turn's worth. Reads released together (a ReadIndex round confirms every
 * read of a turn at once) and answers of writes applied together would otherwise all be served
 * and serialised in one macrotask: thousands of pipelined range pages, each up to the answer
 * bound, would hold the loop for seconds. Past the budget, the rest wait for the next turn and
 * sockets and timers run between.
 *
 * Pattern: fair queueing by bytes (deficit round robin). What waits is queued per owner (a client
 * connection); each turn visits the owners in turn, and at each visit an owner is credited
 * QUANTUM_BYTES and runs its oldest work while its credit lasts (a piece's cost is what it
 * charged; one bigger than the credit runs and leaves the owner in debt for the rounds after).
 * So a client that pipelines 2,000 range pages or 1 MiB answers gets its share of every turn,
 * and another client's small answers are not held to one per round behind them.
 *
 * Must never: run work for an owner ahead of that owner's older work (per-owner FIFO); keep work
 * waiting while a turn has budget left (a reset serves at once, and only a spent budget queues);
 * wake work that will not run (a turn runs what its budget admits, plus at most one piece).
 */

/** What an owner may build per visit, in the bytes `charge` counts. */
const QUANTUM_BYTES = 64 * 1024;

interface OwnerQueue {
  readonly work: (() => void)[];
  /** Bytes the owner may still build before its next credit (negative: in debt after a big piece). */
  credit: number;
}

export class TurnBudget {
  private spent = 0;
  private resetScheduled = false;
  /** Waiting work per owner, oldest first; the Map's order is the round-robin order. */
  private readonly queues = new Map<object, OwnerQueue>();

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
    if (queue === undefined) this.queues.set(owner, { work: [work], credit: 0 });
    else queue.work.push(work);
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

  /** Pieces of `owner`'s work waiting. */
  waiting(owner: object): number {
    return this.queues.get(owner)?.work.length ?? 0;
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

  /** Visits in round-robin order, each crediting the owner a quantum, until the budget is spent. */
  private drain(): void {
    while (this.spent < this.bytesPerTurn && this.queues.size > 0) {
      const [owner, queue] = this.queues.entries().next().value as [object, OwnerQueue];
      // To the back of the round before running: its work may queue more.
      this.queues.delete(owner);
      this.queues.set(owner, queue);
      queue.credit = Math.min(queue.credit + QUANTUM_BYTES, QUANTUM_BYTES);
      while (queue.credit > 0 && queue.work.length > 0 && this.spent < this.bytesPerTurn) {
        const before = this.spent;
        const work = queue.work.shift()!;
        try {
          work();
        } catch (error) {
          this.onError(error);
        }
        // Work that charged nothing (its connection went away) still costs a little, so a
        // visit always ends.
        queue.credit -= Math.max(1, this.spent - before);
      }
      // An owner whose queue ran dry leaves the round with its debt forgotten (as in DRR).
      if (queue.work.length === 0 && this.queues.get(owner) === queue) this.queues.delete(owner);
    }
    if (this.queues.size > 0) this.scheduleReset();
  }
}
