/**
 * Exactly-once writes through client sessions: a retried (clientId, seq) answers its recorded
 * result and applies nothing; pipelined seqs may arrive out of order; acknowledged answers are
 * forgotten; sessions expire by log time, least recently active first; memory stays bounded.
 * Sessions are owned (a stamp without the session's secret changes nothing), a register retried
 * with its nonce answers the same session, a full table refuses new sessions (never evicts a
 * live one), and a write whose answer was forgotten is refused OUTCOME_UNKNOWN, never applied.
 *
 * Must never: read a clock; every time here is an entry's timeMs.
 */

import { describe, expect, it } from 'vitest';
import { StateMachine, type StateMachineOptions } from '../../../server/state/state-machine.js';
import { recordable, RESULTS_PER_SESSION_MAX, type ClientStamp } from '../../../server/state/sessions.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function machine(options: StateMachineOptions = {}) {
  const sm = new StateMachine(options);
  let index = 0;
  const apply = (timeMs: number, command: unknown, client?: ClientStamp) =>
    sm.apply({ index: ++index, timeMs, command, ...(client === undefined ? {} : { client }) });
  const register = (timeMs = 0): number => {
    const { result } = apply(timeMs, { op: 'registerClient', secret: secretOf(index + 1) });
    if (!result.ok || result.op !== 'registerClient') throw new Error('registration failed');
    secrets.set(result.clientId, result.secret);
    return result.clientId;
  };
  return { sm, apply, register };
}

