/**
 * The MVCC namespace (server/state/namespace.ts), one behaviour per test, through its public
 * seam only (apply, get, childrenOf, range, pathsOfLease, deleteLeaseNodes, revision,
 * compactRevision): create (plain, with parents, sequential, ephemeral), put, delete, parent
 * stats, revisions, history and compaction (manual and automatic), transactions, children and
 * range reads, lease nodes, value sizes, bad input, every error code, replay determinism.
 *
 * Bugs found here stay as regression tests, each with a comment saying what once went wrong.
 *
 * Must never: compare error message texts (only codes); reach into the namespace's private
 * state; use an unseeded random source or a clock.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../../shared/errors.js';
import { Namespace, RANGE_SCAN_MAX, type NamespaceOptions } from '../../../server/state/namespace.js';
import type { ChangeEvent, CommandResult, Compare, NamespaceCommand, NodeView, TxnOp } from '../../../server/state/types.js';
import { commandsArb, leaseExists, materialize } from './arbitraries.js';

const MIB = 1024 * 1024;
const utf8 = new TextEncoder();
const text = (value: string): Uint8Array => utf8.encode(value);
const EMPTY = new Uint8Array(0);

type Applied = { result: CommandResult; events: ChangeEvent[] };
type Ok<K extends string> = Extract<CommandResult, { ok: true; op: K }>;

/** Commands typed loosely on purpose: bad-input tests hand the namespace what the wire might. */
function run(namespace: Namespace, command: unknown): Applied {
  return namespace.apply(command as NamespaceCommand);
}

/** Applies a command that must succeed with the given op; answers the result and events. */
function ok<K extends 'create' | 'put' | 'delete' | 'get' | 'txn' | 'compact'>(namespace: Namespace, command: unknown, op: K): { result: Ok<K>; events: ChangeEvent[] } {
  const applied = run(namespace, command);
  if (!applied.result.ok) throw new Error(`expected ${op} to succeed, got ${applied.result.code}: ${applied.result.message}`);
  expect(applied.result.op).toBe(op);
  return applied as { result: Ok<K>; events: ChangeEvent[] };
}

/** Everything a reader can see, at every retained revision, as one string. */
function dump(namespace: Namespace): string {
  const revisions: unknown[] = [];
  for (let revision = namespace.compactRevision; revision <= namespace.revision; revision++) {
    revisions.push([revision, namespace.get('/', revision), namespace.range('/', { limit: 1_000_000, revision })]);
  }
  const leases = [1, 2, 3].map((lease) => namespace.pathsOfLease(lease));
  return serialize({ revision: namespace.revision, compactRevision: namespace.compactRevision, revisions, leases });
}

function serialize(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => (inner instanceof Uint8Array ? { bytes: [...inner] } : inner));
}

/**
 * Applies a command that must be refused with `code`: it does not throw, answers the current
 * revision, emits no events, and leaves every read (at every revision) exactly as it was.
 */
function refused(namespace: Namespace, command: unknown, code: ErrorCode): void {
  const before = dump(namespace);
  const revision = namespace.revision;
  let applied: Applied | undefined;
  expect(() => {
    applied = run(namespace, command);
  }).not.toThrow();
  const result = applied!.result;
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.code).toBe(code);
  expect(typeof result.message).toBe('string');
  expect(result.revision).toBe(revision);
  expect(applied!.events).toEqual([]);
  expect(namespace.revision).toBe(revision);
  expect(dump(namespace)).toBe(before);
}

function nodeOf(namespace: Namespace, path: string, revision?: number): NodeView {
  const answer = namespace.get(path, revision);
  if (!answer.ok || answer.op !== 'get') throw new Error(`expected ${path} to exist at ${revision ?? 'latest'}, got ${JSON.stringify(answer)}`);
  return answer.node;
}

function codeOf(answer: CommandResult | { ok: boolean; code?: ErrorCode }): ErrorCode | 'ok' {
  return answer.ok ? 'ok' : (answer as { code: ErrorCode }).code;
}

const withLeases = (options: NamespaceOptions = {}): Namespace => new Namespace({ leaseExists, ...options });

// ─── create ──────────────────────────────────────────────────────────────────────────────────

describe('create', () => {
  it('creates a node at the next revision with fresh stats and answers its path and view', () => {
    const namespace = new Namespace();
    const { result, events } = ok(namespace, { op: 'create', path: '/a', value: text('x') }, 'create');
    expect(result).toEqual({
      ok: true,
      revision: 1,
      op: 'create',
      path: '/a',
      node: { path: '/a', value: text('x'), stat: { createRevision: 1, modRevision: 1, version: 0, childrenVersion: 0, numChildren: 0, lease: null } },
    });
    expect(events).toEqual([{ revision: 1, kind: 'create', path: '/a', node: result.node, prevNode: null }]);
    expect(nodeOf(namespace, '/a')).toEqual(result.node);
  });

  it('answers NODE_EXISTS for a path that exists, and for the root', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'create', path: '/a', value: EMPTY }, 'create');
    refused(namespace, { op: 'create', path: '/a', value: text('other') }, 'NODE_EXISTS');
    refused(namespace, { op: 'create', path: '/', value: EMPTY }, 'NODE_EXISTS');
  });

  it('answers NO_NODE when the parent is missing', () => {
    const namespace = new Namespace();
    refused(namespace, { op: 'create', path: '/a/b', value: EMPTY }, 'NO_NODE');
    refused(namespace, { op: 'create', path: '/a/b/', value: EMPTY, sequential: true }, 'NO_NODE');
  });

  it('with parents:true creates the missing ancestors as empty plain nodes, top-down, one create event each, at one revision', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'create', path: '/a', value: text('kept') }, 'create');
    const { result, events } = ok(namespace, { op: 'create', path: '/a/b/c/d', value: text('leaf'), parents: true }, 'create');
    expect(result.revision).toBe(2);
    expect(events.map((event) => [event.kind, event.path, event.revision])).toEqual([
      ['create', '/a/b', 2],
      ['create', '/a/b/c', 2],
      ['create', '/a/b/c/d', 2],
    ]);
    expect(nodeOf(namespace, '/a').value).toEqual(text('kept'));
    for (const ancestor of ['/a/b', '/a/b/c']) {
      expect(nodeOf(namespace, ancestor)).toMatchObject({ value: EMPTY, stat: { createRevision: 2, version: 0, lease: null, numChildren: 1 } });
    }
    expect(nodeOf(namespace, '/a/b/c/d').value).toEqual(text('leaf'));
  });

  it('names a sequential node with the parent\'s childrenVersion, zero-padded to 10 digits, increasing even across deletes', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'create', path: '/q', value: EMPTY }, 'create');
    const first = ok(namespace, { op: 'create', path: '/q/job-', value: EMPTY, sequential: true }, 'create').result;
    const second = ok(namespace, { op: 'create', path: '/q/job-', value: EMPTY, sequential: true }, 'create').result;
    expect(first.path).toBe('/q/job-0000000000');
    expect(second.path).toBe('/q/job-0000000001');
    ok(namespace, { op: 'delete', path: second.path }, 'delete');
    ok(namespace, { op: 'create', path: '/q/other', value: EMPTY }, 'create');
    const third = ok(namespace, { op: 'create', path: '/q/job-', value: EMPTY, sequential: true }, 'create').result;
    expect(third.path).toBe('/q/job-0000000004');
    expect(third.node.path).toBe(third.path);
    expect(nodeOf(namespace, '/q').stat).toMatchObject({ childrenVersion: 5, numChildren: 3 });
  });

  it('makes the name only digits when the sequential base ends in "/" (also under the root)', () => {
    const namespace = new Namespace();
    expect(ok(namespace, { op: 'create', path: '/', value: EMPTY, sequential: true }, 'create').result.path).toBe('/0000000000');
    ok(namespace, { op: 'create', path: '/q', value: EMPTY }, 'create');
    expect(ok(namespace, { op: 'create', path: '/q/', value: EMPTY, sequential: true }, 'create').result.path).toBe('/q/0000000000');
  });

  it('answers NODE_EXISTS when the sequential name is already taken', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/q/job-0000000001', value: EMPTY }, 'put'); // /q created too; /q's childrenVersion is now 1
    refused(namespace, { op: 'create', path: '/q/job-', value: EMPTY, sequential: true }, 'NODE_EXISTS');
  });

  it('records the lease of an ephemeral node, which can have no children', () => {
    const namespace = withLeases();
    const created = ok(namespace, { op: 'create', path: '/e', value: EMPTY, lease: 1 }, 'create').result;
    expect(created.node.stat.lease).toBe(1);
    refused(namespace, { op: 'create', path: '/e/child', value: EMPTY }, 'INVALID_ARGUMENT');
    refused(namespace, { op: 'create', path: '/e/', value: EMPTY, sequential: true }, 'INVALID_ARGUMENT');
    refused(namespace, { op: 'create', path: '/e/x/y', value: EMPTY, parents: true }, 'INVALID_ARGUMENT');
    refused(namespace, { op: 'put', path: '/e/child', value: EMPTY }, 'INVALID_ARGUMENT');
    refused(namespace, { op: 'put', path: '/e/x/y', value: EMPTY }, 'INVALID_ARGUMENT');
  });

  it('answers LEASE_NOT_FOUND for a lease that does not exist, INVALID_ARGUMENT for one that is not an integer id', () => {
    const namespace = withLeases();
    refused(namespace, { op: 'create', path: '/e', value: EMPTY, lease: 3 }, 'LEASE_NOT_FOUND');
    refused(namespace, { op: 'put', path: '/e', value: EMPTY, lease: 3 }, 'LEASE_NOT_FOUND');
    refused(namespace, { op: 'create', path: '/e', value: EMPTY, lease: 1.5 }, 'INVALID_ARGUMENT');
    refused(namespace, { op: 'create', path: '/e', value: EMPTY, lease: '1' }, 'INVALID_ARGUMENT');
    expect(codeOf(new Namespace().apply({ op: 'create', path: '/e', value: EMPTY, lease: 1 }).result)).toBe('LEASE_NOT_FOUND'); // no lease table: none exists
  });
});

