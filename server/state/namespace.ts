/**
 * The hierarchical namespace with MVCC (Versioned Value): nodes at paths with ZooKeeper's shape
 * (parents, children, ephemeral and sequential nodes, versions for compare-and-set) and etcd's
 * history (one cluster revision per committed write, past states readable until compaction).
 *
 * Every write runs against a WriteSet that overlays the live state, and is committed only if
 * every step succeeded: a transaction is all or nothing, and all of its changes share one
 * revision. Deterministic: no clock, no randomness, iteration in path order.
 *
 * Values are copied on the way in, so a caller reusing its buffer cannot rewrite history. Nodes
 * handed out (answers, events, reads) are the stored, immutable objects themselves — sharing
 * them is what keeps a write's allocations few — and must not be mutated.
 *
 * Shape (types, paths, sizes) is checked once, for the whole command, by validate.ts before
 * apply evaluates anything; the steps here check only what depends on the state.
 *
 * Must never: throw out of a command for bad input (it answers an error code and changes
 * nothing), give a revision to a command that changed nothing, or reuse a revision.
 */

import type { ErrorCode } from '../../shared/errors.js';
import { checkPath, checkSequentialPath, comparePaths, joinPath, parentOf, ROOT, sequentialPath, utf8Bytes } from '../../shared/paths.js';
import { nodeWireBytes, statWireBytes } from '../../shared/wire-size.js';
import { ANSWER_BYTES_MAX_DEFAULT, WRITE_NODES_MAX_DEFAULT, WRITE_PATH_BYTES_MAX_DEFAULT } from '../../shared/protocol.js';
import type { ChangeTracker, VersionChange } from './changes.js';
import { ChildrenIndex } from './children-index.js';
import { changesSlice, type ReplayBudget, type ReplaySlice, type Version } from './history-replay.js';
import { compareKeys } from './kv-engine.js';
import { PathIndex } from './path-index.js';
import { RevisionIndex } from './revision-index.js';
import { commandProblem, describe } from './validate.js';
import { WriteSet } from './write-set.js';
import { childrenPage, rangePage, type ChildrenAnswer, type ChildrenOptions, type RangeAnswer, type RangeOptions, type ReadView } from './namespace-reads.js';
import type {
  ChangeEvent,
  CommandLimits,
  CommandResult,
  StateLimitName,
  Compare,
  CreateOp,
  DeleteOp,
  GetOp,
  LeaseId,
  NamespaceCommand,
  NodeStat,
  NodeView,
  OpResult,
  PutOp,
  TxnCommand,
  TxnOp,
} from './types.js';

export const VALUE_BYTES_MAX_DEFAULT = 1024 * 1024;
export { WRITE_NODES_MAX_DEFAULT } from '../../shared/protocol.js';
export { RANGE_SCAN_MAX } from './namespace-reads.js';

export interface NamespaceOptions {
  readonly valueBytesMax?: number;
  /** Keep at least this many revisions of history; older ones are compacted automatically. */
  readonly historyRevisions?: number;
  /** Whether a lease exists (the lease table lives beside the namespace). */
  readonly leaseExists?: (lease: LeaseId) => boolean;
  /** Where to record every new and dropped history version, for the state store. */
  readonly changes?: ChangeTracker;
}

/** What a state store holds of the namespace, to rebuild it at start. */
export interface NamespaceImage {
  readonly revision: number;
  readonly compactRevision: number;
  /** Every retained version, in path order and, per path, by `since`. */
  readonly versions: Iterable<VersionChange>;
}

/**
 * A node as held in memory is the very view handed out: immutable (a change makes a new one),
 * so answers, events and reads share it instead of copying it on every write.
 */
export type StoredNode = NodeView;

/** A failed step: the whole command answers this and nothing is committed. */
class Refusal {
  constructor(
    readonly code: ErrorCode,
    readonly message: string,
    readonly limit?: StateLimitName,
  ) {}
}


const EMPTY = new Uint8Array(0);
const ROOT_NODE: StoredNode = { path: ROOT, value: EMPTY, stat: { createRevision: 0, modRevision: 0, version: 0, childrenVersion: 0, numChildren: 0, lease: null } };

