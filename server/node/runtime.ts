/**
 * The member runtime: where the Raft core, the write-ahead log, the state store and the peer
 * link meet. Singular Update Queue: every input (a peer's message, a client's proposal or read,
 * a clock tick) is queued, and one turn at a time drains the queue into the core and has each of
 * its Readys carried out (ready-handler.ts: persist, send, apply), then advances the core.
 * Proposals and reads wait in Request Waiting Lists. A follower forwards writes to the leader
 * over the peer link.
 *
 * Must never: feed the core between ready() and advance(); run two turns at once; leave a
 * request waiting once the member stops.
 */

import { ConfChangeRefused, Membership, type MemberInfo } from './membership.js';
export { ConfChangeRefused } from './membership.js';
import type { ConfChange } from '../raft/conf.js';
import { encodeEntry } from '../state/codec.js';
import type { ClientStamp } from '../state/sessions.js';
import type { StateCommand, StateMachine, StateResult } from '../state/state-machine.js';
import type { StateStore } from '../state/state-store.js';
import { Raft } from '../raft/index.js';
import type { PairObserver } from '../storage/snapshot.js';
import type { Entry, Message, NodeId, RaftStatus, RandomSource, SnapshotMessage, SnapshotMeta } from '../raft/types.js';
import type { Wal } from '../storage/wal/wal.js';
import type { RecoveredLog } from '../storage/wal/recover.js';
import { ProposalWaitingList, ReadWaitingList, RequestError, STOPPING, stopping } from './waiting-list.js';
import { LeaseKeeper, type LeaseStatus } from './lease-keeper.js';
import { LeaseReadGate } from './lease-read-gate.js';
import { LeadershipHandOff } from './hand-off.js';
import { SnapshotReceiver } from './snapshot-receiver.js';
import { SnapshotSender } from './snapshot-sender.js';
import { RevisionWaiters } from './revision-waiters.js';
import { ReadyHandler } from './ready-handler.js';
import { tracePath, tracing } from '../metrics/path-trace.js';
import { resolveRuntimeConfig, type RuntimeConfig, type RuntimeOptions } from './runtime-config.js';

export type { RuntimeOptions } from './runtime-config.js';
export type { LeaseRequest, PeerLink, RuntimeClock, RuntimeDeps, RuntimeLogger, RuntimeTimers, RuntimeWal, StoreHome } from './runtime-ports.js';
import type { LeaseRequest, RuntimeCounters, RuntimeDeps } from './runtime-ports.js';
import type { ChangeEvent, LeaseId } from '../state/types.js';

/** A linearizable read whose read index has not come by then fails (retry): it never waits forever. */
const READ_INDEX_WAIT_MS = 5_000;

type Input = () => void;

export class MemberRuntime {
  readonly raft: Raft;
  readonly leaseKeeper: LeaseKeeper;
  private readonly proposals = new ProposalWaitingList<StateResult>();
  private readonly reads = new ReadWaitingList();
  private inbox: Input[] = [];
  private turning = false;
  private turnScheduled = false;
  private ticker: unknown = null;
  private stopped = false;
  private readSeq = 0;
  /**
   * Names this process's read requests apart from an earlier process's of the same member: a
   * leader's answer to a read the old process asked (index then) reached the restarted one and
   * confirmed its own read "n2/1" at that old index — a stale read (simulator seed 393).
   */
  private readonly readPrefix: string;
  private readonly revisionWaiters: RevisionWaiters;
  /** The turn running now, if any (stop() waits for it: its fdatasync may be in flight). */
  private currentTurn: Promise<void> | null = null;
  /** Peers a snapshot is streaming to now (one at a time each). */
  private readonly sender: SnapshotSender;
  /** Proposals queued but not yet handed to the core: failed if the member stops first. */
  private readonly queuedProposals = new Set<(error: Error) => void>();
  private readonly handOff: LeadershipHandOff;
  /** Lease reads: leadership probes in flight (by read request id), and the lease they earned. */
  private readonly leaseGate: LeaseReadGate;
  private readonly receiver: SnapshotReceiver;
  private readonly readyHandler: ReadyHandler;
  private readonly config: RuntimeConfig;
  private readonly membership: Membership;

