/**
 * `autoCompact`, the compaction a member proposes on its own (--auto-compaction-retention): it
 * compacts as `compact` does, and needs no user while auth is on.
 *
 * Must never: read a clock; every time here is an entry's timeMs.
 */

import { describe, expect, it } from 'vitest';
import type { StateEntry } from '../../../server/state/state-machine.js';
import { StoreBacked } from './store-backed.js';

describe('autoCompact', () => {
  it('compacts the history like compact, with no user under auth', () => {
    const store = new StoreBacked({});
    let index = 0;
    const apply = (command: Record<string, unknown>) => store.apply({ index: ++index, timeMs: index, command } satisfies StateEntry).result;
    for (let i = 0; i < 4; i++) apply({ op: 'put', path: '/a', value: new Uint8Array([i]) });
    for (const command of [{ op: 'userAdd', name: 'root', password: null }, { op: 'authEnable', tokenKey: 'ab'.repeat(32) }]) apply(command);
    expect(apply({ op: 'compact', revision: 2 })).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' }); // a client's compact needs a user
    expect(apply({ op: 'autoCompact', revision: 3 })).toMatchObject({ ok: true, op: 'compact', compactRevision: 3 });
    expect(store.sm.namespace.get('/a', 2)).toMatchObject({ ok: false, code: 'COMPACTED' });
    store.restart();
    expect(store.sm.namespace.compactRevision).toBe(3);
  });
});
