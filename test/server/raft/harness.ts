/**
 * A small deterministic cluster for the Raft core's unit tests. Each member owns a Raft core
 * with seeded randomness, an in-memory disk that persists every Ready (hard state, snapshot,
 * entries) BEFORE that Ready's messages leave, and a toy state machine (the text of each
 * applied normal entry) that survives restarts together with its applied index. A Network
 * delivers messages synchronously, in order, with drop and hold rules, and loops
 * ready()/advance() until every member is quiet.
 *
 * The harness records what tests need to check the Ready contract: every Ready with the hard
 * state that was durable once it was persisted, every message with its fate, the commit index
 * after every input.
 *
 * Must never: use real timers, Date or Math.random; send a message before its Ready was
 * persisted; apply an entry twice, out of order, or beyond the persisted commit (it throws);
 * loop without a bound (settle throws when the cluster is not quiet after N rounds); reach into
 * the core past its public API.
 */

import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { Raft } from '../../../server/raft/index.js';
import type {
  Entry,
  HardState,
  Message,
  NodeId,
  PersistedState,
  ProposeResult,
  RaftConfig,
  RandomSource,
  ReadState,
  Ready,
  Snapshot,
  SnapshotMeta,
  SoftState,
} from '../../../server/raft/index.js';
import { SimDisk as MemoryDisk } from '../../sim/disk.js';

// ─── randomness ─────────────────────────────────────────────────────────────────────────────

/** A seeded xoroshiro128+ stream: the same seed replays the same election timeouts. */
export class SeededRandom implements RandomSource {
  private readonly rng: ReturnType<typeof xoroshiro128plus>;

  constructor(seed: number) {
    this.rng = xoroshiro128plus(seed);
  }

  intBelow(boundExclusive: number): number {
    return uniformInt(this.rng, 0, boundExclusive - 1);
  }
}

/** Always answers `value` (clamped into range) and remembers every bound it was asked for. */
export class FixedRandom implements RandomSource {
  readonly boundsAsked: number[] = [];

  constructor(private readonly value: number) {}

  intBelow(boundExclusive: number): number {
    this.boundsAsked.push(boundExclusive);
    return Math.min(this.value, boundExclusive - 1);
  }
}

// ─── text entries ───────────────────────────────────────────────────────────────────────────

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** A normal log entry carrying `body` (or its own "index@term" when no body is given). */
export function entry(index: number, term: number, body?: string): Entry {
  return { index, term, type: 'normal', data: bytes(body ?? `${index}@${term}`) };
}

/** Entries 1..terms.length whose terms are listed in order: logOfTerms([1, 1, 2]). */
export function logOfTerms(terms: readonly number[]): Entry[] {
  return terms.map((term, i) => entry(i + 1, term));
}

// ─── disk ───────────────────────────────────────────────────────────────────────────────────

/** What survives a crash: the simulator's in-memory disk, shared so both hold the same contract. */
export { SimDisk as MemoryDisk, type StoredSnapshot } from '../../sim/disk.js';

// ─── state machine ──────────────────────────────────────────────────────────────────────────

/** One applied normal entry, as the toy state machine keeps it. */
export interface AppliedRecord {
  readonly index: number;
  readonly text: string;
}

export function encodeState(records: readonly AppliedRecord[]): Uint8Array {
  return bytes(JSON.stringify(records));
}

export function decodeState(data: Uint8Array): AppliedRecord[] {
  return JSON.parse(text(data)) as AppliedRecord[];
}

// ─── member ─────────────────────────────────────────────────────────────────────────────────

export type MemberOptions = Partial<Omit<RaftConfig, 'id' | 'peers' | 'random' | 'appliedIndex'>> & {
  /** Defaults to a SeededRandom derived from the cluster seed and the member's position. */
  readonly random?: RandomSource;
  /** Start from this disk instead of an empty one (a member with a prepared log). */
  readonly persisted?: PersistedState;
};

/** One Ready as the member handled it, with the hard state that was durable afterwards. */
export interface HandledReady {
  readonly ready: Ready;
  readonly durableHardState: HardState;
  readonly durableLastIndex: number;
  readonly durableTermAt: (index: number) => number | undefined;
}

