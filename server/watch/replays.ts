/**
 * Replays of history for watches that start in the past (State Watch, catch-up half): each reads
 * MVCC history a slice at a time and sends it while its connection takes it, then hands over to
 * live delivery (hub.ts) at the present, with nothing missed or repeated between the two.
 *
 * Pattern: round robin with a per-turn budget. Replays take turns, one slice each per visit;
 * a turn reads at most REPLAY_SLICES_PER_TURN slices and sends at most REPLAY_BYTES_PER_TURN for
 * all of them together, and a replay whose connection will not take more waits for it to drain
 * (a slow reader costs the member nothing but its place in line).
 *
 * Must never: send a revision at or below one already delivered (deliver refuses it); read or
 * send past a turn's budget; keep a cancelled watcher in line.
 */

import type { ErrorCode } from '../../shared/errors.js';
import type { Namespace } from '../state/namespace.js';
import { passes, type Replay, type Watcher } from './watcher.js';
import { wireEvent } from './wire-events.js';

/** What one history slice may hold: events, and changed paths looked at. */
const SLICE_EVENTS_MAX = 256;
const SLICE_SCAN_MAX = 10_000;
/**
 * What one turn of the event loop may spend on replays, all watchers together: history slices
 * read, and bytes sent. Replays take turns (round robin), one slice each per visit.
 */
const REPLAY_SLICES_PER_TURN = 8;
const REPLAY_BYTES_PER_TURN = 1024 * 1024;

/** What the replays need of the hub. */
export interface ReplayHub {
  readonly namespace: () => Namespace;
  readonly defer: (run: () => void) => void;
  readonly fragmentBytesMax: number;
  /** Push one revision's events (or a fragment); false if the watcher was cancelled instead. */
  deliver(watcher: Watcher, revision: number, eventsJson: string, more: boolean): boolean;
  cancelWith(watcher: Watcher, code: ErrorCode, reason: string): void;
}

export class Replays {
  /** Replays with work to do, in turn order; run from a later turn of the event loop. */
  private waiting: Watcher[] = [];
  private scheduled = false;

  constructor(private readonly hub: ReplayHub) {}

  queue(watcher: Watcher): void {
    const replay = watcher.replay;
    if (watcher.cancelled || replay === null || replay.queued) return;
    replay.queued = true;
    this.waiting.push(watcher);
    if (this.scheduled) return;
    this.scheduled = true;
    this.hub.defer(() => this.run());
  }

  /**
   * One turn of replays, for every watcher together: each in turn (the ones queued when the turn
   * began) sends what it read while its connection takes it and reads its next slice, until the
   * turn's budget is spent; the rest go on next turn, or once their connection drains.
   */
  private run(): void {
    this.scheduled = false;
    const budget = { slices: REPLAY_SLICES_PER_TURN, bytes: REPLAY_BYTES_PER_TURN };
    const queue = this.waiting;
    this.waiting = [];
    let at = 0;
    for (; at < queue.length && budget.slices > 0 && budget.bytes > 0; at++) {
      const watcher = queue[at]!;
      if (watcher.replay !== null) watcher.replay.queued = false;
      if (this.pump(watcher, budget)) this.queue(watcher);
    }
    // Not reached this turn: first in line next turn.
    const waiting = queue.slice(at).filter((w) => !w.cancelled && w.replay !== null);
    this.waiting = [...waiting, ...this.waiting];
    if (this.waiting.length > 0 && !this.scheduled) {
      this.scheduled = true;
      this.hub.defer(() => this.run());
    }
  }

  /**
   * One visit to a replay: send what was read while the connection takes it, read one more slice
   * of history if the budget allows; hand over to live delivery when history has caught up with
   * the present. True if it has more to do now (queue it again).
   */
  private pump(watcher: Watcher, budget: { slices: number; bytes: number }): boolean {
    const replay = watcher.replay;
    if (watcher.cancelled || replay === null) return false;
    const why = watcher.spec.allowed?.() ?? null;
    if (why !== null) {
      this.hub.cancelWith(watcher, 'UNAUTHENTICATED', why);
      return false;
    }
    replay.waiting = false;
    let sliceRead = false;
    for (;;) {
      while (replay.at < replay.events.length) {
        if (watcher.sink.writable !== undefined && !watcher.sink.writable()) {
          this.waitForDrain(watcher, replay);
          return false;
        }
        if (budget.bytes <= 0) return true;
        const sent = this.sendReplayed(watcher, replay);
        if (sent < 0) return false; // cancelled
        budget.bytes -= sent;
      }
      // Everything read is sent. Revisions applied meanwhile are in history too: if the replay
      // has reached the present, live delivery takes over from the next revision on.
      const namespace = this.hub.namespace();
      if (replay.next > namespace.revision) {
        watcher.lastRevision = Math.max(watcher.lastRevision, replay.next - 1);
        watcher.replay = null;
        return false;
      }
      if (sliceRead || budget.slices <= 0) return true;
      const slice = namespace.changesFrom(replay.next, watcher.spec.path, watcher.spec.scope, { eventsMax: SLICE_EVENTS_MAX, scanMax: SLICE_SCAN_MAX });
      sliceRead = true;
      budget.slices -= 1;
      if (!slice.ok) {
        this.hub.cancelWith(watcher, 'COMPACTED', slice.message);
        return false;
      }
      replay.next = slice.nextRevision;
      replay.events = slice.events.filter((e) => e.revision > watcher.lastRevision && passes(watcher.spec, e));
      replay.at = 0;
    }
  }

  /** Send the replayed events of one revision (or its next fragment); answers the bytes sent, or -1 if the watcher was cancelled. */
  private sendReplayed(watcher: Watcher, replay: Replay): number {
    const revision = replay.events[replay.at]!.revision;
    let end = replay.at;
    let bytes = 0;
    const parts: string[] = [];
    while (end < replay.events.length && replay.events[end]!.revision === revision) {
      const json = JSON.stringify(wireEvent(replay.events[end]!, watcher.spec.prevNode));
      if (parts.length > 0 && bytes + json.length > this.hub.fragmentBytesMax) break;
      parts.push(json);
      bytes += json.length + 1;
      end += 1;
    }
    const more = end < replay.events.length && replay.events[end]!.revision === revision;
    if (revision <= watcher.lastRevision) {
      replay.at = end; // already delivered (a resume that started below what was sent)
      return 0;
    }
    if (!this.hub.deliver(watcher, revision, `[${parts.join(',')}]`, more)) return -1;
    replay.at = end;
    return bytes;
  }

  private waitForDrain(watcher: Watcher, replay: Replay): void {
    if (replay.waiting) return;
    replay.waiting = true;
    watcher.sink.whenWritable?.(() => this.queue(watcher));
  }
}
