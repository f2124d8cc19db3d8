/**
 * The member runtime: where the Raft core, the write-ahead log, the state store and the peer
 * link meet. Singular Update Queue: every input (a peer's message, a client's proposal or read,
 * a clock tick) is queued, and one turn at a time drains the queue into the core and carries out
 * its Ready in the order the core's contract demands — persist (one WAL sync per turn: group
 * commit), then send, then apply, then advance. Proposals and reads wait in Request Waiting
 * Lists. A follower forwards writes to the leader over the peer link.
 *
 * Must never: send a message or apply an entry before the Ready that holds it is durable; feed
 * the core between ready() and advance(); let the WAL's low-water mark pass the store's durable
 * applied index.
 */

import { decodeEntry, encodeEntry } from '../state/codec.js';
import type { ClientStamp } from '../state/sessions.js';
import type { StateCommand, StateMachine, StateResult } from '../state/state-machine.js';
import type { StateStore } from '../state/state-store.js';
import { Raft, maySendBeforePersist } from '../raft/index.js';
import type { PairObserver } from '../storage/snapshot.js';
import type { Entry, HardState, Message, NodeId, RaftStatus, RandomSource, Ready, SnapshotMessage, SnapshotMeta } from '../raft/types.js';
import type { Wal } from '../storage/wal/wal.js';
import type { RecoveredLog } from '../storage/wal/recover.js';
import { ProposalWaitingList, ReadWaitingList, RequestError, STOPPING, stopping } from './waiting-list.js';
import { LeaseKeeper, type LeaseStatus } from './lease-keeper.js';
import { LeaseReadGate } from './lease-read-gate.js';
import { LeadershipHandOff } from './hand-off.js';
import { SnapshotReceiver } from './snapshot-receiver.js';
import { SnapshotSender } from './snapshot-sender.js';
import { RevisionWaiters } from './revision-waiters.js';
import { resolveRuntimeConfig, type RuntimeConfig, type RuntimeOptions } from './runtime-config.js';

export type { RuntimeOptions } from './runtime-config.js';
import type { ChangeEvent, LeaseId } from '../state/types.js';

/** A lease question only the leader can answer (it alone keeps lease deadlines). */
export type LeaseRequest = { readonly op: 'keepAlive'; readonly leases: readonly LeaseId[] } | { readonly op: 'timeToLive'; readonly lease: LeaseId };

export interface RuntimeClock {
  /** Milliseconds that never go back (for timers and deadlines). */
  monotonicMs(): number;
  /** Wall-clock milliseconds: the proposer's time carried in each entry (log time). */
  wallMs(): number;
}

