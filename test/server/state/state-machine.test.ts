/**
 * The state machine with leases: ids and grant times from log time only, ephemeral nodes dying
 * with their lease at one revision, the lease epoch (refresh-all raises it to the new leader's
 * term, never lowers it, and it survives a restart from the store), expiries that end every
 * listed lease without looking at any time unless a newer leader made them stale, the retired
 * keep-alive, entry order, and replay determinism.
 *
 * Must never: read a clock; every time here is an entry's timeMs.
 */

import { describe, expect, it } from 'vitest';
import { StateMachine, type StateCommand, type StateEntry } from '../../../server/state/state-machine.js';
import { imageFromEntries } from '../../../server/state/store-format.js';
import { StoreBacked } from './store-backed.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Feeds commands as consecutive entries at the given log times. */
function feeder(sm: StateMachine) {
  let index = 0;
  return (timeMs: number, command: StateCommand | unknown) => sm.apply({ index: ++index, timeMs, command } satisfies StateEntry);
}

/** Everything a lease command could change, for "changes nothing" checks. */
function leaseState(sm: StateMachine): string {
  return JSON.stringify({ leases: sm.leases.dump(), meta: sm.meta, nodes: sm.namespace.range('/', { limit: 1_000 }) }, (_, v) => (v instanceof Uint8Array ? [...v] : v));
}

