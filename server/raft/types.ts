/**
 * The vocabulary of the Raft core: log entries, hard state, snapshots, the cluster
 * configuration, the messages members exchange, and the Ready value the core hands its caller.
 *
 * Pattern: Replicated Log, Generation Clock (term), High-Water Mark (commit index).
 * Must never: import anything but shared/ (the core is pure and portable), or carry behaviour.
 */

export type NodeId = string;

export type EntryType = 'normal' | 'noop' | 'config';

/** One slot of the replicated log. `data` is opaque to the core (the state machine's bytes). */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must survive a crash for the safety proofs to hold (Raft §5, Figure 2 "persistent state"). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

/**
 * The cluster configuration, as data in the log (server/raft/conf.ts): voters elect and count
 * for commit and reads; learners receive the log and snapshots and do neither.
 */
export interface ConfState {
  readonly voters: readonly NodeId[]; // sorted
  /** Sorted; absent when there are none. */
  readonly learners?: readonly NodeId[];
}

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

/**
 * A snapshot of the state machine at `meta.index`. The core never reads the state itself:
 * snapshots it sends carry `data: null`, and the caller attaches the state machine's bytes at
 * exactly `meta.index` before the message leaves (the transport streams it; the core stays
 * small). One the core is to install carries its state one way, never neither: as `data`, or
 * `staged` (the caller holds it staged beside its store, whole, and installs that). A log whose
 * base no state machine holds is what the core refuses.
 */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array | null;
  /** The caller's own claim about its own disk (data then null): it never travels between members. */
  readonly staged?: true;
}

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term (Generation Clock): every receiver first compares it with its own. */
  readonly term: number;
}

export interface PreVoteMessage extends Envelope {
  readonly type: 'PreVote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
}
export interface PreVoteResponse extends Envelope {
  readonly type: 'PreVoteResp';
  readonly reject: boolean;
}
export interface VoteMessage extends Envelope {
  readonly type: 'Vote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set by a leader transfer: voters grant it even while they still hear from a leader. */
  readonly transfer: boolean;
}
export interface VoteResponse extends Envelope {
  readonly type: 'VoteResp';
  readonly reject: boolean;
}
export interface AppendMessage extends Envelope {
  readonly type: 'Append';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}
export interface AppendResponse extends Envelope {
  readonly type: 'AppendResp';
  readonly reject: boolean;
  /** Accepted: the last index the follower now matches. Rejected: the prevLogIndex it could not match. */
  readonly index: number;
  /** Fast backtracking (Raft thesis §5.3): on reject, the follower's best guess of where logs agree. */
  readonly rejectHint: number;
  readonly hintTerm: number;
}
export interface HeartbeatMessage extends Envelope {
  readonly type: 'Heartbeat';
  /** min(follower's match, leader's commit): never more than the follower is known to hold. */
  readonly commit: number;
  /** The read round this heartbeat confirms leadership for, or null. */
  readonly readRound: number | null;
}
export interface HeartbeatResponse extends Envelope {
  readonly type: 'HeartbeatResp';
  readonly readRound: number | null;
}
export interface SnapshotMessage extends Envelope {
  readonly type: 'Snapshot';
  readonly snapshot: Snapshot;
}
export interface TimeoutNowMessage extends Envelope {
  readonly type: 'TimeoutNow';
}
/** A follower asks the leader for a read index on behalf of its own caller. */
export interface ReadIndexMessage extends Envelope {
  readonly type: 'ReadIndex';
  readonly requestId: string;
}
export interface ReadIndexResponse extends Envelope {
  readonly type: 'ReadIndexResp';
  readonly requestId: string;
  readonly index: number;
}

export type Message =
  | PreVoteMessage
  | PreVoteResponse
  | VoteMessage
  | VoteResponse
  | AppendMessage
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | SnapshotMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponse;

export type MessageType = Message['type'];

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

/** Volatile state a caller may want to observe (who leads, what this member is). Never persisted. */
export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId | null;
  readonly term: number;
}

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly requestId: string;
  readonly index: number;
}

/**
 * The core's output. The caller must, in this order:
 *   1. persist `hardState`, `snapshot` and `entries` durably (fsync) — a snapshot replaces the
 *      whole log; `entries[0].index` may be at or below the last persisted index, in which case
 *      every persisted entry from that index on is dropped first;
 *   2. only then send `messages`;
 *   3. install `snapshot` in the state machine, then apply `committedEntries` in order;
 *   4. call advance() — and feed the core nothing (step, tick, propose, ...) before that.
 * Sending a message before what the same Ready persists is durable breaks Raft's safety: a
 * vote or an acknowledgement could be forgotten by a crash after the peer counted it.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

/** Injected randomness: the only source of nondeterminism the core has, so a seed replays it. */
export interface RandomSource {
  /** A uniformly distributed integer in [0, boundExclusive). */
  intBelow(boundExclusive: number): number;
}

/**
 * Test-only switches that plant known bugs, so the simulator can prove it catches them.
 * Never set outside the simulator's own tests.
 */
export interface PlantedBugs {
  /** Figure 8: count replicas of an older-term entry toward commit. */
  readonly commitOldTermEntries?: boolean;
  /** Answer ReadIndex at once, without a heartbeat round confirming leadership. */
  readonly readIndexWithoutQuorum?: boolean;
  /** Grant votes without checking that the candidate's log is at least as up to date. */
  readonly voteIgnoresLogCheck?: boolean;
  /** Accept a membership change before this leadership has committed an entry of its term (the bug Ongaro corrected in 2015). */
  readonly confChangeBeforeTermCommit?: boolean;
}

export interface RaftConfig {
  readonly id: NodeId;
  /** Initial voters, used only when no snapshot says otherwise. */
  readonly peers: readonly NodeId[];
  readonly random: RandomSource;
  /** Followers wait a random [electionTicks, 2*electionTicks) ticks before campaigning. */
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly maxEntriesPerAppend?: number;
  readonly maxBytesPerAppend?: number;
  /** Flow control: appends in flight to one follower in replicate state. */
  readonly maxInflightAppends?: number;
  /** Bound on read requests waiting for a leadership confirmation. */
  readonly maxPendingReads?: number;
  /** The state machine's applied index at start (entries up to it are not handed out again). */
  readonly appliedIndex?: number;
  /**
   * Refuse (pre-)votes for electionTicks after start, as if a leader had just been heard. A
   * leader's read lease (server/node) rests on its followers not voting within an election
   * timeout of its heartbeat; a member that restarted has forgotten that heartbeat. Every member
   * of a cluster that serves lease reads must set it.
   */
  readonly quietAfterStart?: boolean;
  /** A learner is promoted only within this many entries of the leader's last index (default 1,000). */
  readonly promoteLagMax?: number;
  readonly plantedBugs?: PlantedBugs;
}

/** What a member recovers from its disk at start: the input for a restart. */
export interface PersistedState {
  readonly hardState: HardState;
  readonly snapshot: SnapshotMeta | null;
  /** The log after the snapshot, contiguous. */
  readonly entries: readonly Entry[];
}

export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly code: 'NOT_LEADER' | 'UNAVAILABLE'; readonly leaderHint: NodeId | null };

export type ReadIndexResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'NOT_LEADER' | 'UNAVAILABLE'; readonly leaderHint: NodeId | null };

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leaderId: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly voters: readonly NodeId[];
  /** Members that receive the log but neither vote nor count (sorted). */
  readonly learners: readonly NodeId[];
}
