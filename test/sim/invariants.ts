/**
 * The safety properties of Raft (paper Figure 3), checked while the simulation runs:
 * election safety, log matching, leader completeness, state machine safety, commit index
 * never going back, applied never ahead of commit, and the persisting contract (no message
 * gets ahead of its sender's disk). Each check is incremental so it can run after every step.
 *
 * Must never: report a violation that Raft allows (e.g. a stale candidate winning an old term
 * after the cluster moved on), or mutate what it observes.
 */

import type { Entry, Message, NodeId, RaftStatus } from '../../server/raft/index.js';
import type { DurableView } from './watched-wal.js';

export type Property =
  | 'election safety'
  | 'log matching'
  | 'leader completeness'
  | 'state machine safety'
  | 'commit monotonic'
  | 'applied <= committed'
  | 'persist before send'
  | 'linearizability'
  | 'liveness: leader'
  | 'liveness: client operations'
  | 'liveness: convergence'
  | 'apply order'
  | 'exactly once'
  | 'lease safety'
  | 'watch guarantees'
  | 'liveness: lease expiry'
  | 'recovery'
  | 'runtime assertion'
  | 'core assertion';

export class Violation extends Error {
  constructor(
    readonly property: Property,
    readonly detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = 'Violation';
  }
}

interface CommittedEntry {
  readonly term: number;
  /** The lowest current term of any member seen holding it committed: when it was committed, at the latest. */
  commitTerm: number;
}

/** An entry as a string: its bytes in hex (entries are binary; decoded as text, two could read alike). */
function entryIdentity(e: Entry): string {
  return `${e.term}|${e.type}|${Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString('hex')}`;
}