export class Namespace {
  private revisionNow = 0;
  private compactRevisionNow = 0;
  private readonly live = new Map<string, StoredNode>([[ROOT, ROOT_NODE]]);
  private readonly history = new Map<string, Version[]>([[ROOT, [{ since: 0, node: ROOT_NODE }]]]);
  readonly liveChildren = new ChildrenIndex();
  private readonly pathsByLease = new Map<LeaseId, Set<string>>();
  private readonly index = new PathIndex();
  /** Which paths each revision above the compaction mark changed, for replays and compaction. */
  private revisions = new RevisionIndex();
  /** The limits of the command being applied (carried in it, so every member applies the same). */
  private commandLimits: Required<CommandLimits> = { writeNodesMax: WRITE_NODES_MAX_DEFAULT, writePathBytesMax: WRITE_PATH_BYTES_MAX_DEFAULT, answerBytesMax: ANSWER_BYTES_MAX_DEFAULT };
  /** The UTF-8 bytes of each lease's ephemeral nodes' paths (they all die in one write). */
  private readonly leasePathBytes = new Map<LeaseId, number>();
  private readonly valueBytesMax: number;
  private readonly historyRevisions: number;
  private readonly leaseExists: (lease: LeaseId) => boolean;
  private readonly changes: ChangeTracker | null;

  constructor(options: NamespaceOptions = {}) {
    this.valueBytesMax = options.valueBytesMax ?? VALUE_BYTES_MAX_DEFAULT;
    this.historyRevisions = options.historyRevisions ?? Number.POSITIVE_INFINITY;
    if (!Number.isInteger(this.valueBytesMax) || this.valueBytesMax < 0) throw new RangeError(`valueBytesMax must be a non-negative integer, got ${this.valueBytesMax}`);
    if (this.historyRevisions !== Number.POSITIVE_INFINITY && (!Number.isInteger(this.historyRevisions) || this.historyRevisions < 1)) {
      throw new RangeError(`historyRevisions must be a positive integer, got ${this.historyRevisions}`);
    }
    this.leaseExists = options.leaseExists ?? (() => false);
    this.changes = options.changes ?? null;
    this.index.add(ROOT);
  }

  /**
   * A namespace rebuilt from what a state store held: the history as retained, and from it the
   * live nodes, children, lease memberships and path index.
   */
  static restore(options: NamespaceOptions, image: NamespaceImage): Namespace {
    const namespace = new Namespace(options);
    namespace.history.clear();
    namespace.live.clear();
    namespace.index.remove(ROOT);
    let previous: VersionChange | null = null;
    const replayable: [number, string][] = [];
    for (const version of image.versions) {
      if (version.since > image.compactRevision) replayable.push([version.since, version.path]);
      if (previous !== null && version.path === previous.path && version.since <= previous.since) {
        throw new Error(`state store: versions of ${version.path} out of order (${previous.since} then ${version.since})`);
      }
      let versions = namespace.history.get(version.path);
      if (versions === undefined) {
        namespace.history.set(version.path, (versions = []));
        namespace.index.add(version.path);
      }
      versions.push({ since: version.since, node: version.node });
      previous = version;
    }
    // The root's first version (revision 0) is never written: it is where every store begins.
    // It is still in force unless a kept root version reaches back to the compaction mark.
    const rootVersions = namespace.history.get(ROOT);
    if (rootVersions === undefined) {
      namespace.history.set(ROOT, [{ since: 0, node: ROOT_NODE }]);
      namespace.index.add(ROOT);
    } else if (rootVersions[0]!.since > image.compactRevision) {
      rootVersions.unshift({ since: 0, node: ROOT_NODE });
    }
    for (const [path, versions] of namespace.history) {
      const node = versions[versions.length - 1]!.node;
      if (node === null) continue;
      namespace.live.set(path, node);
      if (path !== ROOT) namespace.linkChild(path, true);
      if (node.stat.lease !== null) namespace.joinLease(path, node.stat.lease);
    }
    namespace.revisions = RevisionIndex.rebuilt(replayable, comparePaths);
    namespace.revisionNow = image.revision;
    namespace.compactRevisionNow = image.compactRevision;
    return namespace;
  }

  get revision(): number {
    return this.revisionNow;
  }

  get compactRevision(): number {
    return this.compactRevisionNow;
  }

  /** Apply one committed command. Returns its answer and the change events of its revision. */
  apply(command: NamespaceCommand): { result: CommandResult; events: ChangeEvent[] } {
    // The whole command is checked before anything is evaluated, so a malformed compare or an
    // op in the branch not taken refuses the command instead of letting the other branch run.
    const problem = commandProblem(command, { valueBytesMax: this.valueBytesMax });
    if (problem !== null) return this.refused(new Refusal(problem.code, problem.message));
    const carried = (command as { limits?: CommandLimits }).limits;
    this.commandLimits = {
      writeNodesMax: carried?.writeNodesMax ?? WRITE_NODES_MAX_DEFAULT,
      writePathBytesMax: carried?.writePathBytesMax ?? WRITE_PATH_BYTES_MAX_DEFAULT,
      answerBytesMax: carried?.answerBytesMax ?? ANSWER_BYTES_MAX_DEFAULT,
    };
    try {
      switch (command.op) {
        case 'create':
        case 'put':
        case 'delete':
          return this.single((ws) => this.step(ws, command));
        case 'txn':
          return this.txn(command);
        case 'compact':
          return { result: this.compact(command.revision), events: [] };
        default:
          return this.refused(new Refusal('INVALID_ARGUMENT', `unknown operation ${describe((command as { op?: unknown }).op)}`));
      }
    } catch (error) {
      if (error instanceof Refusal) return this.refused(error);
      throw error;
    }
  }

