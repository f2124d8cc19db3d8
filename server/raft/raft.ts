/**
 * The Raft consensus core as a pure state machine (Leader and Followers, HeartBeat, Generation
 * Clock, Majority Quorum, High-Water Mark, Replicated Log; pre-vote and check-quorum keep it
 * stable). Input: tick(), step(message), propose(data), proposeConfChange(change),
 * readIndex(requestId), transferLeadership(to), compact(index). Output: ready() then advance().
 * Membership changes are single-server changes (conf.ts).
 *
 * PERSISTING CONTRACT: everything a Ready asks to persist (hardState, snapshot, entries) must be
 * durable before any message of the same Ready is sent, and before its committed entries are
 * applied. The simulator checks every message against what its sender has made durable. No
 * input may arrive between ready() and advance(); the core throws if one does.
 *
 * Must never: do I/O, set timers, read the wall clock or use ambient randomness (time is
 * tick(), randomness is the injected RandomSource, so a seed replays everything); iterate members in anything but sorted
 * order; commit an entry of an older term by counting its replicas (Raft §5.4.2, Figure 8).
 */

import { confChangeProblem, encodeConfChange, learnersOf, membersOf, type ConfChange } from './conf.js';
import { RaftLog, assert } from './log.js';
import { Progress } from './progress.js';
import { hasQuorum, majorityIndex, voteOutcome } from './quorum.js';
import { ReadIndexBook, type PendingRead } from './read-index.js';
import type {
  AppendMessage,
  AppendResponse,
  ConfState,
  Entry,
  HardState,
  HeartbeatMessage,
  HeartbeatResponse,
  Message,
  NodeId,
  PersistedState,
  PlantedBugs,
  ProposeResult,
  RaftConfig,
  RaftStatus,
  RandomSource,
  ReadIndexResult,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotMessage,
  SnapshotMeta,
  SoftState,
  VoteMessage,
  PreVoteMessage,
} from './types.js';

const EMPTY = new Uint8Array(0);

interface HandedOut {
  readonly lastEntry: { readonly index: number; readonly term: number } | null;
  readonly appliedTo: number | null;
  readonly snapshot: Snapshot | null;
}

export class Raft {
  readonly id: NodeId;
  private readonly random: RandomSource;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxEntriesPerAppend: number;
  private readonly maxBytesPerAppend: number;
  private readonly maxInflightAppends: number;
  private readonly maxUncommittedEntries = 16_384;
  private readonly bugs: PlantedBugs;
  /** A learner further behind the leader's last index than this is not promoted. */
  private readonly promoteLagMax: number;

  /** The configuration in use: the latest in the log, committed or not (server/raft/conf.ts). */
  private get conf(): ConfState {
    return this.log.conf;
  }

  private term: number;
  private vote: NodeId | null;
  private leaderId: NodeId | null = null;
  private role: Role = 'follower';
  private readonly log: RaftLog;

  private progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId | null = null;
  /** Ticks since the current leader transfer began; it is abandoned after one election timeout. */
  private transferElapsed = 0;

  private outbox: Message[] = [];
  private readStates: ReadState[] = [];
  private pendingSnapshot: Snapshot | null = null;
  /** Proposals appended since the last Ready: broadcast once, so a loop's proposals share an append. */
  private appendPending = false;

  private readonly reads: ReadIndexBook;

  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private handedOut: HandedOut | null = null;
  /** Ticks left in which a (re)started member refuses votes (quietAfterStart). */
  private startQuietTicks: number;

