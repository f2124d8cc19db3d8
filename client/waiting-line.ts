/**
 * The channel's waiting line: requests not yet on a socket (there is none, the member is being
 * left, or maxInFlight are already out), in the order they are to go. Urgent ones — keep-alives,
 * watch subscriptions, retries of sent writes, a request re-sent after its identity was renewed —
 * go before the rest, because a live session or watch must not queue behind a burst of calls.
 *
 * Pattern: a bounded FIFO with a priority lane, settled entries skipped lazily (an abort or a
 * deadline only marks its request; the line drops it when it reaches it, or at the next purge)
 * so that failing a waiting request never costs a search of the line.
 *
 * Must never: hand out a settled request; let more than `maxQueued` ordinary requests wait
 * (past it one is refused RESOURCE_EXHAUSTED, never sent); refuse an urgent one for a full line.
 */

import { WardenError } from '../shared/errors.js';

/** Requests one client lets wait for a socket (past maxInFlight, or between members) before it refuses more, by default. */
export const QUEUED_MAX_DEFAULT = 100_000;

export class WaitingLine<T extends { readonly settled: boolean }> {
  /** Ordinary requests, oldest first from `head`: advancing an index, not shifting, keeps a long line O(1) a request. */
  private queue: T[] = [];
  private head = 0;
  private urgent: T[] = [];

  constructor(private readonly maxQueued: number) {}

  /** Requests waiting, settled ones not yet purged included. */
  get size(): number {
    return this.queue.length - this.head + this.urgent.length;
  }

  /** Why a new request may not wait, or null when it may. Settled ones still count until purged: the bound is on memory held. */
  refusal(urgent: boolean): WardenError | null {
    if (urgent || this.queue.length - this.head < this.maxQueued) return null;
    const max = this.maxQueued;
    return new WardenError('RESOURCE_EXHAUSTED', `${max} requests already wait for a socket in this client (connect option maxQueued); nothing was sent`, { limit: { name: 'maxQueued', flag: 'maxQueued', value: max } });
  }

  push(item: T, urgent: boolean): void {
    (urgent ? this.urgent : this.queue).push(item);
  }

  /** Ahead of everything: a request refused UNAUTHENTICATED goes again once its identity is renewed, and it already waited its turn. */
  pushFront(item: T): void {
    this.urgent.unshift(item);
  }

  /** The next request to send: urgent ones first, then the line, skipping settled ones. */
  next(): T | null {
    while (this.urgent.length > 0) {
      const item = this.urgent.shift()!;
      if (!item.settled) return item;
    }
    while (this.head < this.queue.length) {
      const item = this.queue[this.head++]!;
      // Reclaim the sent prefix once it is most of the array, so a line that never empties does not grow forever.
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if (!item.settled) return item;
    }
    return null;
  }

  /** Everything waiting, in sending order, settled ones included; the line is unchanged. */
  all(): T[] {
    return [...this.urgent, ...this.queue.slice(this.head)];
  }

  /** Drop what was settled while waiting (timed out, aborted): the line then holds only live requests. */
  purge(): void {
    this.urgent = this.urgent.filter((item) => !item.settled);
    this.queue = this.queue.slice(this.head).filter((item) => !item.settled);
    this.head = 0;
  }

  /** Empty the line, handing back what waited (in sending order) for the caller to fail. */
  drain(): T[] {
    const waiting = this.all();
    this.urgent = [];
    this.queue = [];
    this.head = 0;
    return waiting;
  }
}
