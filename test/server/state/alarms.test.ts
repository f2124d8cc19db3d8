/**
 * The alarm table in the replicated state: a NO_SPACE alarm raised by a member makes the state
 * machine refuse every write that adds data — put, create, a transaction that puts or creates, a
 * lease grant — with NO_SPACE naming the quota, while deletes, compactions, transactions that
 * only delete or read, revokes and session keep-alives go on; cleared, writes go on again. An
 * alarm needs no user while auth is on (members raise it), and the table survives the store and a
 * restart. A retried grant of an existing lease still answers that lease; a removed member's
 * alarms go with it.
 *
 * Must never: read a clock; every time here is an entry's timeMs.
 */

import { describe, expect, it } from 'vitest';
import type { StateEntry } from '../../../server/state/state-machine.js';
import { StoreBacked } from './store-backed.js';

describe('the alarm table', () => {
  it('NO_SPACE refuses what adds data, lets deletes and compaction through, and clears', () => {
    const store = new StoreBacked({});
    let index = 0;
    const apply = (command: Record<string, unknown>) => store.apply({ index: ++index, timeMs: 1_000 + index, command } satisfies StateEntry).result;
    const put = (path: string) => apply({ op: 'put', path, value: new Uint8Array([1, 2, 3]) });
    expect(put('/a')).toMatchObject({ ok: true });
    expect(put('/b')).toMatchObject({ ok: true });
    const lease = apply({ op: 'leaseGrant', ttlMs: 10_000 }) as { ok: true; lease: { id: number } };

    expect(apply({ op: 'alarm', action: 'raise', member: 'n1', kind: 'NO_SPACE', usedBytes: 3_000, quotaBytes: 2_048 })).toMatchObject({ ok: true, op: 'alarm', changed: true });
    expect(store.sm.alarms.list()).toEqual([{ member: 'n1', kind: 'NO_SPACE', raisedAtMs: 1_004, usedBytes: 3_000, quotaBytes: 2_048 }]);
    const refused = { ok: false, code: 'NO_SPACE', message: expect.stringMatching(/--quota-bytes 2048/) };
    expect(put('/c')).toMatchObject(refused);
    expect(put('/a')).toMatchObject(refused); // overwriting adds a version too
    expect(apply({ op: 'create', path: '/d', value: new Uint8Array(), parents: false })).toMatchObject(refused);
    expect(apply({ op: 'txn', compare: [], success: [{ op: 'put', path: '/e', value: new Uint8Array() }], failure: [] })).toMatchObject(refused);
    expect(apply({ op: 'leaseGrant', ttlMs: 10_000 })).toMatchObject(refused);
    const revision = store.sm.revision;
    expect(store.sm.namespace.get('/c')).toMatchObject({ ok: false, code: 'NO_NODE' });

    // What frees space, or changes nothing, goes on.
    expect(apply({ op: 'txn', compare: [], success: [{ op: 'delete', path: '/b' }], failure: [] })).toMatchObject({ ok: true, op: 'txn' });
    expect(apply({ op: 'delete', path: '/a' })).toMatchObject({ ok: true, op: 'delete' });
    expect(apply({ op: 'compact', revision: store.sm.revision })).toMatchObject({ ok: true, op: 'compact' });
    expect(apply({ op: 'leaseRevoke', lease: lease.lease.id })).toMatchObject({ ok: true });
    expect(store.sm.revision).toBeGreaterThan(revision);

    // Raised twice: one alarm. Survives the store and a restart.
    expect(apply({ op: 'alarm', action: 'raise', member: 'n1', kind: 'NO_SPACE', usedBytes: 5, quotaBytes: 2_048 })).toMatchObject({ ok: true, changed: false });
    store.restart();
    expect(store.sm.alarms.list()).toHaveLength(1);
    expect(put('/c')).toMatchObject(refused);

    expect(apply({ op: 'alarm', action: 'clear', member: 'n1', kind: 'NO_SPACE' })).toMatchObject({ ok: true, changed: true });
    expect(put('/c')).toMatchObject({ ok: true });
    store.restart();
    expect(store.sm.alarms.list()).toEqual([]);
    expect(apply({ op: 'alarm', action: 'raise', member: 'n1', kind: 'BAD_KIND' })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });

    // A retried grant of a lease that exists answers as it did, alarm or not: the lease is there.
    const kept = apply({ op: 'leaseGrant', ttlMs: 10_000, lease: 77 }) as { ok: true; lease: { id: number } };
    expect(kept).toMatchObject({ ok: true, lease: { id: 77 } });
    apply({ op: 'alarm', action: 'raise', member: 'n3', kind: 'NO_SPACE', usedBytes: 9, quotaBytes: 8 });
    expect(apply({ op: 'leaseGrant', ttlMs: 10_000, lease: 77 })).toMatchObject({ ok: true, existing: true, lease: { id: 77 } });
    expect(apply({ op: 'leaseGrant', ttlMs: 10_000, lease: 78 })).toMatchObject({ ok: false, code: 'NO_SPACE' });
    // A member removed from the cluster takes its alarms with it (it could never clear them).
    apply({ op: 'memberChange', change: 'remove', name: 'n3' });
    expect(store.sm.alarms.list()).toEqual([]);
    store.restart();
    expect(store.sm.alarms.list()).toEqual([]);

    // With auth on, members raise alarms without a user.
    for (const command of [{ op: 'userAdd', name: 'root', password: null }, { op: 'authEnable', tokenKey: 'ab'.repeat(32) }]) apply(command);
    expect(apply({ op: 'alarm', action: 'raise', member: 'n2', kind: 'NO_SPACE' })).toMatchObject({ ok: true, changed: true });
  });
});
