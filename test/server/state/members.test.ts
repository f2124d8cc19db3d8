/**
 * The member table in the replicated state: it follows configuration changes as they are
 * applied (added as a learner with its peer URL, promoted, removed — a removed name is kept, so
 * it is never used again), changes nothing else (no revision, no namespace), needs no user while
 * auth is on (the log committed it), and survives the store and a restart.
 *
 * Must never: read a clock; every time here is an entry's timeMs.
 */

import { describe, expect, it } from 'vitest';
import type { StateEntry } from '../../../server/state/state-machine.js';
import { StoreBacked } from './store-backed.js';

describe('the member table', () => {
  it('follows added, promoted and removed members, keeps removed names, and takes no revision', () => {
    const store = new StoreBacked({});
    let index = 0;
    const apply = (command: Record<string, unknown>, user?: string) => store.apply({ index: ++index, timeMs: 0, command, ...(user === undefined ? {} : { user }) } satisfies StateEntry).result;
    expect(apply({ op: 'memberChange', change: 'addLearner', name: 'n4', peerUrl: 'ws://10.0.0.4:7081' })).toEqual({ ok: true, revision: 0, op: 'memberChange' });
    expect(store.sm.members.get('n4')).toEqual({ name: 'n4', peerUrl: 'ws://10.0.0.4:7081', role: 'learner' });
    apply({ op: 'memberChange', change: 'promote', name: 'n4' });
    expect(store.sm.members.get('n4')).toEqual({ name: 'n4', peerUrl: 'ws://10.0.0.4:7081', role: 'voter' });
    apply({ op: 'memberChange', change: 'remove', name: 'n1' });
    expect(store.sm.members.wasRemoved('n1')).toBe(true);
    expect(store.sm.revision).toBe(0);
    expect(apply({ op: 'memberChange', change: 'rename', name: 'n1' })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });

    // With auth on, a configuration entry needs no user: the log committed it.
    for (const command of [{ op: 'userAdd', name: 'root', password: null }, { op: 'authEnable', tokenKey: 'ab'.repeat(32) }]) apply(command);
    expect(apply({ op: 'memberChange', change: 'remove', name: 'n4' })).toMatchObject({ ok: true });

    const before = store.sm.members.image();
    store.restart();
    expect(store.sm.members.image()).toEqual(before);
    expect(before).toEqual({ members: [], removed: ['n1', 'n4'] });
  });
});