  constructor(config: RaftConfig, persisted: PersistedState) {
    this.id = config.id;
    this.random = config.random;
    this.electionTicks = config.electionTicks ?? 10;
    this.heartbeatTicks = config.heartbeatTicks ?? 1;
    assert(this.heartbeatTicks < this.electionTicks, 'heartbeatTicks must be below electionTicks');
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.maxEntriesPerAppend = config.maxEntriesPerAppend ?? 256;
    this.maxBytesPerAppend = config.maxBytesPerAppend ?? 1024 * 1024;
    this.maxInflightAppends = config.maxInflightAppends ?? 256;
    this.reads = new ReadIndexBook(config.maxPendingReads ?? 4096);
    this.bugs = config.plantedBugs ?? {};
    this.startQuietTicks = config.quietAfterStart === true ? this.electionTicks : 0;

    this.term = persisted.hardState.term;
    this.vote = persisted.hardState.vote;
    this.log = new RaftLog(persisted.snapshot, persisted.entries, persisted.hardState.commit, config.appliedIndex ?? 0, { voters: [...config.peers].sort() });
    this.promoteLagMax = config.promoteLagMax ?? 1_000;
    this.prevHardState = this.hardState();
    this.becomeFollower(this.term, null);
    this.prevSoftState = this.softState();
  }

  // ─── inputs ────────────────────────────────────────────────────────────────────────────────

