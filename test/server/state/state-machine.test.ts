/**
 * The state machine with leases: ids and expiry from log time only, ephemeral nodes dying with
 * their lease at one revision, keep-alives that beat an expiry, failover refresh, entry order,
 * and replay determinism.
 *
 * Must never: read a clock; every time here is an entry's timeMs.
 */

import { describe, expect, it } from 'vitest';
import { StateMachine, type StateCommand, type StateEntry } from '../../../server/state/state-machine.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Feeds commands as consecutive entries at the given log times. */
function feeder(sm: StateMachine) {
  let index = 0;
  return (timeMs: number, command: StateCommand | unknown) => sm.apply({ index: ++index, timeMs, command } satisfies StateEntry);
}

describe('leases', () => {
  it('grants ids 1, 2, 3… from replicated state, expiring at log time + ttl, without taking a revision', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    const first = apply(1_000, { op: 'leaseGrant', ttlMs: 5_000 }).result;
    const second = apply(2_000, { op: 'leaseGrant', ttlMs: 10_000 }).result;
    expect(first).toEqual({ ok: true, revision: 0, op: 'leaseGrant', lease: { id: 1, ttlMs: 5_000, expiresAtMs: 6_000 } });
    expect(second).toMatchObject({ ok: true, revision: 0, lease: { id: 2, expiresAtMs: 12_000 } });
  });

  it.each([[0], [999], [24 * 60 * 60 * 1000 + 1], [1.5], ['5000'], [null]])('refuses a ttl of %o with INVALID_ARGUMENT', (ttlMs) => {
    const sm = new StateMachine();
    expect(feeder(sm)(0, { op: 'leaseGrant', ttlMs }).result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    expect(sm.leases.size).toBe(0);
  });

  it('lets ephemeral nodes be created only under an existing lease', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    expect(apply(0, { op: 'create', path: '/e', value: bytes(''), lease: 7 }).result).toMatchObject({ ok: false, code: 'LEASE_NOT_FOUND' });
    apply(0, { op: 'leaseGrant', ttlMs: 5_000 });
    expect(apply(0, { op: 'create', path: '/e', value: bytes(''), lease: 1 }).result).toMatchObject({ ok: true, node: { stat: { lease: 1 } } });
  });

  it('revokes a lease: every node it owns is deleted at one revision, with delete events', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'leaseGrant', ttlMs: 5_000 });
    apply(0, { op: 'create', path: '/members/a', value: bytes('a'), lease: 1, parents: true });
    apply(0, { op: 'create', path: '/locks/x', value: bytes('x'), lease: 1, parents: true });
    apply(0, { op: 'put', path: '/plain', value: bytes('p') });
    const before = sm.revision;
    const { result, events } = apply(0, { op: 'leaseRevoke', lease: 1 });
    expect(result).toEqual({ ok: true, revision: before + 1, op: 'leaseRevoke', leases: [1], deleted: 2 });
    expect(events.map((e) => `${e.kind} ${e.path} @${e.revision}`)).toEqual([`delete /locks/x @${before + 1}`, `delete /members/a @${before + 1}`]);
    expect(sm.namespace.get('/plain')).toMatchObject({ ok: true });
    expect(apply(0, { op: 'leaseRevoke', lease: 1 }).result).toMatchObject({ ok: false, code: 'LEASE_NOT_FOUND' });
    expect(apply(0, { op: 'leaseKeepAlive', lease: 1 }).result).toMatchObject({ ok: false, code: 'LEASE_NOT_FOUND' });
  });

  it('expires only leases still out of time at the expiring entry: a keep-alive that got in first wins', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'leaseGrant', ttlMs: 1_000 }); // 1: expires at 1,000
    apply(0, { op: 'leaseGrant', ttlMs: 1_000 }); // 2: expires at 1,000
    apply(0, { op: 'create', path: '/e1', value: bytes(''), lease: 1 });
    apply(0, { op: 'create', path: '/e2', value: bytes(''), lease: 2 });
    // The leader saw both run out at 1,500 and proposed their expiry, but a keep-alive for lease 2
    // was committed before it.
    apply(1_400, { op: 'leaseKeepAlive', lease: 2 });
    const { result, events } = apply(1_500, { op: 'leaseExpire', leases: [2, 1] });
    expect(result).toMatchObject({ ok: true, op: 'leaseExpire', leases: [1], deleted: 1 });
    expect(events.map((e) => e.path)).toEqual(['/e1']);
    expect(sm.leases.has(2)).toBe(true);
    expect(sm.namespace.get('/e2')).toMatchObject({ ok: true });
  });

  it('expires several leases at one revision', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    for (let i = 1; i <= 3; i++) {
      apply(0, { op: 'leaseGrant', ttlMs: 1_000 });
      apply(0, { op: 'create', path: `/e${i}`, value: bytes(''), lease: i });
    }
    const before = sm.revision;
    const { result, events } = apply(5_000, { op: 'leaseExpire', leases: [3, 1, 2, 1] });
    expect(result).toMatchObject({ ok: true, revision: before + 1, leases: [1, 2, 3], deleted: 3 });
    expect(new Set(events.map((e) => e.revision))).toEqual(new Set([before + 1]));
  });

  it('never lets log time go back: an entry stamped by a slower clock expires nothing early or late', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(10_000, { op: 'leaseGrant', ttlMs: 2_000 }); // expires at 12,000
    apply(5_000, { op: 'leaseKeepAlive', lease: 1 }); // a new leader whose clock is behind
    expect(sm.logTimeMs).toBe(10_000);
    expect(sm.leases.get(1)!.expiresAtMs).toBe(12_000);
    expect(apply(11_000, { op: 'leaseExpire', leases: [1] }).result).toMatchObject({ leases: [] });
  });

  it("refreshes every lease to a full ttl when a new leader takes over, so a failover expires no live client's lease", () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'leaseGrant', ttlMs: 3_000 });
    apply(0, { op: 'leaseGrant', ttlMs: 8_000 });
    // The old leader died at 2,500; the new one takes over at 4,000 and refreshes first.
    expect(apply(4_000, { op: 'leaseRefreshAll' }).result).toMatchObject({ ok: true, op: 'leaseRefreshAll', leases: 2 });
    expect(sm.leases.dump().leases.map((l) => l.expiresAtMs)).toEqual([7_000, 12_000]);
    expect(apply(4_100, { op: 'leaseExpire', leases: [1, 2] }).result).toMatchObject({ leases: [] });
  });

  it.each<[string, unknown]>([
    ['keep-alive with a string id', { op: 'leaseKeepAlive', lease: '1' }],
    ['revoke with no id', { op: 'leaseRevoke' }],
    ['expire with no list', { op: 'leaseExpire', leases: 1 }],
    ['expire with a fractional id', { op: 'leaseExpire', leases: [1.5] }],
    ['an unknown lease op', { op: 'leaseSteal', lease: 1 }],
  ])('refuses %s with INVALID_ARGUMENT and changes nothing', (_, command) => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'leaseGrant', ttlMs: 5_000 });
    apply(0, { op: 'create', path: '/e', value: bytes(''), lease: 1 });
    const before = JSON.stringify(sm.leases.dump());
    expect(apply(1_000_000, command).result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', revision: 1 });
    expect(JSON.stringify(sm.leases.dump())).toBe(before);
    expect(sm.namespace.get('/e')).toMatchObject({ ok: true });
  });
});