  /** Read a node, now or as of a past revision. */
  get(path: string, revision?: number): CommandResult {
    const op: GetOp = revision === undefined ? { op: 'get', path } : { op: 'get', path, revision };
    try {
      return { ok: true, revision: revision ?? this.revisionNow, ...this.read(null, op) };
    } catch (error) {
      if (error instanceof Refusal) return this.refused(error).result;
      throw error;
    }
  }

  /**
   * The names of a node's children, in order, with the node's own view: at most `limit` of them
   * (default all), after the name `after`, and no more than `bytesMax` of names (see namespace-reads.ts).
   */
  childrenOf(path: string, options: ChildrenOptions = {}): ChildrenAnswer {
    return childrenPage(this.readView(), path, options);
  }

  /**
   * Nodes strictly below `path`, in subtree order, as of `revision` (default: now), at most
   * `limit` of them and `bytesMax` of answer, starting after `after` (see namespace-reads.ts).
   */
  range(path: string, options: RangeOptions): RangeAnswer {
    return rangePage(this.readView(), path, options);
  }

  private readView(): ReadView {
    return {
      revision: this.revisionNow,
      liveNode: (path) => this.live.get(path),
      liveChildren: this.liveChildren,
      pathsAfter: (after) => this.index.pathsAfter(after),
      nodeAt: (path, revision) => this.nodeAt(path, revision),
      readRevisionProblem: (revision) => this.checkReadRevision(revision),
    };
  }

  /**
   * The changes at revisions `fromRevision`..now to `path` itself ('node'), to its direct
   * children ('children') or to it and everything below it ('subtree'), rebuilt from the
   * retained history: what a watch starting in the past replays. In revision order, and in
   * path order within a revision (all of a revision's changes together). COMPACTED when the
   * history no longer reaches back to `fromRevision`. All at once: a replay takes it in slices
   * (`changesFrom`).
   */
  changesSince(fromRevision: number, path: string, scope: 'node' | 'children' | 'subtree'): { ok: true; events: ChangeEvent[] } | { ok: false; code: ErrorCode; message: string; compactRevision: number } {
    const slice = this.changesFrom(fromRevision, path, scope, { eventsMax: Number.POSITIVE_INFINITY, scanMax: Number.POSITIVE_INFINITY });
    return slice.ok ? { ok: true, events: slice.events } : slice;
  }

  /**
   * One slice of `changesSince`: whole revisions from `fromRevision` on, until the slice holds
   * `eventsMax` events or has looked at `scanMax` changed paths. `nextRevision` is where the next
   * slice starts; `done` when it is past the current revision.
   */
  changesFrom(fromRevision: number, path: string, scope: 'node' | 'children' | 'subtree', budget: ReplayBudget): ReplaySlice {
    if (fromRevision <= this.compactRevisionNow) {
      return { ok: false, code: 'COMPACTED', message: `revision ${fromRevision} was compacted (history starts after ${this.compactRevisionNow})`, compactRevision: this.compactRevisionNow };
    }
    return changesSlice({ revisions: this.revisions, versionsOf: (p) => this.history.get(p), revision: this.revisionNow }, fromRevision, path, scope, budget);
  }

  /** Every retained version, in path order and by revision: the whole history, for a full store write. */
  *versions(): IterableIterator<VersionChange> {
    for (const path of this.index.paths()) {
      for (const version of this.history.get(path)!) yield { path, since: version.since, node: version.node };
    }
  }

  /** The paths of the ephemeral nodes that die with `lease`, in path order. */
  pathsOfLease(lease: LeaseId): string[] {
    return [...(this.pathsByLease.get(lease) ?? [])].sort(comparePaths);
  }

  /** How many ephemeral nodes die with `lease`. */
  leaseNodeCount(lease: LeaseId): number {
    return this.pathsByLease.get(lease)?.size ?? 0;
  }