// ─── put ─────────────────────────────────────────────────────────────────────────────────────

describe('put', () => {
  it('upserts: a missing node is created with its missing parents (create events top-down, prevNode null)', () => {
    const namespace = new Namespace();
    const { result, events } = ok(namespace, { op: 'put', path: '/a/b/c', value: text('v') }, 'put');
    expect(result.prevNode).toBeNull();
    expect(result.node).toMatchObject({ path: '/a/b/c', value: text('v'), stat: { createRevision: 1, version: 0 } });
    expect(events.map((event) => [event.kind, event.path])).toEqual([
      ['create', '/a'],
      ['create', '/a/b'],
      ['create', '/a/b/c'],
    ]);
    expect(namespace.revision).toBe(1);
  });

  it('updates an existing node: version and modRevision move, createRevision and lease stay, prevNode is the old view', () => {
    const namespace = withLeases();
    ok(namespace, { op: 'create', path: '/e', value: text('one'), lease: 2 }, 'create');
    ok(namespace, { op: 'create', path: '/other', value: EMPTY }, 'create');
    const before = nodeOf(namespace, '/e');
    const { result, events } = ok(namespace, { op: 'put', path: '/e', value: text('two') }, 'put');
    expect(result.prevNode).toEqual(before);
    expect(result.node).toEqual({ path: '/e', value: text('two'), stat: { ...before.stat, modRevision: 3, version: 1 } });
    expect(events).toEqual([{ revision: 3, kind: 'put', path: '/e', node: result.node, prevNode: before }]);
    expect(namespace.pathsOfLease(2)).toEqual(['/e']);
  });

  it('with ifVersion applies only at that version (BAD_VERSION otherwise); ifVersion -1 only when the node does not exist', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: text('0'), ifVersion: -1 }, 'put');
    refused(namespace, { op: 'put', path: '/a', value: text('x'), ifVersion: -1 }, 'BAD_VERSION');
    refused(namespace, { op: 'put', path: '/a', value: text('x'), ifVersion: 1 }, 'BAD_VERSION');
    expect(ok(namespace, { op: 'put', path: '/a', value: text('1'), ifVersion: 0 }, 'put').result.node.stat.version).toBe(1);
    refused(namespace, { op: 'put', path: '/a', value: text('x'), ifVersion: 0 }, 'BAD_VERSION');
    refused(namespace, { op: 'put', path: '/missing', value: text('x'), ifVersion: 0 }, 'BAD_VERSION');
  });

  it('refuses to put a value on the root (INVALID_ARGUMENT)', () => {
    refused(new Namespace(), { op: 'put', path: '/', value: text('x') }, 'INVALID_ARGUMENT');
  });

  it('keeps a node\'s lease fixed: a put naming another lease is INVALID_ARGUMENT; one naming none keeps it', () => {
    const namespace = withLeases();
    ok(namespace, { op: 'create', path: '/e', value: EMPTY, lease: 1 }, 'create');
    ok(namespace, { op: 'create', path: '/plain', value: EMPTY }, 'create');
    refused(namespace, { op: 'put', path: '/e', value: EMPTY, lease: 2 }, 'INVALID_ARGUMENT');
    refused(namespace, { op: 'put', path: '/plain', value: EMPTY, lease: 1 }, 'INVALID_ARGUMENT');
    expect(ok(namespace, { op: 'put', path: '/e', value: text('x'), lease: 1 }, 'put').result.node.stat.lease).toBe(1);
    expect(ok(namespace, { op: 'put', path: '/e', value: text('y') }, 'put').result.node.stat.lease).toBe(1);
  });
});

// ─── delete ──────────────────────────────────────────────────────────────────────────────────

describe('delete', () => {
  it('answers NO_NODE for a missing path', () => {
    refused(new Namespace(), { op: 'delete', path: '/missing' }, 'NO_NODE');
  });

  it('with ifVersion deletes only at that version (BAD_VERSION otherwise)', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: EMPTY }, 'put');
    ok(namespace, { op: 'put', path: '/a', value: EMPTY }, 'put');
    refused(namespace, { op: 'delete', path: '/a', ifVersion: 0 }, 'BAD_VERSION');
    refused(namespace, { op: 'delete', path: '/a', ifVersion: -1 }, 'BAD_VERSION');
    const { result, events } = ok(namespace, { op: 'delete', path: '/a', ifVersion: 1 }, 'delete');
    expect(result).toEqual({ ok: true, revision: 3, op: 'delete', deleted: 1 });
    expect(events).toEqual([{ revision: 3, kind: 'delete', path: '/a', node: null, prevNode: expect.objectContaining({ path: '/a' }) }]);
    expect(codeOf(namespace.get('/a'))).toBe('NO_NODE');
  });

  it('answers NOT_EMPTY for a node with children unless recursive', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a/b', value: EMPTY }, 'put');
    refused(namespace, { op: 'delete', path: '/a' }, 'NOT_EMPTY');
    refused(namespace, { op: 'delete', path: '/a', recursive: false }, 'NOT_EMPTY');
  });

  it('recursively deletes the whole subtree deepest first, one delete event each, at one revision', () => {
    const namespace = new Namespace();
    for (const path of ['/a/b/x', '/a/c', '/a-b', '/a/b/y']) ok(namespace, { op: 'put', path, value: text(path) }, 'put');
    const revision = namespace.revision;
    const { result, events } = ok(namespace, { op: 'delete', path: '/a', recursive: true }, 'delete');
    expect(result).toEqual({ ok: true, revision: revision + 1, op: 'delete', deleted: 5 });
    expect(events.map((event) => [event.kind, event.path, event.revision, event.node])).toEqual([
      ['delete', '/a/c', revision + 1, null],
      ['delete', '/a/b/y', revision + 1, null],
      ['delete', '/a/b/x', revision + 1, null],
      ['delete', '/a/b', revision + 1, null],
      ['delete', '/a', revision + 1, null],
    ]);
    expect(events.find((event) => event.path === '/a/b/x')!.prevNode!.value).toEqual(text('/a/b/x'));
    expect(namespace.childrenOf('/')).toMatchObject({ ok: true, names: ['a-b'] });
    expect(nodeOf(namespace, '/a/b/x', revision).value).toEqual(text('/a/b/x'));
  });

  it('refuses to delete the root (INVALID_ARGUMENT), recursive or not', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: EMPTY }, 'put');
    refused(namespace, { op: 'delete', path: '/' }, 'INVALID_ARGUMENT');
    refused(namespace, { op: 'delete', path: '/', recursive: true }, 'INVALID_ARGUMENT');
  });

  it('starts a new incarnation when a deleted path is created again (new createRevision, version 0)', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: EMPTY }, 'put');
    ok(namespace, { op: 'put', path: '/a', value: EMPTY }, 'put');
    ok(namespace, { op: 'delete', path: '/a' }, 'delete');
    const again = ok(namespace, { op: 'create', path: '/a', value: EMPTY }, 'create').result;
    expect(again.node.stat).toMatchObject({ createRevision: 4, modRevision: 4, version: 0 });
  });
});

// ─── parent stats ────────────────────────────────────────────────────────────────────────────