  constructor(
    options: RuntimeOptions,
    private readonly deps: RuntimeDeps,
  ) {
    this.config = resolveRuntimeConfig(options);
    const config = this.config;
    this.revisionWaiters = new RevisionWaiters(() => this.deps.clock.monotonicMs());
    this.handOff = new LeadershipHandOff(() => this.deps.clock.monotonicMs());
    this.receiver = new SnapshotReceiver({
      home: deps.home,
      logger: deps.logger,
      enqueue: (input) => this.enqueue(input),
      step: (message) => this.raft.step(message),
      stopped: () => this.stopped,
      stepBeforeStaged: config.plantedBugs.stepBeforeStaged === true,
    });
    this.sender = new SnapshotSender({
      home: deps.home,
      link: deps.link,
      logger: deps.logger,
      termAt: (index) => this.raft.termAt(index),
      confAt: (index) => this.raft.confAt(index),
      failed: (to) => this.enqueue(() => this.raft.reportSnapshot(to, false)),
      caughtUp: () => this.readLinearizable(() => undefined),
    });
    this.readPrefix = `${config.id}/${deps.random.intBelow(0x40000000).toString(36)}`;
    this.leaseGate = new LeaseReadGate(this.readPrefix, () => this.deps.clock.monotonicMs(), () => config.leaseReadMs);
    const applied = this.machine.appliedIndex;
    const { recovered } = deps;
    if (applied > recovered.lastIndex) {
      // Only an install whose WAL record a crash lost leaves the store ahead of the whole log.
      throw new Error(`runtime: the state store is at ${applied}, past the end of the log (${recovered.lastIndex}); the member needs a snapshot it cannot yet rebuild on its own`);
    }
    const base = recovered.base?.meta.index ?? 0;
    if (applied < base) {
      // The log starts after what the store holds: the entries between are gone. Going on would
      // leave the state machine short of entries the core believes applied. (Only a staged
      // snapshot lost after its base was logged leads here; RocksDB's start-up recovery
      // finishes a staged install.)
      throw new Error(`runtime: the state store is at ${applied}, below the log's base ${base}; the entries between are gone, so this member must be rebuilt from a peer's snapshot`);
    }
    this.raft = new Raft(
      {
        id: config.id,
        peers: config.peers,
        random: deps.random,
        electionTicks: config.electionTicks,
        heartbeatTicks: config.heartbeatTicks,
        preVote: true,
        checkQuorum: true,
        ...config.core,
        // A leader's read lease rests on followers not voting within an election timeout of its
        // heartbeat; a restarted member has forgotten that heartbeat.
        quietAfterStart: config.leaseReads !== null,
        // Entries the store already holds are not handed out again.
        appliedIndex: applied,
      },
      // The store applies only committed entries: what it holds was committed, even if the commit
      // index the log last synced is lower (the store was synced at a compaction whose log sync a
      // power cut interrupted — simulator seed 44).
      { hardState: { ...recovered.hardState, commit: Math.max(recovered.hardState.commit, applied) }, snapshot: recovered.base?.meta ?? null, entries: recovered.entries },
    );
    this.leaseKeeper = new LeaseKeeper(
      {
        monotonicMs: () => this.deps.clock.monotonicMs(),
        machine: () => this.machine,
        proposeHere: (command) => this.proposeEntry(encodeEntry({ timeMs: this.deps.clock.wallMs(), command }), false),
        warn: (fields, message) => this.deps.logger.warn(fields, message),
      },
      this.electionTimeoutMs,
      config.writeNodesMax,
      config.writePathBytesMax,
      config.plantedBugs.deposedLeaderKeepsDeadlines === true,
    );
    this.membership = new Membership(options.peerUrls ?? new Map(), deps.link, () => this.machine);
    this.membership.learn(recovered.entries);
    const { raft, receiver, sender, proposals, reads, leaseGate, leaseKeeper, handOff } = this;
    const loop = { settleHandOff: () => this.settleHandOff(), releaseRevisionWaiters: () => this.releaseRevisionWaiters(), fail: (error: Error) => this.fail(error), stopped: () => this.stopped };
    this.readyHandler = new ReadyHandler({ ...deps, config, raft, receiver, sender, proposals, reads, leaseGate, leaseKeeper, handOff, ...loop, counters: this.counters, onAppended: (entries) => this.membership.learn(entries) }, recovered.hardState);
  }

  /** How long a confirmed leadership probe lets this leader serve reads alone (0: lease reads off; runtime-config.ts). */
  get leaseReadMs(): number {
    return this.config.leaseReadMs;
  }

  /** The shortest election timeout, in ms. */
  get electionTimeoutMs(): number {
    return this.config.electionTimeoutMs;
  }

  /** The shortest lease TTL granted (twice the longest election timeout; runtime-config.ts). */
  get leaseTtlMinMs(): number {
    return this.config.leaseTtlMinMs;
  }

