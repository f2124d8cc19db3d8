/**
 * Exactly-once writes through client sessions: a retried (clientId, seq) answers its recorded
 * result and applies nothing; pipelined seqs may arrive out of order; acknowledged answers are
 * forgotten; sessions expire by log time, least recently active first; memory stays bounded.
 *
 * Must never: read a clock; every time here is an entry's timeMs.
 */

import { describe, expect, it } from 'vitest';
import { StateMachine, type StateMachineOptions } from '../../../server/state/state-machine.js';
import { RESULTS_PER_SESSION_MAX, type ClientStamp } from '../../../server/state/sessions.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function machine(options: StateMachineOptions = {}) {
  const sm = new StateMachine(options);
  let index = 0;
  const apply = (timeMs: number, command: unknown, client?: ClientStamp) =>
    sm.apply({ index: ++index, timeMs, command, ...(client === undefined ? {} : { client }) });
  const register = (timeMs = 0): number => {
    const { result } = apply(timeMs, { op: 'registerClient' });
    if (!result.ok || result.op !== 'registerClient') throw new Error('registration failed');
    return result.clientId;
  };
  return { sm, apply, register };
}

const stamp = (id: number, seq: number, ackedThrough = 0): ClientStamp => ({ id, seq, ackedThrough });

describe('client sessions', () => {
  it('registers clients with ids from replicated state: 1, 2, 3', () => {
    const { register } = machine();
    expect([register(), register(), register()]).toEqual([1, 2, 3]);
  });

  it('applies a retried sequential create once and answers the retry with the same created path', () => {
    const { sm, apply, register } = machine();
    const client = register();
    apply(0, { op: 'create', path: '/q', value: bytes('') });
    const create = { op: 'create', path: '/q/job-', value: bytes('work'), sequential: true };
    const first = apply(0, create, stamp(client, 1));
    const revision = sm.revision;
    const retry = apply(10, create, stamp(client, 1));
    expect(first.result).toMatchObject({ ok: true, path: '/q/job-0000000000' });
    expect(retry.result).toEqual(first.result);
    expect(retry.events).toEqual([]);
    expect(sm.revision).toBe(revision);
    expect(sm.namespace.childrenOf('/q')).toMatchObject({ ok: true, names: ['job-0000000000'] });
  });

  it('answers a retry of a refused write with the same refusal, even after the state changed', () => {
    const { apply, register } = machine();
    const client = register();
    apply(0, { op: 'put', path: '/x', value: bytes('') });
    const create = { op: 'create', path: '/x', value: bytes('mine') };
    expect(apply(0, create, stamp(client, 1)).result).toMatchObject({ ok: false, code: 'NODE_EXISTS' });
    apply(0, { op: 'delete', path: '/x' });
    // Were it applied again now it would succeed: the retry must tell what actually happened.
    expect(apply(0, create, stamp(client, 1)).result).toMatchObject({ ok: false, code: 'NODE_EXISTS' });
  });

  it('takes pipelined writes in any order, each exactly once', () => {
    const { sm, apply, register } = machine();
    const client = register();
    const put = (n: number) => ({ op: 'put', path: `/p/${n}`, value: bytes(`${n}`) });
    const r2 = apply(0, put(2), stamp(client, 2)).result;
    const r1 = apply(0, put(1), stamp(client, 1)).result;
    const revision = sm.revision;
    expect(apply(0, put(2), stamp(client, 2)).result).toEqual(r2);
    expect(apply(0, put(1), stamp(client, 1)).result).toEqual(r1);
    expect(sm.revision).toBe(revision);
  });

  it('forgets answers the client acknowledged, and refuses a retry of one', () => {
    const { sm, apply, register } = machine();
    const client = register();
    for (let seq = 1; seq <= 5; seq++) apply(0, { op: 'put', path: '/k', value: bytes(`${seq}`) }, stamp(client, seq, seq - 1));
    expect(sm.sessions.dump().sessions[0]).toMatchObject({ ackedThrough: 4, seqs: [5] });
    expect(apply(0, { op: 'put', path: '/k', value: bytes('3') }, stamp(client, 3, 4)).result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
  });

  it('keeps at most RESULTS_PER_SESSION_MAX answers for a client that never acknowledges', () => {
    const { sm, apply, register } = machine();
    const client = register();
    for (let seq = 1; seq <= RESULTS_PER_SESSION_MAX + 10; seq++) apply(0, { op: 'put', path: '/k', value: bytes('') }, stamp(client, seq));
    const seqs = sm.sessions.dump().sessions[0]!.seqs;
    expect(seqs.length).toBe(RESULTS_PER_SESSION_MAX);
    expect(seqs[0]).toBe(11);
  });

  it('expires a session idle for its ttl in log time; a write or keep-alive before then keeps it', () => {
    const { apply, register } = machine({ sessionTtlMs: 10_000 });
    const idle = register(0);
    const busy = register(0);
    apply(9_000, { op: 'put', path: '/a', value: bytes('') }, stamp(busy, 1));
    apply(15_000, { op: 'sessionKeepAlive', clientId: busy });
    const late = apply(20_000, { op: 'put', path: '/b', value: bytes('') }, stamp(idle, 1));
    expect(late.result).toMatchObject({ ok: false, code: 'SESSION_EXPIRED' });
    expect(apply(20_000, { op: 'put', path: '/b', value: bytes('') }, stamp(busy, 2, 1)).result).toMatchObject({ ok: true });
    expect(apply(40_000, { op: 'sessionKeepAlive', clientId: busy }).result).toMatchObject({ ok: false, code: 'SESSION_EXPIRED' });
  });

  it('evicts the least recently active session when there are too many', () => {
    const { sm, apply, register } = machine({ sessionsMax: 3 });
    const [a, b, c] = [register(), register(), register()];
    apply(0, { op: 'sessionKeepAlive', clientId: a }); // b is now the least recently active
    const d = register();
    expect(sm.sessions.dump().sessions.map((s) => s.id)).toEqual([c, a, d]);
    expect(apply(0, { op: 'put', path: '/x', value: bytes('') }, stamp(b, 1)).result).toMatchObject({ ok: false, code: 'SESSION_EXPIRED' });
  });

  it.each<[string, unknown]>([
    ['seq 0', { id: 1, seq: 0, ackedThrough: 0 }],
    ['seq not above ackedThrough', { id: 1, seq: 3, ackedThrough: 3 }],
    ['a string id', { id: '1', seq: 1, ackedThrough: 0 }],
    ['negative ackedThrough', { id: 1, seq: 1, ackedThrough: -1 }],
    ['no stamp fields', {}],
  ])('refuses a malformed client stamp (%s) and applies nothing', (_, client) => {
    const { sm, register } = machine();
    register();
    const { result } = sm.apply({ index: 2, timeMs: 0, command: { op: 'put', path: '/x', value: bytes('') }, client: client as ClientStamp });
    expect(result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', revision: 0 });
    expect(sm.namespace.get('/x')).toMatchObject({ ok: false, code: 'NO_NODE' });
  });
});
