/**
 * One simulated member: the production MemberRuntime — its Raft core, state machine, state
 * store, lease keeper, snapshot sender and receiver — over the in-memory twins of its disks
 * (the real WAL on the fault-injecting file system; the state store, and a snapshot staged
 * beside it, on the in-memory engine), with the simulator's clock, timers, randomness and peer
 * network injected. Beside it, the member's front door for simulated clients: what the API does
 * with a register operation (a session registration, a stamped put, a compare-and-set as a
 * txn, a linearizable get) and how it answers.
 *
 * Must never: reach into the runtime but through its public methods and injected seams; keep
 * anything across a crash but its disks.
 */

import { MemberRuntime, type PeerLink, type RuntimeClock, type RuntimeOptions, type RuntimeTimers } from '../../server/node/runtime.js';
import { MemoryStateDisk, MemoryStoreHome } from '../../server/node/store-home.js';
import { RequestError } from '../../server/node/waiting-list.js';
import type { Entry, NodeId, RandomSource } from '../../server/raft/index.js';
import type { StateCommand, StateMachine, StateResult } from '../../server/state/state-machine.js';
import { encodeFull } from '../../server/state/store-format.js';
import type { ChangeEvent } from '../../server/state/types.js';
import { WatchHub, type WatchSink, type WatchStart } from '../../server/watch/hub.js';
import { MemoryFileSystem } from '../../server/storage/memory-file-system.js';
import { Wal } from '../../server/storage/wal/wal.js';
import type { RegisterValue } from '../linearizability/history.js';
import type { ClientReply, ClientRequest, RegisterCommand } from './client.js';
import { WatchedWal, type WalWatcher } from './watched-wal.js';

const WAL_DIRECTORY = '/wal';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What outlives a member's process: its file system (the WAL) and its state directory. */
export class MemberDisks {
  /** Segment salts from a counter, not the real WAL's crypto randomness: a seed must replay. */
  private salts = 0;

  constructor(
    public fs = new MemoryFileSystem(),
    public state = new MemoryStateDisk(),
  ) {}

  walOptions(segmentBytes: number, logger?: { warn(fields: Record<string, unknown>, message: string): void }): Parameters<typeof Wal.open>[2] {
    return { segmentBytes, salt: () => (this.salts = (this.salts + 0x9e3779b9) >>> 0), ...(logger === undefined ? {} : { logger }) };
  }

  /**
   * The disks the next incarnation starts on: copies, so that whatever the dead one still had in
   * flight (a turn awaiting its sync) lands on the old ones, never on the new.
   */
  detach(): void {
    this.fs = this.fs.clone();
    this.state = this.state.clone();
  }
}

export interface SimMemberIo {
  readonly clock: RuntimeClock;
  readonly timers: RuntimeTimers;
  readonly random: RandomSource;
  readonly link: PeerLink;
  readonly watcher: WalWatcher;
  /** Each committed entry as the member applies it. */
  applied(entry: Entry): void;
  /** The change events of one applied entry. */
  changed(events: readonly ChangeEvent[]): void;
  storeReplaced(): void;
  /** The watch hub refused to break one of its invariants. */
  watchInvariantBroken(what: string): void;
  /** The runtime stopped on a storage failure (a power cut during a sync, in the simulator). */
  fatal(error: Error): void;
  reply(clientId: number, reply: ClientReply): void;
  count(what: 'followerRead' | 'leaderRead'): void;
  /** This member, leading, renewed `lease` (a keep-alive answered here). */
  renewed(lease: number): void;
}

/** How often a quiet watch gets a progress frame (bookmark), in the member's ms. */
const WATCH_PROGRESS_MS = 100;

export class SimMember {
  private constructor(
    readonly id: NodeId,
    readonly runtime: MemberRuntime,
    readonly wal: WatchedWal,
    /** The member's watch hub, fed by the runtime's applied events as server.ts wires it. */
    readonly hub: WatchHub,
    private readonly io: SimMemberIo,
  ) {}

  /** Start a member on `disks` as a restarted process would: recover the store and the log, then run. */
  static async boot(options: RuntimeOptions, disks: MemberDisks, walSegmentBytes: number, io: SimMemberIo, onTornTail: () => void, plantedResumeOneEarly = false): Promise<SimMember> {
    // As server.ts does: the log first, whose base decides whether a staged snapshot is swapped in.
    const { wal, log } = Wal.open(disks.fs, WAL_DIRECTORY, disks.walOptions(walSegmentBytes, { warn: () => onTornTail() }));
    const home = await MemoryStoreHome.open({}, disks.state, { now: () => 0, pause: () => Promise.resolve() }, log.base?.meta.index ?? null);
    const watched = new WatchedWal(wal, log, io.watcher);
    const quiet = { info() {}, warn() {}, error() {} };
    let machine: () => MemberRuntime['machine'] = () => home.store.machine;
    const hub = new WatchHub(() => machine().namespace, () => io.clock.monotonicMs(), undefined, (what) => io.watchInvariantBroken(what), (run) => io.timers.defer(run), plantedResumeOneEarly);
    const runtime = new MemberRuntime(options, {
      clock: io.clock,
      timers: io.timers,
      random: io.random,
      wal: watched,
      recovered: log,
      home,
      link: io.link,
      logger: quiet,
      onFatal: (error) => io.fatal(error),
      onApplied: (events) => {
        io.changed(events);
        hub.publish(events);
      },
      onStoreReplaced: () => {
        hub.storeReplaced();
        io.storeReplaced();
      },
      onEntryApplied: (entry) => io.applied(entry),
    });
    machine = () => runtime.machine;
    runtime.start();
    io.timers.setInterval(() => hub.tick(WATCH_PROGRESS_MS), WATCH_PROGRESS_MS / 4);
    return new SimMember(options.id, runtime, watched, hub, io);
  }

