/**
 * The client core's decisions, on a fake clock against scripted fake members: when it retries,
 * where it goes, how long it waits, and what it tells the caller — without sleeps or sockets.
 */

import { describe, expect, it } from 'vitest';
import { backoffMs, DEFAULT_BACKOFF } from '../../client/backoff.js';
import { WardenClient } from '../../client/client.js';
import { WINDOW, WriteSession } from '../../client/exactly-once.js';
import { WardenError } from '../../shared/errors.js';
import { drive, fakeCluster, FakeClock, FakeMember, flush, okBehaviour, type Frame } from './fakes.js';

function setup(behaviours: ((frame: Frame, member: FakeMember) => Frame | null)[], options: { attemptTimeoutMs?: number; timeoutMs?: number } = {}) {
  const clock = new FakeClock();
  const members = behaviours.map((b, i) => new FakeMember(`ws://m${i + 1}`, b));
  const client = new WardenClient({ endpoints: members.map((m) => m.url), clock, random: () => 0, attemptTimeoutMs: options.attemptTimeoutMs ?? 1_000, timeoutMs: options.timeoutMs ?? 10_000 }, fakeCluster(members));
  return { clock, members, client };
}


const types = (member: FakeMember, type: string) => member.received.filter((f) => f['type'] === type);

describe('backoff', () => {
  it('stays within [step/2, step], doubles per attempt and stops at the cap', () => {
    for (const random of [() => 0, () => 0.5, () => 0.999999]) {
      for (let attempt = 0; attempt < 40; attempt++) {
        const step = Math.min(DEFAULT_BACKOFF.capMs, DEFAULT_BACKOFF.baseMs * 2 ** attempt);
        const wait = backoffMs(DEFAULT_BACKOFF, attempt, random);
        expect(wait).toBeGreaterThanOrEqual(step / 2);
        expect(wait).toBeLessThanOrEqual(step);
      }
    }
    expect(backoffMs(DEFAULT_BACKOFF, 1_000, () => 1)).toBe(DEFAULT_BACKOFF.capMs);
  });
});

describe('exactly-once session', () => {
  it('acknowledges only the contiguous prefix of done seqs, whatever order answers come in', async () => {
    const session = new WriteSession({ clientId: 7, secret: 'f'.repeat(32) });
    const seqs = [await session.begin(), await session.begin(), await session.begin(), await session.begin()];
    expect(seqs).toEqual([1, 2, 3, 4]);
    session.done(3);
    session.done(2);
    expect(session.ackedThrough).toBe(0); // 1 still waits
    expect(session.stamp(5).ackedThrough).toBe(0);
    session.done(1);
    expect(session.ackedThrough).toBe(3);
    session.done(4);
    expect(session.ackedThrough).toBe(4);
  });

  it('opens no seq more than WINDOW past the acknowledged prefix', async () => {
    const session = new WriteSession({ clientId: 1, secret: '0'.repeat(32) });
    for (let i = 0; i < WINDOW; i++) await session.begin();
    let opened = false;
    const next = session.begin().then((seq) => {
      opened = true;
      return seq;
    });
    await flush();
    expect(opened).toBe(false);
    session.done(2); // not the lowest: the prefix does not move
    await flush();
    expect(opened).toBe(false);
    session.done(1);
    expect(await next).toBe(WINDOW + 1);
  });
});