  /**
   * Delete every node attached to these leases at one revision (revoked or expired together).
   * Never refused for its size: a lease's end must happen. Each lease holds at most
   * writeNodesMax nodes, and the leader batches expiries to about that many (lease-keeper.ts).
   */
  deleteLeaseNodes(leases: readonly LeaseId[]): { result: CommandResult; events: ChangeEvent[] } {
    const paths = [...new Set(leases)].sort((a, b) => a - b).flatMap((lease) => this.pathsOfLease(lease));
    if (paths.length === 0) return { result: { ok: true, revision: this.revisionNow, op: 'delete', deleted: 0 }, events: [] };
    this.commandLimits = { writeNodesMax: Number.POSITIVE_INFINITY, writePathBytesMax: Number.POSITIVE_INFINITY, answerBytesMax: Number.POSITIVE_INFINITY };
    return this.single((ws) => {
      let deleted = 0;
      for (const path of paths) if (ws.node(path) !== null) deleted += this.deleteNode(ws, path, false);
      return { op: 'delete', deleted };
    });
  }

  // ─── writes ────────────────────────────────────────────────────────────────────────────────

  /**
   * Run one command's steps in a write set and commit them at the next revision, all or nothing.
   * A command that creates or deletes more than writeNodesMax nodes in all (parents a put makes,
   * recursive deletes, a transaction's ops together) is refused: one log entry's work is bounded.
   */
  private write(run: (ws: WriteSet) => OpResult[]): { results: OpResult[]; events: ChangeEvent[]; revision: number } {
    const ws = new WriteSet(this, this.revisionNow + 1);
    const results = run(ws);
    const max = this.commandLimits.writeNodesMax;
    if (ws.nodesChanged > max) {
      throw new Refusal('TOO_LARGE', `the write creates or deletes ${ws.nodesChanged} nodes; one write may change at most ${max}: split it`, 'writeNodesMax');
    }
    const bytesMax = this.commandLimits.writePathBytesMax;
    if (ws.pathBytesChanged > bytesMax) {
      throw new Refusal('TOO_LARGE', `the write creates or deletes nodes whose paths are ${ws.pathBytesChanged} bytes in all; one write may change at most ${bytesMax}: split it`, 'writePathBytesMax');
    }
    const events = this.commit(ws);
    return { results, events, revision: this.revisionNow };
  }

  private single(run: (ws: WriteSet) => OpResult): { result: CommandResult; events: ChangeEvent[] } {
    const done = this.write((ws) => [run(ws)]);
    return { result: { ok: true, revision: done.revision, ...done.results[0]! }, events: done.events };
  }

  private txn(command: TxnCommand): { result: CommandResult; events: ChangeEvent[] } {
    const succeeded = command.compare.every((c) => this.compareHolds(c));
    const ops = succeeded ? command.success : command.failure;
    const done = this.write((ws) => {
      let answerBytes = 0;
      return ops.map((op, i) => {
        let result: OpResult;
        try {
          result = this.step(ws, op);
        } catch (error) {
          if (error instanceof Refusal) throw new Refusal(error.code, `txn op ${i} (${describeOp(op)}): ${error.message}`, error.limit);
          throw error;
        }
        // A get answers its node with the value; a write answers paths and stats only (the
        // member strips values from a transaction's write results).
        answerBytes += result.op === 'get' ? nodeWireBytes(result.node) : result.op === 'delete' ? 32 : 2 * statWireBytes(result.op === 'create' ? result.path : result.node.path);
        if (answerBytes > this.commandLimits.answerBytesMax) {
          throw new Refusal('TOO_LARGE', `txn op ${i} (${describeOp(op)}): the transaction would answer more than ${this.commandLimits.answerBytesMax} bytes; read the nodes apart`, 'answerBytesMax');
        }
        return result;
      });
    });
    return { result: { ok: true, revision: done.revision, op: 'txn', succeeded, results: done.results }, events: done.events };
  }

  private step(ws: WriteSet, op: TxnOp): OpResult {
    switch (op?.op) {
      case 'create':
        return this.create(ws, op);
      case 'put':
        return this.put(ws, op);
      case 'delete':
        return this.delete(ws, op);
      case 'get':
        return this.read(ws, op);
      default:
        throw new Refusal('INVALID_ARGUMENT', `unknown operation ${describe((op as { op?: unknown } | null)?.op)}`);
    }
  }

