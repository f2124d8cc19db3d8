/**
 * A reference model of the MVCC namespace (server/state/namespace.ts), for the property tests:
 * the same commands, the same answers and the same events, computed the slowest and plainest
 * way there is. Every revision is a full copy of the whole namespace (`states[r]` is the tree
 * as of revision r), so a history read is an array index; a node's numChildren is counted from
 * the state instead of kept as a counter; a command works on its own copy of the latest state
 * and that copy becomes the next revision only if every step succeeded.
 *
 * Answers have the namespace's shapes, except that an error carries no message (messages are
 * prose, compared nowhere). The order in which a step checks its input, and so which error
 * code it answers first, follows namespace.ts on purpose: the property tests compare codes.
 *
 * Where the model knowingly pins a choice of the implementation rather than an obvious rule, a
 * comment says so (look for "pinned").
 *
 * Must never: import from server/ (it would stop being a second opinion); keep indexes,
 * counters or caches that could drift from the state; be clever for speed. Only shared/paths
 * (the wire rules, tested on their own) is borrowed.
 */

import type { ErrorCode } from '../../../shared/errors.js';
import { checkPath, checkSequentialPath, comparePaths, ROOT } from '../../../shared/paths.js';
import type { ChangeEvent, LeaseId, NodeView, OpResult } from '../../../server/state/types.js';

export const MODEL_VALUE_BYTES_MAX_DEFAULT = 1024 * 1024;

export interface ModelOptions {
  readonly valueBytesMax?: number;
  readonly historyRevisions?: number;
  readonly leaseExists?: (lease: LeaseId) => boolean;
}

/** What the model stores for a node: everything but numChildren, which is counted on demand. */
interface ModelNode {
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly childrenVersion: number;
  readonly lease: LeaseId | null;
}

type State = Map<string, ModelNode>;

export interface ModelError {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly revision: number;
}

export type ModelResult =
  | ({ readonly ok: true; readonly revision: number } & OpResult)
  | { readonly ok: true; readonly revision: number; readonly op: 'txn'; readonly succeeded: boolean; readonly results: OpResult[] }
  | { readonly ok: true; readonly revision: number; readonly op: 'compact'; readonly compactRevision: number }
  | ModelError;

export type ModelChildren = { ok: true; revision: number; node: NodeView; names: string[]; next: string | null } | ModelError;
export type ModelRange = { ok: true; revision: number; nodes: NodeView[]; next: string | null } | ModelError;

/** A step refused: the whole command answers this code and changes nothing. */
class Refused {
  constructor(readonly code: ErrorCode) {}
}

const ROOT_NODE: ModelNode = { value: new Uint8Array(0), createRevision: 0, modRevision: 0, version: 0, childrenVersion: 0, lease: null };

/** The parent of a valid path, or null for the root. Written out here rather than borrowed. */
function parentPathOf(path: string): string | null {
  if (path === ROOT) return null;
  const cut = path.lastIndexOf('/');
  return cut === 0 ? ROOT : path.slice(0, cut);
}