describe('parent stats', () => {
  it('count children in childrenVersion and numChildren, leave the parent\'s value, version and modRevision alone, and emit no event for the parent', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'create', path: '/p', value: text('p') }, 'create');
    const { events } = ok(namespace, { op: 'create', path: '/p/a', value: EMPTY }, 'create');
    ok(namespace, { op: 'create', path: '/p/b', value: EMPTY }, 'create');
    expect(events.map((event) => event.path)).toEqual(['/p/a']);
    expect(nodeOf(namespace, '/p')).toEqual({ path: '/p', value: text('p'), stat: { createRevision: 1, modRevision: 1, version: 0, childrenVersion: 2, numChildren: 2, lease: null } });
    const deleted = ok(namespace, { op: 'delete', path: '/p/a' }, 'delete');
    expect(deleted.events.map((event) => event.path)).toEqual(['/p/a']);
    expect(nodeOf(namespace, '/p').stat).toMatchObject({ modRevision: 1, version: 0, childrenVersion: 3, numChildren: 1 });
    expect(nodeOf(namespace, '/').stat).toMatchObject({ childrenVersion: 1, numChildren: 1, modRevision: 0, version: 0 });
    // History keeps the parent's stats as they were.
    expect(nodeOf(namespace, '/p', 2).stat).toMatchObject({ childrenVersion: 1, numChildren: 1 });
    expect(nodeOf(namespace, '/p', 1).stat).toMatchObject({ childrenVersion: 0, numChildren: 0 });
  });
});

// ─── revisions ───────────────────────────────────────────────────────────────────────────────

describe('revisions', () => {
  it('give each changing command exactly the next revision, carried by the answer and every event', () => {
    const namespace = new Namespace();
    const commands: unknown[] = [
      { op: 'create', path: '/a', value: EMPTY },
      { op: 'put', path: '/a', value: text('1') },
      { op: 'put', path: '/b/c', value: EMPTY },
      { op: 'txn', compare: [], success: [{ op: 'put', path: '/a', value: EMPTY }, { op: 'delete', path: '/b', recursive: true }], failure: [] },
      { op: 'delete', path: '/a' },
    ];
    commands.forEach((command, index) => {
      const { result, events } = run(namespace, command);
      expect(result).toMatchObject({ ok: true, revision: index + 1 });
      expect(events.length).toBeGreaterThan(0);
      for (const event of events) expect(event.revision).toBe(index + 1);
      expect(namespace.revision).toBe(index + 1);
    });
  });

  it('stay put for a failed command, which answers the current revision', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'create', path: '/a', value: EMPTY }, 'create');
    refused(namespace, { op: 'create', path: '/a', value: EMPTY }, 'NODE_EXISTS');
    const next = ok(namespace, { op: 'create', path: '/b', value: EMPTY }, 'create').result;
    expect(next.revision).toBe(2);
  });

  it('stay put for a command that changes nothing (a txn of gets, an empty txn, a compare that picks empty ops, a compact)', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'create', path: '/a', value: text('v') }, 'create');
    const before = dump(namespace);
    const reads = ok(namespace, { op: 'txn', compare: [], success: [{ op: 'get', path: '/a' }], failure: [] }, 'txn');
    expect(reads.result).toMatchObject({ revision: 1, succeeded: true, results: [{ op: 'get', node: { path: '/a', value: text('v') } }] });
    expect(reads.events).toEqual([]);
    expect(ok(namespace, { op: 'txn', compare: [], success: [], failure: [] }, 'txn').result.revision).toBe(1);
    const notTaken = ok(namespace, { op: 'txn', compare: [{ path: '/a', target: 'exists', operator: '=', operand: false }], success: [{ op: 'delete', path: '/a' }], failure: [] }, 'txn');
    expect(notTaken.result).toMatchObject({ revision: 1, succeeded: false, results: [] });
    expect(ok(namespace, { op: 'compact', revision: 0 }, 'compact').result.revision).toBe(1);
    expect(namespace.revision).toBe(1);
    expect(dump(namespace)).toBe(before);
  });
});

// ─── history and compaction ──────────────────────────────────────────────────────────────────

describe('history', () => {
  it('get at a past revision answers the node as it was then; NO_NODE before it existed and after it was deleted', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/other', value: EMPTY }, 'put'); // 1
    ok(namespace, { op: 'put', path: '/a', value: text('one') }, 'put'); // 2
    ok(namespace, { op: 'put', path: '/other', value: EMPTY }, 'put'); // 3
    ok(namespace, { op: 'put', path: '/a', value: text('two') }, 'put'); // 4
    ok(namespace, { op: 'delete', path: '/a' }, 'delete'); // 5
    expect(codeOf(namespace.get('/a', 1))).toBe('NO_NODE');
    expect(namespace.get('/a', 2)).toMatchObject({ ok: true, revision: 2, node: { value: text('one'), stat: { version: 0, modRevision: 2 } } });
    expect(namespace.get('/a', 3)).toMatchObject({ ok: true, revision: 3, node: { value: text('one') } });
    expect(namespace.get('/a', 4)).toMatchObject({ ok: true, revision: 4, node: { value: text('two'), stat: { version: 1, modRevision: 4, createRevision: 2 } } });
    expect(codeOf(namespace.get('/a', 5))).toBe('NO_NODE');
    expect(codeOf(namespace.get('/a'))).toBe('NO_NODE');
    expect(namespace.get('/', 0)).toMatchObject({ ok: true, revision: 0, node: { path: '/', stat: { numChildren: 0 } } });
  });

  it('get at a revision in the future, negative or fractional is INVALID_ARGUMENT', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: EMPTY }, 'put');
    for (const revision of [2, 100, -1, 0.5]) {
      expect(namespace.get('/a', revision)).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', revision: 1 });
    }
  });

  it('compact makes reads below it COMPACTED and keeps the versions in force at the compaction revision readable', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/old', value: text('old') }, 'put'); // 1: never touched again
    ok(namespace, { op: 'put', path: '/a', value: text('one') }, 'put'); // 2
    ok(namespace, { op: 'put', path: '/gone', value: EMPTY }, 'put'); // 3
    ok(namespace, { op: 'delete', path: '/gone' }, 'delete'); // 4
    ok(namespace, { op: 'put', path: '/a', value: text('two') }, 'put'); // 5
    ok(namespace, { op: 'put', path: '/b', value: EMPTY }, 'put'); // 6
    const { result, events } = ok(namespace, { op: 'compact', revision: 5 }, 'compact');
    expect(result).toEqual({ ok: true, revision: 6, op: 'compact', compactRevision: 5 });
    expect(events).toEqual([]);
    expect(namespace.compactRevision).toBe(5);
    for (const revision of [0, 1, 4]) expect(namespace.get('/a', revision)).toMatchObject({ ok: false, code: 'COMPACTED', revision: 6 });
    expect(nodeOf(namespace, '/old', 5).value).toEqual(text('old'));
    expect(nodeOf(namespace, '/a', 5).value).toEqual(text('two'));
    expect(codeOf(namespace.get('/gone', 5))).toBe('NO_NODE');
    expect(codeOf(namespace.get('/b', 5))).toBe('NO_NODE');
    expect(nodeOf(namespace, '/b', 6).path).toBe('/b');
    expect(namespace.range('/', { limit: 10, revision: 5 })).toMatchObject({ ok: true, nodes: [{ path: '/a' }, { path: '/old' }], next: null });
    expect(namespace.range('/', { limit: 10, revision: 4 })).toMatchObject({ ok: false, code: 'COMPACTED' });
  });

  it('keeps the version in force at the compaction revision even when it is the oldest of several', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: text('1') }, 'put'); // 1
    ok(namespace, { op: 'put', path: '/a', value: text('2') }, 'put'); // 2
    ok(namespace, { op: 'put', path: '/x', value: EMPTY }, 'put'); // 3
    ok(namespace, { op: 'put', path: '/a', value: text('4') }, 'put'); // 4
    ok(namespace, { op: 'compact', revision: 3 }, 'compact');
    expect(nodeOf(namespace, '/a', 3).value).toEqual(text('2'));
    expect(nodeOf(namespace, '/a', 4).value).toEqual(text('4'));
    ok(namespace, { op: 'compact', revision: 4 }, 'compact');
    expect(nodeOf(namespace, '/a', 4).value).toEqual(text('4'));
    expect(nodeOf(namespace, '/x', 4).path).toBe('/x');
  });

  it('compact refuses a revision in the future (INVALID_ARGUMENT) and one below the mark (COMPACTED); the same mark again is fine', () => {
    const namespace = new Namespace();
    for (let i = 0; i < 4; i++) ok(namespace, { op: 'put', path: '/a', value: EMPTY }, 'put');
    refused(namespace, { op: 'compact', revision: 5 }, 'INVALID_ARGUMENT');
    ok(namespace, { op: 'compact', revision: 3 }, 'compact');
    refused(namespace, { op: 'compact', revision: 2 }, 'COMPACTED');
    expect(ok(namespace, { op: 'compact', revision: 3 }, 'compact').result.compactRevision).toBe(3);
    expect(ok(namespace, { op: 'compact', revision: 4 }, 'compact').result.compactRevision).toBe(4);
    expect(namespace.revision).toBe(4);
  });

  it('a path created and deleted before the compaction revision is gone from every read', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/tmp/x', value: EMPTY }, 'put'); // 1
    ok(namespace, { op: 'delete', path: '/tmp', recursive: true }, 'delete'); // 2
    ok(namespace, { op: 'put', path: '/keep', value: EMPTY }, 'put'); // 3
    ok(namespace, { op: 'compact', revision: 3 }, 'compact');
    expect(namespace.range('/', { limit: 10, revision: 3 })).toMatchObject({ ok: true, nodes: [{ path: '/keep' }], next: null });
    expect(codeOf(namespace.get('/tmp/x', 3))).toBe('NO_NODE');
    expect(namespace.childrenOf('/')).toMatchObject({ names: ['keep'] });
  });

  it('automatic compaction keeps at least historyRevisions revisions readable, and the versions in force at the mark', () => {
    const historyRevisions = 5;
    const namespace = new Namespace({ historyRevisions });
    ok(namespace, { op: 'put', path: '/stable', value: text('once') }, 'put');
    for (let i = 0; i < 40; i++) {
      ok(namespace, { op: 'put', path: '/counter', value: text(String(i)) }, 'put');
      const now = namespace.revision;
      for (let revision = Math.max(0, now - historyRevisions); revision <= now; revision++) {
        expect(codeOf(namespace.get('/', revision))).toBe('ok');
        expect(namespace.range('/', { limit: 10, revision }).ok).toBe(true);
      }
      expect(nodeOf(namespace, '/stable', Math.max(1, namespace.compactRevision)).value).toEqual(text('once'));
      if (namespace.compactRevision > 0) expect(codeOf(namespace.get('/', namespace.compactRevision - 1))).toBe('COMPACTED');
      expect(now - namespace.compactRevision).toBeLessThan(2 * historyRevisions); // and it does compact
    }
    expect(namespace.compactRevision).toBeGreaterThan(0);
  });
});