export class Member {
  raft: Raft;
  readonly disk: MemoryDisk;
  /** The toy state machine: applied normal entries (survives restarts, like RocksDB would). */
  state: AppliedRecord[] = [];
  appliedIndex = 0;
  /** Every entry handed out for applying, in order, across restarts. */
  readonly appliedEntries: Entry[] = [];
  readonly readStates: ReadState[] = [];
  readonly handled: HandledReady[] = [];
  readonly softStates: SoftState[] = [];
  /** status.commitIndex after every input and every Ready, across restarts. */
  readonly commitIndexes: number[] = [];
  /** How many times ready() handed this member a snapshot to install. */
  installedSnapshots = 0;
  up = true;

  constructor(
    readonly id: NodeId,
    private readonly config: RaftConfig,
    persisted: PersistedState | undefined,
  ) {
    this.disk = persisted === undefined ? new MemoryDisk() : MemoryDisk.from(persisted, encodeState([]));
    this.raft = new Raft(config, this.disk.recover());
    this.noteCommit();
  }

  get status() {
    return this.raft.status;
  }

  /** A crash loses everything but the disk and the state machine; the core starts over from them. */
  restart(): void {
    this.raft = new Raft({ ...this.config, appliedIndex: this.appliedIndex }, this.disk.recover());
    this.up = true;
    this.noteCommit();
  }

  /**
   * Handle one Ready in the contract's order: persist, (return the messages for sending),
   * install the snapshot, apply committed entries, advance. Returns the messages to send.
   */
  handleReady(): readonly Message[] {
    const rd = this.raft.ready();
    this.disk.persist(rd);
    const disk = this.disk;
    const durableEntries = [...disk.entries];
    const durableBase = disk.snapshotIndex();
    const durableBaseTerm = disk.snapshot?.meta.term ?? 0;
    this.handled.push({
      ready: rd,
      durableHardState: disk.hardState,
      durableLastIndex: disk.lastIndex(),
      durableTermAt: (index) => {
        if (index === durableBase) return durableBaseTerm;
        if (index < durableBase || index > durableBase + durableEntries.length) return undefined;
        return durableEntries[index - durableBase - 1]!.term;
      },
    });
    if (rd.softState !== null) this.softStates.push(rd.softState);
    if (rd.snapshot !== null) {
      this.installedSnapshots++;
      this.state = decodeState(rd.snapshot.data!);
      this.appliedIndex = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      if (e.index !== this.appliedIndex + 1) {
        throw new Error(`harness: ${this.id} was handed entry ${e.index} to apply after ${this.appliedIndex}`);
      }
      if (e.index > disk.hardState.commit) {
        throw new Error(`harness: ${this.id} was handed entry ${e.index} beyond the persisted commit ${disk.hardState.commit}`);
      }
      this.appliedIndex = e.index;
      this.appliedEntries.push(e);
      if (e.type === 'normal') this.state.push({ index: e.index, text: text(e.data) });
    }
    this.readStates.push(...rd.readStates);
    this.raft.advance();
    this.noteCommit();
    return rd.messages;
  }

  /** Save a snapshot of the state machine at `index` (at or below applied) and compact the log. */
  compact(index: number): void {
    const term = this.raft.termAt(index);
    if (term === undefined) throw new Error(`harness: ${this.id} has no entry ${index} to snapshot`);
    if (index > this.appliedIndex) throw new Error(`harness: ${this.id} cannot snapshot ${index} beyond applied ${this.appliedIndex}`);
    const meta: SnapshotMeta = { index, term, conf: this.raft.confAt(index) };
    this.disk.saveSnapshot(meta, encodeState(this.state.filter((r) => r.index <= index)));
    this.raft.compact(index);
  }

  /** The applied texts, in order. */
  texts(): string[] {
    return this.state.map((r) => r.text);
  }

  noteCommit(): void {
    this.commitIndexes.push(this.raft.status.commitIndex);
  }
}

// ─── network ────────────────────────────────────────────────────────────────────────────────

export type Fate = 'delivered' | 'dropped' | 'held';

/** A message as the core emitted it (snapshots still with data: null), and what became of it. */
export interface Sent {
  readonly message: Message;
  fate: Fate;
}

