/**
 * A simulated watcher: one watch on the whole namespace (`/`, subtree, with progress
 * notifications) held on one member's WatchHub through an ordered connection, resumed from its
 * last revision + 1 on another member when that member crashes or cancels the watch. Every frame
 * is checked against the truth — each revision's events as the first member to apply it made
 * them — for the six guarantees:
 * - ordered and unique: each whole revision is above the last one received;
 * - reliable: no revision with events is skipped between two the watcher received;
 * - atomic: a revision's fragments arrive together, nothing between them, and make its events;
 * - resumable: after a resume the stream goes on exactly where it stopped;
 * - bookmarkable: a progress frame at R means every revision with events at or below R came.
 *
 * Must never: accept a frame it cannot check, or check a revision before the truth has it.
 */

import type { NodeId } from '../../server/raft/index.js';
import { Violation } from './invariants.js';

/** A revision's events as every member must send them: `type path` per event, in order. */
export type RevisionTruth = (revision: number) => readonly string[] | undefined;

interface WireFrame {
  readonly watch?: number;
  readonly revision?: number;
  readonly events?: readonly { readonly type: string; readonly path: string }[];
  readonly more?: boolean;
  readonly progress?: boolean;
  readonly canceled?: boolean;
  readonly resumeRevision?: number;
  /** The simulator's own first frame on a connection: the watch started there, at this revision. */
  readonly started?: number;
}

export interface WatcherIo {
  now(): number;
  /** Open a connection to `member` and start the watch there from `fromRevision` (undefined: from now). */
  connect(watcher: SimWatcher, member: NodeId, fromRevision: number | undefined): void;
  /** Wake the watcher at `at` (to reconnect). */
  wakeAt(at: number, run: () => void): void;
  trace(line: string): void;
}

export class SimWatcher {
  /** The last revision received whole (or bookmarked); everything with events up to it came. */
  lastRevision = 0;
  /** The connection the watcher listens on now (frames from an older one are ignored). */
  connection = 0;
  private fragments: { revision: number; events: string[] } | null = null;
  private started = false;
  /** The first watch starts from the member's present, not from a revision. */
  private fromNow = false;
  revisionsReceived = 0;
  resumes = 0;

  constructor(
    readonly id: number,
    private readonly members: readonly NodeId[],
    private readonly pick: <T>(from: readonly T[]) => T,
    private readonly truth: RevisionTruth,
    private readonly io: WatcherIo,
  ) {}

  /** Start from the beginning of history, or from now. */
  start(fromStart: boolean): void {
    this.started = true;
    this.fromNow = !fromStart;
    this.connection += 1;
    this.io.connect(this, this.pick(this.members), fromStart ? 1 : undefined);
  }

  /** A frame on connection `connection`. */
  onFrame(connection: number, frame: string): void {
    if (connection !== this.connection) return;
    const parsed = JSON.parse(frame) as WireFrame;
    if (parsed.started !== undefined) {
      // A watch from now: everything up to the member's revision then is not this watcher's.
      if (this.fromNow) this.lastRevision = parsed.started;
      this.fromNow = false;
      return;
    }
    if (parsed.canceled === true) {
      this.io.trace(`t=${this.io.now()} WATCH ${this.id} canceled at ${this.lastRevision}: ${JSON.stringify(parsed)}`);
      if (parsed.resumeRevision !== undefined && parsed.resumeRevision !== this.lastRevision + 1 && this.fragments === null) {
        throw new Violation('watch guarantees', `watcher ${this.id} was told to resume from ${parsed.resumeRevision} with ${this.lastRevision} received`);
      }
      this.reconnect();
      return;
    }
    if (parsed.progress === true) {
      this.bookmark(parsed.revision!);
      return;
    }
    if (parsed.events === undefined || parsed.revision === undefined) throw new Violation('watch guarantees', `watcher ${this.id} got a frame it cannot read: ${frame}`);
    const revision = parsed.revision;
    const events = parsed.events.map((event) => `${event.type} ${event.path}`);
    if (this.fragments !== null && this.fragments.revision !== revision) {
      throw new Violation('watch guarantees', `watcher ${this.id}: revision ${revision} arrived between fragments of revision ${this.fragments.revision} (atomic)`);
    }
    const whole = this.fragments === null ? events : [...this.fragments.events, ...events];
    if (parsed.more === true) {
      this.fragments = { revision, events: whole };
      return;
    }
    this.fragments = null;
    this.receive(revision, whole);
  }

  /** The connection ended (its member crashed): resume elsewhere. */
  onClosed(connection: number): void {
    if (connection !== this.connection) return;
    this.reconnect();
  }

  /** The watch could not be started there: try again elsewhere. */
  onRefused(connection: number): void {
    if (connection !== this.connection) return;
    this.reconnect();
  }

  private reconnect(): void {
    // A revision half received is dropped: it comes again, whole, from the resume.
    this.fragments = null;
    this.resumes += 1;
    const connection = ++this.connection;
    // Not yet started anywhere (a watch from now): start from now again, elsewhere.
    const from = this.fromNow ? undefined : this.lastRevision + 1;
    this.io.wakeAt(this.io.now() + 5, () => {
      if (connection === this.connection) this.io.connect(this, this.pick(this.members), from);
    });
  }

  private receive(revision: number, events: readonly string[]): void {
    if (revision <= this.lastRevision) {
      throw new Violation('watch guarantees', `watcher ${this.id} got revision ${revision} after ${this.lastRevision} (ordered, unique)`);
    }
    this.checkNothingBetween(revision, 'reliable');
    const expected = this.truth(revision);
    if (expected === undefined) throw new Violation('watch guarantees', `watcher ${this.id} got revision ${revision}, which no member applied`);
    if (expected.join('\n') !== events.join('\n')) {
      throw new Violation('watch guarantees', `watcher ${this.id} got revision ${revision} as [${events.join(', ')}]; it is [${expected.join(', ')}] (atomic, resumable)`);
    }
    this.lastRevision = revision;
    this.revisionsReceived += 1;
  }

  private bookmark(revision: number): void {
    if (!this.started || this.fragments !== null) throw new Violation('watch guarantees', `watcher ${this.id} got a bookmark at ${revision} in the middle of revision ${this.fragments?.revision}`);
    if (revision < this.lastRevision) throw new Violation('watch guarantees', `watcher ${this.id} got a bookmark at ${revision} after revision ${this.lastRevision} (bookmarkable)`);
    this.checkNothingBetween(revision + 1, 'bookmarkable');
    this.lastRevision = revision;
  }

  /** Every revision after the last received and below `revision` had no events for this watch. */
  private checkNothingBetween(revision: number, guarantee: string): void {
    for (let missed = this.lastRevision + 1; missed < revision; missed++) {
      const events = this.truth(missed);
      if (events !== undefined && events.length > 0) {
        throw new Violation('watch guarantees', `watcher ${this.id} never got revision ${missed} (${events.join(', ')}) before ${revision} (${guarantee})`);
      }
    }
  }
}