  /** A watch from a client's connection (its sink), as the API starts one. */
  watch(sink: WatchSink, id: number, fromRevision: number | undefined): WatchStart {
    return this.hub.watch(sink, id, { path: '/', scope: 'subtree', ...(fromRevision === undefined ? {} : { fromRevision }), prevNode: false, noPut: false, noDelete: false, progressNotify: true });
  }

  get status(): MemberRuntime['status'] {
    return this.runtime.status;
  }

  /** The term of the entry at `index` in this member's log (undefined: not there). */
  termAt(index: number): number | undefined {
    return this.runtime.raft.termAt(index);
  }

  get appliedIndex(): number {
    return this.runtime.machine.appliedIndex;
  }

  /** The whole replicated state (namespace, leases, sessions, meta) as bytes: equal members hold equal images. */
  stateImage(): string {
    return encodeFull(this.runtime.machine)
      .map((write) => (write.type === 'put' ? `${hex(write.key)}=${hex(write.value)}` : `-${hex(write.key)}`))
      .join('\n');
  }

  /** A client's request, handled as the API would, answered through the io. */
  onClientRequest(request: ClientRequest): void {
    const { requestId } = request;
    let answer: Promise<ClientReply>;
    switch (request.kind) {
      case 'register':
        answer = this.runtime.propose({ op: 'registerClient', secret: request.secret, nonce: request.nonce }).then((result) => {
          if (!result.ok || result.op !== 'registerClient') throw refusal(result);
          return { kind: 'registered', requestId, sessionId: result.clientId };
        });
        break;
      case 'write': {
        const stamp = { id: request.session.id, seq: request.seq, ackedThrough: request.seq - 1, secret: request.session.secret };
        answer = this.runtime.propose(toStateCommand(request.command), stamp).then((result) => ({ kind: 'written', requestId, result: toRegisterResult(request.command, result) }));
        break;
      }
      case 'leaseGrant':
        answer = this.runtime.propose({ op: 'leaseGrant', ttlMs: request.ttlMs, lease: request.lease }).then((result) => {
          if (!result.ok) throw refusal(result);
          return { kind: 'granted', requestId };
        });
        break;
      case 'leaseAttach':
        answer = this.runtime.propose({ op: 'create', path: request.path, value: encoder.encode(`lease ${request.lease}`), lease: request.lease, parents: true }).then((result) => {
          // Created now, or by an earlier attempt whose answer was lost.
          if (result.ok || result.code === 'NODE_EXISTS') return { kind: 'attached', requestId };
          if (result.code === 'LEASE_NOT_FOUND') return { kind: 'gone', requestId };
          throw refusal(result);
        });
        break;
      case 'keepAlive':
        answer = this.runtime.leaseRequest({ op: 'keepAlive', leases: [request.lease] }).then(([status]) => {
          if (status!.ok && this.runtime.status.role === 'leader') this.io.renewed(request.lease);
          if (status!.ok) return { kind: 'alive', requestId };
          if (status!.code === 'LEASE_NOT_FOUND') return { kind: 'gone', requestId };
          throw new Error(status!.message);
        });
        break;
      case 'read':
        answer = this.runtime.readLinearizable((machine) => registerValue(machine, request.key)).then((value) => {
          this.io.count(this.runtime.status.role === 'leader' ? 'leaderRead' : 'followerRead');
          return { kind: 'read', requestId, value };
        });
        break;
    }
    answer.then(
      (reply) => this.io.reply(request.clientId, reply),
      (error: unknown) => this.io.reply(request.clientId, { kind: 'error', requestId, leaderHint: error instanceof RequestError ? error.leaderHint : null }),
    );
  }
}

/** A refused command (a session unknown or expired, an outcome no longer knowable): the client retries. */
function refusal(result: StateResult): Error {
  return new Error(result.ok ? `unexpected answer ${result.op}` : `${result.code}: ${result.message}`);
}

function pathOf(key: string): string {
  return `/${key}`;
}

function toStateCommand(command: RegisterCommand): StateCommand {
  const path = pathOf(command.key);
  const put = { op: 'put' as const, path, value: encoder.encode(command.value) };
  if (command.kind === 'put') return put;
  const compare =
    command.expected === null
      ? { path, target: 'exists' as const, operator: '=' as const, operand: false }
      : { path, target: 'value' as const, operator: '=' as const, operand: encoder.encode(command.expected) };
  return { op: 'txn', compare: [compare], success: [put], failure: [] };
}

function toRegisterResult(command: RegisterCommand, result: StateResult): { readonly kind: 'put' } | { readonly kind: 'cas'; readonly ok: boolean } {
  if (!result.ok) throw refusal(result);
  if (command.kind === 'put' && result.op === 'put') return { kind: 'put' };
  if (command.kind === 'cas' && result.op === 'txn') return { kind: 'cas', ok: result.succeeded };
  throw refusal(result);
}

function registerValue(machine: StateMachine, key: string): RegisterValue {
  const found = machine.namespace.get(pathOf(key));
  return found.ok && found.op === 'get' ? decoder.decode(found.node.value) : null;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/**
 * Planted bug (forgetVoteOnRestart): the member's disk loses its vote before a restart, as a
 * member that did not persist it would.
 */
export function forgetVote(disks: MemberDisks, walSegmentBytes: number): void {
  const { wal, log } = Wal.open(disks.fs, WAL_DIRECTORY, disks.walOptions(walSegmentBytes));
  wal.setHardState({ ...log.hardState, vote: null });
  wal.sync();
  wal.close();
}