describe('the state machine', () => {
  it('applies entries strictly in order: a gap or a repeat is refused loudly', () => {
    const sm = new StateMachine();
    sm.apply({ index: 1, timeMs: 0, command: { op: 'put', path: '/a', value: bytes('') } });
    expect(() => sm.apply({ index: 3, timeMs: 0, command: { op: 'put', path: '/b', value: bytes('') } })).toThrow(/entry 3 applied after 1/);
    expect(() => sm.apply({ index: 1, timeMs: 0, command: { op: 'put', path: '/b', value: bytes('') } })).toThrow(/entry 1 applied after 1/);
  });

  it('ends byte-identical on two members fed the same entries', () => {
    const commands: [number, StateCommand][] = [];
    for (let i = 0; i < 300; i++) {
      const t = i * 100;
      const k = i % 7;
      if (i % 11 === 0) commands.push([t, { op: 'leaseGrant', ttlMs: 1_000 + (i % 5) * 500 }]);
      else if (i % 13 === 0) commands.push([t, { op: 'leaseExpire', leases: [1, 2, 3, 4, 5, 6, 7, 8] }]);
      else if (i % 5 === 0) commands.push([t, { op: 'create', path: `/s/q-`, value: bytes(`${i}`), sequential: true, parents: true }]);
      else if (i % 3 === 0) commands.push([t, { op: 'create', path: `/e${k}`, value: bytes(`${i}`), lease: (i % 8) + 1 }]);
      else commands.push([t, { op: 'put', path: `/p/${k}`, value: bytes(`${i}`) }]);
    }
    const run = () => {
      const sm = new StateMachine();
      const apply = feeder(sm);
      const answers = commands.map(([t, c]) => apply(t, c));
      const dump = sm.namespace.range('/', { limit: 10_000 });
      return JSON.stringify({ answers, dump, leases: sm.leases.dump(), revision: sm.revision }, (_, v) => (v instanceof Uint8Array ? [...v] : v));
    };
    const a = run();
    expect(a.length).toBeGreaterThan(10_000);
    expect(run()).toBe(a);
  });
});