/** True when `path` lies strictly below `ancestor`. */
function isBelow(ancestor: string, path: string): boolean {
  if (path === ancestor) return false;
  return path.startsWith(ancestor === ROOT ? ROOT : `${ancestor}/`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function requirePath(path: unknown): string {
  const checked = checkPath(path);
  if (!checked.ok) throw new Refused('INVALID_ARGUMENT');
  return checked.path;
}

/** A node's view in one state: numChildren is counted, never remembered. */
function viewIn(state: State, path: string): NodeView {
  const node = state.get(path)!;
  let numChildren = 0;
  for (const other of state.keys()) if (parentPathOf(other) === path) numChildren++;
  return {
    path,
    value: node.value,
    stat: {
      createRevision: node.createRevision,
      modRevision: node.modRevision,
      version: node.version,
      childrenVersion: node.childrenVersion,
      numChildren,
      lease: node.lease,
    },
  };
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const OPERATORS = ['=', '!=', '<', '>'];

/** One command in progress: a private copy of the latest state, and the events so far. */
class Draft {
  readonly state: State;
  readonly events: ChangeEvent[] = [];
  changed = false;

  constructor(
    private readonly from: State,
    readonly revision: number,
  ) {
    this.state = new Map(from);
  }

  /** An event's prevNode: the node at the previous revision, whatever this command did before. */
  previous(path: string): NodeView | null {
    return this.from.has(path) ? viewIn(this.from, path) : null;
  }

  add(path: string, value: Uint8Array, lease: LeaseId | null): NodeView {
    this.state.set(path, { value, createRevision: this.revision, modRevision: this.revision, version: 0, childrenVersion: 0, lease });
    const created = viewIn(this.state, path);
    this.events.push({ revision: this.revision, kind: 'create', path, node: created, prevNode: this.previous(path) });
    this.bumpChildrenVersion(parentPathOf(path)!);
    this.changed = true;
    return created;
  }

  remove(path: string): void {
    this.state.delete(path);
    this.events.push({ revision: this.revision, kind: 'delete', path, node: null, prevNode: this.previous(path) });
    this.bumpChildrenVersion(parentPathOf(path)!);
    this.changed = true;
  }

  private bumpChildrenVersion(parentPath: string): void {
    const parent = this.state.get(parentPath)!;
    this.state.set(parentPath, { ...parent, childrenVersion: parent.childrenVersion + 1 });
  }
}

export class ReferenceModel {
  /** states[r]: the whole namespace as of revision r. The latest revision is the last index. */
  private readonly states: State[] = [new Map([[ROOT, ROOT_NODE]])];
  private compactedBelow = 0;
  private readonly valueBytesMax: number;
  private readonly historyRevisions: number;
  private readonly leaseExists: (lease: LeaseId) => boolean;

  constructor(options: ModelOptions = {}) {
    this.valueBytesMax = options.valueBytesMax ?? MODEL_VALUE_BYTES_MAX_DEFAULT;
    this.historyRevisions = options.historyRevisions ?? Number.POSITIVE_INFINITY;
    this.leaseExists = options.leaseExists ?? (() => false);
  }

  get revision(): number {
    return this.states.length - 1;
  }

  get compactRevision(): number {
    return this.compactedBelow;
  }

  private get latest(): State {
    return this.states[this.revision]!;
  }

  /** Every path that exists at some revision the model holds, in path order. */
  pathsEverSeen(): string[] {
    const paths = new Set<string>();
    for (const state of this.states) for (const path of state.keys()) paths.add(path);
    return [...paths].sort(comparePaths);
  }

  // ─── commands ──────────────────────────────────────────────────────────────────────────────

  apply(command: unknown): { result: ModelResult; events: ChangeEvent[] } {
    try {
      if (!isObject(command)) throw new Refused('INVALID_ARGUMENT');
      switch (command.op) {
        case 'create':
        case 'put':
        case 'delete':
          return this.commit((draft) => [this.step(draft, command)], (revision, results) => ({ ok: true, revision, ...results[0]! }));
        case 'txn':
          return this.txn(command);
        case 'compact':
          return { result: this.compact(command.revision), events: [] };
        default:
          throw new Refused('INVALID_ARGUMENT');
      }
    } catch (error) {
      if (error instanceof Refused) return { result: this.error(error.code), events: [] };
      throw error;
    }
  }

  deleteLeaseNodes(lease: LeaseId): { result: ModelResult; events: ChangeEvent[] } {
    const paths = this.pathsOfLease(lease);
    if (paths.length === 0) return { result: { ok: true, revision: this.revision, op: 'delete', deleted: 0 }, events: [] };
    return this.commit(
      (draft) => {
        for (const path of paths) draft.remove(path);
        return [{ op: 'delete', deleted: paths.length }];
      },
      (revision, results) => ({ ok: true, revision, ...results[0]! }),
    );
  }

  /** Run steps on a draft; a refusal anywhere discards it, else it becomes the next revision. */
  private commit(
    run: (draft: Draft) => OpResult[],
    answer: (revision: number, results: OpResult[]) => ModelResult,
  ): { result: ModelResult; events: ChangeEvent[] } {
    const draft = new Draft(this.latest, this.revision + 1);
    const results = run(draft); // a Refused thrown here leaves the model untouched
    if (draft.changed) {
      this.states.push(draft.state);
      // Pinned: the namespace compacts automatically once 2 × historyRevisions revisions have
      // piled up since the last compaction, down to the latest historyRevisions.
      if (this.revision - this.compactedBelow >= 2 * this.historyRevisions) this.compactedBelow = this.revision - this.historyRevisions;
    }
    return { result: answer(this.revision, results), events: draft.events };
  }

  private txn(command: Record<string, unknown>): { result: ModelResult; events: ChangeEvent[] } {
    const { compare, success, failure } = command;
    if (!Array.isArray(compare) || !Array.isArray(success) || !Array.isArray(failure)) throw new Refused('INVALID_ARGUMENT');
    // The whole txn is checked for shape before anything is evaluated: every compare, and the
    // ops of both branches, so bad input never lets either branch run (as the namespace does).
    for (const c of compare) this.checkCompare(c);
    for (const op of [...success, ...failure]) this.checkTxnOpShape(op);
    const succeeded = compare.every((c) => this.compareHolds(c as Record<string, unknown>));
    const ops: unknown[] = succeeded ? success : failure;
    return this.commit(
      (draft) => ops.map((op) => this.step(draft, op)),
      (revision, results) => ({ ok: true, revision, op: 'txn', succeeded, results }),
    );
  }

  private checkCompare(c: unknown): void {
    if (!isObject(c)) throw new Refused('INVALID_ARGUMENT');
    requirePath(c.path);
    const { target, operator, operand } = c;
    if (target === 'exists') {
      if (typeof operand !== 'boolean' || (operator !== '=' && operator !== '!=')) throw new Refused('INVALID_ARGUMENT');
      return;
    }
    if (!OPERATORS.includes(operator as string)) throw new Refused('INVALID_ARGUMENT');
    if (target === 'value') {
      if (!(operand instanceof Uint8Array)) throw new Refused('INVALID_ARGUMENT');
      return;
    }
    if (target !== 'version' && target !== 'createRevision' && target !== 'modRevision') throw new Refused('INVALID_ARGUMENT');
    if (typeof operand !== 'number' || !Number.isInteger(operand)) throw new Refused('INVALID_ARGUMENT');
  }

  /** The shape of one txn op: what can be told without looking at the state. */
  private checkTxnOpShape(op: unknown): void {
    if (!isObject(op)) throw new Refused('INVALID_ARGUMENT');
    if (op.op === 'get') {
      requirePath(op.path);
      const revision = op.revision;
      if (revision !== undefined && (typeof revision !== 'number' || !Number.isInteger(revision) || revision < 0)) throw new Refused('INVALID_ARGUMENT');
      return;
    }
    if (op.op !== 'create' && op.op !== 'put' && op.op !== 'delete') throw new Refused('INVALID_ARGUMENT');
    if (op.op === 'create' && op.sequential === true) {
      if (!checkSequentialPath(op.path, 0).ok) throw new Refused('INVALID_ARGUMENT');
    } else {
      requirePath(op.path);
    }
    if (op.op !== 'delete') {
      this.checkValue(op.value);
      if (op.lease !== undefined && op.lease !== null && !Number.isInteger(op.lease)) throw new Refused('INVALID_ARGUMENT');
    }
    if (op.op !== 'create' && op.ifVersion !== undefined && !Number.isInteger(op.ifVersion)) throw new Refused('INVALID_ARGUMENT');
  }

  /** A well-formed compare against the latest state. On a missing node only `exists` can hold. */
  private compareHolds(c: Record<string, unknown>): boolean {
    const node = this.latest.get(c.path as string);
    const operator = c.operator as string;
    if (c.target === 'exists') return operator === '=' ? (node !== undefined) === c.operand : (node !== undefined) !== c.operand;
    if (node === undefined) return false;
    const difference =
      c.target === 'value' ? compareBytes(node.value, c.operand as Uint8Array) : node[c.target as 'version' | 'createRevision' | 'modRevision'] - (c.operand as number);
    if (operator === '=') return difference === 0;
    if (operator === '!=') return difference !== 0;
    if (operator === '<') return difference < 0;
    return difference > 0;
  }

  private step(draft: Draft, op: unknown): OpResult {
    if (!isObject(op)) throw new Refused('INVALID_ARGUMENT');
    switch (op.op) {
      case 'create':
        return this.create(draft, op);
      case 'put':
        return this.put(draft, op);
      case 'delete':
        return this.remove(draft, op);
      case 'get':
        return this.getStep(draft, op);
      default:
        throw new Refused('INVALID_ARGUMENT');
    }
  }

  private create(draft: Draft, op: Record<string, unknown>): OpResult {
    const sequential = op.sequential === true;
    let path: string;
    if (sequential) {
      const shape = checkSequentialPath(op.path, 0);
      if (!shape.ok) throw new Refused('INVALID_ARGUMENT');
      path = shape.path;
    } else {
      path = requirePath(op.path);
    }
    this.checkValue(op.value);
    const lease = this.checkLease(op.lease);
    const parentPath = parentPathOf(path);
    if (parentPath === null) throw new Refused('NODE_EXISTS');
    if (op.parents === true) this.addMissingAncestors(draft, parentPath);
    const parent = draft.state.get(parentPath);
    if (parent === undefined) throw new Refused('NO_NODE');
    if (parent.lease !== null) throw new Refused('INVALID_ARGUMENT');
    if (sequential) {
      const named = checkSequentialPath(op.path, parent.childrenVersion);
      if (!named.ok) throw new Refused('INVALID_ARGUMENT');
      path = named.path;
    }
    if (draft.state.has(path)) throw new Refused('NODE_EXISTS');
    return { op: 'create', path, node: draft.add(path, op.value as Uint8Array, lease) };
  }

  private put(draft: Draft, op: Record<string, unknown>): OpResult {
    const path = requirePath(op.path);
    this.checkValue(op.value);
    const ifVersion = op.ifVersion;
    if (ifVersion !== undefined && !Number.isInteger(ifVersion)) throw new Refused('INVALID_ARGUMENT');
    const lease = this.checkLease(op.lease);
    const value = op.value as Uint8Array;
    const current = draft.state.get(path);
    if (current === undefined) {
      if (ifVersion !== undefined && ifVersion !== -1) throw new Refused('BAD_VERSION');
      const parentPath = parentPathOf(path)!;
      this.addMissingAncestors(draft, parentPath);
      if (draft.state.get(parentPath)!.lease !== null) throw new Refused('INVALID_ARGUMENT');
      return { op: 'put', node: draft.add(path, value, lease), prevNode: null };
    }
    if (path === ROOT) throw new Refused('INVALID_ARGUMENT');
    if (ifVersion !== undefined && ifVersion !== current.version) throw new Refused('BAD_VERSION');
    if (lease !== null && lease !== current.lease) throw new Refused('INVALID_ARGUMENT');
    const prevNode = viewIn(draft.state, path);
    draft.state.set(path, { ...current, value, modRevision: draft.revision, version: current.version + 1 });
    const node = viewIn(draft.state, path);
    draft.events.push({ revision: draft.revision, kind: 'put', path, node, prevNode: draft.previous(path) });
    draft.changed = true;
    return { op: 'put', node, prevNode };
  }

  private remove(draft: Draft, op: Record<string, unknown>): OpResult {
    const path = requirePath(op.path);
    if (path === ROOT) throw new Refused('INVALID_ARGUMENT');
    const ifVersion = op.ifVersion;
    if (ifVersion !== undefined && !Number.isInteger(ifVersion)) throw new Refused('INVALID_ARGUMENT');
    const node = draft.state.get(path);
    if (node === undefined) throw new Refused('NO_NODE');
    if (ifVersion !== undefined && ifVersion !== node.version) throw new Refused('BAD_VERSION');
    const subtree = [...draft.state.keys()].filter((other) => isBelow(path, other));
    if (subtree.length > 0 && op.recursive !== true) throw new Refused('NOT_EMPTY');
    // The deepest first: the reverse of path order puts every node after all of its descendants.
    const doomed = [path, ...subtree].sort(comparePaths).reverse();
    for (const gone of doomed) draft.remove(gone);
    return { op: 'delete', deleted: doomed.length };
  }

  private getStep(draft: Draft, op: Record<string, unknown>): OpResult {
    const path = requirePath(op.path);
    if (op.revision !== undefined) {
      this.checkReadRevision(op.revision);
      const state = this.states[op.revision as number]!;
      if (!state.has(path)) throw new Refused('NO_NODE');
      return { op: 'get', node: viewIn(state, path) };
    }
    if (!draft.state.has(path)) throw new Refused('NO_NODE');
    return { op: 'get', node: viewIn(draft.state, path) };
  }

  private addMissingAncestors(draft: Draft, path: string): void {
    if (draft.state.has(path)) return;
    const parentPath = parentPathOf(path)!;
    this.addMissingAncestors(draft, parentPath);
    if (draft.state.get(parentPath)!.lease !== null) throw new Refused('INVALID_ARGUMENT');
    draft.add(path, new Uint8Array(0), null);
  }

  private compact(revision: unknown): ModelResult {
    if (typeof revision !== 'number' || !Number.isInteger(revision) || revision < 0) throw new Refused('INVALID_ARGUMENT');
    if (revision > this.revision) throw new Refused('INVALID_ARGUMENT');
    if (revision < this.compactedBelow) throw new Refused('COMPACTED');
    this.compactedBelow = revision;
    return { ok: true, revision: this.revision, op: 'compact', compactRevision: revision };
  }

  private checkValue(value: unknown): void {
    if (!(value instanceof Uint8Array)) throw new Refused('INVALID_ARGUMENT');
    if (value.byteLength > this.valueBytesMax) throw new Refused('TOO_LARGE');
  }

  private checkLease(lease: unknown): LeaseId | null {
    if (lease === undefined || lease === null) return null;
    if (typeof lease !== 'number' || !Number.isInteger(lease)) throw new Refused('INVALID_ARGUMENT');
    if (!this.leaseExists(lease)) throw new Refused('LEASE_NOT_FOUND');
    return lease;
  }

  private checkReadRevision(revision: unknown): void {
    if (typeof revision !== 'number' || !Number.isInteger(revision) || revision < 0) throw new Refused('INVALID_ARGUMENT');
    if (revision > this.revision) throw new Refused('INVALID_ARGUMENT');
    if (revision < this.compactedBelow) throw new Refused('COMPACTED');
  }

  private error(code: ErrorCode): ModelError {
    return { ok: false, code, revision: this.revision };
  }

  // ─── reads ─────────────────────────────────────────────────────────────────────────────────

  get(path: string, revision?: number): ModelResult {
    try {
      const at = revision ?? this.revision;
      requirePath(path);
      if (revision !== undefined) this.checkReadRevision(revision);
      const state = this.states[at]!;
      if (!state.has(path)) throw new Refused('NO_NODE');
      return { ok: true, revision: at, op: 'get', node: viewIn(state, path) };
    } catch (error) {
      if (error instanceof Refused) return this.error(error.code);
      throw error;
    }
  }

  /** A node's child names in order: all of them, or a page of `limit` after the name `after` (`next`: the last name, when more follow). */
  childrenOf(path: string, options: { limit?: number; after?: string } = {}): ModelChildren {
    if (!checkPath(path).ok) return this.error('INVALID_ARGUMENT');
    if (!this.latest.has(path)) return this.error('NO_NODE');
    const all = [...this.latest.keys()]
      .filter((other) => parentPathOf(other) === path)
      .sort(comparePaths)
      .map((child) => child.slice(child.lastIndexOf('/') + 1))
      .filter((name) => options.after === undefined || comparePaths(name, options.after) > 0);
    const limit = options.limit ?? all.length;
    const names = all.slice(0, limit);
    return { ok: true, revision: this.revision, node: viewIn(this.latest, path), names, next: all.length > limit ? names[names.length - 1]! : null };
  }

  range(path: string, options: { limit: number; after?: string; revision?: number }): ModelRange {
    if (!checkPath(path).ok) return this.error('INVALID_ARGUMENT');
    if (!Number.isInteger(options.limit) || options.limit < 1) return this.error('INVALID_ARGUMENT');
    const revision = options.revision ?? this.revision;
    try {
      this.checkReadRevision(revision);
    } catch (error) {
      if (error instanceof Refused) return this.error(error.code);
      throw error;
    }
    const after = options.after;
    if (after !== undefined && !isBelow(path, after)) return this.error('INVALID_ARGUMENT');
    const state = this.states[revision]!;
    const below = [...state.keys()]
      .filter((other) => isBelow(path, other))
      .filter((other) => after === undefined || comparePaths(other, after) > 0)
      .sort(comparePaths);
    const page = below.slice(0, options.limit);
    const next = below.length > options.limit ? page[page.length - 1]! : null;
    return { ok: true, revision, nodes: page.map((p) => viewIn(state, p)), next };
  }

  pathsOfLease(lease: LeaseId): string[] {
    return [...this.latest.entries()]
      .filter(([, node]) => node.lease === lease)
      .map(([path]) => path)
      .sort(comparePaths);
  }
}
