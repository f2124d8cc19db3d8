/**
 * The Cache's in-memory subtree (client/recipes/cache-tree.ts) without a cluster: revisions
 * applied whole, parents' children counts kept as a member keeps them, deletes that take the
 * subtree below along, the rebuild's difference in an order that never orphans a node, maxNodes
 * refused with nothing applied, and the namespace's path order.
 */

import { describe, expect, it } from 'vitest';
import type { Stat, WardenNode, WatchEvent } from '../../client/api.js';
import { comparePathText, SubtreeMirror } from '../../client/recipes/cache-tree.js';

const stat = (fields: Partial<Stat>): Stat => ({ createRevision: 1, modRevision: 1, version: 0, childrenVersion: 0, numChildren: 0, lease: null, ...fields });
const node = (path: string, fields: Partial<Stat> = {}, value = ''): WardenNode => ({ path, value, stat: stat(fields) });
const created = (path: string, revision: number, fields: Partial<Stat> = {}): WatchEvent => ({ type: 'create', path, revision, node: node(path, { createRevision: revision, modRevision: revision, ...fields }) });
const deleted = (path: string, revision: number): WatchEvent => ({ type: 'delete', path, revision, node: null });

function mirrorOf(nodes: WardenNode[], maxNodes = 100): SubtreeMirror<string> {
  const mirror = new SubtreeMirror<string>('/app', maxNodes);
  mirror.install(new Map(nodes.map((n) => [n.path, n])), 5);
  return mirror;
}

describe('SubtreeMirror', () => {
  it("moves a parent's children counts for each child that comes or goes, unless the parent's own event of that revision carried them", () => {
    const mirror = mirrorOf([node('/app', { childrenVersion: 3, numChildren: 1 }), node('/app/a')]);
    mirror.apply([created('/app/b', 6), created('/app/c', 6)]);
    expect(mirror.get('/app')!.stat).toMatchObject({ childrenVersion: 5, numChildren: 3 });
    mirror.apply([deleted('/app/a', 7)]);
    expect(mirror.get('/app')!.stat).toMatchObject({ childrenVersion: 6, numChildren: 2 });
    // The parent's own event (a put in the same transaction) already has its final counts.
    mirror.apply([
      { type: 'put', path: '/app', revision: 8, node: node('/app', { modRevision: 8, version: 1, childrenVersion: 7, numChildren: 3 }) },
      created('/app/d', 8),
    ]);
    expect(mirror.get('/app')!.stat).toMatchObject({ childrenVersion: 7, numChildren: 3 });
    expect(mirror.children('/app')).toEqual(['b', 'c', 'd']);
  });

  it('a delete takes what is held below it along, deepest first, and a node handed out earlier stays as it was', () => {
    const mirror = mirrorOf([node('/app', { numChildren: 1 }), node('/app/a', { numChildren: 2 }), node('/app/a/x'), node('/app/a/y', { numChildren: 1 }), node('/app/a/y/z')]);
    const before = mirror.get('/app')!;
    const changes = mirror.apply([deleted('/app/a', 9)]);
    expect(changes.map((c) => `${c.type} ${c.path}`)).toEqual(['delete /app/a/y/z', 'delete /app/a/y', 'delete /app/a/x', 'delete /app/a']);
    expect(mirror.nodes().map((n) => n.path)).toEqual(['/app']);
    expect(mirror.get('/app')!.stat).toMatchObject({ numChildren: 0, childrenVersion: 1 });
    expect(before.stat.numChildren).toBe(1);
    // The member's own events for the descendants then find nothing left.
    expect(mirror.apply([deleted('/app/a/x', 9)])).toEqual([]);
  });

  it('tells a rebuild as deletes deepest first, then creates and puts parents first; a node made again is a delete and a create', () => {
    const mirror = mirrorOf([node('/app'), node('/app/a'), node('/app/a/x'), node('/app/b', { createRevision: 2 }), node('/app/c', { modRevision: 3 }, 'old')]);
    const fresh = [node('/app'), node('/app/b', { createRevision: 12 }), node('/app/b/n', { createRevision: 12 }), node('/app/c', { modRevision: 11 }, 'new')];
    const changes = mirror.diff(new Map(fresh.map((n) => [n.path, n])), 12);
    expect(changes.map((c) => `${c.type} ${c.path}`)).toEqual(['delete /app/b', 'delete /app/a/x', 'delete /app/a', 'create /app/b', 'create /app/b/n', 'put /app/c']);
    expect(changes.every((c) => c.revision === 12)).toBe(true);
  });

  it('refuses a revision that would pass maxNodes with TOO_LARGE and applies none of it', () => {
    const mirror = mirrorOf([node('/app'), node('/app/a')], 3);
    expect(() => mirror.apply([created('/app/b', 6), created('/app/c', 6)])).toThrow(expect.objectContaining({ code: 'TOO_LARGE', details: { limit: { name: 'maxNodes', flag: 'maxNodes', value: 3 } } }));
    expect(mirror.nodes().map((n) => n.path)).toEqual(['/app', '/app/a']);
    // One that deletes as it creates fits (3 nodes after it).
    mirror.apply([deleted('/app/a', 7), created('/app/b', 7), created('/app/c', 7)]);
    expect(mirror.nodes().map((n) => n.path)).toEqual(['/app', '/app/b', '/app/c']);
    expect(() => mirror.install(new Map([node('/app'), node('/app/a'), node('/app/b'), node('/app/c')].map((n) => [n.path, n])), 8)).toThrow(/maxNodes/);
  });

  it('sorts paths as members do: a path before its extensions, "/a/b" before "/a-b", by code point', () => {
    const paths = ['/a-b', '/a/b', '/a', '/a/b/c', '/a\u{1F600}', '/a\uFFFD', '/b', '/a b'];
    expect([...paths].sort(comparePathText)).toEqual(['/a', '/a/b', '/a/b/c', '/a b', '/a-b', '/a\uFFFD', '/a\u{1F600}', '/b']);
    expect(new SubtreeMirror('/a', 1).covers('/a-b')).toBe(false);
    expect(new SubtreeMirror('/', 1).covers('/anything')).toBe(true);
  });
});