describe('leases', () => {
  it('grants ids 1, 2, 3… from replicated state, recording the log time of the grant, without taking a revision', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    const first = apply(1_000, { op: 'leaseGrant', ttlMs: 5_000 }).result;
    const second = apply(2_000, { op: 'leaseGrant', ttlMs: 10_000 }).result;
    expect(first).toEqual({ ok: true, revision: 0, op: 'leaseGrant', lease: { id: 1, ttlMs: 5_000, grantedAtMs: 1_000 }, existing: false });
    expect(second).toEqual({ ok: true, revision: 0, op: 'leaseGrant', lease: { id: 2, ttlMs: 10_000, grantedAtMs: 2_000 }, existing: false });
    expect(sm.leases.dump()).toEqual({ nextId: 3, epoch: 0, leases: [{ id: 1, ttlMs: 5_000, grantedAtMs: 1_000 }, { id: 2, ttlMs: 10_000, grantedAtMs: 2_000 }] });
  });

  it('grants a lease under the id its client chose; a grant retried with that id answers the same lease (existing), and the counter steps over it', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    expect(apply(1_000, { op: 'leaseGrant', ttlMs: 5_000, lease: 2 }).result).toMatchObject({ ok: true, lease: { id: 2, ttlMs: 5_000, grantedAtMs: 1_000 }, existing: false });
    expect(apply(2_000, { op: 'leaseGrant', ttlMs: 5_000, lease: 2 }).result).toMatchObject({ ok: true, lease: { id: 2, grantedAtMs: 1_000 }, existing: true });
    expect(apply(3_000, { op: 'leaseGrant', ttlMs: 5_000 }).result).toMatchObject({ ok: true, lease: { id: 1 } });
    expect(apply(3_000, { op: 'leaseGrant', ttlMs: 5_000 }).result).toMatchObject({ ok: true, lease: { id: 3 } });
    expect(sm.leases.ids()).toEqual([1, 2, 3]);
  });

  it('refuses a grant past the proposer\'s bound on leases (RESOURCE_EXHAUSTED, naming the limit), and changes nothing', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'leaseGrant', ttlMs: 5_000, leasesMax: 2 });
    apply(0, { op: 'leaseGrant', ttlMs: 5_000, leasesMax: 2 });
    expect(apply(0, { op: 'leaseGrant', ttlMs: 5_000, leasesMax: 2 }).result).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED', limit: 'leasesMax' });
    expect(sm.leases.size).toBe(2);
    // A retried grant of a lease that exists is no new lease: answered even at the bound.
    expect(apply(0, { op: 'leaseGrant', ttlMs: 5_000, lease: 1, leasesMax: 2 }).result).toMatchObject({ ok: true, existing: true });
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
    // An expiry the leader proposed before it saw the revoke ends nothing more.
    expect(apply(0, { op: 'leaseExpire', leases: [1], term: 0 })).toEqual({ result: { ok: true, revision: before + 1, op: 'leaseExpire', leases: [], deleted: 0 }, events: [] });
  });

  it('expires every listed lease that still exists, whatever the log time: the deadline is the leader’s, not the log’s', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'leaseGrant', ttlMs: 60_000 }); // 1
    apply(0, { op: 'leaseGrant', ttlMs: 60_000 }); // 2
    apply(0, { op: 'leaseGrant', ttlMs: 60_000 }); // 3: revoked below
    apply(0, { op: 'create', path: '/e1', value: bytes(''), lease: 1 });
    apply(0, { op: 'create', path: '/e2', value: bytes(''), lease: 2 });
    apply(0, { op: 'leaseRevoke', lease: 3 });
    const before = sm.revision;
    // Log time is 1 ms past the grants, far inside every ttl; lease 9 was never granted.
    const { result, events } = apply(1, { op: 'leaseExpire', leases: [9, 2, 3, 1, 2], term: 0 });
    expect(result).toEqual({ ok: true, revision: before + 1, op: 'leaseExpire', leases: [1, 2], deleted: 2 });
    expect(events.map((e) => `${e.kind} ${e.path} @${e.revision}`)).toEqual([`delete /e1 @${before + 1}`, `delete /e2 @${before + 1}`]);
    expect(sm.leases.size).toBe(0);
  });

  it('expires a lease without nodes without taking a revision', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'put', path: '/plain', value: bytes('') });
    apply(0, { op: 'leaseGrant', ttlMs: 5_000 });
    expect(apply(0, { op: 'leaseExpire', leases: [1], term: 0 })).toEqual({ result: { ok: true, revision: 1, op: 'leaseExpire', leases: [1], deleted: 0 }, events: [] });
    expect(sm.leases.has(1)).toBe(false);
  });

  it('expires several leases at one revision', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    for (let i = 1; i <= 3; i++) {
      apply(0, { op: 'leaseGrant', ttlMs: 1_000 });
      apply(0, { op: 'create', path: `/e${i}`, value: bytes(''), lease: i });
    }
    const before = sm.revision;
    const { result, events } = apply(5_000, { op: 'leaseExpire', leases: [3, 1, 2, 1], term: 0 });
    expect(result).toEqual({ ok: true, revision: before + 1, op: 'leaseExpire', leases: [1, 2, 3], deleted: 3 });
    expect(new Set(events.map((e) => e.revision))).toEqual(new Set([before + 1]));
  });

  it('refuses a stale expiry (a term below the lease epoch): it ends nothing and takes no revision; one at the epoch ends the lease and its nodes at one revision', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'leaseGrant', ttlMs: 1_000 });
    apply(0, { op: 'create', path: '/members/a', value: bytes('a'), lease: 1, parents: true });
    apply(0, { op: 'create', path: '/locks/x', value: bytes('x'), lease: 1, parents: true });
    // The leader of term 2 stalled; the leader of term 3 took over and refreshed every lease. The
    // old leader's expiry, proposed before it learnt of term 3, is committed after the refresh.
    expect(apply(100, { op: 'leaseRefreshAll', term: 3 })).toEqual({ result: { ok: true, revision: 2, op: 'leaseRefreshAll', leases: 1, epoch: 3 }, events: [] });
    const before = leaseState(sm);
    expect(apply(60_000, { op: 'leaseExpire', leases: [1], term: 2 })).toEqual({ result: { ok: true, revision: 2, op: 'leaseExpire', leases: [], deleted: 0, stale: true }, events: [] });
    expect(sm.revision).toBe(2);
    expect(sm.leases.has(1)).toBe(true);
    expect(sm.namespace.get('/members/a')).toMatchObject({ ok: true });
    // Nothing but the log time and the applied index moved.
    expect(JSON.parse(leaseState(sm))).toEqual({ ...JSON.parse(before), meta: { ...JSON.parse(before).meta, appliedIndex: sm.appliedIndex, logTimeMs: 60_000 } });

    // The new leader's own expiry, in its term, does end it.
    const { result, events } = apply(60_001, { op: 'leaseExpire', leases: [1], term: 3 });
    expect(result).toEqual({ ok: true, revision: 3, op: 'leaseExpire', leases: [1], deleted: 2 });
    expect(events.map((e) => `${e.kind} ${e.path} @${e.revision}`)).toEqual(['delete /locks/x @3', 'delete /members/a @3']);
    expect(sm.leases.has(1)).toBe(false);
    expect(sm.leases.epoch).toBe(3);
  });

  it('takes an expiry from a term above the epoch (a leader whose refresh is not applied yet counts)', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'leaseRefreshAll', term: 2 });
    apply(0, { op: 'leaseGrant', ttlMs: 1_000 });
    expect(apply(0, { op: 'leaseExpire', leases: [1], term: 5 }).result).toEqual({ ok: true, revision: 0, op: 'leaseExpire', leases: [1], deleted: 0 });
    // An expiry does not move the epoch: only a refresh does.
    expect(sm.leases.epoch).toBe(2);
  });

  it('refreshes to the new leader’s term and never lowers the epoch; a refresh changes no lease and takes no revision', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(1_000, { op: 'leaseGrant', ttlMs: 3_000 });
    apply(2_000, { op: 'leaseGrant', ttlMs: 8_000 });
    const leases = sm.leases.dump().leases;
    expect(sm.leases.epoch).toBe(0);
    expect(apply(4_000, { op: 'leaseRefreshAll', term: 5 }).result).toEqual({ ok: true, revision: 0, op: 'leaseRefreshAll', leases: 2, epoch: 5 });
    // A refresh from an older leader, committed late, keeps the newer epoch and says so.
    expect(apply(4_100, { op: 'leaseRefreshAll', term: 3 }).result).toEqual({ ok: true, revision: 0, op: 'leaseRefreshAll', leases: 2, epoch: 5 });
    expect(apply(4_200, { op: 'leaseRefreshAll', term: 5 }).result).toEqual({ ok: true, revision: 0, op: 'leaseRefreshAll', leases: 2, epoch: 5 });
    expect(sm.leases.epoch).toBe(5);
    expect(sm.meta.leaseEpoch).toBe(5);
    // So term 4's expiry is still stale after term 3's refresh.
    expect(apply(4_300, { op: 'leaseExpire', leases: [1, 2], term: 4 }).result).toMatchObject({ leases: [], stale: true });
    expect(apply(4_400, { op: 'leaseRefreshAll', term: 6 }).result).toEqual({ ok: true, revision: 0, op: 'leaseRefreshAll', leases: 2, epoch: 6 });
    // No grant time moved: a full ttl is the leader's business, not the log's.
    expect(sm.leases.dump()).toEqual({ nextId: 3, epoch: 6, leases });
  });

  it('records the log time at a grant: an entry stamped by a slower clock grants at the later log time', () => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(10_000, { op: 'leaseGrant', ttlMs: 2_000 });
    expect(apply(5_000, { op: 'leaseGrant', ttlMs: 2_000 }).result).toMatchObject({ lease: { id: 2, grantedAtMs: 10_000 } }); // a new leader whose clock is behind
    expect(apply(Number.NaN, { op: 'leaseGrant', ttlMs: 2_000 }).result).toMatchObject({ lease: { id: 3, grantedAtMs: 10_000 } });
    expect(sm.logTimeMs).toBe(10_000);
  });

  it('keeps the lease epoch across a restart from the store: StateMachine.restore goes on with it', () => {
    const backed = new StoreBacked({});
    let index = 0;
    const apply = (command: StateCommand): void => void backed.apply({ index: ++index, timeMs: 1_000 * index, command });
    apply({ op: 'leaseGrant', ttlMs: 5_000 });
    apply({ op: 'create', path: '/e', value: bytes(''), lease: 1 });
    // The refresh changes no lease: the epoch reaches the store only in the meta record.
    apply({ op: 'leaseRefreshAll', term: 7 });
    const restored = StateMachine.restore(imageFromEntries(backed.kv.entries())!);
    expect(restored.leases.epoch).toBe(7);
    expect(restored.meta).toEqual(backed.sm.meta);
    expect(restored.leases.dump()).toEqual({ nextId: 2, epoch: 7, leases: [{ id: 1, ttlMs: 5_000, grantedAtMs: 1_000 }] });
    const next = (command: StateCommand) => restored.apply({ index: restored.appliedIndex + 1, timeMs: 10_000, command });
    expect(next({ op: 'leaseRefreshAll', term: 6 }).result).toMatchObject({ epoch: 7 });
    expect(next({ op: 'leaseExpire', leases: [1], term: 6 }).result).toMatchObject({ leases: [], deleted: 0, stale: true });
    expect(restored.leases.has(1)).toBe(true);
    expect(next({ op: 'leaseExpire', leases: [1], term: 7 }).result).toMatchObject({ leases: [1], deleted: 1 });
  });

  it.each<[string, unknown]>([
    ['the retired keep-alive (an unknown op now: keep-alives go to the leader)', { op: 'leaseKeepAlive', lease: 1 }],
    ['revoke with no id', { op: 'leaseRevoke' }],
    ['expire with no list', { op: 'leaseExpire', leases: 1, term: 2 }],
    ['expire with a fractional id', { op: 'leaseExpire', leases: [1.5], term: 2 }],
    ['expire with no term (the old shape)', { op: 'leaseExpire', leases: [1] }],
    ['expire with a fractional term', { op: 'leaseExpire', leases: [1], term: 2.5 }],
    ['expire with a string term', { op: 'leaseExpire', leases: [1], term: '2' }],
    ['expire with a term that is not a number', { op: 'leaseExpire', leases: [1], term: Number.NaN }],
    ['refresh-all with no term (the old shape)', { op: 'leaseRefreshAll' }],
    ['refresh-all with a fractional term', { op: 'leaseRefreshAll', term: 9.5 }],
    ['refresh-all with a string term', { op: 'leaseRefreshAll', term: '9' }],
    ['refresh-all with an infinite term', { op: 'leaseRefreshAll', term: Number.POSITIVE_INFINITY }],
    ['an unknown lease op', { op: 'leaseSteal', lease: 1 }],
  ])('refuses %s with INVALID_ARGUMENT and changes nothing', (_, command) => {
    const sm = new StateMachine();
    const apply = feeder(sm);
    apply(0, { op: 'leaseGrant', ttlMs: 5_000 });
    apply(0, { op: 'create', path: '/e', value: bytes(''), lease: 1 });
    apply(0, { op: 'leaseRefreshAll', term: 2 });
    const before = JSON.parse(leaseState(sm));
    expect(apply(1_000_000, command).result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', revision: 1 });
    expect(JSON.parse(leaseState(sm))).toEqual({ ...before, meta: { ...before.meta, appliedIndex: 4, logTimeMs: 1_000_000 } });
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
      else if (i % 13 === 0) commands.push([t, { op: 'leaseExpire', leases: [1, 2, 3, 4, 5, 6, 7, 8], term: i % 5 }]); // stale or not: refreshes reach terms 0–3
      else if (i % 19 === 0) commands.push([t, { op: 'leaseRefreshAll', term: i % 4 }]);
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
