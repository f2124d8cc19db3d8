/**
 * The in-memory view of the Replicated Log: the entries after the last snapshot, the commit
 * index (High-Water Mark), what has been handed out for persisting and for applying.
 * Everything before `snapshotIndex` lives only in the snapshot (Low-Water Mark).
 *
 * Must never: let commitIndex go back, truncate a committed entry, or hand out an entry for
 * applying before it was handed out for persisting.
 */

import { ConfLog } from './conf.js';
import type { ConfState, Entry, SnapshotMeta } from './types.js';

export class RaftLog {
  private snapshotIdx: number;
  private snapshotTrm: number;
  /** entries[i].index === snapshotIdx + 1 + i */
  private entries: Entry[];
  private commit: number;
  /** Entries at or above this index have not yet been handed out for persisting. */
  private unstableFromIdx: number;
  /** Highest index handed out for applying and acknowledged by advance(). */
  private applied: number;
  /** The configurations of these entries (the latest is the one in use). */
  private readonly confs: ConfLog;

  /** `initialConf`: the configuration of a log that starts from nothing (no snapshot says otherwise). */
  constructor(snapshot: SnapshotMeta | null, entries: readonly Entry[], commit: number, applied: number, initialConf: ConfState = { voters: [] }) {
    this.snapshotIdx = snapshot?.index ?? 0;
    this.snapshotTrm = snapshot?.term ?? 0;
    this.entries = [...entries];
    for (let i = 0; i < this.entries.length; i++) {
      assert(this.entries[i]!.index === this.snapshotIdx + 1 + i, 'persisted entries are not contiguous with the snapshot');
    }
    this.confs = new ConfLog(snapshot?.conf ?? initialConf, this.entries);
    this.commit = Math.max(commit, this.snapshotIdx);
    assert(this.commit <= this.lastIndex(), `commit ${this.commit} beyond last index ${this.lastIndex()}`);
    this.applied = Math.min(Math.max(applied, this.snapshotIdx), this.commit);
    this.unstableFromIdx = this.lastIndex() + 1;
  }

  get snapshotIndex(): number {
    return this.snapshotIdx;
  }
  get snapshotTerm(): number {
    return this.snapshotTrm;
  }
  get commitIndex(): number {
    return this.commit;
  }
  get appliedIndex(): number {
    return this.applied;
  }
  get unstableFrom(): number {
    return this.unstableFromIdx;
  }

  lastIndex(): number {
    return this.snapshotIdx + this.entries.length;
  }

  lastTerm(): number {
    return this.entries.length === 0 ? this.snapshotTrm : this.entries[this.entries.length - 1]!.term;
  }

  /** The term at `index`, or undefined if it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.snapshotIdx) return this.snapshotTrm;
    if (index < this.snapshotIdx || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIdx - 1]!.term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.snapshotIdx || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIdx - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: the candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The largest index at or below `index` whose term is at or below `term`: where two logs can
   * possibly agree, so a rejected append can skip a whole term at a time.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.snapshotIdx) {
      if (this.term(i)! <= term) return i;
      i--;
    }
    return this.snapshotIdx;
  }

  /** Entries in [from, to], at most maxCount of them and about maxBytes (always at least one). */
  slice(from: number, maxCount: number, maxBytes: number): Entry[] {
    assert(from > this.snapshotIdx, `slice from ${from} is compacted (snapshot at ${this.snapshotIdx})`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = from; i <= this.lastIndex() && out.length < maxCount; i++) {
      const e = this.entries[i - this.snapshotIdx - 1]!;
      bytes += e.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** The configuration in use: the latest in the log, committed or not (Raft thesis §4.1). */
  get conf(): ConfState {
    return this.confs.latest;
  }

  /** The index of the latest config entry the log holds after its base (0: none). */
  get confIndex(): number {
    return this.confs.latestIndex;
  }

  /** The configuration in force at `index` (for a snapshot or a compacted base at it). */
  confAt(index: number): ConfState {
    return this.confs.at(index);
  }

  /** Leader path: append new entries at the end. */
  append(entries: readonly Entry[]): void {
    for (const e of entries) {
      assert(e.index === this.lastIndex() + 1, `append at ${e.index} does not follow last index ${this.lastIndex()}`);
      this.entries.push(e);
    }
    this.confs.appended(entries);
  }

  /**
   * Follower path: accept entries that follow (prevIndex, prevTerm), keeping entries that
   * already agree and truncating at the first conflict. Returns the last index now known to
   * match the leader, or null if (prevIndex, prevTerm) does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (e.index <= this.snapshotIdx) continue; // already folded into the snapshot
      const mine = this.term(e.index);
      if (mine === e.term) continue;
      assert(e.index > this.commit, `conflict at committed index ${e.index} (commit ${this.commit})`);
      if (mine !== undefined) this.truncateFrom(e.index);
      this.append(entries.slice(k));
      break;
    }
    return lastNew;
  }

  private truncateFrom(index: number): void {
    this.entries.length = index - this.snapshotIdx - 1;
    if (index < this.unstableFromIdx) this.unstableFromIdx = index;
    this.confs.truncatedFrom(index);
  }

  commitTo(index: number): boolean {
    if (index <= this.commit) return false;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.commit = index;
    return true;
  }

  unstableEntries(): Entry[] {
    if (this.unstableFromIdx > this.lastIndex()) return [];
    return this.entries.slice(this.unstableFromIdx - this.snapshotIdx - 1);
  }

  /** Entries handed out up to (index, term) are now durable, unless a conflict replaced them since. */
  stableTo(index: number, term: number): void {
    if (this.term(index) === term && index >= this.unstableFromIdx) this.unstableFromIdx = index + 1;
  }

  /** Committed entries that may be applied: already handed out for persisting, not yet applied. */
  committedToApply(): Entry[] {
    if (!this.hasCommittedToApply()) return [];
    return this.entries.slice(this.applied - this.snapshotIdx, this.commit - this.snapshotIdx);
  }

  hasCommittedToApply(): boolean {
    // Below the snapshot the entries are gone: a restored snapshot must be installed first.
    return this.commit > this.applied && this.applied >= this.snapshotIdx;
  }

  appliedTo(index: number): void {
    assert(index <= this.commit, `applied ${index} beyond commit ${this.commit}`);
    if (index > this.applied) this.applied = index;
  }

  /** Replace the whole log with a snapshot received from the leader. */
  restore(meta: SnapshotMeta): void {
    this.snapshotIdx = meta.index;
    this.snapshotTrm = meta.term;
    this.entries = [];
    this.commit = meta.index;
    this.unstableFromIdx = meta.index + 1;
    this.confs.restored(meta.conf);
  }

  /** Drop entries at or below `index`, which the caller has captured in a snapshot. */
  compact(index: number): void {
    if (index <= this.snapshotIdx) return;
    assert(index <= this.applied, `compact ${index} beyond applied ${this.applied}`);
    assert(index < this.unstableFromIdx, `compact ${index} of entries not yet persisted`);
    const term = this.term(index)!;
    this.entries = this.entries.slice(index - this.snapshotIdx);
    this.snapshotIdx = index;
    this.snapshotTrm = term;
    this.confs.compactedTo(index);
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`raft invariant broken: ${message}`);
}