  private create(ws: WriteSet, op: CreateOp): OpResult {
    // A sequential base may end in "/" (the name is then only the counter): any counter gives
    // the final shape and the same parent.
    let path = op.sequential === true ? sequentialPath(op.path, 0) : op.path;
    const lease = this.requireLease(op.lease);
    const parentPath = parentOf(path);
    if (parentPath === null) throw new Refusal('NODE_EXISTS', 'the root always exists');
    if (op.parents === true) this.createAncestors(ws, parentPath);
    const parent = ws.node(parentPath);
    if (parent === null) throw new Refusal('NO_NODE', `parent ${parentPath} does not exist`);
    if (parent.stat.lease !== null) throw new Refusal('INVALID_ARGUMENT', `${parentPath} is ephemeral and cannot have children`);
    if (op.sequential === true) {
      const sequential = checkSequentialPath(op.path, parent.stat.childrenVersion);
      if (!sequential.ok) throw new Refusal('INVALID_ARGUMENT', sequential.error.message);
      path = sequential.path;
    }
    if (ws.node(path) !== null) throw new Refusal('NODE_EXISTS', `${path} already exists`);
    if (lease !== null) this.requireLeaseRoom(ws, lease, path);
    const node = this.addNode(ws, path, op.value.slice(), lease);
    return { op: 'create', path, node: node };
  }

  private put(ws: WriteSet, op: PutOp): OpResult {
    const path = op.path;
    const lease = this.requireLease(op.lease);
    const current = ws.node(path);
    if (current === null) {
      if (op.ifVersion !== undefined && op.ifVersion !== -1) throw new Refusal('BAD_VERSION', `${path} does not exist (expected version ${op.ifVersion})`);
      const parentPath = parentOf(path);
      if (parentPath === null) throw new Refusal('INVALID_ARGUMENT', 'the root holds no value');
      this.createAncestors(ws, parentPath);
      if (ws.node(parentPath)!.stat.lease !== null) throw new Refusal('INVALID_ARGUMENT', `${parentPath} is ephemeral and cannot have children`);
      if (lease !== null) this.requireLeaseRoom(ws, lease, path);
      const node = this.addNode(ws, path, op.value.slice(), lease);
      return { op: 'put', node: node, prevNode: null };
    }
    if (path === ROOT) throw new Refusal('INVALID_ARGUMENT', 'the root holds no value');
    const stat = current.stat;
    if (op.ifVersion !== undefined && op.ifVersion !== stat.version) {
      throw new Refusal('BAD_VERSION', `${path} is at version ${stat.version}, not ${op.ifVersion}`);
    }
    if (lease !== null && lease !== stat.lease) throw new Refusal('INVALID_ARGUMENT', `${path} exists; a node's lease is fixed when it is created`);
    const node: StoredNode = {
      path,
      value: op.value.slice(),
      stat: { createRevision: stat.createRevision, modRevision: ws.revision, version: stat.version + 1, childrenVersion: stat.childrenVersion, numChildren: stat.numChildren, lease: stat.lease },
    };
    ws.set(path, node, 'put');
    return { op: 'put', node: node, prevNode: current };
  }

  private delete(ws: WriteSet, op: DeleteOp): OpResult {
    const path = op.path;
    if (path === ROOT) throw new Refusal('INVALID_ARGUMENT', 'the root cannot be deleted');
    const node = ws.node(path);
    if (node === null) throw new Refusal('NO_NODE', `${path} does not exist`);
    if (op.ifVersion !== undefined && op.ifVersion !== node.stat.version) throw new Refusal('BAD_VERSION', `${path} is at version ${node.stat.version}, not ${op.ifVersion}`);
    if (node.stat.numChildren > 0 && op.recursive !== true) throw new Refusal('NOT_EMPTY', `${path} has ${node.stat.numChildren} children`);
    // Counted before anything is deleted (at most the room left in this write), so a subtree too
    // big for one write costs no more than that room to find out.
    const room = this.commandLimits.writeNodesMax - ws.nodesChanged;
    const bytesRoom = this.commandLimits.writePathBytesMax - ws.pathBytesChanged;
    const over = node.stat.numChildren > 0 ? this.subtreeLarger(ws, path, room, bytesRoom) : null;
    if (over === 'nodes') {
      throw new Refusal('TOO_LARGE', `${path} and its descendants are more than the ${room} nodes this write may still delete (at most ${this.commandLimits.writeNodesMax} per write); delete its children in pages first`, 'writeNodesMax');
    }
    if (over === 'bytes') {
      throw new Refusal('TOO_LARGE', `the paths of ${path} and its descendants are more than the ${bytesRoom} bytes this write may still delete (at most ${this.commandLimits.writePathBytesMax} per write); delete its children in pages first`, 'writePathBytesMax');
    }
    return { op: 'delete', deleted: this.deleteNode(ws, path, true) };
  }