export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** (index, term) → what that entry is and the term of its predecessor: log matching by induction. */
  private readonly entryRegistry = new Map<string, { identity: string; prevTerm: number }>();
  private readonly committed = new Map<number, CommittedEntry>();
  private maxCommitted = 0;
  private readonly applied = new Map<number, string>();
  private readonly lastCommit = new Map<NodeId, number>();
  private readonly wasLeader = new Map<NodeId, number>();

  /** A member (re)started: its commit index restarts from what it persisted. */
  onStart(id: NodeId, persistedCommit: number): void {
    this.lastCommit.set(id, persistedCommit);
    this.wasLeader.delete(id);
  }

  /** Entries are about to be persisted (before the write) on a log whose terms are `termAt`: check them against every other log. */
  onPersistEntries(id: NodeId, termAt: (index: number) => number | undefined, entries: readonly Entry[]): void {
    let prevTerm: number | undefined;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      prevTerm = k === 0 ? termAt(e.index - 1) : entries[k - 1]!.term;
      if (prevTerm === undefined) throw new Violation('log matching', `${id} persists ${e.index} with no entry before it`);
      const key = `${e.index}:${e.term}`;
      const identity = entryIdentity(e);
      const known = this.entryRegistry.get(key);
      if (known === undefined) {
        this.entryRegistry.set(key, { identity, prevTerm });
      } else if (known.identity !== identity || known.prevTerm !== prevTerm) {
        throw new Violation(
          'log matching',
          `${id} holds entry ${key} as "${identity}" after term ${prevTerm}; another log has "${known.identity}" after term ${known.prevTerm}`,
        );
      }
    }
  }

  /** A message is leaving `id`: everything it claims must already be on `disk`. */
  onSend(id: NodeId, disk: DurableView, m: Message): void {
    const durable = disk.hardState;
    if (m.term > durable.term && m.type !== 'PreVote' && m.type !== 'PreVoteResp') {
      throw new Violation('persist before send', `${id} sent ${m.type} at term ${m.term} with term ${durable.term} on disk`);
    }
    // A claim made in a term the disk has already left behind is moot: this member can never act
    // in that term again, so a vote or acknowledgement from it cannot be contradicted after a crash.
    if (durable.term > m.term) return;
    if (m.type === 'VoteResp' && !m.reject && (durable.vote !== m.to || durable.term !== m.term)) {
      throw new Violation('persist before send', `${id} granted its vote to ${m.to} in term ${m.term} but its disk says ${durable.vote}@${durable.term}`);
    }
    if (m.type === 'Vote' && (durable.vote !== id || durable.term !== m.term)) {
      throw new Violation('persist before send', `${id} campaigned in term ${m.term} without a durable vote for itself`);
    }
    if (m.type === 'AppendResp' && !m.reject && m.index > disk.lastIndex()) {
      throw new Violation('persist before send', `${id} acknowledged index ${m.index} with only ${disk.lastIndex()} on disk`);
    }
  }

  /** A member applied `entry` to its state machine. */
  onApply(id: NodeId, entry: Entry): void {
    const identity = entryIdentity(entry);
    const known = this.applied.get(entry.index);
    if (known === undefined) this.applied.set(entry.index, identity);
    else if (known !== identity) {
      throw new Violation('state machine safety', `${id} applied "${identity}" at index ${entry.index}; another member applied "${known}"`);
    }
  }

  /** A member installed a snapshot ending at (index, term). */
  onInstallSnapshot(id: NodeId, index: number, term: number): void {
    const known = this.applied.get(index);
    if (known !== undefined && !known.startsWith(`${term}|`)) {
      throw new Violation('state machine safety', `${id} installed a snapshot at ${index}/${term}; another member applied "${known}" there`);
    }
  }

  /** After every step: per-member checks, then leadership and commitment across members. */
  afterStep(members: Iterable<{ readonly id: NodeId; readonly status: RaftStatus; termAt(i: number): number | undefined; readonly appliedIndex: number }>): void {
    for (const m of members) {
      const s = m.status;
      const last = this.lastCommit.get(m.id) ?? 0;
      if (s.commitIndex < last) throw new Violation('commit monotonic', `${m.id} commit went from ${last} to ${s.commitIndex}`);
      if (s.appliedIndex > s.commitIndex || m.appliedIndex > s.commitIndex) {
        throw new Violation('applied <= committed', `${m.id} applied ${Math.max(s.appliedIndex, m.appliedIndex)} with commit ${s.commitIndex}`);
      }
      for (let i = last + 1; i <= s.commitIndex; i++) this.noteCommitted(m.id, i, m.termAt(i), s.term);
      this.lastCommit.set(m.id, s.commitIndex);

      if (s.role === 'leader') {
        const leader = this.leaderOfTerm.get(s.term);
        if (leader === undefined) this.leaderOfTerm.set(s.term, m.id);
        else if (leader !== m.id) throw new Violation('election safety', `${leader} and ${m.id} both lead term ${s.term}`);
        if (this.wasLeader.get(m.id) !== s.term) {
          this.wasLeader.set(m.id, s.term);
          this.checkLeaderCompleteness(m.id, s, (i) => m.termAt(i));
        }
      }
    }
  }

  private noteCommitted(id: NodeId, index: number, term: number | undefined, memberTerm: number): void {
    const known = this.committed.get(index);
    if (term === undefined) {
      // Committed through a snapshot: its entries were checked when applied elsewhere.
      if (known !== undefined) known.commitTerm = Math.min(known.commitTerm, memberTerm);
      return;
    }
    if (known === undefined) {
      this.committed.set(index, { term, commitTerm: memberTerm });
      this.maxCommitted = Math.max(this.maxCommitted, index);
    } else if (known.term !== term) {
      throw new Violation('state machine safety', `${id} committed index ${index} in term ${term}; it was committed in term ${known.term} before`);
    } else {
      known.commitTerm = Math.min(known.commitTerm, memberTerm);
    }
  }

  /** Raft §5.4: a leader of term T holds every entry committed in a term before T. */
  private checkLeaderCompleteness(id: NodeId, s: RaftStatus, termAt: (i: number) => number | undefined): void {
    for (let i = s.snapshotIndex + 1; i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (c === undefined || c.commitTerm >= s.term) continue;
      const mine = termAt(i);
      if (mine !== c.term) {
        throw new Violation(
          'leader completeness',
          `${id} leads term ${s.term} but holds ${mine === undefined ? 'nothing' : `term ${mine}`} at index ${i}, committed with term ${c.term}`,
        );
      }
    }
  }
}