export interface RuntimeTimers {
  setInterval(run: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** Run soon, after the current event (a turn of the update loop). */
  defer(run: () => void): void;
}

/** What the runtime asks of the write-ahead log (the Wal, or the simulator's watch over one). */
export type RuntimeWal = Pick<Wal, 'append' | 'setHardState' | 'setBase' | 'write' | 'syncAsync' | 'compact' | 'wantsSpare' | 'prepareSpare' | 'close'>;

/** The member's side of the peer channels. */
export interface PeerLink {
  /** Best effort: a message to a member that is down is dropped (Raft retries). */
  send(message: Message): void;
  /** A client write, as entry bytes, for the leader to propose; answers its result. */
  forward(to: NodeId, entry: Uint8Array): Promise<StateResult>;
  /**
   * Stream a snapshot to `message.to`: `message` (its data null) and then the chunks, paced by
   * the channel. Resolves once all are sent; rejects if the channel fails on the way.
   */
  sendSnapshot(message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** A lease keep-alive or time-to-live for the leader to answer. */
  leaseRequest(to: NodeId, request: LeaseRequest): Promise<LeaseStatus[]>;
}

/** Where the state store lives: it can be replaced whole by an installed snapshot. */
export interface StoreHome {
  readonly store: StateStore;
  /** The store's snapshot now: its applied index, and its chunks (read once, first carrying `base`). */
  snapshot(options?: { readonly chunkBytes?: number; readonly observe?: PairObserver }): Promise<{ readonly appliedIndex: number; chunks(base: SnapshotMeta): AsyncIterable<Uint8Array>; close(): Promise<void> }>;
  /** Receive a snapshot stream beside the live store (staged, durable); answers its base. */
  receive(chunks: AsyncIterable<Uint8Array>): Promise<SnapshotMeta>;
  /** The base of the snapshot staged now and complete, or null. */
  stagedMeta(): SnapshotMeta | null;
  /** Replace the store with the staged snapshot (closed, swapped, reopened). */
  installStaged(): Promise<void>;
  /** Throw away a staged snapshot that will not be installed. */
  discardStaged(): Promise<void>;
}

/** A linearizable read whose read index has not come by then fails (retry): it never waits forever. */
const READ_INDEX_WAIT_MS = 5_000;

/** A part of a turn (its inputs, its apply) taking longer than this is logged with what it did. */
const SLOW_TURN_PART_MS = 100;

export interface RuntimeLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}


export interface RuntimeDeps {
  readonly clock: RuntimeClock;
  readonly timers: RuntimeTimers;
  readonly random: RandomSource;
  readonly wal: RuntimeWal;
  readonly recovered: RecoveredLog;
  readonly home: StoreHome;
  readonly link: PeerLink;
  readonly logger: RuntimeLogger;
  /** The member's storage failed and it stopped (called once). */
  readonly onFatal?: (error: Error) => void;
  /** One applied entry's change events (all at one revision), for the watch hub. Must not throw or wait. */
  readonly onApplied?: (events: readonly ChangeEvent[]) => void;
  /** A leader's snapshot replaced the store: revisions were skipped here. */
  readonly onStoreReplaced?: () => void;
  /** Each committed entry as it is applied (the simulator checks every member applies the same). Must not throw or wait. */
  readonly onEntryApplied?: (entry: Entry) => void;
}

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
  private readonly revisionWaiters: RevisionWaiters;
  private lastDurableIndex: number;
  /** The hard state as last given to the WAL (a commit-only change waits, staged, for the next sync). */
  private writtenHardState: HardState;
  /** The turn running now, if any (stop() waits for it: its fdatasync may be in flight). */
  private currentTurn: Promise<void> | null = null;
  /** Peers a snapshot is streaming to now (one at a time each). */
  private readonly sender: SnapshotSender;
  /** Proposals queued but not yet handed to the core: failed if the member stops first. */
  private readonly queuedProposals = new Set<(error: Error) => void>();
  private persistScheduled = false;
  private readonly handOff: LeadershipHandOff;
  /** Lease reads: leadership probes in flight (by read request id), and the lease they earned. */
  private readonly leaseGate: LeaseReadGate;
  private readonly receiver: SnapshotReceiver;
  /** Applied entries since the last compaction mark, [index, bytes], oldest first: what the log holds above it. */
  private appliedSizes: [number, number][] = [];
  private appliedBytesSinceDurable = 0;
  /** Work applied in this turn (node changes + entries); past turnChangesMax the turn yields. */
  private turnChanges = 0;
  /** Time spent applying in this turn; past turnApplyMsMax the turn yields. */
  private turnApplyMs = 0;
  private readonly config: RuntimeConfig;

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
      voters: () => this.raft.status.voters,
      failed: (to) => this.enqueue(() => this.raft.reportSnapshot(to, false)),
      caughtUp: () => this.readLinearizable(() => undefined),
    });
    this.leaseGate = new LeaseReadGate(config.id, () => this.deps.clock.monotonicMs(), () => config.leaseReadMs);
    const applied = this.machine.appliedIndex;
    this.lastDurableIndex = applied;
    const { recovered } = deps;
    this.writtenHardState = recovered.hardState;
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
    );
  }

  /**
   * How long after issuing a confirmed leadership probe this leader may serve reads alone (0:
   * lease reads are off). The followers that confirmed it will not vote for another for
   * (electionTicks − 1) of their ticks; their clocks may run faster by driftPercent.
   */
  get leaseReadMs(): number {
    return this.config.leaseReadMs;
  }

  /** The shortest election timeout, in ms. */
  get electionTimeoutMs(): number {
    return this.config.electionTimeoutMs;
  }

  /**
   * The shortest lease TTL granted: twice the longest election timeout (elections take 1–2
   * timeouts), so a lease outlives the leaderless time a failover can take.
   */
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

  /** A lease request a follower forwarded: answered only if this member leads (never forwarded twice). */
  answerLeaseRequest(request: LeaseRequest): LeaseStatus[] {
    this.refuseIfStopped();
    if (!this.leaseKeeper.leading) throw new RequestError('NOT_LEADER', 'this member does not lead', this.raft.status.leaderId);
    return request.op === 'keepAlive' ? this.leaseKeeper.keepAlive(request.leases) : [this.leaseKeeper.timeToLive(request.lease)];
  }

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

  /** A client write: proposed here if this member leads, else forwarded to the leader. */
  propose(command: StateCommand, client?: ClientStamp): Promise<StateResult> {
    const entry = encodeEntry({ timeMs: this.deps.clock.wallMs(), command, ...(client === undefined ? {} : { client }) });
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
    const requestId = `${this.config.id}/${++this.readSeq}`;
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
    if (this.stopped) return Promise.reject(stopping());
    return new Promise<StateResult>((resolve, reject) => {
      this.queuedProposals.add(reject);
      this.enqueue(() => {
        this.queuedProposals.delete(reject);
        const proposed = this.raft.propose(entry);
        if (proposed.ok) {
          this.proposals.add(proposed.index, proposed.term).then(resolve, reject);
          return;
        }
        const leader = proposed.leaderHint;
        if (mayForward && proposed.code === 'NOT_LEADER' && leader !== null && leader !== this.config.id) {
          this.deps.link.forward(leader, entry).then(resolve, reject);
          return;
        }
        reject(new RequestError(proposed.code, proposed.code === 'NOT_LEADER' ? 'this member does not lead' : 'the cluster cannot take writes now', leader));
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
    let yielded = false;
    this.turnChanges = 0;
    this.turnApplyMs = 0;
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
        this.noteSlow('inputs', started, { inputs: taken });
        if (!this.raft.hasReady()) break;
        const appliedThrough = await this.handle(this.raft.ready());
        this.raft.advance(appliedThrough ?? undefined);
        await this.maybeCompact();
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

  /**
   * Carry out one Ready. Answers null, or the index applied through when the turn's work ran out
   * before every committed entry was applied (the rest come again in the next Ready).
   */
  private async handle(rd: Ready): Promise<number | null> {
    const { wal, home, link } = this.deps;
    // 1. Persist: one batch, one fdatasync (group commit) — none when only the commit index
    //    moved (a member relearns it from the leader). A leader's appends leave before its own
    //    fdatasync, so followers write in parallel with it (send-order.ts).
    if (rd.snapshot !== null) {
      this.receiver.check(rd.snapshot.meta);
      // A store batch built on a turn after this one would land on the store being replaced.
      if (this.persistScheduled) {
        this.persistScheduled = false;
        await home.store.persist({ sync: false });
      }
      // The log's new base is durable before the store is swapped: a crash between the two
      // leaves a complete staged store that start-up recovery finishes installing. (Swapped
      // first, a crash before the WAL's sync left a store ahead of its log: a member that could
      // not start.)
      wal.setBase({ meta: rd.snapshot.meta, replacesLog: true });
      await wal.syncAsync();
      await this.receiver.install(rd.snapshot.meta);
      this.deps.onStoreReplaced?.();
      // Whether a proposal below the snapshot committed is inside the snapshot, not in any answer here.
      this.proposals.failThrough(rd.snapshot.meta.index, new RequestError('OUTCOME_UNKNOWN', "a leader's snapshot replaced the log before the write's answer was known", this.raft.status.leaderId));
    }
    const durableTerm = this.writtenHardState.term;
    const mustSync = rd.snapshot !== null || rd.entries.length > 0 || (rd.hardState !== null && (rd.hardState.term !== durableTerm || rd.hardState.vote !== this.writtenHardState.vote));
    const appendStarted = this.deps.clock.monotonicMs();
    if (rd.entries.length > 0) wal.append(rd.entries);
    this.noteSlow('append', appendStarted, { entries: rd.entries.length });
    if (rd.hardState !== null) {
      wal.setHardState(rd.hardState);
      this.writtenHardState = rd.hardState;
    }
    let later: Message[] = [...rd.messages];
    if (mustSync) {
      later = [];
      for (const message of rd.messages) {
        if (maySendBeforePersist(message, durableTerm) || (this.config.plantedBugs.sendBeforeSync === true && message.type !== 'Snapshot')) link.send(message);
        else later.push(message);
      }
      await wal.syncAsync();
    }
    // A commit-only change is not written on its own: it waits, staged, for the next sync. (A
    // member relearns its commit index from the leader, and the store's applied index bounds it
    // from below at a restart. Written unsynced, a power cut could tear it while keeping the
    // batch after it: a log damaged in its middle, which no member starts on — simulator seed 39.)
    // 2. Send.
    for (const message of later) {
      if (message.type === 'Snapshot') this.sender.toFollower(message);
      else link.send(message);
    }
    // 3. Apply, within the turn's work bound: the entries beyond it wait for the next turn.
    let appliedThrough: number | null = null;
    if (this.config.plantedBugs.applyBeforeCommit === true && this.raft.status.role === 'leader') for (const entry of rd.entries) if (entry.index === this.machine.appliedIndex + 1) this.apply(entry);
    const applyStarted = this.deps.clock.monotonicMs();
    const changesBefore = this.turnChanges;
    for (const entry of rd.committedEntries) {
      // At least one entry per turn; then, past the turn's work or time, the rest wait.
      const spentMs = this.turnApplyMs + (this.deps.clock.monotonicMs() - applyStarted);
      if (this.turnChanges > 0 && (this.turnChanges >= this.config.turnChangesMax || spentMs >= this.config.turnApplyMsMax)) {
        appliedThrough = entry.index - 1;
        break;
      }
      this.turnChanges += 1 + this.apply(entry);
    }
    this.turnApplyMs += this.deps.clock.monotonicMs() - applyStarted;
    this.noteSlow('apply', applyStarted, { entries: rd.committedEntries.length, changes: this.turnChanges - changesBefore, yielded: appliedThrough !== null });
    // The store is written behind the apply (the WAL holds everything above its durable index),
    // after the answers have gone out (building the batch is not on a client's path); a failed
    // write stops the member like a failed fsync.
    if (rd.committedEntries.length > 0) this.persistSoon();
    for (const rs of rd.readStates) {
      if (!this.leaseGate.confirmed(rs.requestId, this.raft.status, this.handOff.active)) this.reads.readIndex(rs.requestId, rs.index);
    }
    this.reads.applied(this.machine.appliedIndex);
    this.releaseRevisionWaiters();
    if (rd.softState !== null) {
      const { role, leaderId } = rd.softState;
      this.leaseGate.close();
      this.deps.logger.info({ event: 'role_changed', role, leader: leaderId, term: this.raft.status.term }, leaderId === null ? `now ${role}, no leader known` : `now ${role}, leader ${leaderId}`);
      if (role === 'leader' && this.leaseKeeper.term !== this.raft.status.term) this.leaseKeeper.becameLeader(this.raft.status.term);
      if (role !== 'leader' && this.leaseKeeper.leading) this.leaseKeeper.stoppedLeading();
      this.settleHandOff();
    }
    if (rd.softState !== null && rd.softState.role !== 'leader') {
      const lost = new RequestError('NOT_LEADER', 'leadership changed before the request was confirmed', rd.softState.leaderId);
      this.reads.failUnconfirmed(lost);
    }
    return appliedThrough;
  }

  /** A piece of a turn that held the event loop past SLOW_TURN_PART_MS is logged with what it did. */
  private noteSlow(part: string, startedMs: number, what: Record<string, unknown>): void {
    const tookMs = this.deps.clock.monotonicMs() - startedMs;
    if (tookMs > SLOW_TURN_PART_MS) this.deps.logger.warn({ event: 'slow_turn', part, tookMs: Math.round(tookMs), ...what }, `a turn's ${part} held the event loop for ${Math.round(tookMs)} ms`);
  }

  /** One store batch for everything applied since the last, once this event's answers are sent. */
  private persistSoon(): void {
    if (this.persistScheduled) return;
    this.persistScheduled = true;
    this.deps.timers.defer(() => {
      if (!this.persistScheduled || this.stopped) return; // done meanwhile (before a snapshot install)
      this.persistScheduled = false;
      const started = this.deps.clock.monotonicMs();
      this.deps.home.store.persist({ sync: false }).catch((error: Error) => this.fail(error));
      this.noteSlow('store batch', started, {});
    });
  }

  private releaseRevisionWaiters(): void {
    this.revisionWaiters.release(this.machine.revision, this.raft.status.leaderId);
  }

  /** Apply one committed entry; answers how many node changes it made (its share of the turn's work). */
  private apply(entry: Entry): number {
    if (entry.index <= this.machine.appliedIndex) return 0; // the store already holds it
    // A leader's no-op (or a config entry) still takes its index: the state machine refuses the
    // unknown op, changes nothing, and moves its applied index on (log time stays where it is).
    const body = entry.type === 'normal' && entry.data.length > 0 ? decodeEntry(entry.data) : { timeMs: 0, command: { op: 'noop' } };
    this.deps.onEntryApplied?.(entry);
    const { result, events } = this.machine.apply({ index: entry.index, ...body });
    this.appliedSizes.push([entry.index, entry.data.length]);
    this.appliedBytesSinceDurable += entry.data.length;
    if (events.length > 0) this.deps.onApplied?.(events);
    this.proposals.applied(entry.index, entry.term, result, this.raft.status.leaderId);
    return events.length;
  }

  /** A consistent snapshot of this member's store for a client's backup (see SnapshotSender.forClient). */
  snapshotForClient(options: { readonly chunkBytes: number; readonly observe?: PairObserver; readonly linearizable: boolean }): Promise<{ readonly meta: SnapshotMeta; readonly chunks: AsyncIterable<Uint8Array> }> {
    return this.sender.forClient(options);
  }

  /**
   * Every snapshotEvery entries or snapshotBytes of them: the store made durable, then the log's
   * low-water mark moved up to it, keeping at most keepEntries entries and snapshotBytes / 2
   * bytes below for followers a little behind.
   */
  private async maybeCompact(): Promise<void> {
    const applied = this.machine.appliedIndex;
    if (applied - this.lastDurableIndex < this.config.snapshotEvery && this.appliedBytesSinceDurable < this.config.snapshotBytes) return;
    await this.deps.home.store.persist({ sync: true });
    this.lastDurableIndex = applied;
    this.appliedBytesSinceDurable = 0;
    let mark = applied - this.config.keepEntries;
    let kept = 0;
    for (let i = this.appliedSizes.length - 1; i >= 0; i--) {
      const [index, bytes] = this.appliedSizes[i]!;
      if (index <= mark || kept + bytes > this.config.snapshotBytes / 2) {
        mark = Math.max(mark, index);
        break;
      }
      kept += bytes;
    }
    this.appliedSizes = this.appliedSizes.filter(([index]) => index > mark);
    const term = this.raft.termAt(mark);
    if (mark <= this.raft.status.snapshotIndex || term === undefined) return;
    this.raft.compact(mark);
    this.deps.wal.compact({ index: mark, term, conf: { voters: this.raft.status.voters } });
  }
}