  /**
   * Whether `path`'s subtree (itself included) holds more than `max` nodes, or paths of more than
   * `bytesMax` bytes in all: 'nodes', 'bytes' or null. Costs at most that many nodes' visits.
   */
  private subtreeLarger(ws: WriteSet, path: string, max: number, bytesMax: number): 'nodes' | 'bytes' | null {
    let count = 1;
    let bytes = utf8Bytes(path);
    if (bytes > bytesMax) return 'bytes';
    const pending = [path];
    while (pending.length > 0) {
      const at = pending.pop()!;
      const children = ws.node(at)!.stat.numChildren;
      if (children === 0) continue;
      count += children;
      if (count > max) return 'nodes';
      for (const name of ws.childNamesReversed(at)) {
        const child = joinPath(at, name);
        bytes += utf8Bytes(child);
        if (bytes > bytesMax) return 'bytes';
        pending.push(child);
      }
    }
    return null;
  }

  /** Delete `path` and (if it has any) its descendants, deepest first. Returns how many went. */
  private deleteNode(ws: WriteSet, path: string, recursive: boolean): number {
    let deleted = 0;
    if (recursive && ws.node(path)!.stat.numChildren > 0) {
      for (const name of ws.childNamesReversed(path)) deleted += this.deleteNode(ws, joinPath(path, name), true);
    }
    const node = ws.node(path)!;
    ws.set(path, null, 'delete');
    const parentPath = parentOf(path)!;
    const parent = ws.node(parentPath)!;
    ws.set(parentPath, withChildren(parent, -1), null);
    return deleted + 1;
  }

  private addNode(ws: WriteSet, path: string, value: Uint8Array, lease: LeaseId | null): StoredNode {
    const rev = ws.revision;
    const node: StoredNode = { path, value, stat: { createRevision: rev, modRevision: rev, version: 0, childrenVersion: 0, numChildren: 0, lease } };
    ws.set(path, node, 'create');
    const parentPath = parentOf(path)!;
    const parent = ws.node(parentPath)!;
    ws.set(parentPath, withChildren(parent, +1), null);
    return node;
  }

  /**
   * Create `path` and its missing ancestors. The missing ones are counted first (walking up to
   * the first that exists): a write whose parents would pass the per-write bounds is refused
   * before any is made, so a path 2,000 levels deep costs its depth to refuse, not its nodes.
   */
  private createAncestors(ws: WriteSet, path: string): void {
    let missing = 0;
    let bytes = 0;
    for (let at: string | null = path; at !== null && ws.node(at) === null; at = parentOf(at)) {
      missing += 1;
      bytes += utf8Bytes(at);
    }
    if (missing === 0) return;
    const { writeNodesMax, writePathBytesMax } = this.commandLimits;
    if (ws.nodesChanged + missing + 1 > writeNodesMax) {
      throw new Refusal('TOO_LARGE', `${path} needs ${missing} missing ancestors made; one write may create at most ${writeNodesMax} nodes: make the upper ones first`, 'writeNodesMax');
    }
    if (ws.pathBytesChanged + bytes > writePathBytesMax) {
      throw new Refusal('TOO_LARGE', `the ${missing} missing ancestors of ${path} have paths of ${bytes} bytes; one write may create at most ${writePathBytesMax}: make the upper ones first`, 'writePathBytesMax');
    }
    this.makeAncestors(ws, path);
  }

  private makeAncestors(ws: WriteSet, path: string): void {
    if (ws.node(path) !== null) return;
    const parentPath = parentOf(path)!;
    this.makeAncestors(ws, parentPath);
    if (ws.node(parentPath)!.stat.lease !== null) throw new Refusal('INVALID_ARGUMENT', `${parentPath} is ephemeral and cannot have children`);
    this.addNode(ws, path, EMPTY, null);
  }

  /** Make the write set's changes the live state at its revision; answer their events. */
  private commit(ws: WriteSet): ChangeEvent[] {
    if (ws.changes.size === 0) return [];
    const revision = ws.revision;
    // A revision names one write on every member: reusing or skipping one would make two
    // members' histories disagree on what it was. A member that breaches this stops (its apply
    // throws), as etcd's raft panics, rather than serve a history that lies.
    if (revision !== this.revisionNow + 1) throw new Error(`namespace invariant broken: a write at revision ${revision}, after ${this.revisionNow}`);
    // An event's prevNode is the node as it stood at the previous revision (etcd's prev_kv), not
    // some state inside this command that no revision ever had; so capture it before applying.
    const events: ChangeEvent[] = ws.events.map((e) => {
      const before = this.live.get(e.path);
      return {
        revision,
        kind: e.kind,
        path: e.path,
        node: e.node,
        prevNode: before ?? null,
      };
    });
    for (const [path, node] of ws.changes) {
      const before = this.live.get(path) ?? null;
      if (node === null) this.live.delete(path);
      else this.live.set(path, node);
      const versions = this.history.get(path);
      if (versions === undefined) {
        this.history.set(path, [{ since: revision, node }]);
        this.index.add(path);
      } else {
        versions.push({ since: revision, node });
      }
      if ((before === null) !== (node === null)) this.linkChild(path, node !== null);
      const leaseBefore = before === null ? null : before.stat.lease;
      const leaseAfter = node === null ? null : node.stat.lease;
      if (leaseBefore !== null && leaseBefore !== leaseAfter) this.leaveLease(path, leaseBefore);
      if (leaseAfter !== null) this.joinLease(path, leaseAfter);
      this.changes?.versions.push({ path, since: revision, node });
      this.revisions.record(revision, path);
    }
    this.revisionNow = revision;
    if (this.revisionNow - this.compactRevisionNow >= 2 * this.historyRevisions) this.compactTo(this.revisionNow - this.historyRevisions);
    return events;
  }

