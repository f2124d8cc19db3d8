/**
 * One simulated member: the Raft core driven the way the real runtime drives it (persist a
 * Ready, then send, then apply, then advance), a register state machine, the Request Waiting
 * List for proposals, and waiting reads. Its disk outlives it; everything else dies in a crash.
 *
 * Must never: send a message before the Ready that produced it is on the disk, or answer a
 * read before its read index is applied.
 */

import { Raft, maySendBeforePersist } from '../../server/raft/index.js';
import type { Message, NodeId, PlantedBugs, Ready, RaftStatus } from '../../server/raft/index.js';
import type { CommandResult, ClientCommand } from './register-machine.js';
import { RegisterMachine, decodeCommand, encodeCommand } from './register-machine.js';
import type { SimDisk } from './disk.js';
import { Violation, type SafetyChecker } from './invariants.js';
import type { SimRandom } from './random.js';
import type { RegisterValue } from '../linearizability/history.js';

export type ClientRequest =
  | { readonly kind: 'write'; readonly clientId: number; readonly requestId: string; readonly command: ClientCommand }
  | { readonly kind: 'read'; readonly clientId: number; readonly requestId: string; readonly key: string };

export type ClientReply =
  | { readonly kind: 'written'; readonly requestId: string; readonly result: CommandResult }
  | { readonly kind: 'read'; readonly requestId: string; readonly value: RegisterValue }
  | { readonly kind: 'error'; readonly requestId: string; readonly leaderHint: NodeId | null };

export interface MemberConfig {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly electionTicks: number;
  readonly maxEntriesPerAppend: number;
  readonly maxInflightAppends: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTicks: number;
  readonly quietAfterStart?: boolean;
  /** Take a snapshot once this many entries were applied since the last one. */
  readonly snapshotEvery: number;
  readonly plantedBugs: PlantedBugs;
  /** Planted bug: send a Ready's messages before persisting it (breaks the persisting contract). */
  readonly sendBeforePersist: boolean;
}

export interface MemberIo {
  send(m: Message): void;
  reply(clientId: number, reply: ClientReply): void;
  /** What this member exercised, for the run's coverage figures. */
  count(what: 'snapshotInstalled' | 'followerRead' | 'leaderRead'): void;
}

interface WaitingProposal {
  readonly term: number;
  readonly clientId: number;
  readonly requestId: string;
}

interface WaitingRead {
  readonly clientId: number;
  readonly requestId: string;
  readonly key: string;
  index: number | null;
}

export class SimMember {
  readonly raft: Raft;
  private machine = new RegisterMachine();
  private appliedIndex: number;
  /** Request Waiting List: proposals by log index, answered when that index is applied. */
  private readonly waitingProposals = new Map<number, WaitingProposal>();
  private readonly waitingReads = new Map<string, WaitingRead>();

  constructor(
    private readonly config: MemberConfig,
    readonly disk: SimDisk,
    random: SimRandom,
    private readonly checker: SafetyChecker,
    private readonly io: MemberIo,
  ) {
    const persisted = disk.recover();
    if (disk.snapshot !== null) this.machine = RegisterMachine.decode(disk.snapshot.data);
    this.appliedIndex = disk.snapshot?.meta.index ?? 0;
    this.raft = new Raft(
      {
        id: config.id,
        peers: config.peers,
        random,
        electionTicks: config.electionTicks,
        heartbeatTicks: config.heartbeatTicks,
        preVote: config.preVote,
        maxEntriesPerAppend: config.maxEntriesPerAppend,
        maxInflightAppends: config.maxInflightAppends,
        checkQuorum: config.checkQuorum,
        quietAfterStart: config.quietAfterStart === true,
        appliedIndex: this.appliedIndex,
        plantedBugs: config.plantedBugs,
      },
      persisted,
    );
    checker.onStart(config.id, persisted.hardState.commit);
  }

  get id(): NodeId {
    return this.config.id;
  }

  get status(): RaftStatus {
    return this.raft.status;
  }

  get machineAppliedIndex(): number {
    return this.appliedIndex;
  }

  /** The state machine's bytes, to compare members once the cluster has converged. */
  machineState(): string {
    return new TextDecoder().decode(this.machine.encode());
  }

  onClientRequest(req: ClientRequest): void {
    if (req.kind === 'write') {
      const result = this.raft.propose(encodeCommand(req.command));
      if (result.ok) this.waitingProposals.set(result.index, { term: result.term, clientId: req.clientId, requestId: req.requestId });
      else this.io.reply(req.clientId, { kind: 'error', requestId: req.requestId, leaderHint: result.leaderHint });
      return;
    }
    const result = this.raft.readIndex(req.requestId);
    if (result.ok) this.waitingReads.set(req.requestId, { clientId: req.clientId, requestId: req.requestId, key: req.key, index: null });
    else this.io.reply(req.clientId, { kind: 'error', requestId: req.requestId, leaderHint: result.leaderHint });
  }