  /**
   * Keep-alives or a time-to-live, answered by the leader's lease clock: here if this member
   * leads, else forwarded to the leader over the peer channel.
   */
  async leaseRequest(request: LeaseRequest): Promise<LeaseStatus[]> {
    this.refuseIfStopped();
    if (this.leaseKeeper.leading) return this.answerLeaseRequest(request);
    const leader = this.raft.status.leaderId;
    if (leader === null || leader === this.config.id) throw new RequestError('UNAVAILABLE', 'no leader is known to keep leases now', null);
    return this.deps.link.leaseRequest(leader, request);
  }

  /**
   * A lease request, here or forwarded by a follower: answered only if this member leads (never
   * forwarded twice), and only once a quorum confirmed it still does. A leader cut off or frozen
   * while another took over still believes it leads; its keep-alive answers would tell a client
   * its lease lives while the new leader expires it (etcd #15247 had both halves of this).
   */
  async answerLeaseRequest(request: LeaseRequest): Promise<LeaseStatus[]> {
    const notLeading = (): RequestError => new RequestError('NOT_LEADER', 'this member does not lead', this.raft.status.leaderId);
    this.refuseIfStopped();
    if (!this.leaseKeeper.leading) throw notLeading();
    await this.readLinearizable(() => undefined);
    if (!this.leaseKeeper.leading) throw notLeading();
    // Checked after the barrier, so against every grant committed before the request.
    return this.leaseKeeper.answer(request);
  }

  /** False once the member stopped: shut down, or its storage failed (/livez). */
  get running(): boolean {
    return !this.stopped;
  }

  /** What this member counted since start (proposals, leader changes): its metrics read them. */
  readonly counters: RuntimeCounters = { proposalsCommitted: 0, proposalsFailed: 0, leaderChanges: 0 };

  /** Snapshots streamed to followers and installed from a leader since start (for /status). */
  get snapshots(): { readonly sent: number; readonly installed: number } {
    return { sent: this.sender.sent, installed: this.receiver.installed };
  }

  get machine(): StateMachine {
    return this.deps.home.store.machine;
  }

  get status(): RaftStatus {
    return this.raft.status;
  }

  start(): void {
    this.ticker = this.deps.timers.setInterval(() => {
      this.enqueue(() => this.raft.tick());
      if (this.config.leaseReads !== null) this.enqueue(() => this.leaseGate.probe(this.raft.status, this.handOff.active, (requestId) => this.raft.readIndex(requestId).ok));
      this.leaseKeeper.tick();
      this.readyHandler.tick();
      this.reads.failOverdue(this.deps.clock.monotonicMs(), () => new RequestError('UNAVAILABLE', `no leader confirmed the read within ${READ_INDEX_WAIT_MS} ms; try again`, this.raft.status.leaderId));
      this.releaseRevisionWaiters();
      this.settleHandOff();
    }, this.config.tickMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker !== null) this.deps.timers.clearInterval(this.ticker);
    this.failWaiting(STOPPING);
    await this.currentTurn;
    await this.deps.home.store.persist({ sync: true });
    this.deps.wal.close();
  }