/** A message on its way: `wire` is what the addressee gets (snapshot data attached at sending). */
interface InFlight {
  readonly sent: Sent;
  readonly wire: Message;
}

type Rule = { readonly match: (m: Message) => boolean; readonly fate: 'dropped' | 'held' };

export interface ClusterOptions extends MemberOptions {
  readonly seed?: number;
  /** The configuration every member starts with (default: every member a voter); the others join by a change. */
  readonly voters?: readonly NodeId[];
  /** Options for single members, on top of the shared ones. */
  readonly members?: Readonly<Record<NodeId, MemberOptions>>;
}

export class Network {
  readonly ids: readonly NodeId[];
  private readonly byId = new Map<NodeId, Member>();
  private rules: Rule[] = [];
  private queue: Message[] = [];
  private held: InFlight[] = [];
  /** Every message any member sent, in order, with its fate. */
  readonly sent: Sent[] = [];

  private constructor(members: readonly Member[]) {
    this.ids = members.map((m) => m.id).sort();
    for (const m of members) this.byId.set(m.id, m);
  }

  /** A cluster of `ids`; every member starts with an empty disk unless `persisted` says otherwise. */
  static cluster(ids: readonly NodeId[], options: ClusterOptions = {}): Network {
    const { seed = 1, members = {}, voters, ...shared } = options;
    const sorted = [...ids].sort();
    const initial = voters === undefined ? sorted : [...voters].sort();
    return new Network(
      sorted.map((id, position) => {
        const { random, persisted, ...config } = { ...shared, ...members[id] };
        return new Member(
          id,
          { ...config, id, peers: initial, random: random ?? new SeededRandom(seed * 1000 + position) },
          persisted,
        );
      }),
    );
  }

  member(id: NodeId): Member {
    const m = this.byId.get(id);
    if (m === undefined) throw new Error(`harness: no member ${id}`);
    return m;
  }

  raft(id: NodeId): Raft {
    return this.member(id).raft;
  }

  // ─── faults ─────────────────────────────────────────────────────────────────────────────

  /** Drop every message matching `match` from now on. Returns a function that lifts the rule. */
  drop(match: (m: Message) => boolean): () => void {
    return this.addRule({ match, fate: 'dropped' });
  }

  /** Keep every message matching `match` aside until deliverHeld() or releaseHeld(). */
  hold(match: (m: Message) => boolean): () => void {
    return this.addRule({ match, fate: 'held' });
  }

  /** Cut `id` off from every other member, both ways. */
  isolate(id: NodeId): () => void {
    return this.drop((m) => m.from === id || m.to === id);
  }

  /** Lift every drop and hold rule (held messages stay held until released). */
  heal(): void {
    this.rules = [];
  }

  /** The member stops: it handles nothing, messages to it are lost, its unpersisted state is gone. */
  crash(id: NodeId): void {
    this.member(id).up = false;
    this.queue = this.queue.filter((m) => m.to !== id);
  }

  /** Start a crashed member again from its disk and state machine. */
  restart(id: NodeId): void {
    this.member(id).restart();
  }

  private addRule(rule: Rule): () => void {
    this.rules.push(rule);
    return () => {
      this.rules = this.rules.filter((r) => r !== rule);
    };
  }

  // ─── delivery ───────────────────────────────────────────────────────────────────────────

  /** Messages currently held (as the core emitted them), oldest first. */
  heldMessages(): readonly Message[] {
    return this.held.map((h) => h.sent.message);
  }

  /** Deliver the oldest held message matching `match` (any, if omitted), then settle. */
  deliverHeld(match: (m: Message) => boolean = () => true): Message {
    const at = this.held.findIndex((h) => match(h.sent.message));
    if (at < 0) throw new Error('harness: no held message matches');
    const [held] = this.held.splice(at, 1);
    held!.sent.fate = 'delivered';
    this.queue.push(held!.wire);
    this.settle();
    return held!.sent.message;
  }

  /** Deliver every held message, oldest first, then settle. */
  releaseHeld(): void {
    const held = this.held;
    this.held = [];
    for (const h of held) {
      h.sent.fate = 'delivered';
      this.queue.push(h.wire);
    }
    this.settle();
  }

