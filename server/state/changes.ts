/**
 * What the state machine changed since the state store last took it: the namespace's new and
 * dropped history versions, and which leases, sessions and recorded answers to write again or
 * delete. The store turns one of these into one atomic write batch with the applied index
 * (state-store.ts), so the durable state is always the committed log applied up to that index.
 *
 * Versions are immutable once made, so they are recorded with their node; leases and sessions
 * change in place, so only their ids are recorded and the store reads their state when it
 * writes.
 *
 * Must never: hold anything but what changed since the last take; order anything by a hash.
 */

import type { LeaseId } from './types.js';
import type { StoredNode } from './namespace.js';

export interface VersionChange {
  readonly path: string;
  readonly since: number;
  /** The node from `since` on, or null: the path was deleted at `since`. */
  readonly node: StoredNode | null;
}

/** A version compaction dropped. */
export interface VersionDrop {
  readonly path: string;
  readonly since: number;
  readonly dropped: true;
}

export class ChangeTracker {
  /** New and dropped versions in the order they happened (a version may come and go in one group). */
  versions: (VersionChange | VersionDrop)[] = [];
  leases = new Set<LeaseId>();
  sessions = new Set<number>();
  /** Recorded answers added or dropped: clientId → seqs. */
  results = new Map<number, Set<number>>();
  /** The auth table changed (it is written whole: it changes rarely, and only by an admin). */
  auth = false;
  /** The member table changed (written whole: a few members, changed by configuration entries). */
  members = false;
  /** The alarm table changed (written whole: one alarm per member and kind at most). */
  alarms = false;

  result(clientId: number, seq: number): void {
    let seqs = this.results.get(clientId);
    if (seqs === undefined) this.results.set(clientId, (seqs = new Set()));
    seqs.add(seq);
  }

  get empty(): boolean {
    return this.versions.length === 0 && this.leases.size === 0 && this.sessions.size === 0 && this.results.size === 0 && !this.auth && !this.members && !this.alarms;
  }

  /** Hand over what changed and start afresh. */
  take(): ChangeTracker {
    const taken = new ChangeTracker();
    [taken.versions, this.versions] = [this.versions, []];
    [taken.leases, this.leases] = [this.leases, new Set()];
    [taken.sessions, this.sessions] = [this.sessions, new Set()];
    [taken.results, this.results] = [this.results, new Map()];
    [taken.auth, this.auth] = [this.auth, false];
    [taken.members, this.members] = [this.members, false];
    [taken.alarms, this.alarms] = [this.alarms, false];
    return taken;
  }
}
