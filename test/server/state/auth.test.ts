/**
 * Auth in the replicated state machine: the user and role table (enable needs root; grants on a
 * path cover its subtree and nothing beside it; limits refuse with the limit's name), and the
 * check every entry meets when it is applied while auth is on — writes need write, txns are
 * checked on every path of both branches, compaction and auth changes need admin, leases and
 * sessions belong to who made them, an answered retry keeps its answer — and the table's trip
 * through the store and a restart.
 *
 * Must never: read a clock; every time here is an entry's timeMs.
 */

import { describe, expect, it } from 'vitest';
import { AuthTable } from '../../../server/state/auth.js';
import type { StateCommand, StateEntry } from '../../../server/state/state-machine.js';
import { StoreBacked } from './store-backed.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const HASH = `scrypt$16384$8$1$${'c2FsdHNhbHRzYWx0'}$${'aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA=='}`;
const KEY = 'ab'.repeat(32);
const SECRET = '00112233445566778899aabbccddeeff';

/** A store-backed state machine fed entries as `user`. */
function cluster() {
  const store = new StoreBacked({});
  let index = 0;
  const as = (user: string | undefined, command: StateCommand | Record<string, unknown>, client?: StateEntry['client']) =>
    store.apply({ index: ++index, timeMs: 1_000 + index, command, ...(user === undefined ? {} : { user }), ...(client === undefined ? {} : { client }) }).result;
  return { store, as, get sm() { return store.sm; } };
}

/** root, alice (read /a, write /a/w), bob (write /b); auth on. */
function withUsers() {
  const c = cluster();
  for (const command of [
    { op: 'userAdd', name: 'root', password: HASH },
    { op: 'userAdd', name: 'alice', password: HASH },
    { op: 'userAdd', name: 'bob', password: null },
    { op: 'roleAdd', name: 'reader' },
    { op: 'roleGrant', name: 'reader', path: '/a', access: 'read' },
    { op: 'roleGrant', name: 'reader', path: '/a/w', access: 'write' },
    { op: 'roleAdd', name: 'writer' },
    { op: 'roleGrant', name: 'writer', path: '/b', access: 'write' },
    { op: 'userGrantRole', name: 'alice', role: 'reader' },
    { op: 'userGrantRole', name: 'bob', role: 'writer' },
    { op: 'create', path: '/a', value: bytes('a') },
    { op: 'create', path: '/a/w', value: bytes('') },
    { op: 'create', path: '/b', value: bytes('b') },
    { op: 'authEnable', tokenKey: KEY },
  ] as const) {
    expect(c.as(undefined, command)).toMatchObject({ ok: true });
  }
  return c;
}