  /** Hand a message to its addressee as if it came over the wire (for hand-made messages). */
  inject(m: Message): void {
    this.sent.push({ message: m, fate: 'delivered' });
    this.queue.push(m);
    this.settle();
  }

  /**
   * Loop until quiet: every member with a Ready handles it (persisting before its messages are
   * routed), then every routed message is stepped into its addressee. Throws if the cluster is
   * still busy after `maxRounds` rounds.
   */
  settle(maxRounds = 500): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const id of this.ids) {
        const member = this.member(id);
        if (!member.up || !member.raft.hasReady()) continue;
        busy = true;
        for (const m of member.handleReady()) this.route(m);
      }
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        const to = this.byId.get(m.to);
        if (to === undefined || !to.up) continue;
        busy = true;
        to.raft.step(m);
        to.noteCommit();
      }
      if (!busy) return;
    }
    throw new Error(`harness: cluster not quiet after ${maxRounds} rounds`);
  }

  private route(m: Message): void {
    const rule = this.rules.find((r) => r.match(m));
    const addresseeUp = this.byId.get(m.to)?.up === true;
    const sent: Sent = { message: m, fate: addresseeUp ? (rule?.fate ?? 'delivered') : 'dropped' };
    this.sent.push(sent);
    if (sent.fate === 'dropped') return;
    // The state goes with the snapshot as it is when sent: a later compaction must not change it.
    const wire = this.withSnapshotData(m);
    if (sent.fate === 'held') this.held.push({ sent, wire });
    else this.queue.push(wire);
  }

  /** The core sends snapshots without their state; the sender attaches its saved snapshot. */
  private withSnapshotData(m: Message): Message {
    if (m.type !== 'Snapshot' || m.snapshot.data !== null) return m;
    const saved = this.member(m.from).disk.snapshot;
    if (saved === null || saved.meta.index !== m.snapshot.meta.index) {
      throw new Error(`harness: ${m.from} sent a snapshot at ${m.snapshot.meta.index} it has not saved`);
    }
    const snapshot: Snapshot = { meta: m.snapshot.meta, data: saved.data };
    return { ...m, snapshot };
  }

  // ─── time and inputs ────────────────────────────────────────────────────────────────────

  /** `times` rounds of: tick every running member in `ids`, then settle. */
  tick(times = 1, ids: readonly NodeId[] = this.ids): void {
    for (let t = 0; t < times; t++) {
      for (const id of ids) {
        const member = this.member(id);
        if (!member.up) continue;
        member.raft.tick();
        member.noteCommit();
      }
      this.settle();
    }
  }

  /** Tick everyone until `done()` holds; returns the number of ticks it took. Throws past `maxTicks`. */
  tickUntil(done: () => boolean, maxTicks: number): number {
    for (let t = 1; t <= maxTicks; t++) {
      this.tick(1);
      if (done()) return t;
    }
    throw new Error(`harness: condition not reached within ${maxTicks} ticks`);
  }

  /** `id` campaigns at once; settles. */
  campaign(id: NodeId): void {
    this.raft(id).campaign();
    this.member(id).noteCommit();
    this.settle();
  }

  /** `id` campaigns and must win. */
  elect(id: NodeId): void {
    this.campaign(id);
    const status = this.raft(id).status;
    if (status.role !== 'leader') throw new Error(`harness: ${id} campaigned but is ${status.role} in term ${status.term}`);
  }

  /** Propose `body` on `id` (without settling). */
  propose(id: NodeId, body: string): ProposeResult {
    return this.raft(id).propose(bytes(body));
  }

  /** Propose each body on `id`, insisting each is accepted, then settle. */
  proposeAll(id: NodeId, bodies: readonly string[]): void {
    for (const body of bodies) {
      const result = this.propose(id, body);
      if (!result.ok) throw new Error(`harness: ${id} refused a proposal: ${result.code}`);
    }
    this.settle();
  }

  /** The running members that believe they lead. */
  leaders(): NodeId[] {
    return this.ids.filter((id) => this.member(id).up && this.raft(id).status.role === 'leader');
  }

  /** Messages sent so far that match. */
  messages(match: (m: Message) => boolean = () => true, fate?: Fate): Message[] {
    return this.sent.filter((s) => (fate === undefined || s.fate === fate) && match(s.message)).map((s) => s.message);
  }
}