  /**
   * Hand leadership to another member before stopping (a clean SIGTERM): resolves once this
   * member no longer leads, or after `timeoutMs` (the caller stops anyway; the others elect).
   */
  handOffLeadership(timeoutMs: number): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    const to = this.raft.status.voters.find((voter) => voter !== this.config.id);
    return this.handOff.begin(this.raft.status.role === 'leader', to, timeoutMs, (transferee) => {
      this.leaseGate.close();
      this.enqueue(() => this.raft.transferLeadership(transferee));
    });
  }

  /** Resolve a hand-off once leadership moved (a role change) or its time ran out (a tick). */
  private settleHandOff(): void {
    this.handOff.settle(this.raft.status.role === 'leader', this.stopped);
  }

  /** A message from a peer. */
  step(message: Message): void {
    this.enqueue(() => this.raft.step(message));
  }

  /**
   * A leader's snapshot arriving in chunks: staged beside the live store while the update loop
   * goes on, then its message stepped into the core, which installs it in a later Ready (or
   * declines it, and the staged copy is thrown away).
   */
  receiveSnapshot(message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    return this.receiver.receive(message, chunks);
  }

  /**
   * One membership change, proposed here — only the leader takes them (NOT_LEADER with its hint
   * elsewhere). Resolves once the change is applied; a change the core refuses (one at a time,
   * not yet committed in its term, a learner too far behind) rejects with ConfChangeRefused.
   */
  proposeConfChange(change: ConfChange): Promise<StateResult> {
    return this.submit(
      () => this.raft.proposeConfChange(change),
      (refused) => (refused.code === 'REFUSED' ? new ConfChangeRefused(refused.reason) : new RequestError(refused.code, refused.code === 'NOT_LEADER' ? 'this member does not lead: membership changes go to the leader' : 'the cluster cannot change now', refused.leaderHint)),
    );
  }

  /** The members of the configuration in use, with role, peer URL and (on the leader) lag. */
  members(): MemberInfo[] {
    return this.membership.list(this.raft.configuration, this.raft.status.leaderId, (name) => this.raft.lagOf(name));
  }

  /** A client write: proposed here if this member leads, else forwarded to the leader. */
  propose(command: StateCommand, client?: ClientStamp, user?: string): Promise<StateResult> {
    const entry = encodeEntry({ timeMs: this.deps.clock.wallMs(), command, ...(client === undefined ? {} : { client }), ...(user === undefined ? {} : { user }) });
    // A follower that knows its leader forwards at once: the core would only refuse it with the
    // same hint a turn later (one event-loop hop on every write through a follower). Not while
    // proposals wait in the queue: those leave in the turn, and a client's pipelined writes must
    // reach the leader in the order they came.
    const leader = this.raft.proposalLeaderHint;
    if (!this.stopped && leader !== null && leader !== this.config.id && this.queuedProposals.size === 0) return this.deps.link.forward(leader, entry);
    return this.proposeEntry(entry, true);
  }

  /** A write a follower forwarded: proposed only if this member leads (never forwarded twice). */
  proposeForwarded(entry: Uint8Array): Promise<StateResult> {
    return this.proposeEntry(entry, false);
  }

  /** A linearizable read (ReadIndex): served once this member has applied the confirmed index. */
  async readLinearizable<T>(read: (machine: StateMachine) => T): Promise<T> {
    this.refuseIfStopped();
    // Within the read lease no other leader can exist: the commit index here is the latest.
    if (this.leaseGate.open(this.raft.status, this.handOff.active) && this.machine.appliedIndex >= this.raft.status.commitIndex) return read(this.machine);
    const requestId = `${this.readPrefix}/${++this.readSeq}`;
    const waiting = this.reads.add(requestId, this.deps.clock.monotonicMs() + READ_INDEX_WAIT_MS);
    this.enqueue(() => {
      const result = this.raft.readIndex(requestId);
      if (!result.ok) {
        this.reads.fail(requestId, new RequestError(result.code, 'no leader can confirm the read now', result.leaderHint));
      }
    });
    await waiting;
    return read(this.machine);
  }

  /** A serializable read: this member's state as it is now. */
  async readSerializable<T>(read: (machine: StateMachine) => T): Promise<T> {
    return this.readNow(read);
  }

  /** `read` of this member's state now, synchronously (what a read already confirmed serves from); refused once stopped. */
  readNow<T>(read: (machine: StateMachine) => T): T {
    this.refuseIfStopped();
    return read(this.machine);
  }

  /** Resolves once this member has applied `revision` (read-your-writes); fails after `timeoutMs`. */
  whenRevision(revision: number, timeoutMs: number): Promise<void> {
    if (this.stopped) return Promise.reject(stopping());
    return this.revisionWaiters.wait(revision, this.machine.revision, timeoutMs);
  }

  /**
   * Everything still waiting when the member stops or fails gets an answer: nothing hangs. A
   * proposal already in the log may yet commit (another leader may carry it on): its outcome is
   * unknown. One still queued never reached the core: certainly not applied.
   */
  private failWaiting(why: string): void {
    const error = new RequestError('UNAVAILABLE', why, null);
    this.proposals.failAll(new RequestError('OUTCOME_UNKNOWN', `${why}; the write was in the log and may still commit`, null));
    this.reads.failAll(error);
    for (const reject of this.queuedProposals) reject(error);
    this.queuedProposals.clear();
    this.revisionWaiters.failAll(error);
    this.settleHandOff();
    this.receiver.settle();
  }

  /** A stopped member (shut down, or its storage failed) serves nothing: its state may not be durable. */
  private refuseIfStopped(): void {
    if (this.stopped) throw stopping();
  }

  private proposeEntry(entry: Uint8Array, mayForward: boolean): Promise<StateResult> {
    return this.submit(
      () => this.raft.propose(entry),
      (refused) => {
        const leader = refused.leaderHint;
        if (mayForward && refused.code === 'NOT_LEADER' && leader !== null && leader !== this.config.id) return this.deps.link.forward(leader, entry);
        return new RequestError(refused.code, refused.code === 'NOT_LEADER' ? 'this member does not lead' : 'the cluster cannot take writes now', leader);
      },
    );
  }

  /**
   * Hand `toCore` to the update loop: accepted, the answer comes once the entry is applied;
   * refused, `refused` says what instead (an error, or another way to an answer).
   */
  private submit<R extends { readonly ok: false }>(toCore: () => { readonly ok: true; readonly index: number; readonly term: number } | R, refused: (why: R) => Error | Promise<StateResult>): Promise<StateResult> {
    if (this.stopped) return Promise.reject(stopping());
    return new Promise<StateResult>((resolve, reject) => {
      this.queuedProposals.add(reject);
      this.enqueue(() => {
        this.queuedProposals.delete(reject);
        const proposed = toCore();
        if (tracing) tracePath(proposed.ok ? 'core.proposed' : 'core.refused', proposed.ok ? proposed.index : 0);
        if (proposed.ok) {
          this.proposals.add(proposed.index, proposed.term).then(
            (result) => {
              this.counters.proposalsCommitted += 1;
              resolve(result);
            },
            (error: Error) => {
              this.counters.proposalsFailed += 1;
              reject(error);
            },
          );
          return;
        }
        const instead = refused(proposed);
        if (instead instanceof Error) reject(instead);
        else instead.then(resolve, reject);
      });
    });
  }

  private enqueue(input: Input): void {
    if (this.stopped) return;
    this.inbox.push(input);
    this.scheduleTurn();
  }

  private scheduleTurn(): void {
    if (this.turnScheduled || this.turning) return;
    this.turnScheduled = true;
    this.deps.timers.defer(() => {
      this.turnScheduled = false;
      this.currentTurn = this.turn();
    });
  }

  /** One turn of the update loop: feed the core, then carry out its Readys until it has none. */
  private async turn(): Promise<void> {
    if (this.turning || this.stopped) return;
    this.turning = true;
    if (tracing) tracePath('turn');
    let yielded = false;
    this.readyHandler.beginTurn();
    try {
      for (;;) {
        // Inputs too within the turn's time: the rest stay queued, first in line next turn.
        const inputs = this.inbox;
        this.inbox = [];
        const started = this.deps.clock.monotonicMs();
        let taken = 0;
        while (taken < inputs.length && (taken === 0 || this.deps.clock.monotonicMs() - started < this.config.turnApplyMsMax)) inputs[taken++]!();
        if (taken < inputs.length) {
          this.inbox = [...inputs.slice(taken), ...this.inbox];
          yielded = true;
        }
        this.readyHandler.noteSlow('inputs', started, { inputs: taken });
        if (!this.raft.hasReady()) break;
        const appliedThrough = await this.readyHandler.handle(this.raft.ready());
        this.raft.advance(appliedThrough ?? undefined);
        this.membership.sync(this.raft.configuration, this.raft.confAt(this.raft.status.commitIndex));
        await this.readyHandler.maybeCompact();
        if (appliedThrough !== null || yielded) {
          // This turn's work is spent: let sockets and timers in, and apply (or take) the rest next turn.
          yielded = true;
          break;
        }
      }
      if (this.deps.wal.wantsSpare) {
        this.deps.wal.prepareSpare().catch((error: Error) => this.deps.logger.warn({ event: 'wal_spare_failed', error: error.message }, 'could not prepare the next WAL segment ahead; the cut will fill it'));
      }
      // The core declined a staged snapshot (it already held that far): the staged copy must
      // not be finished by a restart's recovery.
      await this.receiver.afterTurn();
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.turning = false;
    }
    if (this.inbox.length > 0 || yielded) this.scheduleTurn();
  }

  /** A failed fsync or store write: data believed safe may not be. Stop; never go on. */
  private fail(error: Error): void {
    if (this.stopped) return;
    this.deps.logger.error({ event: 'runtime_failed', error: error.message }, 'the member stops: its storage failed');
    this.stopped = true;
    if (this.ticker !== null) this.deps.timers.clearInterval(this.ticker);
    this.failWaiting('the member failed');
    this.deps.onFatal?.(error);
  }

  private releaseRevisionWaiters(): void {
    this.revisionWaiters.release(this.machine.revision, this.raft.status.leaderId);
  }

  /** A consistent snapshot of this member's store for a client's backup (see SnapshotSender.forClient). */
  snapshotForClient(options: { readonly chunkBytes: number; readonly observe?: PairObserver; readonly linearizable: boolean }): Promise<{ readonly meta: SnapshotMeta; readonly chunks: AsyncIterable<Uint8Array> }> {
    return this.sender.forClient(options);
  }
}