// ─── txn ─────────────────────────────────────────────────────────────────────────────────────

describe('txn', () => {
  /** /n at createRevision 1, modRevision 3, version 2, value "mid". */
  function withNode(): Namespace {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/n', value: text('a') }, 'put');
    ok(namespace, { op: 'put', path: '/n', value: text('b') }, 'put');
    ok(namespace, { op: 'put', path: '/n', value: text('mid') }, 'put');
    return namespace;
  }

  function holds(namespace: Namespace, compare: Compare): boolean {
    return ok(namespace, { op: 'txn', compare: [compare], success: [], failure: [] }, 'txn').result.succeeded;
  }

  it('picks the success ops when every compare holds and the failure ops otherwise', () => {
    const namespace = withNode();
    const yes: Compare = { path: '/n', target: 'version', operator: '=', operand: 2 };
    const no: Compare = { path: '/n', target: 'version', operator: '=', operand: 1 };
    const success: TxnOp[] = [{ op: 'put', path: '/s', value: EMPTY }];
    const failure: TxnOp[] = [{ op: 'put', path: '/f', value: EMPTY }];
    expect(ok(namespace, { op: 'txn', compare: [yes, yes], success, failure }, 'txn').result.succeeded).toBe(true);
    expect(codeOf(namespace.get('/s'))).toBe('ok');
    expect(codeOf(namespace.get('/f'))).toBe('NO_NODE');
    expect(ok(namespace, { op: 'txn', compare: [yes, no], success: [{ op: 'delete', path: '/s' }], failure }, 'txn').result.succeeded).toBe(false);
    expect(codeOf(namespace.get('/s'))).toBe('ok');
    expect(codeOf(namespace.get('/f'))).toBe('ok');
    expect(ok(namespace, { op: 'txn', compare: [], success: [{ op: 'delete', path: '/f' }], failure: [] }, 'txn').result.succeeded).toBe(true);
  });

  it('compares value (bytewise), version, createRevision and modRevision with =, !=, < and >', () => {
    const namespace = withNode();
    const cases: [Compare['target'], Compare['operand'], Record<Compare['operator'], boolean>][] = [
      ['value', text('mid'), { '=': true, '!=': false, '<': false, '>': false }],
      ['value', text('mie'), { '=': false, '!=': true, '<': true, '>': false }],
      ['value', text('mi'), { '=': false, '!=': true, '<': false, '>': true }],
      ['value', text('midd'), { '=': false, '!=': true, '<': true, '>': false }],
      ['version', 2, { '=': true, '!=': false, '<': false, '>': false }],
      ['version', 3, { '=': false, '!=': true, '<': true, '>': false }],
      ['createRevision', 1, { '=': true, '!=': false, '<': false, '>': false }],
      ['createRevision', 0, { '=': false, '!=': true, '<': false, '>': true }],
      ['modRevision', 3, { '=': true, '!=': false, '<': false, '>': false }],
      ['modRevision', 4, { '=': false, '!=': true, '<': true, '>': false }],
    ];
    for (const [target, operand, expected] of cases) {
      for (const operator of ['=', '!=', '<', '>'] as const) {
        expect([target, operand, operator, holds(namespace, { path: '/n', target, operator, operand })]).toEqual([target, operand, operator, expected[operator]]);
      }
    }
    expect(holds(namespace, { path: '/n', target: 'exists', operator: '=', operand: true })).toBe(true);
    expect(holds(namespace, { path: '/n', target: 'exists', operator: '!=', operand: true })).toBe(false);
    expect(holds(namespace, { path: '/n', target: 'exists', operator: '=', operand: false })).toBe(false);
  });

  it('treats every compare on a missing node as false, except exists', () => {
    const namespace = withNode();
    for (const target of ['version', 'createRevision', 'modRevision'] as const) {
      for (const operator of ['=', '!=', '<', '>'] as const) expect(holds(namespace, { path: '/missing', target, operator, operand: 0 })).toBe(false);
    }
    for (const operator of ['=', '!=', '<', '>'] as const) expect(holds(namespace, { path: '/missing', target: 'value', operator, operand: EMPTY })).toBe(false);
    expect(holds(namespace, { path: '/missing', target: 'exists', operator: '=', operand: false })).toBe(true);
    expect(holds(namespace, { path: '/missing', target: 'exists', operator: '!=', operand: true })).toBe(true);
    expect(holds(namespace, { path: '/missing', target: 'exists', operator: '=', operand: true })).toBe(false);
  });

  it('applies its ops in order at one revision, each seeing the ones before, with events in op order', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'create', path: '/q', value: EMPTY }, 'create');
    const { result, events } = ok(
      namespace,
      {
        op: 'txn',
        compare: [],
        success: [
          { op: 'create', path: '/a', value: text('1') },
          { op: 'put', path: '/a', value: text('2'), ifVersion: 0 },
          { op: 'get', path: '/a' },
          { op: 'create', path: '/q/j-', value: EMPTY, sequential: true },
          { op: 'create', path: '/q/j-', value: EMPTY, sequential: true },
          { op: 'delete', path: '/q/j-0000000000' },
        ],
        failure: [],
      },
      'txn',
    );
    expect(result.revision).toBe(2);
    expect(result.results.map((r) => r.op)).toEqual(['create', 'put', 'get', 'create', 'create', 'delete']);
    expect(result.results[2]).toMatchObject({ op: 'get', node: { value: text('2'), stat: { version: 1, createRevision: 2, modRevision: 2 } } });
    expect(result.results[4]).toMatchObject({ op: 'create', path: '/q/j-0000000001' });
    expect(events.map((event) => [event.revision, event.kind, event.path])).toEqual([
      [2, 'create', '/a'],
      [2, 'put', '/a'],
      [2, 'create', '/q/j-0000000000'],
      [2, 'create', '/q/j-0000000001'],
      [2, 'delete', '/q/j-0000000000'],
    ]);
    expect(namespace.childrenOf('/q')).toMatchObject({ names: ['j-0000000001'], node: { stat: { childrenVersion: 3, numChildren: 1 } } });
  });

  it('is all or nothing: a failing op answers its own error code and nothing of the txn is applied', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: text('a') }, 'put');
    const tail: [unknown, ErrorCode][] = [
      [{ op: 'create', path: '/new', value: EMPTY }, 'NODE_EXISTS'],
      [{ op: 'delete', path: '/zzz' }, 'NO_NODE'],
      [{ op: 'put', path: '/a', value: EMPTY, ifVersion: 7 }, 'BAD_VERSION'],
      [{ op: 'delete', path: '/new' }, 'NOT_EMPTY'],
      [{ op: 'put', path: '/big', value: new Uint8Array(MIB + 1) }, 'TOO_LARGE'],
      [{ op: 'get', path: '/nothing' }, 'NO_NODE'],
      [{ op: 'get', path: '/a', revision: 99 }, 'INVALID_ARGUMENT'],
    ];
    for (const [failing, code] of tail) {
      refused(
        namespace,
        {
          op: 'txn',
          compare: [],
          success: [
            { op: 'put', path: '/a', value: text('changed') },
            { op: 'put', path: '/new/child', value: EMPTY },
            { op: 'delete', path: '/a' },
            failing,
          ],
          failure: [],
        },
        code,
      );
    }
    expect(nodeOf(namespace, '/a').value).toEqual(text('a'));
  });

  it('a get op with a revision reads history, and the txn\'s own revision is still in the future for it', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: text('1') }, 'put');
    ok(namespace, { op: 'put', path: '/a', value: text('2') }, 'put');
    const read = ok(namespace, { op: 'txn', compare: [], success: [{ op: 'put', path: '/a', value: text('3') }, { op: 'get', path: '/a', revision: 1 }], failure: [] }, 'txn');
    expect(read.result.results[1]).toMatchObject({ op: 'get', node: { value: text('1') } });
    refused(namespace, { op: 'txn', compare: [], success: [{ op: 'get', path: '/a', revision: 4 }], failure: [] }, 'INVALID_ARGUMENT');
    ok(namespace, { op: 'compact', revision: 2 }, 'compact');
    refused(namespace, { op: 'txn', compare: [], success: [{ op: 'get', path: '/a', revision: 1 }], failure: [] }, 'COMPACTED');
  });
});