  /** One unit of logical time; the caller decides how long a tick is. */
  tick(): void {
    this.assertNoReadyOutstanding();
    if (this.startQuietTicks > 0) this.startQuietTicks--;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  step(m: Message): void {
    this.assertNoReadyOutstanding();
    if (m.to !== this.id) return;
    if (m.term > this.term) {
      if (m.type === 'Vote' || m.type === 'PreVote') {
        const force = m.type === 'Vote' && m.transfer;
        // Check-quorum lease: while we hear from a leader, a disruptive candidate is ignored.
        const inLease = this.checkQuorum && this.leaderId !== null && this.electionElapsed < this.electionTicks;
        if (!force && (inLease || this.startQuietTicks > 0)) return;
      }
      if (m.type === 'PreVote') {
        // A pre-vote never changes our term: that is what makes it harmless.
      } else if (m.type === 'PreVoteResp' && !m.reject) {
        // Granted pre-votes carry the term we asked about; we move to it when we campaign.
      } else if (m.type === 'Append' || m.type === 'Heartbeat' || m.type === 'Snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        // Raft §5.2: only a current leader or a granted vote resets the election timer. Were a
        // higher term alone to reset it, a member with a stale log and a fast clock could keep
        // every timer reset by campaigning over and over, and (without pre-vote) nobody whose
        // log could win would ever get to campaign.
        const electionElapsed = this.role === 'leader' ? 0 : this.electionElapsed;
        this.becomeFollower(m.term, null);
        this.electionElapsed = electionElapsed;
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'Append' || m.type === 'Heartbeat')) {
        // A stale leader cut off from the cluster learns the newer term here and steps down;
        // without this answer, check-quorum plus pre-vote could leave it leading alone.
        this.send({ type: 'AppendResp', to: m.from, term: this.term, reject: false, index: 0, rejectHint: 0, hintTerm: 0 });
      } else if (m.type === 'PreVote') {
        this.send({ type: 'PreVoteResp', to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'Vote' || m.type === 'PreVote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'precandidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  /** Append a client command. Only the leader accepts; others return a leader hint. */
  propose(data: Uint8Array): ProposeResult {
    this.assertNoReadyOutstanding();
    if (this.role !== 'leader') return { ok: false, code: 'NOT_LEADER', leaderHint: this.leaderId };
    if (this.leadTransferee !== null) return { ok: false, code: 'UNAVAILABLE', leaderHint: null };
    if (this.log.lastIndex() - this.log.commitIndex >= this.maxUncommittedEntries) {
      return { ok: false, code: 'UNAVAILABLE', leaderHint: this.id };
    }
    const entry: Entry = { index: this.log.lastIndex() + 1, term: this.term, type: 'normal', data };
    this.appendOwn(entry);
    return { ok: true, index: entry.index, term: entry.term };
  }

  /**
   * Propose one membership change (add a learner, promote a learner, remove a member). Refused
   * unless this member leads, the change before it is committed, and this leadership has
   * committed an entry of its own term (single-server changes, with Ongaro's correction); a
   * learner is promoted only once it is within promoteLagMax entries of the leader's log.
   */
  proposeConfChange(change: ConfChange): ProposeResult | { readonly ok: false; readonly code: 'REFUSED'; readonly reason: string } {
    this.assertNoReadyOutstanding();
    if (this.role !== 'leader') return { ok: false, code: 'NOT_LEADER', leaderHint: this.leaderId };
    if (this.leadTransferee !== null) return { ok: false, code: 'UNAVAILABLE', leaderHint: null };
    if (this.log.confIndex > this.log.commitIndex) return { ok: false, code: 'REFUSED', reason: `the change at index ${this.log.confIndex} is not committed yet: one change at a time` };
    if (this.log.term(this.log.commitIndex) !== this.term && this.bugs.confChangeBeforeTermCommit !== true) return { ok: false, code: 'REFUSED', reason: 'this leader has not committed an entry of its term yet: try again shortly' };
    const problem = confChangeProblem(this.conf, change);
    if (problem !== null) return { ok: false, code: 'REFUSED', reason: problem };
    if (change.op === 'promote') {
      const match = this.progress.get(change.id)?.match ?? 0;
      const lag = this.log.lastIndex() - match;
      // It must hold the latest configuration entry (the one that added it, or a later one): a
      // learner that never answered is not "within the lag" of a short log.
      const held = Math.max(this.log.confIndex, 1);
      if (match < held) return { ok: false, code: 'REFUSED', reason: `${change.id} has not acknowledged the configuration yet (it holds index ${match}; it is unreachable, or starting): it is ${lag} entries behind the leader` };
      if (lag > this.promoteLagMax) return { ok: false, code: 'REFUSED', reason: `${change.id} is ${lag} entries behind the leader (at most ${this.promoteLagMax} to be promoted): let it catch up` };
    }
    const entry: Entry = { index: this.log.lastIndex() + 1, term: this.term, type: 'config', data: encodeConfChange(change) };
    this.appendOwn(entry);
    this.syncProgress();
    return { ok: true, index: entry.index, term: entry.term };
  }

  /**
   * Ask for a linearizable read index. The answer arrives as a ReadState in a later Ready; the
   * caller serves the read once its state machine has applied that index.
   */
  readIndex(requestId: string): ReadIndexResult {
    this.assertNoReadyOutstanding();
    if (this.role === 'leader') return this.leaderReadIndex({ requestId, from: this.id });
    if (this.leaderId === null) return { ok: false, code: 'NOT_LEADER', leaderHint: null };
    this.send({ type: 'ReadIndex', to: this.leaderId, term: this.term, requestId });
    return { ok: true };
  }

  /** Hand leadership to `to` once it has caught up (thesis §3.10). */
  transferLeadership(to: NodeId): void {
    this.assertNoReadyOutstanding();
    if (this.role !== 'leader' || to === this.id || !this.conf.voters.includes(to)) return;
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    // Its own clock: resetting electionElapsed would also reset check-quorum, and repeated
    // transfer requests could then keep a leader cut off from its majority in office.
    this.transferElapsed = 0;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'TimeoutNow', to, term: this.term });
    else this.sendAppend(to);
  }

  /** The caller has saved a snapshot of the state machine at `index`: drop the log up to it. */
  compact(index: number): void {
    this.assertNoReadyOutstanding();
    this.log.compact(index);
  }

  /** The caller reports whether a snapshot it sent to `to` arrived; a failure retries sooner. */
  reportSnapshot(to: NodeId, delivered: boolean): void {
    const pr = this.progress.get(to);
    if (this.role !== 'leader' || pr === undefined || pr.state !== 'snapshot') return;
    if (!delivered) pr.becomeProbe();
  }

  /** Campaign now, as if the election timeout had passed (tests and operator tools). */
  campaign(): void {
    if (this.role !== 'leader') this.startElection(false);
  }

  // ─── output ────────────────────────────────────────────────────────────────────────────────

  hasReady(): boolean {
    return (
      this.appendPending ||
      this.reads.hasQueued() ||
      this.outbox.length > 0 ||
      this.readStates.length > 0 ||
      this.pendingSnapshot !== null ||
      this.log.unstableFrom <= this.log.lastIndex() ||
      this.log.hasCommittedToApply() ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      !sameSoftState(this.softState(), this.prevSoftState)
    );
  }

  ready(): Ready {
    assert(this.handedOut === null, 'ready() called twice without advance()');
    this.flushBatchedWork();
    const hardState = this.hardState();
    const softState = this.softState();
    const entries = this.log.unstableEntries();
    const committedEntries = this.pendingSnapshot !== null ? [] : this.log.committedToApply();
    const rd: Ready = {
      softState: sameSoftState(softState, this.prevSoftState) ? null : softState,
      hardState: sameHardState(hardState, this.prevHardState) ? null : hardState,
      snapshot: this.pendingSnapshot,
      entries,
      messages: this.outbox,
      committedEntries,
      readStates: this.readStates,
    };
    const last = entries[entries.length - 1];
    this.handedOut = {
      lastEntry: last === undefined ? null : { index: last.index, term: last.term },
      appliedTo: committedEntries.length > 0 ? committedEntries[committedEntries.length - 1]!.index : null,
      snapshot: this.pendingSnapshot,
    };
    this.prevHardState = hardState;
    this.prevSoftState = softState;
    this.outbox = [];
    this.readStates = [];
    return rd;
  }

  /**
   * The caller has done everything the last Ready asked. `appliedThrough`: it applied the
   * committed entries only up to this index (its work for the turn was spent); the rest are
   * handed out again by the next Ready. Everything else in the Ready must be done.
   */
  advance(appliedThrough?: number): void {
    const out = this.handedOut;
    assert(out !== null, 'advance() without ready()');
    this.handedOut = null;
    if (out.snapshot !== null) {
      if (this.pendingSnapshot === out.snapshot) this.pendingSnapshot = null;
      this.log.appliedTo(out.snapshot.meta.index);
    }
    if (out.lastEntry !== null) {
      this.log.stableTo(out.lastEntry.index, out.lastEntry.term);
      this.countOwnDurableEntries();
    }
    if (out.appliedTo !== null) {
      assert(appliedThrough === undefined || appliedThrough <= out.appliedTo, `applied through ${String(appliedThrough)}, past the ${out.appliedTo} handed out`);
      this.log.appliedTo(appliedThrough === undefined ? out.appliedTo : Math.max(this.log.appliedIndex, appliedThrough));
    }
  }

  /** The leader a proposal made now would be refused in favour of (propose's NOT_LEADER hint): null when this member leads or knows no leader. */
  get proposalLeaderHint(): NodeId | null {
    return this.role === 'leader' ? null : this.leaderId;
  }

  get status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leaderId: this.leaderId,
      commitIndex: this.log.commitIndex,
      appliedIndex: this.log.appliedIndex,
      lastIndex: this.log.lastIndex(),
      snapshotIndex: this.log.snapshotIndex,
      voters: this.conf.voters,
      learners: learnersOf(this.conf),
    };
  }

  /** How far behind the leader's last index a member is (on the leader; null elsewhere, or for a stranger). */
  lagOf(id: NodeId): number | null {
    if (this.role !== 'leader') return null;
    const pr = this.progress.get(id);
    return pr === undefined ? null : this.log.lastIndex() - (id === this.id ? this.log.lastIndex() : pr.match);
  }

  /** The configuration in use (the latest in the log). */
  get configuration(): ConfState {
    return this.conf;
  }

  /** The configuration in force at `index` (what a snapshot or a compacted base at it records). */
  confAt(index: number): ConfState {
    return this.log.confAt(index);
  }

  /** The term of the entry at `index` as this member holds it (undefined if compacted or absent). */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  snapshotMeta(): SnapshotMeta {
    return { index: this.log.snapshotIndex, term: this.log.snapshotTerm, conf: this.log.confAt(this.log.snapshotIndex) };
  }

  // ─── roles ─────────────────────────────────────────────────────────────────────────────────

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.leaderId = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + this.random.intBelow(this.electionTicks);
    this.leadTransferee = null;
    this.votes = new Map();
    this.progress = new Map();
    this.appendPending = false;
    this.reads.clear();
  }