/** The secret each registered client was given (a member draws it at random; here, from the entry's index). */
const secrets = new Map<number, string>();
const secretOf = (n: number): string => n.toString(16).padStart(32, '0');
const stamp = (id: number, seq: number, ackedThrough = 0): ClientStamp => ({ id, seq, ackedThrough, secret: secrets.get(id) ?? secretOf(0) });
const keepAlive = (clientId: number) => ({ op: 'sessionKeepAlive', clientId, secret: secrets.get(clientId) });

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
    expect(retry.result).toEqual(recordable(first.result));
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
    expect(apply(0, put(2), stamp(client, 2)).result).toEqual(recordable(r2));
    expect(apply(0, put(1), stamp(client, 1)).result).toEqual(recordable(r1));
    expect(sm.revision).toBe(revision);
  });

  it('forgets answers the client acknowledged, and refuses a retry of one as OUTCOME_UNKNOWN (not applied)', () => {
    const { sm, apply, register } = machine();
    const client = register();
    for (let seq = 1; seq <= 5; seq++) apply(0, { op: 'put', path: '/k', value: bytes(`${seq}`) }, stamp(client, seq, seq - 1));
    expect(sm.sessions.dump().sessions[0]).toMatchObject({ ackedThrough: 4, seqs: [5] });
    const revision = sm.revision;
    // A late duplicate of seq 3 (its stamp from before the acknowledgement).
    expect(apply(0, { op: 'put', path: '/k', value: bytes('3') }, stamp(client, 3, 2)).result).toMatchObject({ ok: false, code: 'OUTCOME_UNKNOWN' });
    expect(sm.revision).toBe(revision);
  });

  it('keeps at most RESULTS_PER_SESSION_MAX answers for a client that never acknowledges; a retry past the bound is OUTCOME_UNKNOWN, never a second apply', () => {
    const { sm, apply, register } = machine();
    const client = register();
    apply(0, { op: 'create', path: '/q', value: bytes('') });
    const create = { op: 'create', path: '/q/n-', value: bytes(''), sequential: true };
    for (let seq = 1; seq <= RESULTS_PER_SESSION_MAX + 10; seq++) apply(0, create, stamp(client, seq));
    const session = sm.sessions.dump().sessions[0]!;
    expect(session.seqs.length).toBe(RESULTS_PER_SESSION_MAX);
    expect(session.seqs[0]).toBe(11);
    expect(session.forgottenThrough).toBe(10);
    const revision = sm.revision;
    // The first write's answer is gone: its retry must not create a second node.
    expect(apply(0, create, stamp(client, 1)).result).toMatchObject({ ok: false, code: 'OUTCOME_UNKNOWN' });
    // So is any seq at or below the forgotten one, even one never seen (it may be a retry).
    expect(apply(0, create, stamp(client, 10)).result).toMatchObject({ ok: false, code: 'OUTCOME_UNKNOWN' });
    expect(sm.revision).toBe(revision);
    expect(sm.namespace.get('/q')).toMatchObject({ ok: true, node: { stat: { numChildren: RESULTS_PER_SESSION_MAX + 10 } } });
    // Answers still held are still answered.
    expect(apply(0, create, stamp(client, 11)).result).toMatchObject({ ok: true, path: '/q/n-0000000010' });
    expect(sm.revision).toBe(revision);
  });

  it('records answers without values or paths the client sent: a retry answers the stats of the first answer', () => {
    const { apply, register } = machine();
    const client = register();
    apply(0, { op: 'put', path: '/v', value: bytes('old') });
    const put = { op: 'put', path: '/v', value: bytes('new') };
    const first = apply(0, put, stamp(client, 1)).result as unknown as Record<string, { path: string; value?: Uint8Array; stat: unknown }>;
    expect(first['prevNode']!.value).toEqual(bytes('old'));
    const retry = apply(0, put, stamp(client, 1)).result as unknown as Record<string, { path: string; value?: Uint8Array; stat: unknown }>;
    expect(retry['node']).toEqual({ stat: first['node']!.stat });
    expect(retry['prevNode']).toEqual({ stat: first['prevNode']!.stat });
  });

  it('refuses a stamp without the session secret, and changes nothing: no apply, no seq burnt, no answer given away', () => {
    const { sm, apply, register } = machine();
    const owner = register();
    const put = (v: string) => ({ op: 'put', path: '/o', value: bytes(v) });
    const first = apply(0, put('1'), stamp(owner, 1)).result;
    const revision = sm.revision;
    const forged = (seq: number, ackedThrough = 0): ClientStamp => ({ id: owner, seq, ackedThrough, secret: secretOf(999) });
    // Its recorded answer is not handed over...
    expect(apply(0, put('x'), forged(1)).result).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' });
    // ...its next seq is not burnt, and its acknowledgements are not moved.
    expect(apply(0, put('x'), forged(2, 1)).result).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' });
    expect(sm.revision).toBe(revision);
    expect(sm.sessions.dump().sessions[0]).toMatchObject({ ackedThrough: 0, seqs: [1] });
    expect(apply(0, put('1'), stamp(owner, 1)).result).toEqual(recordable(first));
    expect(apply(0, put('2'), stamp(owner, 2, 1)).result).toMatchObject({ ok: true });
    expect(apply(0, { op: 'sessionKeepAlive', clientId: owner, secret: secretOf(999) }).result).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' });
  });

  it('answers a register retried with its nonce with the same session and secret', () => {
    const { sm, apply } = machine();
    const first = apply(0, { op: 'registerClient', secret: secretOf(1), nonce: 'nonce-of-client-a' }).result;
    const retry = apply(0, { op: 'registerClient', secret: secretOf(2), nonce: 'nonce-of-client-a' }).result;
    const other = apply(0, { op: 'registerClient', secret: secretOf(3), nonce: 'nonce-of-client-b' }).result;
    expect(first).toMatchObject({ ok: true, clientId: 1, secret: secretOf(1), existing: false });
    expect(retry).toMatchObject({ ok: true, clientId: 1, secret: secretOf(1), existing: true });
    expect(other).toMatchObject({ ok: true, clientId: 2, secret: secretOf(3) });
    expect(sm.sessions.size).toBe(2);
  });

  it('expires a session idle for its ttl in log time; a write or keep-alive before then keeps it', () => {
    const { apply, register } = machine({ sessionTtlMs: 10_000 });
    const idle = register(0);
    const busy = register(0);
    apply(9_000, { op: 'put', path: '/a', value: bytes('') }, stamp(busy, 1));
    apply(15_000, keepAlive(busy));
    const late = apply(20_000, { op: 'put', path: '/b', value: bytes('') }, stamp(idle, 1));
    expect(late.result).toMatchObject({ ok: false, code: 'SESSION_EXPIRED' });
    expect(apply(20_000, { op: 'put', path: '/b', value: bytes('') }, stamp(busy, 2, 1)).result).toMatchObject({ ok: true });
    expect(apply(40_000, keepAlive(busy)).result).toMatchObject({ ok: false, code: 'SESSION_EXPIRED' });
  });

  it('refuses a new session when the table is full (the proposer\'s bound, or the table\'s), never evicting a live one', () => {
    const { sm, apply, register } = machine({ sessionsMax: 3 });
    const [a, b, c] = [register(), register(), register()];
    expect(apply(0, { op: 'registerClient', secret: secretOf(77) }).result).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED', limit: 'sessionsMax' });
    expect(sm.sessions.dump().sessions.map((s) => s.id)).toEqual([a, b, c]);
    for (const id of [a, b, c]) expect(apply(0, { op: 'put', path: '/x', value: bytes('') }, stamp(id, 1)).result).toMatchObject({ ok: true });
    // A proposer with a lower bound of its own is heeded too (the bound travels in the entry).
    const small = machine({ sessionsMax: 100 });
    small.register();
    expect(small.apply(0, { op: 'registerClient', secret: secretOf(5), sessionsMax: 1 }).result).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED' });
    // Sessions that expire make room.
    expect(apply(70_000, { op: 'registerClient', secret: secretOf(78) }).result).toMatchObject({ ok: true });
  });

  it.each<[string, unknown]>([
    ['seq 0', { id: 1, seq: 0, ackedThrough: 0, secret: secretOf(1) }],
    ['seq not above ackedThrough', { id: 1, seq: 3, ackedThrough: 3, secret: secretOf(1) }],
    ['a string id', { id: '1', seq: 1, ackedThrough: 0, secret: secretOf(1) }],
    ['negative ackedThrough', { id: 1, seq: 1, ackedThrough: -1, secret: secretOf(1) }],
    ['no secret', { id: 1, seq: 1, ackedThrough: 0 }],
    ['no stamp fields', {}],
  ])('refuses a malformed client stamp (%s) and applies nothing', (_, client) => {
    const { sm, register } = machine();
    register();
    const { result } = sm.apply({ index: 2, timeMs: 0, command: { op: 'put', path: '/x', value: bytes('') }, client: client as ClientStamp });
    expect(result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', revision: 0 });
    expect(sm.namespace.get('/x')).toMatchObject({ ok: false, code: 'NO_NODE' });
  });
});