  /** Add `path` to (or remove it from) its parent's child names. */
  private linkChild(path: string, present: boolean): void {
    const parentPath = parentOf(path)!;
    const name = path.slice(parentPath === ROOT ? 1 : parentPath.length + 1);
    if (present) this.liveChildren.add(parentPath, name);
    else this.liveChildren.remove(parentPath, name);
  }

  private joinLease(path: string, lease: LeaseId): void {
    let paths = this.pathsByLease.get(lease);
    if (paths === undefined) this.pathsByLease.set(lease, (paths = new Set()));
    if (paths.has(path)) return;
    paths.add(path);
    this.leasePathBytes.set(lease, (this.leasePathBytes.get(lease) ?? 0) + utf8Bytes(path));
  }

  private leaveLease(path: string, lease: LeaseId): void {
    const paths = this.pathsByLease.get(lease);
    if (paths === undefined || !paths.delete(path)) return;
    const bytes = (this.leasePathBytes.get(lease) ?? 0) - utf8Bytes(path);
    if (paths.size === 0) {
      this.pathsByLease.delete(lease);
      this.leasePathBytes.delete(lease);
    } else this.leasePathBytes.set(lease, bytes);
  }

  // ─── reads ─────────────────────────────────────────────────────────────────────────────────

  private read(ws: WriteSet | null, op: GetOp): OpResult {
    const path = requirePath(op.path);
    if (op.revision !== undefined) {
      const refusal = this.checkReadRevision(op.revision);
      if (refusal !== null) throw refusal;
      const node = this.nodeAt(path, op.revision);
      if (node === null) throw new Refusal('NO_NODE', `${path} did not exist at revision ${op.revision}`);
      return { op: 'get', node: node };
    }
    const node = ws === null ? (this.live.get(path) ?? null) : ws.node(path);
    if (node === null) throw new Refusal('NO_NODE', `${path} does not exist`);
    return { op: 'get', node: node };
  }

  private checkReadRevision(revision: number): Refusal | null {
    if (!Number.isInteger(revision) || revision < 0) return new Refusal('INVALID_ARGUMENT', `revision must be a non-negative integer`);
    if (revision > this.revisionNow) return new Refusal('INVALID_ARGUMENT', `revision ${revision} is in the future (now ${this.revisionNow})`);
    if (revision < this.compactRevisionNow) return new Refusal('COMPACTED', `revision ${revision} was compacted (history starts at ${this.compactRevisionNow})`);
    return null;
  }

  /** The node at `path` as of `revision`, or null. */
  private nodeAt(path: string, revision: number): StoredNode | null {
    const versions = this.history.get(path);
    if (versions === undefined) return null;
    let lo = 0;
    let hi = versions.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (versions[mid]!.since <= revision) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? null : versions[found]!.node;
  }

  /** Live state as a write set would see it, for WriteSet. */
  liveNode(path: string): StoredNode | null {
    return this.live.get(path) ?? null;
  }


  // ─── compare and compaction ────────────────────────────────────────────────────────────────

  /** Evaluate a compare (its shape was checked with the whole command) against the live state. */
  private compareHolds(c: Compare): boolean {
    const node = this.live.get(c.path) ?? null;
    if (c.target === 'exists') return (node !== null) === c.operand ? c.operator === '=' : c.operator === '!=';
    if (node === null) return false; // on a missing node only `exists` can hold
    if (c.target === 'value') return holds(compareKeys(node.value, c.operand as Uint8Array), c.operator);
    return holds(node.stat[c.target] - (c.operand as number), c.operator);
  }

  private compact(revision: number): CommandResult {
    if (revision > this.revisionNow) throw new Refusal('INVALID_ARGUMENT', `revision ${revision} is in the future (now ${this.revisionNow})`);
    if (revision < this.compactRevisionNow) throw new Refusal('COMPACTED', `already compacted to ${this.compactRevisionNow}`);
    this.compactTo(revision);
    return { ok: true, revision: this.revisionNow, op: 'compact', compactRevision: this.compactRevisionNow };
  }