describe('reads', () => {
  it('are retried on another member when theirs closes before answering', async () => {
    const { clock, members, client } = setup([() => null, okBehaviour()]);
    const read = client.get('/a');
    await clock.advance(1);
    expect(types(members[0]!, 'get')).toHaveLength(1);
    members[0]!.kill();
    const node = await drive(clock, read);
    expect(node?.path).toBe('/a');
    expect(types(members[1]!, 'get')).toHaveLength(1);
  });

  it('leave a frozen member after the attempt deadline and get their answer elsewhere', async () => {
    const { clock, members, client } = setup([okBehaviour(), okBehaviour()], { attemptTimeoutMs: 1_000 });
    members[0]!.frozen = false;
    await drive(clock, client.status().catch(() => null)); // connected to m1
    members[0]!.frozen = true;
    const started = clock.now();
    const read = client.get('/a');
    const node = await drive(clock, read);
    expect(node?.path).toBe('/a');
    // Left after the attempt deadline (1 s), not the call's (10 s), and not before it.
    expect(clock.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(clock.now() - started).toBeLessThan(2_000);
  });

  it('carry the highest revision seen as minRevision when serializable', async () => {
    const { clock, members, client } = setup([okBehaviour()]);
    await drive(clock, client.put('/a', 'x'));
    await drive(clock, client.put('/a', 'y'));
    const seen = client.revision;
    expect(seen).toBeGreaterThan(0);
    await drive(clock, client.get('/a', { consistency: 'serializable' }));
    const get = types(members[0]!, 'get').at(-1)!;
    expect(get['consistency']).toBe('serializable');
    expect(get['minRevision']).toBe(seen);
  });

  it('go to the leader a member names with NOT_LEADER, and stop at a final error', async () => {
    const notLeader = (frame: Frame): Frame => (frame['type'] === 'register' ? okBehaviour()(frame, null as never)! : { ok: false, error: { code: 'NOT_LEADER', message: 'no', outcome: 'retry', leader: { name: 'n3', url: 'ws://m3' } } });
    const exists = (): Frame => ({ ok: false, error: { code: 'NODE_EXISTS', message: '/a already exists', outcome: 'final' } });
    const { clock, members, client } = setup([notLeader, okBehaviour(), exists]);
    const error = await drive(clock, client.create('/a').catch((e: unknown) => e));
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe('NODE_EXISTS');
    expect((error as WardenError).retryable).toBe(false);
    expect(types(members[1]!, 'create')).toHaveLength(0); // straight to the named leader
    expect(types(members[2]!, 'create')).toHaveLength(1); // and not retried after a final answer
  });

  it('back off between dials when no member is up, and fail retryable at the deadline', async () => {
    const { clock, members, client } = setup([okBehaviour(), okBehaviour()], { timeoutMs: 5_000 });
    for (const m of members) m.down = true;
    const error = await drive(clock, client.get('/a').catch((e: unknown) => e), 6_000);
    expect((error as WardenError).code).toBe('UNAVAILABLE');
    expect((error as WardenError).retryable).toBe(true);
    const dials = members[0]!.sockets.length + members[1]!.sockets.length;
    // Backoff doubles to a 1 s cap: a handful of dials in 5 s, never a tight loop.
    expect(dials).toBeGreaterThan(3);
    expect(dials).toBeLessThan(20);
  });

  it('give up at the deadline with the member\'s own refusal, its limit named, when every try was refused RESOURCE_EXHAUSTED', async () => {
    const full = { name: 'leasesMax', flag: '--max-leases', value: 1 };
    const refuse = (): Frame => ({ ok: false, revision: 1, error: { code: 'RESOURCE_EXHAUSTED', message: 'the lease table is full', outcome: 'retry', limit: full } });
    const { clock, members, client } = setup([refuse, refuse], { timeoutMs: 3_000 });
    const read = await drive(clock, client.leases.list().catch((e: unknown) => e), 4_000);
    expect(read).toBeInstanceOf(WardenError);
    expect((read as WardenError).code).toBe('RESOURCE_EXHAUSTED');
    expect((read as WardenError).details.limit).toEqual(full);
    expect((read as WardenError).retryable).toBe(true);
    const write = await drive(clock, client.put('/a', 'x').catch((e: unknown) => e), 4_000);
    expect((write as WardenError).code).toBe('RESOURCE_EXHAUSTED');
    expect((write as WardenError).details.limit).toEqual(full);
    expect(members[0]!.received.length + members[1]!.received.length).toBeGreaterThan(2); // it did retry meanwhile
  });

  it('refuse a call, unsent, once maxQueued calls wait for a socket', async () => {
    const clock = new FakeClock();
    const member = new FakeMember('ws://m1', okBehaviour());
    member.down = true;
    const client = new WardenClient({ endpoints: [member.url], clock, random: () => 0, maxQueued: 2, timeoutMs: 1_000 }, fakeCluster([member]));
    const waiting = [client.get('/a').catch((e: unknown) => e), client.get('/b').catch((e: unknown) => e)];
    const refused = await client.get('/c').catch((e: unknown) => e);
    expect((refused as WardenError).code).toBe('RESOURCE_EXHAUSTED');
    expect((refused as WardenError).details.limit?.name).toBe('maxQueued');
    for (const error of await drive(clock, Promise.all(waiting))) expect((error as WardenError).code).toBe('UNAVAILABLE');
  });

  it('end at once, changing nothing, when the caller aborts', async () => {
    const { clock, client } = setup([() => null]);
    const controller = new AbortController();
    const read = client.get('/a', { signal: controller.signal }).catch((e: unknown) => e);
    await clock.advance(1);
    controller.abort();
    const error = await drive(clock, read, 100);
    expect((error as WardenError).code).toBe('UNAVAILABLE');
  });
});

describe('writes', () => {
  it('are retried with the same stamp after their member is lost, and acknowledged after', async () => {
    const { clock, members, client } = setup([okBehaviour(), okBehaviour()]);
    await drive(clock, client.put('/warm', 'x')); // registered on m1
    members[0]!.behaviour = (frame, member) => (frame['type'] === 'put' ? null : okBehaviour()(frame, member));
    const write = client.put('/a', 'x');
    await clock.advance(1);
    members[0]!.kill();
    await drive(clock, write);
    const first = types(members[0]!, 'put').at(-1)!['client'] as Record<string, number>;
    const retry = types(members[1]!, 'put').at(-1)!['client'] as Record<string, number>;
    expect(retry['seq']).toBe(first['seq']);
    expect(retry['id']).toBe(first['id']);
    await drive(clock, client.put('/b', 'y'));
    expect((types(members[1]!, 'put').at(-1)!['client'] as Record<string, number>)['ackedThrough']).toBe(first['seq']);
  });

  it('say OUTCOME_UNKNOWN, never retryable, when sent and unanswered by their deadline', async () => {
    const { clock, members, client } = setup([okBehaviour()], { timeoutMs: 3_000, attemptTimeoutMs: 10_000 });
    await drive(clock, client.put('/warm', 'x'));
    members[0]!.behaviour = (frame, member) => (frame['type'] === 'put' ? null : okBehaviour()(frame, member));
    const error = await drive(clock, client.put('/a', 'x').catch((e: unknown) => e));
    expect((error as WardenError).code).toBe('OUTCOME_UNKNOWN');
    expect((error as WardenError).outcomeUnknown).toBe(true);
    expect((error as WardenError).retryable).toBe(false);
  });

  it('retry an unknown outcome with the same stamp until the real answer comes', async () => {
    let tries = 0;
    const flaky = (frame: Frame, member: FakeMember): Frame | null => {
      if (frame['type'] !== 'create') return okBehaviour()(frame, member);
      tries += 1;
      return tries < 3 ? { ok: false, error: { code: 'OUTCOME_UNKNOWN', message: 'lost', outcome: 'unknown' } } : { ok: true, revision: 9, node: { path: '/q-0000000001', stat: {} } };
    };
    const { clock, members, client } = setup([flaky]);
    const created = await drive(clock, client.create('/q-', '', { sequential: true }));
    expect(created.path).toBe('/q-0000000001');
    const seqs = new Set(types(members[0]!, 'create').map((f) => (f['client'] as Record<string, number>)['seq']));
    expect(seqs.size).toBe(1);
    expect(tries).toBe(3);
  });
});

describe('leases and sessions', () => {
  it('keep every kept lease alive in one frame a round, and call a session lost only when a member says its lease is gone', async () => {
    let gone = false;
    let unknownToLeader = false;
    const keeper = (frame: Frame, member: FakeMember): Frame | null => {
      if (frame['type'] === 'leaseGrant') return { ok: true, revision: 1, lease: { id: frame['lease'], ttlMs: frame['ttlMs'] } };
      if (frame['type'] === 'leaseKeepAlive') {
        return { ok: true, leases: (frame['leases'] as number[]).map((id) => (gone ? { id, ok: false, code: 'LEASE_NOT_FOUND' } : unknownToLeader ? { id, ok: false, code: 'UNAVAILABLE' } : { id, ok: true, ttlMs: 3_000, remainingMs: 3_000 })) };
      }
      return okBehaviour()(frame, member);
    };
    const { clock, members, client } = setup([keeper]);
    const a = await drive(clock, client.session({ ttlMs: 3_000 }));
    const b = await drive(clock, client.session({ ttlMs: 6_000 }));
    let lost = 0;
    a.on('lost', () => (lost += 1));
    const before = types(members[0]!, 'leaseKeepAlive').length;
    await clock.advance(3_000); // the shortest TTL's third: 1 s a round
    const rounds = types(members[0]!, 'leaseKeepAlive').slice(before);
    expect(rounds.length).toBeGreaterThanOrEqual(2);
    expect(rounds.length).toBeLessThanOrEqual(4);
    for (const round of rounds) expect(new Set(round['leases'] as number[])).toEqual(new Set([a.lease, b.lease]));
    // A new leader that has not applied its refresh yet answers UNAVAILABLE per lease: not lost.
    unknownToLeader = true;
    await clock.advance(3_000);
    expect(lost).toBe(0);
    unknownToLeader = false;
    // Unreachable for a while: not lost.
    members[0]!.frozen = true;
    await clock.advance(10_000);
    expect(lost).toBe(0);
    expect(a.lost).toBe(false);
    members[0]!.frozen = false;
    members[0]!.kill(); // reconnect
    gone = true;
    await clock.advance(3_000);
    expect(lost).toBe(1);
    expect(a.signal.aborted).toBe(true);
  });
});