  private becomeFollower(term: number, leaderId: NodeId | null): void {
    this.reset(term);
    this.role = 'follower';
    this.leaderId = leaderId;
  }

  private becomePreCandidate(): void {
    // Deliberately keeps term and vote: a pre-candidate disturbs nobody until it could win.
    this.role = 'precandidate';
    this.votes = new Map();
    this.leaderId = null;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = 'leader';
    this.leaderId = this.id;
    const next = this.log.lastIndex() + 1;
    for (const member of membersOf(this.conf)) {
      const pr = new Progress(next, this.maxInflightAppends);
      pr.recentActive = true; // give every follower one full timeout before check-quorum counts it
      this.progress.set(member, pr);
    }
    this.progress.get(this.id)?.becomeReplicate();
    this.progress.get(this.id)?.maybeUpdate(this.log.unstableFrom - 1);
    // The no-op lets the leader commit (and so learn its commit index) in its own term.
    this.appendOwn({ index: next, term: this.term, type: 'noop', data: EMPTY });
  }

  /**
   * A member campaigns if it votes in its latest configuration — or in its committed one, while
   * its own removal is not yet committed: it may hold the longest log, and the voters left would
   * refuse one another forever (simulator seed 629). It counts only the votes of its latest
   * configuration; should it win, it leads without counting itself and steps down once the
   * removal commits (thesis §4.2.2).
   */
  private promotable(): boolean {
    return this.conf.voters.includes(this.id) || this.log.confAt(this.log.commitIndex).voters.includes(this.id);
  }