// ─── children and range ──────────────────────────────────────────────────────────────────────

describe('childrenOf and range', () => {
  function tree(): Namespace {
    const namespace = new Namespace();
    for (const path of ['/a/c', '/a/b/x', '/a-b', '/a/b/y', '/b', '/a/é', '/a/Z']) ok(namespace, { op: 'put', path, value: text(path) }, 'put');
    return namespace;
  }

  it('childrenOf lists the names in code point order with the node\'s view; NO_NODE and INVALID_ARGUMENT otherwise', () => {
    const namespace = tree();
    const children = namespace.childrenOf('/a');
    expect(children).toMatchObject({ ok: true, revision: namespace.revision, node: { path: '/a', stat: { numChildren: 4 } }, names: ['Z', 'b', 'c', 'é'] });
    expect(namespace.childrenOf('/')).toMatchObject({ ok: true, names: ['a', 'a-b', 'b'] });
    expect(namespace.childrenOf('/b')).toMatchObject({ ok: true, names: [] });
    expect(namespace.childrenOf('/missing')).toMatchObject({ ok: false, code: 'NO_NODE' });
    expect(namespace.childrenOf('/a/')).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
  });

  it('range lists the nodes strictly below a path in subtree order ("/a-b" after all of "/a"), paging with next until null', () => {
    const namespace = tree();
    const whole = ['/a', '/a/Z', '/a/b', '/a/b/x', '/a/b/y', '/a/c', '/a/é', '/a-b', '/b'];
    expect(namespace.range('/', { limit: 100 })).toMatchObject({ ok: true, revision: namespace.revision, next: null, nodes: whole.map((path) => ({ path })) });
    const pages: string[][] = [];
    let after: string | undefined;
    for (;;) {
      const page = namespace.range('/', { limit: 4, ...(after === undefined ? {} : { after }) });
      if (!page.ok) throw new Error(page.code);
      pages.push(page.nodes.map((node) => node.path));
      if (page.next === null) break;
      expect(page.next).toBe(page.nodes.at(-1)!.path);
      after = page.next;
    }
    expect(pages).toEqual([whole.slice(0, 4), whole.slice(4, 8), whole.slice(8)]);
    expect(namespace.range('/', { limit: 9 })).toMatchObject({ ok: true, next: null });
    expect(namespace.range('/a', { limit: 100 })).toMatchObject({ nodes: whole.slice(1, 7).map((path) => ({ path })), next: null });
    expect(namespace.range('/a/b/x', { limit: 100 })).toMatchObject({ ok: true, nodes: [], next: null });
  });

  it('range at a past revision shows the tree as it was then', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: text('1') }, 'put');
    ok(namespace, { op: 'put', path: '/b', value: EMPTY }, 'put');
    ok(namespace, { op: 'put', path: '/a', value: text('2') }, 'put');
    ok(namespace, { op: 'delete', path: '/b' }, 'delete');
    expect(namespace.range('/', { limit: 10, revision: 2 })).toMatchObject({ ok: true, revision: 2, nodes: [{ path: '/a', value: text('1') }, { path: '/b' }] });
    expect(namespace.range('/', { limit: 10 })).toMatchObject({ ok: true, revision: 4, nodes: [{ path: '/a', value: text('2') }] });
    expect(namespace.range('/', { limit: 10, revision: 5 })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
  });

  it('range refuses a bad path, a limit that is not a positive integer, and a continuation outside the subtree', () => {
    const namespace = tree();
    expect(namespace.range('a', { limit: 1 })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    for (const limit of [0, -1, 1.5, Number.NaN]) expect(namespace.range('/', { limit })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    expect(namespace.range('/a', { limit: 1, after: '/b' })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    expect(namespace.range('/a', { limit: 1, after: '/a' })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
  });
});

// ─── leases ──────────────────────────────────────────────────────────────────────────────────

describe('lease nodes', () => {
  function leased(): Namespace {
    const namespace = withLeases();
    ok(namespace, { op: 'create', path: '/s/b', value: EMPTY, lease: 1, parents: true }, 'create');
    ok(namespace, { op: 'create', path: '/s/a', value: EMPTY, lease: 1 }, 'create');
    ok(namespace, { op: 'create', path: '/t', value: EMPTY, lease: 2 }, 'create');
    ok(namespace, { op: 'put', path: '/x/y', value: EMPTY, lease: 1 }, 'put');
    ok(namespace, { op: 'put', path: '/plain', value: EMPTY }, 'put');
    return namespace;
  }

  it('pathsOfLease lists the nodes of a lease in path order', () => {
    const namespace = leased();
    expect(namespace.pathsOfLease(1)).toEqual(['/s/a', '/s/b', '/x/y']);
    expect(namespace.pathsOfLease(2)).toEqual(['/t']);
    expect(namespace.pathsOfLease(3)).toEqual([]);
    ok(namespace, { op: 'delete', path: '/s/a' }, 'delete');
    expect(namespace.pathsOfLease(1)).toEqual(['/s/b', '/x/y']);
  });

  it('deleteLeaseNodes removes exactly the lease\'s nodes, at one revision, with one delete event each', () => {
    const namespace = leased();
    const revision = namespace.revision;
    const before = namespace.range('/', { limit: 100 });
    const { result, events } = namespace.deleteLeaseNodes([1]);
    expect(result).toEqual({ ok: true, revision: revision + 1, op: 'delete', deleted: 3 });
    expect(events.map((event) => [event.revision, event.kind, event.path, event.node, event.prevNode?.stat.lease])).toEqual([
      [revision + 1, 'delete', '/s/a', null, 1],
      [revision + 1, 'delete', '/s/b', null, 1],
      [revision + 1, 'delete', '/x/y', null, 1],
    ]);
    expect(namespace.range('/', { limit: 100 })).toMatchObject({ nodes: ['/plain', '/s', '/t', '/x'].map((path) => ({ path })) });
    expect(namespace.pathsOfLease(1)).toEqual([]);
    expect(namespace.pathsOfLease(2)).toEqual(['/t']);
    expect(namespace.range('/', { limit: 100, revision })).toEqual(before);
    expect(nodeOf(namespace, '/s').stat).toMatchObject({ numChildren: 0 });
  });

  it('deleteLeaseNodes of a lease without nodes changes nothing and keeps the revision', () => {
    const namespace = leased();
    const before = dump(namespace);
    expect(namespace.deleteLeaseNodes([3])).toEqual({ result: { ok: true, revision: namespace.revision, op: 'delete', deleted: 0 }, events: [] });
    expect(dump(namespace)).toBe(before);
  });

  it('an ephemeral node re-created without a lease leaves the lease', () => {
    const namespace = withLeases();
    ok(namespace, { op: 'create', path: '/e', value: EMPTY, lease: 1 }, 'create');
    ok(namespace, { op: 'txn', compare: [], success: [{ op: 'delete', path: '/e' }, { op: 'create', path: '/e', value: EMPTY }], failure: [] }, 'txn');
    expect(namespace.pathsOfLease(1)).toEqual([]);
    expect(namespace.deleteLeaseNodes([1]).result).toMatchObject({ deleted: 0 });
    expect(codeOf(namespace.get('/e'))).toBe('ok');
  });
});

// ─── values ──────────────────────────────────────────────────────────────────────────────────

describe('values', () => {
  it('accepts a value of exactly 1 MiB by default (create, put, and in a txn)', () => {
    const namespace = new Namespace();
    const value = Uint8Array.from({ length: MIB }, (_, i) => i % 251);
    expect(ok(namespace, { op: 'create', path: '/a', value }, 'create').result.node.value.byteLength).toBe(MIB);
    ok(namespace, { op: 'put', path: '/a', value }, 'put');
    ok(namespace, { op: 'txn', compare: [], success: [{ op: 'put', path: '/b', value }], failure: [] }, 'txn');
    // Buffer.equals: a byte-by-byte toEqual over a MiB takes seconds.
    expect(Buffer.from(nodeOf(namespace, '/b').value).equals(Buffer.from(value))).toBe(true);
    expect(nodeOf(namespace, '/a').stat.version).toBe(1);
  });

  it('answers TOO_LARGE for 1 MiB + 1 byte and changes nothing', () => {
    const namespace = new Namespace();
    ok(namespace, { op: 'put', path: '/a', value: EMPTY }, 'put');
    const value = new Uint8Array(MIB + 1);
    refused(namespace, { op: 'create', path: '/b', value }, 'TOO_LARGE');
    refused(namespace, { op: 'put', path: '/a', value }, 'TOO_LARGE');
    refused(namespace, { op: 'txn', compare: [], success: [{ op: 'put', path: '/c', value }], failure: [] }, 'TOO_LARGE');
  });

  it('takes its limit from valueBytesMax', () => {
    const namespace = new Namespace({ valueBytesMax: 3 });
    ok(namespace, { op: 'put', path: '/a', value: new Uint8Array(3) }, 'put');
    refused(namespace, { op: 'put', path: '/a', value: new Uint8Array(4) }, 'TOO_LARGE');
  });

  it('is binary-safe: every byte value round-trips, in the answer, the events, get and history', () => {
    const namespace = new Namespace();
    const value = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
    const copy = Uint8Array.from(value);
    const { events } = ok(namespace, { op: 'put', path: '/bin', value }, 'put');
    ok(namespace, { op: 'put', path: '/bin', value: text('later') }, 'put');
    expect(events[0]!.node!.value).toEqual(copy);
    expect(nodeOf(namespace, '/bin', 1).value).toEqual(copy);
    expect(holdsValue(namespace, '/bin', text('later'))).toBe(true);
  });

  function holdsValue(namespace: Namespace, path: string, value: Uint8Array): boolean {
    return ok(namespace, { op: 'txn', compare: [{ path, target: 'value', operator: '=', operand: value }], success: [], failure: [] }, 'txn').result.succeeded;
  }
});

// ─── bad input ───────────────────────────────────────────────────────────────────────────────

describe('bad input', () => {
  /** Some state worth protecting: nodes, an ephemeral one, history. */
  function populated(): Namespace {
    const namespace = withLeases();
    ok(namespace, { op: 'put', path: '/a/b', value: text('ab') }, 'put');
    ok(namespace, { op: 'create', path: '/e', value: EMPTY, lease: 1 }, 'create');
    ok(namespace, { op: 'put', path: '/a/b', value: text('ab2') }, 'put');
    return namespace;
  }

  const value = text('v');
  const goodPut = { op: 'put', path: '/new', value };
  const txn = (fields: Record<string, unknown>) => ({ op: 'txn', compare: [], success: [goodPut], failure: [], ...fields });
  const compare = (fields: Record<string, unknown>) => txn({ compare: [{ path: '/a/b', target: 'version', operator: '=', operand: 1, ...fields }] });

  const cases: [string, unknown][] = [
    ['a null command', null],
    ['an undefined command', undefined],
    ['a number', 42],
    ['a string', 'put'],
    ['an array', [goodPut]],
    ['an object without op', { path: '/new', value }],
    ['an unknown op', { op: 'rename', path: '/a', to: '/z' }],
    ['an op that is not a string', { op: 7, path: '/new', value }],
    ['a path that is not a string', { op: 'put', path: 42, value }],
    ['a path that is an array', { op: 'create', path: ['/new'], value }],
    ['a path without a leading "/"', { op: 'create', path: 'new', value }],
    ['a path with a trailing "/"', { op: 'delete', path: '/a/' }],
    ['a path with an empty segment', { op: 'put', path: '/a//b', value }],
    ['a path with a ".." segment', { op: 'put', path: '/a/..', value }],
    ['a sequential base that cannot make a path', { op: 'create', path: '/a//', value, sequential: true }],
    ['a missing path', { op: 'delete' }],
    ['a get, which is not a command on its own', { op: 'get', path: '/a/b' }],
    ['a value that is a string', { op: 'put', path: '/new', value: 'text' }],
    ['a value that is an array of numbers', { op: 'create', path: '/new', value: [1, 2, 3] }],
    ['a value that is null', { op: 'create', path: '/new', value: null }],
    ['a value that is an ArrayBuffer', { op: 'put', path: '/new', value: new ArrayBuffer(2) }],
    ['no value', { op: 'put', path: '/new' }],
    ['ifVersion 1.5 on put', { op: 'put', path: '/a/b', value, ifVersion: 1.5 }],
    ['ifVersion "1" on put', { op: 'put', path: '/a/b', value, ifVersion: '1' }],
    ['ifVersion 1.5 on delete', { op: 'delete', path: '/a/b', ifVersion: 1.5 }],
    ['ifVersion NaN on delete', { op: 'delete', path: '/a/b', ifVersion: Number.NaN }],
    ['a lease of 1.5', { op: 'put', path: '/new', value, lease: 1.5 }],
    ['a lease that is a string', { op: 'create', path: '/new', value, lease: '1' }],
    ['a put on the root', { op: 'put', path: '/', value }],
    ['a delete of the root', { op: 'delete', path: '/', recursive: true }],
    ['a txn without lists', { op: 'txn' }],
    ['a txn whose compare is not an array', txn({ compare: {} })],
    ['a txn whose success is a string', txn({ success: 'put' })],
    ['a txn whose failure is null', txn({ failure: null })],
    ['a compare that is null', txn({ compare: [null] })],
    ['a compare with a bad path', compare({ path: 'a' })],
    ['an exists compare with a number', compare({ target: 'exists', operand: 1 })],
    ['an exists compare with "<"', compare({ target: 'exists', operator: '<', operand: true })],
    ['a value compare with a string', compare({ target: 'value', operand: 'ab2' })],
    ['a value compare with an array of numbers', compare({ target: 'value', operand: [97] })],
    ['a version compare with a string', compare({ operand: '1' })],
    ['a version compare with 1.5', compare({ operand: 1.5 })],
    ['a modRevision compare with a boolean', compare({ target: 'modRevision', operand: true })],
    ['a createRevision compare with null', compare({ target: 'createRevision', operand: null })],
    ['a compare with an unknown target', compare({ target: 'size' })],
    ['a compare with an unknown operator', compare({ operator: '>=' })],
    ['an op that is null inside a txn', txn({ success: [goodPut, null] })],
    ['an op with an unknown op inside a txn', txn({ success: [goodPut, { op: 'rename', path: '/a' }] })],
    ['a txn nested inside a txn', txn({ success: [goodPut, { op: 'txn', compare: [], success: [], failure: [] }] })],
    ['a compact inside a txn', txn({ success: [goodPut, { op: 'compact', revision: 0 }] })],
    ['a get with revision 1.5 inside a txn', txn({ success: [goodPut, { op: 'get', path: '/a/b', revision: 1.5 }] })],
    ['a bad path inside a txn', txn({ success: [goodPut, { op: 'put', path: 'x', value }] })],
    ['a compact to a string', { op: 'compact', revision: '1' }],
    ['a compact to -1', { op: 'compact', revision: -1 }],
    ['a compact to 1.5', { op: 'compact', revision: 1.5 }],
    ['a compact without a revision', { op: 'compact' }],
    ['a compact to the future', { op: 'compact', revision: 4 }],
    ['a child under an ephemeral node', { op: 'create', path: '/e/child', value }],
  ];

  it.each(cases)('refuses %s with INVALID_ARGUMENT, never throws, and changes nothing', (_name, command) => {
    refused(populated(), command, 'INVALID_ARGUMENT');
  });

  // Regression: the "unknown operation" message is built with JSON.stringify(op), which throws on
  // a BigInt (and on a cyclic object), so this TypeError escapes apply. Seen with
  // `apply({ op: 1n })`; also `{ op: 'txn', compare: [{ path: '/a', target: 1n, ... }] }`.
  it('refuses an op that is a BigInt without throwing', () => {
    refused(populated(), { op: 1n }, 'INVALID_ARGUMENT');
  });

  // Regression: when a txn op is refused, describeOp() builds the message with String(op.path),
  // which throws for an object without a prototype; the TypeError escapes apply. The same path
  // outside a txn is refused properly.
  it('refuses a txn op whose path is an object without a prototype, without throwing', () => {
    refused(populated(), txn({ success: [{ op: 'put', path: Object.create(null) as object, value }] }), 'INVALID_ARGUMENT');
  });

  // Regression: compares are validated only as they are evaluated, and evaluation stops at the
  // first false compare (Array.every). A malformed compare after a false one is never looked at,
  // and the txn runs its failure ops: bad input that changes the state.
  it('refuses a malformed compare even after a compare that is false', () => {
    const command = {
      op: 'txn',
      compare: [
        { path: '/missing', target: 'exists', operator: '=', operand: true },
        { path: '/a/b', target: 'version', operator: '=', operand: 'junk' },
      ],
      success: [],
      failure: [goodPut],
    };
    refused(populated(), command, 'INVALID_ARGUMENT');
  });

  // Regression: the operator of a value/version/revision compare is checked only when the node
  // exists; on a missing node the compare is simply false, so the failure ops run.
  it('refuses an unknown compare operator on a missing node', () => {
    refused(populated(), { op: 'txn', compare: [{ path: '/missing', target: 'version', operator: '~', operand: 1 }], success: [], failure: [goodPut] }, 'INVALID_ARGUMENT');
  });

  // Regression (settled contract): only the branch the compares choose is validated. A
  // malformed op in the branch not taken is ignored and the other branch is applied, so a bad
  // command changes the state, against "bad input changes nothing" (issue 3).
  it('refuses a txn with a malformed op in the branch not taken', () => {
    refused(populated(), txn({ success: [goodPut], failure: [null] }), 'INVALID_ARGUMENT');
  });
});

// ─── every error code ────────────────────────────────────────────────────────────────────────

describe('error codes', () => {
  it('reaches every error code the namespace can produce', () => {
    const namespace = withLeases({ valueBytesMax: 2 });
    ok(namespace, { op: 'put', path: '/a/b', value: EMPTY }, 'put');
    ok(namespace, { op: 'put', path: '/a/b', value: EMPTY }, 'put');
    ok(namespace, { op: 'compact', revision: 2 }, 'compact');
    const reached: [ErrorCode | 'ok', ErrorCode][] = [
      [codeOf(namespace.apply({ op: 'put', path: 'a', value: EMPTY }).result), 'INVALID_ARGUMENT'],
      [codeOf(namespace.apply({ op: 'put', path: '/a', value: new Uint8Array(3) }).result), 'TOO_LARGE'],
      [codeOf(namespace.apply({ op: 'delete', path: '/zzz' }).result), 'NO_NODE'],
      [codeOf(namespace.apply({ op: 'create', path: '/a', value: EMPTY }).result), 'NODE_EXISTS'],
      [codeOf(namespace.apply({ op: 'put', path: '/a/b', value: EMPTY, ifVersion: 0 }).result), 'BAD_VERSION'],
      [codeOf(namespace.apply({ op: 'delete', path: '/a' }).result), 'NOT_EMPTY'],
      [codeOf(namespace.get('/a', 1)), 'COMPACTED'],
      [codeOf(namespace.apply({ op: 'create', path: '/e', value: EMPTY, lease: 9 }).result), 'LEASE_NOT_FOUND'],
    ];
    for (const [got, wanted] of reached) expect(got).toBe(wanted);
    expect(new Set(reached.map(([, code]) => code))).toEqual(
      new Set<ErrorCode>(['INVALID_ARGUMENT', 'TOO_LARGE', 'NO_NODE', 'NODE_EXISTS', 'BAD_VERSION', 'NOT_EMPTY', 'COMPACTED', 'LEASE_NOT_FOUND']),
    );
    expect(namespace.revision).toBe(2);
  });
});

// ─── replay determinism ──────────────────────────────────────────────────────────────────────

describe('replay determinism', () => {
  it.each([
    ['without compaction', {}],
    ['with automatic compaction (historyRevisions 4)', { historyRevisions: 4 }],
  ] as const)('two namespaces fed the same random commands answer alike, emit alike and hold the same state at every revision (%s)', (_name, extra) => {
    const options: NamespaceOptions = { valueBytesMax: 4, leaseExists, ...extra };
    const sequences = fc.sample(commandsArb(120), { seed: 0xd37e, numRuns: 40 });
    for (const generated of sequences) {
      const first = new Namespace(options);
      const second = new Namespace(options);
      const dumpsOfFirst: string[] = [];
      for (const command of generated) {
        const runnable = materialize(command, first.revision);
        const one = runnable.op === 'revokeLease' ? first.deleteLeaseNodes([runnable.lease]) : first.apply(runnable);
        const other = runnable.op === 'revokeLease' ? second.deleteLeaseNodes([runnable.lease]) : second.apply(runnable);
        expect(serialize(other)).toBe(serialize(one));
        dumpsOfFirst[first.revision] = serialize(first.range('/', { limit: 1_000_000 }));
      }
      expect(dump(second)).toBe(dump(first));
      // The state at every revision, as read back from history, is what it was when it was new.
      for (let revision = first.compactRevision; revision <= first.revision; revision++) {
        const then = dumpsOfFirst[revision];
        if (then === undefined) continue; // revision 0, before any command
        expect(serialize(first.range('/', { limit: 1_000_000, revision }))).toBe(then);
      }
    }
  });
});

describe('limits carried in the command (every member applies the proposer\'s)', () => {
  const withLeases = (): Namespace => new Namespace({ leaseExists: (lease) => lease === 1 || lease === 2 });
  /** /big with `n` children, and one grandchild under the first. */
  function tree(n: number): Namespace {
    const namespace = withLeases();
    for (let i = 0; i < n; i++) ok(namespace, { op: 'create', path: `/big/c${i}`, value: EMPTY, parents: true }, 'create');
    ok(namespace, { op: 'create', path: '/big/c0/g', value: EMPTY }, 'create');
    return namespace;
  }

  it('refuses a recursive delete of more nodes than writeNodesMax (TOO_LARGE, naming it), deleting nothing; exactly as many is deleted', () => {
    const namespace = tree(4); // /big + 4 children + 1 grandchild = 6 nodes
    refused(namespace, { op: 'delete', path: '/big', recursive: true, limits: { writeNodesMax: 5 } }, 'TOO_LARGE');
    expect(run(namespace, { op: 'delete', path: '/big', recursive: true, limits: { writeNodesMax: 5 } }).result).toMatchObject({ limit: 'writeNodesMax' });
    // In pages: the children first, then the rest.
    ok(namespace, { op: 'delete', path: '/big/c0', recursive: true, limits: { writeNodesMax: 5 } }, 'delete');
    const done = ok(namespace, { op: 'delete', path: '/big', recursive: true, limits: { writeNodesMax: 4 } }, 'delete');
    expect(done.result.deleted).toBe(4);
    expect(namespace.get('/big')).toMatchObject({ ok: false, code: 'NO_NODE' });
  });

  it('counts nodes a transaction created before its recursive delete, and deletes them deepest first', () => {
    const namespace = withLeases();
    ok(namespace, { op: 'create', path: '/d', value: EMPTY }, 'create');
    const txn = (writeNodesMax: number): unknown => ({
      op: 'txn',
      compare: [],
      success: [
        { op: 'create', path: '/d/x', value: EMPTY },
        { op: 'create', path: '/d/x/y', value: EMPTY },
        { op: 'create', path: '/d/w', value: EMPTY },
        { op: 'delete', path: '/d', recursive: true },
      ],
      failure: [],
      limits: { writeNodesMax },
    });
    // 3 created, then 4 deleted: 7 nodes changed by one write.
    refused(namespace, txn(6), 'TOO_LARGE');
    const { result, events } = ok(namespace, txn(7), 'txn');
    expect(result.results[3]).toEqual({ op: 'delete', deleted: 4 });
    expect(events.filter((e) => e.kind === 'delete').map((e) => e.path)).toEqual(['/d/x/y', '/d/x', '/d/w', '/d']);
    expect(namespace.childrenOf('/')).toMatchObject({ ok: true, names: [] });
  });

  it('refuses a write that creates or deletes more nodes in all than writeNodesMax: parents a put makes, deletes across a transaction', () => {
    const namespace = withLeases();
    refused(namespace, { op: 'put', path: '/p/q/r/s', value: EMPTY, limits: { writeNodesMax: 3 } }, 'TOO_LARGE');
    expect(run(namespace, { op: 'put', path: '/p/q/r/s', value: EMPTY, limits: { writeNodesMax: 3 } }).result).toMatchObject({ limit: 'writeNodesMax' });
    ok(namespace, { op: 'put', path: '/p/q/r/s', value: EMPTY, limits: { writeNodesMax: 4 } }, 'put');
    for (const name of ['a', 'b', 'c']) ok(namespace, { op: 'put', path: `/t/${name}/x`, value: EMPTY }, 'put');
    const deletes = (writeNodesMax: number): unknown => ({ op: 'txn', compare: [], success: ['a', 'b', 'c'].map((name) => ({ op: 'delete', path: `/t/${name}`, recursive: true })), failure: [], limits: { writeNodesMax } });
    // Each subtree is 2 nodes, within the bound alone; together 6.
    refused(namespace, deletes(5), 'TOO_LARGE');
    ok(namespace, deletes(6), 'txn');
  });

  it('refuses a write whose created or deleted nodes\' paths pass writePathBytesMax in all: deep parents refused before any is made, long names deleted in pages', () => {
    const namespace = withLeases();
    const limits = { writePathBytesMax: 100 };
    // /aaaaaaaaa and /aaaaaaaaa/bbbbbbbbb...: 10 + 20 + 30 + ... bytes of parents.
    const deep = ['a', 'b', 'c', 'd', 'e'].map((c) => `/${c.repeat(9)}`).join('');
    refused(namespace, { op: 'put', path: deep, value: EMPTY, limits }, 'TOO_LARGE');
    expect(run(namespace, { op: 'put', path: deep, value: EMPTY, limits }).result).toMatchObject({ limit: 'writePathBytesMax' });
    ok(namespace, { op: 'put', path: deep.slice(0, 30), value: EMPTY, limits }, 'put'); // 10 + 20 + 30 bytes
    ok(namespace, { op: 'put', path: deep, value: EMPTY, limits }, 'put'); // 40 + 50 more
    for (const n of [1, 2, 3]) ok(namespace, { op: 'put', path: `/long/${String(n).repeat(40)}`, value: EMPTY }, 'put');
    refused(namespace, { op: 'delete', path: '/long', recursive: true, limits }, 'TOO_LARGE');
    expect(run(namespace, { op: 'delete', path: '/long', recursive: true, limits }).result).toMatchObject({ limit: 'writePathBytesMax' });
    ok(namespace, { op: 'delete', path: `/long/${'1'.repeat(40)}`, limits }, 'delete');
    ok(namespace, { op: 'delete', path: '/long', recursive: true, limits }, 'delete');
  });

  it('lets a lease\'s nodes have paths of no more bytes than one write deletes (RESOURCE_EXHAUSTED)', () => {
    const namespace = withLeases();
    const limits = { writePathBytesMax: 50 };
    ok(namespace, { op: 'create', path: `/${'e'.repeat(20)}`, value: EMPTY, lease: 1, limits }, 'create');
    ok(namespace, { op: 'create', path: `/${'f'.repeat(20)}`, value: EMPTY, lease: 1, limits }, 'create');
    refused(namespace, { op: 'create', path: `/${'g'.repeat(20)}`, value: EMPTY, lease: 1, limits }, 'RESOURCE_EXHAUSTED');
    ok(namespace, { op: 'delete', path: `/${'e'.repeat(20)}`, limits }, 'delete');
    ok(namespace, { op: 'create', path: `/${'g'.repeat(20)}`, value: EMPTY, lease: 1, limits }, 'create');
  });

  it('lets a lease hold no more ephemeral nodes than one delete removes (RESOURCE_EXHAUSTED), counting a transaction\'s own', () => {
    const namespace = withLeases();
    const limits = { writeNodesMax: 3 };
    ok(namespace, { op: 'create', path: '/e1', value: EMPTY, lease: 1, limits }, 'create');
    ok(namespace, { op: 'put', path: '/e2', value: EMPTY, lease: 1, limits }, 'put');
    refused(namespace, { op: 'txn', compare: [], success: [{ op: 'create', path: '/e3', value: EMPTY, lease: 1 }, { op: 'create', path: '/e4', value: EMPTY, lease: 1 }], failure: [], limits }, 'RESOURCE_EXHAUSTED');
    ok(namespace, { op: 'create', path: '/e3', value: EMPTY, lease: 1, limits }, 'create');
    refused(namespace, { op: 'create', path: '/e4', value: EMPTY, lease: 1, limits }, 'RESOURCE_EXHAUSTED');
    // Another lease has room of its own.
    ok(namespace, { op: 'create', path: '/e4', value: EMPTY, lease: 2, limits }, 'create');
    expect(namespace.pathsOfLease(1)).toEqual(['/e1', '/e2', '/e3']);
  });

  it('refuses a transaction whose gets would answer more than answerBytesMax, applying none of its writes', () => {
    const namespace = withLeases();
    ok(namespace, { op: 'put', path: '/v', value: new Uint8Array(3_000) }, 'put');
    const txn = (answerBytesMax: number, gets: number): unknown => ({
      op: 'txn',
      compare: [],
      success: [{ op: 'put', path: '/w', value: text('written') }, ...Array.from({ length: gets }, () => ({ op: 'get', path: '/v' }))],
      failure: [],
      limits: { answerBytesMax },
    });
    refused(namespace, txn(10_000, 3), 'TOO_LARGE');
    expect(run(namespace, txn(10_000, 3)).result).toMatchObject({ limit: 'answerBytesMax' });
    expect(namespace.get('/w')).toMatchObject({ ok: false, code: 'NO_NODE' });
    const fits = ok(namespace, txn(10_000, 2), 'txn');
    expect(fits.result.results).toHaveLength(3);
  });

  it('refuses carried limits that are not positive integers', () => {
    const namespace = withLeases();
    for (const limits of [{ writeNodesMax: 0 }, { writeNodesMax: 1.5 }, { answerBytesMax: '9' }, { other: 1 }, 'x']) {
      refused(namespace, { op: 'put', path: '/x', value: EMPTY, limits }, 'INVALID_ARGUMENT');
    }
  });
});

describe('answers bounded in bytes and in work', () => {
  it('ends a range page at its byte bound, with the continuation; a node larger than the bound alone is TOO_LARGE', () => {
    const namespace = new Namespace();
    for (let i = 0; i < 5; i++) ok(namespace, { op: 'put', path: `/r/k${i}`, value: new Uint8Array(1_000) }, 'put');
    const page = namespace.range('/r', { limit: 100, bytesMax: 3_000 });
    expect(page).toMatchObject({ ok: true });
    if (!page.ok) return;
    expect(page.nodes.length).toBeGreaterThan(0);
    expect(page.nodes.length).toBeLessThan(5);
    expect(page.next).toBe(page.nodes.at(-1)!.path);
    const rest = namespace.range('/r', { limit: 100, after: page.next!, bytesMax: 100_000 });
    expect(rest.ok && [...page.nodes, ...rest.nodes].map((n) => n.path)).toEqual([0, 1, 2, 3, 4].map((i) => `/r/k${i}`));
    expect(namespace.range('/r', { limit: 100, bytesMax: 500 })).toMatchObject({ ok: false, code: 'TOO_LARGE', limit: 'answerBytesMax' });
  });

  it(`ends a range page after walking ${RANGE_SCAN_MAX} paths, even with no node in it (deleted paths with history), and goes on from there`, () => {
    const namespace = new Namespace();
    const dead = RANGE_SCAN_MAX + 10;
    ok(namespace, { op: 'txn', compare: [], success: [{ op: 'put', path: '/s/a', value: EMPTY }], failure: [] }, 'txn');
    for (let i = 0; i < dead; i++) {
      ok(namespace, { op: 'put', path: `/s/b${String(i).padStart(6, '0')}`, value: EMPTY }, 'put');
      ok(namespace, { op: 'delete', path: `/s/b${String(i).padStart(6, '0')}` }, 'delete');
    }
    ok(namespace, { op: 'put', path: '/s/c', value: EMPTY }, 'put');
    const first = namespace.range('/s', { limit: 10 });
    expect(first).toMatchObject({ ok: true });
    if (!first.ok) return;
    expect(first.nodes.map((n) => n.path)).toEqual(['/s/a']);
    expect(first.next).not.toBeNull();
    const second = namespace.range('/s', { limit: 10, after: first.next! });
    expect(second.ok && second.nodes.map((n) => n.path)).toEqual(['/s/c']);
  });

  it('pages children by limit and after, and refuses (TOO_LARGE) to list more names than one answer holds without a limit', () => {
    const namespace = new Namespace();
    for (let i = 0; i < 6; i++) ok(namespace, { op: 'put', path: `/p/n${i}`, value: EMPTY }, 'put');
    expect(namespace.childrenOf('/p', { limit: 4 })).toMatchObject({ ok: true, names: ['n0', 'n1', 'n2', 'n3'], next: 'n3' });
    expect(namespace.childrenOf('/p', { limit: 4, after: 'n3' })).toMatchObject({ ok: true, names: ['n4', 'n5'], next: null });
    expect(namespace.childrenOf('/p', { bytesMax: 260 })).toMatchObject({ ok: false, code: 'TOO_LARGE', limit: 'answerBytesMax' });
    expect(namespace.childrenOf('/p', { limit: 100, bytesMax: 260 })).toMatchObject({ ok: true, names: ['n0', 'n1', 'n2', 'n3'], next: 'n3' });
  });
});
