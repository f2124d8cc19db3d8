/**
 * The namespace's paged reads: a node's child names, and the nodes of a subtree at a revision —
 * each page bounded by a count, by the bytes of its answer (nodes weighed before they are
 * serialised), and, for a subtree, by the paths it walks. Pure functions over a read view of the
 * namespace, so they hold no state of their own.
 *
 * Must never: walk more than RANGE_SCAN_MAX paths for one page, or build a page past its bytes.
 */

import type { ErrorCode } from '../../shared/errors.js';
import { checkPath, isAncestorOf } from '../../shared/paths.js';
import { jsonStringBytes, nodeWireBytes } from '../../shared/wire-size.js';
import type { ChildrenIndex } from './children-index.js';
import type { NodeView, StateLimitName } from './types.js';

/** Index entries one range page may walk (deleted paths with history included) before it ends early. */
export const RANGE_SCAN_MAX = 20_000;

export type ReadRefusal = { ok: false; code: ErrorCode; message: string; revision: number; limit?: StateLimitName };

export interface ChildrenOptions {
  readonly limit?: number;
  readonly after?: string;
  readonly bytesMax?: number;
}
export type ChildrenAnswer = { ok: true; revision: number; node: NodeView; names: string[]; next: string | null } | ReadRefusal;

export interface RangeOptions {
  readonly limit: number;
  readonly after?: string;
  readonly revision?: number;
  readonly bytesMax?: number;
}
export type RangeAnswer = { ok: true; revision: number; nodes: NodeView[]; next: string | null } | ReadRefusal;

/** What the reads see of the namespace. */
export interface ReadView {
  readonly revision: number;
  liveNode(path: string): NodeView | undefined;
  readonly liveChildren: ChildrenIndex;
  /** Paths with history after `after` (exclusive), in comparePaths order. */
  pathsAfter(after: string): IterableIterator<string>;
  nodeAt(path: string, revision: number): NodeView | null;
  /** Why `revision` cannot be read (compacted, future, not an integer), or null. */
  readRevisionProblem(revision: number): { code: ErrorCode; message: string } | null;
}

/**
 * A node's child names in order: at most `limit` (default all), after the name `after`, and no
 * more than `bytesMax` of names — past it the read is refused TOO_LARGE when no limit was asked
 * for, else the page ends early. `next` is the last name answered when more follow.
 */
export function childrenPage(view: ReadView, path: string, options: ChildrenOptions): ChildrenAnswer {
  const checked = checkPath(path);
  if (!checked.ok) return { ok: false, code: 'INVALID_ARGUMENT', message: checked.error.message, revision: view.revision };
  const node = view.liveNode(path);
  if (node === undefined) return { ok: false, code: 'NO_NODE', message: `${path} does not exist`, revision: view.revision };
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const bytesMax = (options.bytesMax ?? Number.POSITIVE_INFINITY) - nodeWireBytes(node);
  const tooMany = (): ReadRefusal => ({ ok: false, code: 'TOO_LARGE', message: `${path} has ${node.stat.numChildren} children, more than one answer holds; list them in pages (limit and after)`, revision: view.revision, limit: 'answerBytesMax' });
  // Every name takes at least 4 bytes ("a",): too many children is known without weighing them.
  if (options.limit === undefined && node.stat.numChildren * 4 > bytesMax) return tooMany();
  const names: string[] = [];
  let bytes = 0;
  let next: string | null = null;
  for (const name of view.liveChildren.names(path, options.after)) {
    if (name === options.after) continue;
    if (names.length === limit) {
      next = names[names.length - 1]!;
      break;
    }
    bytes += jsonStringBytes(name) + 1;
    if (bytes > bytesMax) {
      if (options.limit === undefined || names.length === 0) return tooMany();
      next = names[names.length - 1]!;
      break;
    }
    names.push(name);
  }
  return { ok: true, revision: view.revision, node, names, next };
}

/**
 * Nodes strictly below `path`, in subtree order, as of `revision` (default: now), at most `limit`
 * of them and `bytesMax` of answer, starting after `after` (the continuation a previous page
 * returned). A page also ends once it has walked RANGE_SCAN_MAX paths (deleted ones with history
 * count): it may then hold fewer than `limit` nodes, with `next` to go on from.
 */
export function rangePage(view: ReadView, path: string, options: RangeOptions): RangeAnswer {
  const checked = checkPath(path);
  if (!checked.ok) return { ok: false, code: 'INVALID_ARGUMENT', message: checked.error.message, revision: view.revision };
  if (!Number.isInteger(options.limit) || options.limit < 1) {
    return { ok: false, code: 'INVALID_ARGUMENT', message: `limit must be a positive integer, got ${String(options.limit)}`, revision: view.revision };
  }
  const revision = options.revision ?? view.revision;
  const problem = view.readRevisionProblem(revision);
  if (problem !== null) return { ok: false, code: problem.code, message: problem.message, revision: view.revision };
  if (options.after !== undefined && !isAncestorOf(path, options.after)) {
    return { ok: false, code: 'INVALID_ARGUMENT', message: `continuation ${options.after} is not below ${path}`, revision: view.revision };
  }
  const bytesMax = options.bytesMax ?? Number.POSITIVE_INFINITY;
  const nodes: NodeView[] = [];
  let bytes = 0;
  let next: string | null = null;
  let scanned = 0;
  for (const candidate of view.pathsAfter(options.after ?? path)) {
    if (!isAncestorOf(path, candidate)) break;
    const node = view.nodeAt(candidate, revision);
    if (node !== null) {
      const size = nodeWireBytes(node) + 1;
      if (nodes.length === options.limit || bytes + size > bytesMax) {
        if (nodes.length === 0) return { ok: false, code: 'TOO_LARGE', message: `the node ${candidate} alone is larger than one answer may be`, revision: view.revision, limit: 'answerBytesMax' };
        next = nodes[nodes.length - 1]!.path;
        break;
      }
      nodes.push(node);
      bytes += size;
    }
    if (++scanned >= RANGE_SCAN_MAX) {
      // Many deleted paths in a row: end the page here rather than hold the loop; go on after it.
      next = candidate;
      break;
    }
  }
  return { ok: true, revision, nodes, next };
}
