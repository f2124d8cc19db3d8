/**
 * The Ready handler: carries out each Ready the core hands the update loop, in the order the
 * core's persisting contract demands — persist (a leader's snapshot base, then entries and hard
 * state under one WAL sync), send, apply within the turn's work bound, then the read states and
 * a change of role — and after the core's advance moves the log's low-water mark up behind a
 * durable store. The runtime calls it between ready() and advance(), one Ready at a time.
 *
 * Pattern: Write-Ahead Log with group commit (one fdatasync per Ready); Low-Water Mark.
 *
 * Must never: send a message or apply an entry before the Ready that holds it is durable (but a
 * leader's own-term Appends and Heartbeats: send-order.ts); write a commit-only hard state on its
 * own (it waits, staged, for the next sync); let the WAL's low-water mark pass the store's
 * durable applied index.
 */

import { decodeEntry } from '../state/codec.js';
import { decodeConfChange } from '../raft/conf.js';
import type { StateMachine, StateResult } from '../state/state-machine.js';
import { maySendBeforePersist, type Raft } from '../raft/index.js';
import type { Entry, HardState, Message, NodeId, Ready } from '../raft/types.js';
import { RequestError, type ProposalWaitingList, type ReadWaitingList } from './waiting-list.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { LeaseReadGate } from './lease-read-gate.js';
import type { LeadershipHandOff } from './hand-off.js';
import type { SnapshotReceiver } from './snapshot-receiver.js';
import type { SnapshotSender } from './snapshot-sender.js';
import type { RuntimeConfig } from './runtime-config.js';
import type { RuntimeDeps } from './runtime.js';
import type { RuntimeCounters } from './runtime-ports.js';
import { tracePath, tracing } from '../metrics/path-trace.js';

/** A part of a turn (its inputs, its apply) taking longer than this is logged with what it did. */
const SLOW_TURN_PART_MS = 100;

/**
 * The store is written behind the apply in batches: once this many entries or bytes were applied
 * since the last batch, right after the turn; below that, at the next tick. One RocksDB batch per
 * put at one request in flight cost each member ~25 µs of CPU on the path; the WAL holds every
 * entry above the store's durable index, so a later batch loses nothing in a crash (it is
 * replayed), and the pending changes are bounded by these and by one tick of applies. Not
 * bigger: building a batch holds the event loop (a few µs per key), and at 256 requests in flight
 * 1,000-entry batches showed in the p99.
 */
const STORE_BATCH_ENTRIES = 256;
const STORE_BATCH_BYTES = 256 * 1024;

export interface ReadyHandlerDeps extends Pick<RuntimeDeps, 'clock' | 'timers' | 'wal' | 'home' | 'link' | 'logger' | 'onApplied' | 'onStoreReplaced' | 'onEntryApplied'> {
  /** Entries handed to the WAL (the runtime learns new members' URLs from configuration entries). */
  readonly onAppended?: (entries: readonly Entry[]) => void;
  readonly config: Pick<RuntimeConfig, 'plantedBugs' | 'turnChangesMax' | 'turnApplyMsMax' | 'snapshotEvery' | 'snapshotBytes' | 'keepEntries'>;
  readonly raft: Pick<Raft, 'status' | 'termAt' | 'confAt' | 'compact'>;
  readonly receiver: Pick<SnapshotReceiver, 'check' | 'install'>;
  readonly sender: Pick<SnapshotSender, 'toFollower'>;
  readonly proposals: Pick<ProposalWaitingList<StateResult>, 'applied' | 'failThrough'>;
  readonly reads: Pick<ReadWaitingList, 'readIndex' | 'applied' | 'failUnconfirmed'>;
  readonly leaseGate: Pick<LeaseReadGate, 'confirmed' | 'close'>;
  readonly leaseKeeper: Pick<LeaseKeeper, 'term' | 'leading' | 'becameLeader' | 'stoppedLeading'>;
  readonly handOff: Pick<LeadershipHandOff, 'active'>;
  /** Resolve a hand-off if leadership moved. */
  settleHandOff(): void;
  /** Leader changes are counted here (metrics). */
  readonly counters: Pick<RuntimeCounters, 'leaderChanges'>;
  /** Resolve the reads waiting for a revision this apply reached. */
  releaseRevisionWaiters(): void;
  /** A store write failed: the member stops. */
  fail(error: Error): void;
  /** Whether the member stopped (its stop() writes the store itself). */
  stopped(): boolean;
}