  private startElection(transfer: boolean): void {
    if (!this.promotable()) return;
    if (transfer) this.runCampaign('transfer');
    else this.runCampaign(this.preVote ? 'prevote' : 'vote');
  }

  /**
   * prevote: ask for votes in term+1 without moving to it; vote: a real election; transfer: a
   * real election that voters grant even while they still hear from the old leader.
   */
  private runCampaign(kind: 'prevote' | 'vote' | 'transfer'): void {
    if (kind === 'prevote') this.becomePreCandidate();
    else this.becomeCandidate();
    this.poll(this.id, true);
    if (this.role !== (kind === 'prevote' ? 'precandidate' : 'candidate')) return; // a lone voter wins at once
    for (const to of this.conf.voters) {
      if (to === this.id) continue;
      if (kind === 'prevote') {
        const m: Omit<PreVoteMessage, 'from'> = {
          type: 'PreVote',
          to,
          term: this.term + 1,
          lastLogIndex: this.log.lastIndex(),
          lastLogTerm: this.log.lastTerm(),
        };
        this.send(m);
      } else {
        const m: Omit<VoteMessage, 'from'> = {
          type: 'Vote',
          to,
          term: this.term,
          lastLogIndex: this.log.lastIndex(),
          lastLogTerm: this.log.lastTerm(),
          transfer: kind === 'transfer',
        };
        this.send(m);
      }
    }
  }