  /** One turn of the member's loop: persist, send, apply, advance. */
  processReady(): void {
    if (!this.raft.hasReady()) return;
    const rd = this.raft.ready();
    const send = (m: Message): void => {
      this.checker.onSend(this.id, this.disk, m);
      this.io.send(this.withSnapshotData(m));
    };
    if (this.config.sendBeforePersist) {
      for (const m of rd.messages) send(m);
      this.persist(rd);
    } else {
      // As the runtime does: a leader's appends leave before its own write (a power cut during
      // that write then strikes a leader whose followers already hold the entries).
      const early = rd.messages.filter((m) => maySendBeforePersist(m, this.disk.hardState.term));
      for (const m of early) send(m);
      this.persist(rd);
      for (const m of rd.messages) if (!early.includes(m)) send(m);
    }
    if (rd.snapshot !== null) this.installSnapshot(rd);
    for (const entry of rd.committedEntries) this.apply(entry);
    for (const rs of rd.readStates) {
      const read = this.waitingReads.get(rs.requestId);
      if (read !== undefined) read.index = rs.index;
    }
    this.raft.advance();
    this.serveReads();
    if (rd.softState !== null && rd.softState.role !== 'leader') this.failProposals();
    this.maybeSnapshot();
  }

  private persist(rd: Ready): void {
    if (rd.snapshot !== null) this.disk.installSnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      this.checker.onPersistEntries(this.id, this.disk, rd.entries);
      this.disk.appendEntries(rd.entries);
    }
    if (rd.hardState !== null) this.disk.setHardState(rd.hardState);
    // One sync for the whole Ready (group commit); a power cut here throws and the member dies.
    this.disk.sync();
  }

  private withSnapshotData(m: Message): Message {
    if (m.type !== 'Snapshot') return m;
    const stored = this.disk.snapshot;
    if (stored === null || stored.meta.index !== m.snapshot.meta.index) {
      throw new Error(`sim: ${this.id} has no stored snapshot at ${m.snapshot.meta.index}`);
    }
    return { ...m, snapshot: { meta: m.snapshot.meta, data: stored.data } };
  }

  private installSnapshot(rd: Ready): void {
    const snap = rd.snapshot!;
    this.machine = RegisterMachine.decode(snap.data!);
    this.appliedIndex = snap.meta.index;
    this.io.count('snapshotInstalled');
    this.checker.onInstallSnapshot(this.id, snap.meta.index, snap.meta.term);
    for (const [index] of this.waitingProposals) if (index <= snap.meta.index) this.failProposal(index);
  }

  private apply(entry: Parameters<SafetyChecker['onApply']>[1]): void {
    if (entry.index !== this.appliedIndex + 1) {
      // A skipped or repeated entry would go unnoticed by registers with sessions, but not by MVCC.
      throw new Violation('apply order', `${this.id} applied index ${entry.index} right after ${this.appliedIndex}`);
    }
    this.checker.onApply(this.id, entry);
    this.appliedIndex = entry.index;
    let result: CommandResult | null = null;
    if (entry.type === 'normal') result = this.machine.apply(decodeCommand(entry.data));
    const waiting = this.waitingProposals.get(entry.index);
    if (waiting === undefined) return;
    this.waitingProposals.delete(entry.index);
    if (waiting.term === entry.term && result !== null) {
      this.io.reply(waiting.clientId, { kind: 'written', requestId: waiting.requestId, result });
    } else {
      // Another leader's entry took this slot: ours was never committed. The client retries.
      this.io.reply(waiting.clientId, { kind: 'error', requestId: waiting.requestId, leaderHint: this.raft.status.leaderId });
    }
  }

  private serveReads(): void {
    for (const [requestId, read] of this.waitingReads) {
      if (read.index === null || read.index > this.appliedIndex) continue;
      this.waitingReads.delete(requestId);
      this.io.count(this.raft.status.role === 'leader' ? 'leaderRead' : 'followerRead');
      this.io.reply(read.clientId, { kind: 'read', requestId, value: this.machine.get(read.key) });
    }
  }

  /** No longer leader: proposals not yet applied have an unknown fate; tell clients to retry. */
  private failProposals(): void {
    for (const [index] of this.waitingProposals) this.failProposal(index);
    for (const [requestId, read] of this.waitingReads) {
      if (read.index !== null) continue;
      this.waitingReads.delete(requestId);
      this.io.reply(read.clientId, { kind: 'error', requestId, leaderHint: this.raft.status.leaderId });
    }
  }

  private failProposal(index: number): void {
    const waiting = this.waitingProposals.get(index)!;
    this.waitingProposals.delete(index);
    this.io.reply(waiting.clientId, { kind: 'error', requestId: waiting.requestId, leaderHint: this.raft.status.leaderId });
  }

  private maybeSnapshot(): void {
    const base = this.disk.snapshotIndex();
    if (this.appliedIndex - base < this.config.snapshotEvery) return;
    const term = this.raft.termAt(this.appliedIndex);
    if (term === undefined) return;
    this.disk.saveSnapshot({ index: this.appliedIndex, term, conf: { voters: this.raft.status.voters } }, this.machine.encode());
    this.raft.compact(this.appliedIndex);
  }
}
