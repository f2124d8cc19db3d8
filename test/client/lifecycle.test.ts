/**
 * The client core at its edges, on a fake clock against scripted members: a write already sent
 * when the client's own line is full, keep-alive rounds that fail, a member slow on one request
 * but answering the rest, and close() — which must leave nothing running.
 */

import { describe, expect, it } from 'vitest';
import { WardenClient } from '../../client/client.js';
import { WardenError } from '../../shared/errors.js';
import { drive, fakeCluster, FakeClock, FakeMember, okBehaviour, type Frame } from './fakes.js';


const leaseBehaviour = (state: { failing: boolean }) => (frame: Frame, member: FakeMember): Frame | null => {
  if (frame['type'] === 'leaseGrant') return { ok: true, revision: 1, lease: { id: frame['lease'], ttlMs: frame['ttlMs'] } };
  if (frame['type'] === 'leaseKeepAlive') {
    if (state.failing) return { ok: false, error: { code: 'UNAVAILABLE', message: 'electing', outcome: 'retry' } };
    return { ok: true, leases: (frame['leases'] as number[]).map((id) => ({ id, ok: true, ttlMs: 3_000, remainingMs: 3_000 })) };
  }
  return okBehaviour()(frame, member);
};

describe('client edges', () => {
  it('never answers RESOURCE_EXHAUSTED for a write it already sent: its retry goes ahead of a full line', async () => {
    const clock = new FakeClock();
    let putsSeen = 0;
    const member = new FakeMember('ws://m1', (frame, m) => {
      if (frame['type'] === 'put') {
        putsSeen += 1;
        if (putsSeen === 1) return null; // the first try is never answered
      }
      return okBehaviour()(frame, m);
    });
    const client = new WardenClient({ endpoints: [member.url], clock, random: () => 0, maxQueued: 1, maxInFlight: 1, attemptTimeoutMs: 1_000 }, fakeCluster([member]));
    await drive(clock, client.status());
    const write = client.put('/a', 'x');
    await clock.advance(1);
    const blocker = client.get('/b').catch((e: unknown) => e); // fills the line of 1 behind the put
    const result = await drive(clock, write.catch((e: unknown) => e));
    expect(result instanceof WardenError ? result.code : 'ok').toBe('ok');
    await drive(clock, blocker);
    expect(putsSeen).toBe(2);
  });

  it('follows a keep-alive round the cluster did not answer with another soon, not a third of a TTL later', async () => {
    const clock = new FakeClock();
    const state = { failing: false };
    const member = new FakeMember('ws://m1', leaseBehaviour(state));
    const client = new WardenClient({ endpoints: [member.url], clock, random: () => 0, attemptTimeoutMs: 1_000 }, fakeCluster([member]));
    const session = await drive(clock, client.session({ ttlMs: 3_000 }));
    const renewals: number[] = [];
    session.on('renewed', () => renewals.push(clock.now()));
    await clock.advance(2_000);
    state.failing = true; // a failover: no member renews for 2.4 s, longer than one round may try
    await clock.advance(2_400);
    state.failing = false;
    await clock.advance(3_000);
    const gaps = renewals.slice(1).map((at, i) => at - renewals[i]!);
    // A round that failed followed a third of a TTL later leaves a whole TTL (3 s) between renewals: the lease would expire.
    expect(Math.max(...gaps)).toBeLessThan(2_800);
    await client.close();
  });

  it('does not leave a member slow on one request while it answers the others', async () => {
    const clock = new FakeClock();
    const m1 = new FakeMember('ws://m1', (frame, m) => (frame['type'] === 'put' ? null : okBehaviour()(frame, m)));
    const m2 = new FakeMember('ws://m2', okBehaviour());
    const client = new WardenClient({ endpoints: [m1.url, m2.url], clock, random: () => 0, attemptTimeoutMs: 1_000, timeoutMs: 60_000 }, fakeCluster([m1, m2]));
    await drive(clock, client.status());
    const slow = client.put('/a', 'x').catch((e: unknown) => e);
    for (let t = 0; t < 30; t++) {
      await drive(clock, client.get('/b'), 1_000, 10); // the member keeps answering reads
      await clock.advance(100);
    }
    expect(m2.sockets).toHaveLength(0);
    await client.close();
    await drive(clock, slow);
  });

  it('close() ends every timer, fails what waits at once, and ends kept sessions', async () => {
    const clock = new FakeClock();
    const member = new FakeMember('ws://m1', leaseBehaviour({ failing: false }));
    const client = new WardenClient({ endpoints: [member.url], clock, random: () => 0, attemptTimeoutMs: 1_000 }, fakeCluster([member]));
    const session = await drive(clock, client.session({ ttlMs: 3_000 }));
    await drive(clock, client.put('/a', 'x')); // registers the write session (its keepalive timer)
    const watch = client.watch('/a');
    await clock.advance(10);
    member.frozen = true;
    const read = client.get('/a').catch((e: unknown) => e);
    await clock.advance(10);
    await client.close();
    const error = await drive(clock, read, 200);
    expect((error as WardenError).code).toBe('UNAVAILABLE');
    expect(session.signal.aborted).toBe(true);
    await expect(watch.next()).resolves.toEqual({ value: undefined, done: true });
    await clock.advance(60_000);
    expect(clock.pendingTimers).toBe(0);
  });
});