  private poll(from: NodeId, granted: boolean): void {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    const outcome = voteOutcome(this.conf.voters, this.votes);
    if (outcome === 'won') {
      if (this.role === 'precandidate') this.runCampaign('vote');
      else this.becomeLeader();
    } else if (outcome === 'lost') {
      this.becomeFollower(this.term, null);
    }
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.startElection(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumRecentlyActive()) {
        this.becomeFollower(this.term, null);
        return;
      }
    }
    if (this.leadTransferee !== null && ++this.transferElapsed >= this.electionTicks) this.leadTransferee = null;
    for (const [, pr] of this.sortedProgress()) {
      if (pr.state === 'snapshot' && ++pr.snapshotTicks >= 2 * this.electionTicks) pr.becomeProbe();
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(null);
    }
  }

  /** Check-quorum: did a majority answer since the last check? Resets the marks for the next. */
  private quorumRecentlyActive(): boolean {
    const active = new Set<NodeId>();
    for (const [id, pr] of this.sortedProgress()) {
      if (id === this.id || pr.recentActive) active.add(id);
      if (id !== this.id) pr.recentActive = false;
    }
    return hasQuorum(this.conf.voters, active);
  }

  // ─── message handling ──────────────────────────────────────────────────────────────────────

  private handleVoteRequest(m: VoteMessage | PreVoteMessage): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.leaderId === null) ||
      (m.type === 'PreVote' && m.term > this.term);
    const upToDate = this.bugs.voteIgnoresLogCheck === true || this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    const responseType = m.type === 'Vote' ? 'VoteResp' : 'PreVoteResp';
    if (canVote && upToDate) {
      this.send({ type: responseType, to: m.from, term: m.term, reject: false });
      if (m.type === 'Vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: responseType, to: m.from, term: this.term, reject: true });
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'Append':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        break;
      case 'Heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case 'Snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case 'PreVoteResp':
        // A grant names the term it was asked for: ours + 1. A grant carrying our own term
        // answers the pre-candidacy before this one and must not start an election now.
        if (this.role === 'precandidate' && (m.reject || m.term === this.term + 1)) this.poll(m.from, !m.reject);
        break;
      case 'VoteResp':
        if (this.role === 'candidate') this.poll(m.from, !m.reject);
        break;
      default:
        break; // TimeoutNow, reads: nobody leads this term yet
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'Append':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleAppend(m);
        break;
      case 'Heartbeat':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleHeartbeat(m);
        break;
      case 'Snapshot':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleSnapshot(m);
        break;
      case 'TimeoutNow':
        this.startElection(true);
        break;
      case 'ReadIndexResp':
        this.readStates.push({ requestId: m.requestId, index: m.index });
        break;
      default:
        break;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'AppendResp':
        this.handleAppendResponse(m);
        break;
      case 'HeartbeatResp':
        this.handleHeartbeatResponse(m);
        break;
      case 'ReadIndex':
        this.leaderReadIndex({ requestId: m.requestId, from: m.from });
        break;
      default:
        break; // stale votes and answers from an election this member already won
    }
  }

  private handleAppend(m: AppendMessage): void {
    if (m.prevLogIndex < this.log.commitIndex) {
      this.send({ type: 'AppendResp', to: m.from, term: this.term, reject: false, index: this.log.commitIndex, rejectHint: 0, hintTerm: 0 });
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevLogIndex, m.prevLogTerm, m.entries);
    if (lastNew !== null) {
      // Only what is known to match the leader may be committed here.
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.send({ type: 'AppendResp', to: m.from, term: this.term, reject: false, index: lastNew, rejectHint: 0, hintTerm: 0 });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.prevLogIndex, this.log.lastIndex()), m.prevLogTerm);
    this.send({
      type: 'AppendResp',
      to: m.from,
      term: this.term,
      reject: true,
      index: m.prevLogIndex,
      rejectHint: hint,
      hintTerm: this.log.term(hint) ?? 0,
    });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    this.log.commitTo(m.commit);
    this.send({ type: 'HeartbeatResp', to: m.from, term: this.term, readRound: m.readRound });
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const meta = m.snapshot.meta;
    if (meta.index <= this.log.commitIndex) {
      this.send({ type: 'AppendResp', to: m.from, term: this.term, reject: false, index: this.log.commitIndex, rejectHint: 0, hintTerm: 0 });
      return;
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      // We already hold the snapshot's last entry, so everything up to it matches. Acknowledge
      // only that far: our entries after it may have come from another leader.
      this.log.commitTo(meta.index);
    } else {
      // Installed bare, the log's base would be state no one holds: the caller's next apply
      // would build on whatever its store had before. Either bytes or the caller's stage.
      assert(m.snapshot.data !== null || m.snapshot.staged === true, 'a snapshot arrived without its state: neither data nor a stage');
      assert(m.snapshot.data === null || m.snapshot.staged !== true, 'a snapshot arrived with both data and a stage: which to install is unclear');
      this.log.restore(meta);
      this.pendingSnapshot = m.snapshot;
    }
    this.send({ type: 'AppendResp', to: m.from, term: this.term, reject: false, index: this.log.commitIndex, rejectHint: 0, hintTerm: 0 });
  }

  private handleAppendResponse(m: AppendResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      const probeFrom = m.hintTerm > 0 ? this.log.findConflictByTerm(m.rejectHint, m.hintTerm) : m.rejectHint;
      if (pr.maybeDecrTo(m.index, probeFrom)) this.sendAppend(m.from);
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    }
    if (this.maybeCommit()) {
      this.broadcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    this.sendRemaining(m.from, pr);
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'TimeoutNow', to: m.from, term: this.term });
    }
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.resumeOnHeartbeat();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    if (m.readRound !== null) this.ackReadRound(m.readRound, m.from);
  }

  // ─── replication ───────────────────────────────────────────────────────────────────────────

  /**
   * A leader's own entries count toward commit only once durable (countOwnDurableEntries): its
   * Appends may leave before its own sync (send-order.ts), and a commit index counting a copy a
   * power cut can still take away would reach followers, which apply it (simulator seed 235: a
   * lone voter committed, its learner applied, the voter's disk lost the entries).
   */
  private appendOwn(entry: Entry): void {
    this.log.append([entry]);
    this.appendPending = true;
  }

  /** After a sync: the leader's durable log counts as its acknowledgement. */
  private countOwnDurableEntries(): void {
    if (this.role !== 'leader') return;
    if (this.progress.get(this.id)?.maybeUpdate(this.log.unstableFrom - 1) !== true) return;
    if (this.maybeCommit() && this.role === 'leader') this.broadcastAppend();
  }

  /** Advance the commit index to what a majority holds, counting only current-term entries. */
  private maybeCommit(): boolean {
    const index = majorityIndex(this.conf.voters, (id) => this.progress.get(id)?.match ?? 0);
    if (index <= this.log.commitIndex) return false;
    if (this.log.term(index) !== this.term && this.bugs.commitOldTermEntries !== true) return false;
    this.log.commitTo(index);
    if (!this.conf.voters.includes(this.id) && this.log.commitIndex >= this.log.confIndex) {
      // This leader's removal is committed: it hands over to the most caught-up voter and steps
      // down (it counted itself in no majority since the removal was appended).
      this.handOverOnRemoval();
      return true;
    }
    if (this.log.term(this.log.commitIndex) === this.term) {
      // The leader now knows its commit index is current; reads held back may go ahead.
      for (const read of this.reads.takeHeld()) this.leaderReadIndex(read);
    }
    return true;
  }

  private sendAppend(to: NodeId): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || to === this.id || pr.isPaused()) return false;
    const prevLogIndex = pr.next - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    if (prevLogTerm === undefined) return this.sendSnapshot(to, pr);
    const entries = pr.next <= this.log.lastIndex() ? this.log.slice(pr.next, this.maxEntriesPerAppend, this.maxBytesPerAppend) : [];
    const m: Omit<AppendMessage, 'from'> = {
      type: 'Append',
      to,
      term: this.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: this.log.commitIndex,
    };
    this.send(m);
    pr.sentAppend(prevLogIndex + entries.length, entries.length);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const meta = this.snapshotMeta();
    this.send({ type: 'Snapshot', to, term: this.term, snapshot: { meta, data: null } });
    pr.becomeSnapshot(meta.index);
    return true;
  }

  /** In replicate state, keep the pipe full up to the inflight bound. */
  private sendRemaining(to: NodeId, pr: Progress): void {
    let guard = this.maxInflightAppends + 1;
    while (pr.state === 'replicate' && pr.next <= this.log.lastIndex() && !pr.isPaused() && guard-- > 0) {
      this.sendAppend(to);
    }
  }

  private broadcastAppend(): void {
    for (const [id, pr] of this.sortedProgress()) {
      if (id === this.id) continue;
      this.sendAppend(id);
      this.sendRemaining(id, pr);
    }
  }

  private broadcastHeartbeat(readRound: number | null): void {
    for (const [id, pr] of this.sortedProgress()) {
      if (id === this.id) continue;
      const m: Omit<HeartbeatMessage, 'from'> = {
        type: 'Heartbeat',
        to: id,
        term: this.term,
        commit: Math.min(pr.match, this.log.commitIndex),
        readRound,
      };
      this.send(m);
    }
  }

  /** Work deferred to the Ready so that everything one loop turn produced shares messages. */
  private flushBatchedWork(): void {
    if (this.role !== 'leader') return;
    if (this.appendPending) {
      this.appendPending = false;
      this.broadcastAppend();
    }
    const round = this.reads.startRound(this.log.commitIndex, this.id);
    if (round !== null) this.broadcastHeartbeat(round);
  }

  // ─── linearizable reads (ReadIndex) ────────────────────────────────────────────────────────

  private leaderReadIndex(read: PendingRead): ReadIndexResult {
    if (this.reads.isFull()) return { ok: false, code: 'UNAVAILABLE', leaderHint: this.id };
    // Alone only as the one voter: a leader outside its configuration must hear from it.
    if ((this.conf.voters.length === 1 && this.conf.voters[0] === this.id) || this.bugs.readIndexWithoutQuorum === true) {
      this.answerRead(read, this.log.commitIndex);
    } else if (this.log.term(this.log.commitIndex) !== this.term) {
      this.reads.hold(read);
    } else {
      this.reads.queue(read);
    }
    return { ok: true };
  }

  private ackReadRound(round: number, from: NodeId): void {
    for (const { read, index } of this.reads.acknowledge(round, from, this.conf.voters)) this.answerRead(read, index);
  }

  private answerRead(read: PendingRead, index: number): void {
    if (read.from === this.id) this.readStates.push({ requestId: read.requestId, index });
    else this.send({ type: 'ReadIndexResp', to: read.from, term: this.term, requestId: read.requestId, index });
  }

  // ─── helpers ───────────────────────────────────────────────────────────────────────────────

  /**
   * Between ready() and advance() the caller is persisting and sending what it was handed; an
   * input now could change or truncate entries it is writing. Refuse it loudly.
   */
  private assertNoReadyOutstanding(): void {
    assert(this.handedOut === null, 'input between ready() and advance(): finish the Ready first');
  }

  private send(m: DistributiveOmit<Message, 'from'>): void {
    this.outbox.push({ ...m, from: this.id } as Message);
  }

  private handOverOnRemoval(): void {
    let best: NodeId | null = null;
    for (const [id, pr] of this.sortedProgress()) {
      if (id !== this.id && this.conf.voters.includes(id) && (best === null || pr.match > this.progress.get(best)!.match)) best = id;
    }
    // The most caught-up voter campaigns at once (entries it lacks were never committed: they
    // needed a majority it is part of). If another voter's log is longer it is refused, and the
    // election timeout elects one as it would have anyway.
    if (best !== null) this.send({ type: 'TimeoutNow', to: best, term: this.term });
    this.becomeFollower(this.term, null);
  }

  /** The leader's progress follows the configuration: new members get one (probing), removed ones lose theirs. */
  private syncProgress(): void {
    if (this.role !== 'leader') return;
    const members = membersOf(this.conf);
    for (const id of members) {
      if (this.progress.has(id)) continue;
      const pr = new Progress(this.log.lastIndex(), this.maxInflightAppends);
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    for (const id of [...this.progress.keys()]) if (!members.includes(id)) this.progress.delete(id);
  }

  private sortedProgress(): [NodeId, Progress][] {
    // Voters and learners, sorted, so this order is the same on every replay.
    const out: [NodeId, Progress][] = [];
    for (const id of membersOf(this.conf)) {
      const pr = this.progress.get(id);
      if (pr !== undefined) out.push([id, pr]);
    }
    return out;
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.commitIndex };
  }

  private softState(): SoftState {
    return { role: this.role, leaderId: this.leaderId, term: this.term };
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leaderId === b.leaderId && a.term === b.term;
}