describe('the auth table', () => {
  it('grants on a path cover its subtree and nothing beside it; root and admin on / cover everything', () => {
    const { sm } = withUsers();
    expect(sm.auth.may('alice', '/a', 'read')).toBe(true);
    expect(sm.auth.may('alice', '/a/x/y', 'read')).toBe(true);
    expect(sm.auth.may('alice', '/apple', 'read')).toBe(false);
    expect(sm.auth.may('alice', '/', 'read')).toBe(false);
    expect(sm.auth.may('alice', '/a', 'write')).toBe(false);
    expect(sm.auth.may('alice', '/a/w/deep', 'write')).toBe(true);
    expect(sm.auth.may('alice', '/a/w/deep', 'admin')).toBe(false);
    expect(sm.auth.may('root', '/anything/at/all', 'admin')).toBe(true);
    expect(sm.auth.may('nobody', '/a', 'read')).toBe(false);
    expect(sm.auth.isAdmin('alice')).toBe(false);
  });

  it('enables only once root exists, and refuses what it cannot hold with the limit named', () => {
    const { as } = cluster();
    expect(as(undefined, { op: 'authEnable', tokenKey: KEY })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', message: expect.stringMatching(/add the user root/) });
    expect(as(undefined, { op: 'userAdd', name: 'u1', password: HASH, usersMax: 1 })).toMatchObject({ ok: true });
    expect(as(undefined, { op: 'userAdd', name: 'u2', password: HASH, usersMax: 1 })).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED', limit: 'usersMax' });
    expect(as(undefined, { op: 'roleAdd', name: 'r' })).toMatchObject({ ok: true });
    expect(as(undefined, { op: 'roleGrant', name: 'r', path: '/p1', access: 'read', rolePermissionsMax: 1 })).toMatchObject({ ok: true });
    expect(as(undefined, { op: 'roleGrant', name: 'r', path: '/p2', access: 'read', rolePermissionsMax: 1 })).toMatchObject({ ok: false, limit: 'rolePermissionsMax' });
    expect(as(undefined, { op: 'userAdd', name: 'u1', password: 'plain text' })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    expect(as(undefined, { op: 'userAdd', name: 'has space', password: HASH })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    expect(as(undefined, { op: 'roleGrant', name: 'r', path: 'relative', access: 'read' })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    expect(as(undefined, { op: 'roleGrant', name: 'root', path: '/x', access: 'read' })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
  });

  it('compiles a thousand roles and ten thousand prefixes into a lookup as deep as the path', () => {
    const table = new AuthTable();
    table.apply({ op: 'userAdd', name: 'many', password: null });
    for (let r = 0; r < 1_000; r++) {
      table.apply({ op: 'roleAdd', name: `role${r}` });
      for (let p = 0; p < 10; p++) table.apply({ op: 'roleGrant', name: `role${r}`, path: `/tenant${r}/app${p}`, access: p % 2 === 0 ? 'read' : 'write' });
      table.apply({ op: 'userGrantRole', name: 'many', role: `role${r}` });
    }
    expect(table.may('many', '/tenant999/app9/x', 'write')).toBe(true);
    expect(table.may('many', '/tenant999/app8/x', 'write')).toBe(false);
    expect(table.may('many', '/tenant1000/app1', 'read')).toBe(false);
  });
});

describe('checks at apply, with auth on', () => {
  it('refuses an entry without a user, and a user without the permission, changing nothing', () => {
    const { as, sm } = withUsers();
    const revision = sm.revision;
    expect(as(undefined, { op: 'put', path: '/a', value: bytes('x') })).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' });
    expect(as('alice', { op: 'put', path: '/a', value: bytes('x') })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED', message: expect.stringMatching(/alice has no write permission on \/a/) });
    expect(as('alice', { op: 'delete', path: '/b' })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(as('ghost', { op: 'put', path: '/a', value: bytes('x') })).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' });
    expect(sm.revision).toBe(revision);
    expect(as('alice', { op: 'create', path: '/a/w/x', value: bytes('x') })).toMatchObject({ ok: true });
    expect(as('bob', { op: 'put', path: '/b', value: bytes('x') })).toMatchObject({ ok: true });
  });

  it('checks every path of a transaction, in both branches, before it runs', () => {
    const { as, sm } = withUsers();
    const revision = sm.revision;
    const touchB = { op: 'txn', compare: [], success: [{ op: 'create', path: '/a/w/y', value: bytes('y') }], failure: [{ op: 'put', path: '/b', value: bytes('x') }] };
    expect(as('alice', touchB)).toMatchObject({ ok: false, code: 'PERMISSION_DENIED', message: expect.stringMatching(/\/b/) });
    expect(as('alice', { op: 'txn', compare: [{ path: '/b', target: 'exists', operator: '=', operand: true }], success: [], failure: [] })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(as('alice', { op: 'txn', compare: [], success: [{ op: 'get', path: '/b' }], failure: [] })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(sm.revision).toBe(revision);
    expect(as('alice', { op: 'txn', compare: [{ path: '/a', target: 'exists', operator: '=', operand: true }], success: [{ op: 'create', path: '/a/w/z', value: bytes('z') }, { op: 'get', path: '/a' }], failure: [] })).toMatchObject({ ok: true, succeeded: true });
  });

  it('needs write on the highest parent a put or a create with parents would make', () => {
    const { as } = withUsers();
    // alice may write /a/w, not /a: a create of /a/q/r with parents would make /a/q.
    expect(as('alice', { op: 'create', path: '/a/q/r', value: bytes(''), parents: true })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED', message: expect.stringMatching(/creating the parent \/a\/q/) });
    expect(as('alice', { op: 'create', path: '/a/w/q/r', value: bytes(''), parents: true })).toMatchObject({ ok: true });
    // A sequential create names a sibling: a grant on the path alone does not cover it.
    expect(as('root', { op: 'roleGrant', name: 'reader', path: '/a/job-', access: 'write' })).toMatchObject({ ok: true });
    expect(as('alice', { op: 'create', path: '/a/job-', value: bytes(''), sequential: true })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED', message: expect.stringMatching(/sequential create under \/a\b/) });
    expect(as('alice', { op: 'create', path: '/a/w/job-', value: bytes(''), sequential: true })).toMatchObject({ ok: true, path: expect.stringMatching(/^\/a\/w\/job-\d{10}$/) });
    // A put makes its missing parents too.
    expect(as('alice', { op: 'put', path: '/a/p/q', value: bytes('') })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED', message: expect.stringMatching(/creating the parent \/a\/p/) });
    expect(as('alice', { op: 'put', path: '/a/w/p/q', value: bytes('') })).toMatchObject({ ok: true });
  });

  it('needs admin for compaction and for auth changes, except a user changing its own password', () => {
    const { as } = withUsers();
    expect(as('bob', { op: 'compact', revision: 1 })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(as('bob', { op: 'roleGrant', name: 'writer', path: '/', access: 'admin' })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(as('bob', { op: 'authDisable' })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(as('bob', { op: 'userPasswd', name: 'alice', password: HASH })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    // bob has no password (certificate only): an admin gives him one; alice may change her own.
    expect(as('bob', { op: 'userPasswd', name: 'bob', password: HASH })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(as('alice', { op: 'userPasswd', name: 'alice', password: HASH })).toMatchObject({ ok: true });
    expect(as('root', { op: 'compact', revision: 1 })).toMatchObject({ ok: true });
    expect(as('root', { op: 'authDisable' })).toMatchObject({ ok: true });
  });

  it('keeps leases to their owner: another user cannot revoke one, nor attach a node to it; the leader needs no user to expire it', () => {
    const { as, sm } = withUsers();
    expect(as('alice', { op: 'leaseGrant', ttlMs: 5_000, lease: 77 })).toMatchObject({ ok: true, lease: { id: 77, owner: 'alice' } });
    expect(as('bob', { op: 'leaseRevoke', lease: 77 })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(as('bob', { op: 'create', path: '/b/e', value: bytes(''), lease: 77 })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED', message: expect.stringMatching(/lease 77 belongs to another user/) });
    expect(as('bob', { op: 'leaseGrant', ttlMs: 5_000, lease: 77 })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
    expect(sm.leases.has(77)).toBe(true);
    expect(as('alice', { op: 'create', path: '/a/w/e', value: bytes(''), lease: 77 })).toMatchObject({ ok: true });
    expect(as(undefined, { op: 'leaseExpire', leases: [77], term: 5 })).toMatchObject({ ok: true, leases: [77], deleted: 1 });
  });

  it('keeps sessions to their owner, and answers a retry that was applied with its answer even after the permission went', () => {
    const { as } = withUsers();
    const registered = as('bob', { op: 'registerClient', secret: SECRET }) as { clientId: number };
    const stamp = (seq: number) => ({ id: registered.clientId, seq, ackedThrough: 0, secret: SECRET });
    expect(as('alice', { op: 'create', path: '/a/w/s', value: bytes('') }, stamp(1))).toMatchObject({ ok: false, code: 'PERMISSION_DENIED', message: expect.stringMatching(/belongs to another user/) });
    const first = as('bob', { op: 'create', path: '/b/s', value: bytes('') }, stamp(1));
    expect(first).toMatchObject({ ok: true, op: 'create' });
    expect(as('root', { op: 'roleRevoke', name: 'writer', path: '/b' })).toMatchObject({ ok: true });
    // The retry is answered as the first was (a refusal now would say it never happened).
    expect(as('bob', { op: 'create', path: '/b/s', value: bytes('') }, stamp(1))).toMatchObject({ ok: true, op: 'create', revision: (first as { revision: number }).revision });
    expect(as('bob', { op: 'create', path: '/b/t', value: bytes('') }, stamp(2))).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
  });

  it('keeps the table, lease owners and session owners through the store and a restart', () => {
    const c = withUsers();
    expect(c.as('alice', { op: 'leaseGrant', ttlMs: 5_000, lease: 9 })).toMatchObject({ ok: true });
    const registered = c.as('bob', { op: 'registerClient', secret: SECRET }) as { clientId: number };
    const before = c.sm.auth.image();
    c.store.restart();
    expect(c.sm.auth.image()).toEqual(before);
    expect(c.sm.auth.enabled).toBe(true);
    expect(c.sm.leases.get(9)?.owner).toBe('alice');
    expect(c.sm.sessions.owner(registered.clientId)).toBe('bob');
    expect(c.as('bob', { op: 'leaseRevoke', lease: 9 })).toMatchObject({ ok: false, code: 'PERMISSION_DENIED' });
  });
});