export class ReadyHandler {
  /** The hard state as last given to the WAL (a commit-only change waits, staged, for the next sync). */
  private writtenHardState: HardState;
  /** The store's applied index as last made durable: the log's low-water mark stays at or below it. */
  private lastDurableIndex: number;
  /** Applied entries since the last compaction mark, [index, bytes], oldest first: what the log holds above it. */
  private appliedSizes: [number, number][] = [];
  private appliedBytesSinceDurable = 0;
  private persistScheduled = false;
  /** Applied since the last store batch was taken: a batch waits for the next tick until these grow past the bounds. */
  private unwrittenEntries = 0;
  private unwrittenBytes = 0;
  /** A snapshot is replacing the store: no store batch may start. */
  private installing = false;
  /** The leader the last soft state named, to count changes of it. */
  private knownLeader: NodeId | null = null;
  /** Work applied in this turn (node changes + entries); past turnChangesMax the turn yields. */
  private turnChanges = 0;
  /** Time spent applying in this turn; past turnApplyMsMax the turn yields. */
  private turnApplyMs = 0;

  constructor(
    private readonly deps: ReadyHandlerDeps,
    /** The log's hard state as recovered at start. */
    recoveredHardState: HardState,
  ) {
    this.writtenHardState = recoveredHardState;
    this.lastDurableIndex = this.machine.appliedIndex;
  }

  private get machine(): StateMachine {
    return this.deps.home.store.machine;
  }

  /** A new turn: its work bound starts afresh. */
  beginTurn(): void {
    this.turnChanges = 0;
    this.turnApplyMs = 0;
  }