  /**
   * Drop history no read at or after `revision` can reach (Low-Water Mark). Only paths changed
   * above the old mark can hold versions to drop (below it every path already keeps one), so
   * this costs the changes compacted, not every path there is.
   */
  private compactTo(revision: number): void {
    const from = this.revisions.seek(this.compactRevisionNow + 1);
    const until = this.revisions.seek(revision + 1);
    const touched = new Set<string>();
    for (let at = from; at < until; at++) touched.add(this.revisions.pathAt(at));
    for (const path of touched) {
      const versions = this.history.get(path);
      if (versions === undefined) continue;
      // Keep the version in force at `revision` and everything after it.
      let keepFrom = 0;
      for (let i = versions.length - 1; i >= 0; i--) {
        if (versions[i]!.since <= revision) {
          keepFrom = i;
          break;
        }
      }
      let dropCount = keepFrom;
      if (versions[keepFrom]!.node === null && versions[keepFrom]!.since <= revision) dropCount += 1;
      if (dropCount === 0) continue;
      if (this.changes !== null) for (let i = 0; i < dropCount; i++) this.changes.versions.push({ path, since: versions[i]!.since, dropped: true });
      const kept = versions.slice(dropCount);
      if (kept.length === 0) {
        this.history.delete(path);
        this.index.remove(path);
      } else {
        this.history.set(path, kept);
      }
    }
    this.revisions.compactTo(revision);
    this.compactRevisionNow = revision;
  }

  // ─── checks that depend on the state, and answers ──────────────────────────────────────────

  private requireLease(lease: LeaseId | null | undefined): LeaseId | null {
    if (lease === undefined || lease === null) return null;
    if (!this.leaseExists(lease)) throw new Refusal('LEASE_NOT_FOUND', `lease ${lease} does not exist`);
    return lease;
  }

  /** A lease's nodes all die in one write, so it may hold no more than one write changes (nodes, and their paths' bytes with `path`). */
  private requireLeaseRoom(ws: WriteSet, lease: LeaseId, path: string): void {
    const gain = ws.leaseGain(lease);
    const held = (this.pathsByLease.get(lease)?.size ?? 0) + gain.nodes;
    const max = this.commandLimits.writeNodesMax;
    if (held >= max) throw new Refusal('RESOURCE_EXHAUSTED', `lease ${lease} holds ${held} nodes, as many as one write may delete (${max}); use another lease`, 'writeNodesMax');
    const bytes = (this.leasePathBytes.get(lease) ?? 0) + gain.pathBytes + utf8Bytes(path);
    const bytesMax = this.commandLimits.writePathBytesMax;
    if (bytes > bytesMax) throw new Refusal('RESOURCE_EXHAUSTED', `lease ${lease}'s nodes would have paths of ${bytes} bytes in all, more than one write may delete (${bytesMax}); use another lease`, 'writePathBytesMax');
  }

  /** The UTF-8 bytes of the paths of the ephemeral nodes that die with `lease`. */
  leaseNodeBytes(lease: LeaseId): number {
    return this.leasePathBytes.get(lease) ?? 0;
  }

  private refused(refusal: Refusal): { result: CommandResult; events: ChangeEvent[] } {
    const result: CommandResult = { ok: false, code: refusal.code, message: refusal.message, revision: this.revisionNow, ...(refusal.limit === undefined ? {} : { limit: refusal.limit }) };
    return { result, events: [] };
  }
}

function requirePath(path: unknown): string {
  const checked = checkPath(path);
  if (!checked.ok) throw new Refusal('INVALID_ARGUMENT', checked.error.message);
  return checked.path;
}

/** The parent after a child came (+1) or went (-1): the same node with its children counted anew. */
function withChildren(parent: StoredNode, change: 1 | -1): StoredNode {
  const stat = parent.stat;
  return {
    path: parent.path,
    value: parent.value,
    stat: { createRevision: stat.createRevision, modRevision: stat.modRevision, version: stat.version, childrenVersion: stat.childrenVersion + 1, numChildren: stat.numChildren + change, lease: stat.lease },
  };
}

function holds(difference: number, operator: Compare['operator']): boolean {
  switch (operator) {
    case '=':
      return difference === 0;
    case '!=':
      return difference !== 0;
    case '<':
      return difference < 0;
    case '>':
      return difference > 0;
    default:
      throw new Refusal('INVALID_ARGUMENT', `unknown compare operator ${describe(operator)}`);
  }
}

function describeOp(op: TxnOp): string {
  return `${describe(op?.op)} ${describe((op as { path?: unknown } | null)?.path)}`;
}