  /**
   * Carry out one Ready. Answers null, or the index applied through when the turn's work ran out
   * before every committed entry was applied (the rest come again in the next Ready).
   */
  async handle(rd: Ready): Promise<number | null> {
    const { wal, home, link } = this.deps;
    const { raft, config } = this.deps;
    // 1. Persist: one batch, one fdatasync (group commit) — none when only the commit index
    //    moved (a member relearns it from the leader). A leader's appends leave before its own
    //    fdatasync, so followers write in parallel with it (send-order.ts).
    if (rd.snapshot !== null) {
      this.deps.receiver.check(rd.snapshot);
      // A store batch built on a turn after this one would land on the store being replaced:
      // what is pending goes now, and no tick starts one until the new store is in place.
      this.installing = true;
      if (this.persistScheduled || this.unwrittenEntries > 0) {
        this.persistScheduled = false;
        this.unwrittenEntries = 0;
        this.unwrittenBytes = 0;
        await home.store.persist({ sync: false });
      }
      // The log's new base is durable before the store is swapped: a crash between the two
      // leaves a complete staged store that start-up recovery finishes installing. (Swapped
      // first, a crash before the WAL's sync left a store ahead of its log: a member that could
      // not start.)
      wal.setBase({ meta: rd.snapshot.meta, replacesLog: true });
      await wal.syncAsync();
      await this.deps.receiver.install(rd.snapshot.meta);
      this.installing = false;
      this.deps.onStoreReplaced?.();
      // Whether a proposal below the snapshot committed is inside the snapshot, not in any answer here.
      this.deps.proposals.failThrough(rd.snapshot.meta.index, new RequestError('OUTCOME_UNKNOWN', "a leader's snapshot replaced the log before the write's answer was known", raft.status.leaderId));
    }
    const durableTerm = this.writtenHardState.term;
    const mustSync = rd.snapshot !== null || rd.entries.length > 0 || (rd.hardState !== null && (rd.hardState.term !== durableTerm || rd.hardState.vote !== this.writtenHardState.vote));
    const appendStarted = this.deps.clock.monotonicMs();
    if (rd.entries.length > 0) {
      wal.append(rd.entries);
      this.deps.onAppended?.(rd.entries);
    }
    this.noteSlow('append', appendStarted, { entries: rd.entries.length });
    if (rd.hardState !== null) {
      wal.setHardState(rd.hardState);
      this.writtenHardState = rd.hardState;
    }
    let later: Message[] = [...rd.messages];
    if (mustSync) {
      later = [];
      for (const message of rd.messages) {
        if (maySendBeforePersist(message, durableTerm) || (config.plantedBugs.sendBeforeSync === true && message.type !== 'Snapshot')) link.send(message);
        else later.push(message);
      }
      await wal.syncAsync();
      if (tracing && rd.entries.length > 0) tracePath('synced', rd.entries[rd.entries.length - 1]!.index);
    }
    // A commit-only change is not written on its own: it waits, staged, for the next sync. (A
    // member relearns its commit index from the leader, and the store's applied index bounds it
    // from below at a restart. Written unsynced, a power cut could tear it while keeping the
    // batch after it: a log damaged in its middle, which no member starts on — simulator seed 39.)
    // 2. Send.
    for (const message of later) {
      if (message.type === 'Snapshot') this.deps.sender.toFollower(message);
      else link.send(message);
    }
    // 3. Apply, within the turn's work bound: the entries beyond it wait for the next turn.
    let appliedThrough: number | null = null;
    if (config.plantedBugs.applyBeforeCommit === true && raft.status.role === 'leader') for (const entry of rd.entries) if (entry.index === this.machine.appliedIndex + 1) this.apply(entry);
    const applyStarted = this.deps.clock.monotonicMs();
    const changesBefore = this.turnChanges;
    for (const entry of rd.committedEntries) {
      // At least one entry per turn; then, past the turn's work or time, the rest wait.
      const spentMs = this.turnApplyMs + (this.deps.clock.monotonicMs() - applyStarted);
      if (this.turnChanges > 0 && (this.turnChanges >= config.turnChangesMax || spentMs >= config.turnApplyMsMax)) {
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
    if (rd.committedEntries.length > 0 && (this.unwrittenEntries >= STORE_BATCH_ENTRIES || this.unwrittenBytes >= STORE_BATCH_BYTES)) this.persistSoon();
    // 4. What the apply released, and a change of role.
    this.settle(rd);
    return appliedThrough;
  }

  /** Confirmed reads, revision waiters, and a change of role: once the apply has caught up with them. */
  private settle(rd: Ready): void {
    const { raft, reads, leaseGate, leaseKeeper } = this.deps;
    for (const rs of rd.readStates) {
      if (!leaseGate.confirmed(rs.requestId, raft.status, this.deps.handOff.active)) reads.readIndex(rs.requestId, rs.index);
    }
    reads.applied(this.machine.appliedIndex);
    this.deps.releaseRevisionWaiters();
    if (rd.softState !== null) {
      const { role, leaderId } = rd.softState;
      if (leaderId !== this.knownLeader) {
        this.knownLeader = leaderId;
        this.deps.counters.leaderChanges += 1;
      }
      leaseGate.close();
      this.deps.logger.info({ event: 'role_changed', role, leader: leaderId, term: raft.status.term }, leaderId === null ? `now ${role}, no leader known` : `now ${role}, leader ${leaderId}`);
      if (role === 'leader' && leaseKeeper.term !== raft.status.term) leaseKeeper.becameLeader(raft.status.term);
      if (role !== 'leader' && leaseKeeper.leading) leaseKeeper.stoppedLeading();
      this.deps.settleHandOff();
    }
    if (rd.softState !== null && rd.softState.role !== 'leader') {
      const lost = new RequestError('NOT_LEADER', 'leadership changed before the request was confirmed', rd.softState.leaderId);
      reads.failUnconfirmed(lost);
    }
  }

  /** A piece of a turn that held the event loop past SLOW_TURN_PART_MS is logged with what it did. */
  noteSlow(part: string, startedMs: number, what: Record<string, unknown>): void {
    const tookMs = this.deps.clock.monotonicMs() - startedMs;
    if (tookMs > SLOW_TURN_PART_MS) this.deps.logger.warn({ event: 'slow_turn', part, tookMs: Math.round(tookMs), ...what }, `a turn's ${part} held the event loop for ${Math.round(tookMs)} ms`);
  }

  /** A clock tick: what was applied since the last store batch is written now (not while a snapshot replaces the store). */
  tick(): void {
    if (this.unwrittenEntries > 0 && !this.installing) this.persistSoon();
  }

  /** One store batch for everything applied since the last, once this event's answers are sent. */
  private persistSoon(): void {
    if (this.persistScheduled) return;
    this.persistScheduled = true;
    this.deps.timers.defer(() => {
      if (!this.persistScheduled || this.deps.stopped()) return; // done meanwhile (before a snapshot install)
      this.persistScheduled = false;
      this.unwrittenEntries = 0;
      this.unwrittenBytes = 0;
      const started = this.deps.clock.monotonicMs();
      this.deps.home.store.persist({ sync: false }).catch((error: Error) => this.deps.fail(error));
      this.noteSlow('store batch', started, {});
    });
  }

  /** Apply one committed entry; answers how many node changes it made (its share of the turn's work). */
  private apply(entry: Entry): number {
    if (entry.index <= this.machine.appliedIndex) return 0; // the store already holds it
    // A leader's no-op still takes its index: the state machine refuses the unknown op, changes
    // nothing, and moves its applied index on (log time stays where it is). A configuration
    // entry becomes a member change: the member table remembers who was added where.
    const body = entry.type === 'normal' && entry.data.length > 0 ? decodeEntry(entry.data) : entry.type === 'config' ? memberChangeOf(entry) : { timeMs: 0, command: { op: 'noop' } };
    this.deps.onEntryApplied?.(entry);
    const { result, events } = this.machine.apply({ index: entry.index, ...body });
    this.appliedSizes.push([entry.index, entry.data.length]);
    this.appliedBytesSinceDurable += entry.data.length;
    this.unwrittenEntries += 1;
    this.unwrittenBytes += entry.data.length;
    if (events.length > 0) this.deps.onApplied?.(events);
    if (tracing) tracePath('applied', entry.index);
    this.deps.proposals.applied(entry.index, entry.term, result, this.deps.raft.status.leaderId);
    return events.length;
  }

  /**
   * After the core's advance. Every snapshotEvery entries or snapshotBytes of them: the store
   * made durable, then the log's low-water mark moved up to it, keeping at most keepEntries
   * entries and snapshotBytes / 2 bytes below for followers a little behind.
   */
  async maybeCompact(): Promise<void> {
    const { raft, config } = this.deps;
    const applied = this.machine.appliedIndex;
    if (applied - this.lastDurableIndex < config.snapshotEvery && this.appliedBytesSinceDurable < config.snapshotBytes) return;
    this.unwrittenEntries = 0;
    this.unwrittenBytes = 0;
    await this.deps.home.store.persist({ sync: true });
    this.lastDurableIndex = applied;
    this.appliedBytesSinceDurable = 0;
    let mark = applied - config.keepEntries;
    let kept = 0;
    for (let i = this.appliedSizes.length - 1; i >= 0; i--) {
      const [index, bytes] = this.appliedSizes[i]!;
      if (index <= mark || kept + bytes > config.snapshotBytes / 2) {
        mark = Math.max(mark, index);
        break;
      }
      kept += bytes;
    }
    this.appliedSizes = this.appliedSizes.filter(([index]) => index > mark);
    const term = raft.termAt(mark);
    if (mark <= raft.status.snapshotIndex || term === undefined) return;
    // The configuration in force at the mark (a change after it is still in the log).
    const conf = raft.confAt(mark);
    raft.compact(mark);
    this.deps.wal.compact({ index: mark, term, conf });
  }
}

/** The state machine's command for a configuration entry (one it cannot read changes nothing). */
function memberChangeOf(entry: Entry): { readonly timeMs: number; readonly command: unknown } {
  const change = decodeConfChange(entry.data);
  if (change === null) return { timeMs: 0, command: { op: 'noop' } };
  const peerUrl = change.op === 'addLearner' ? change.peerUrl : undefined;
  return { timeMs: 0, command: { op: 'memberChange', change: change.op, name: change.id, ...(peerUrl === undefined ? {} : { peerUrl }) } };
}
