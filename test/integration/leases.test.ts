/**
 * Leases over the protocol, with real `wardend` processes (ticks of 50 ms: election timeouts of
 * 0.5–1 s, a shortest TTL of 2 s): ephemeral nodes live exactly as long as their lease is kept
 * alive; a leader killed while a client keeps its lease alive through a follower expires
 * nothing; a leader frozen with SIGSTOP for twice the TTL, while its clients keep their leases
 * alive through the followers, gets no lease revoked when it wakes; bad input is refused.
 *
 * Must never: leave a process or a folder behind; wait without a bound. (Keep-alive loops run
 * on timers because that is what a client does; every wait for an outcome is bounded.)
 */

import { describe, expect, it } from 'vitest';
import { b64, Cluster, ProtocolClient } from './cluster.js';
import { clusterForSuite } from './suite.js';

let cluster: Cluster;
clusterForSuite((started) => (cluster = started));

const TTL_MS = 3_000;

/** Keeps `leases` alive through `client` every `everyMs`, ignoring failed rounds (a client retries on the next). */
function keepAlive(client: ProtocolClient, leases: () => number[], everyMs = 500): { stop(): void; failures: number } {
  const state = { failures: 0, stop: () => clearInterval(timer) };
  const timer = setInterval(() => {
    client.request('leaseKeepAlive', { leases: leases() }, 2_000).then(
      (answer) => void (answer['ok'] !== true && (state.failures += 1)),
      () => void (state.failures += 1),
    );
  }, everyMs);
  return state;
}

async function grantWithNode(client: ProtocolClient, path: string): Promise<number> {
  const granted = await client.request('leaseGrant', { ttlMs: TTL_MS });
  expect(granted).toMatchObject({ ok: true, op: 'leaseGrant', lease: { ttlMs: TTL_MS } });
  const lease = (granted['lease'] as { id: number }).id;
  expect(await client.request('create', { path, value: b64('here'), lease, parents: true })).toMatchObject({ ok: true });
  return lease;
}

async function exists(client: ProtocolClient, path: string): Promise<boolean> {
  const got = await client.request('get', { path });
  if (got['ok'] === true) return true;
  expect(got).toMatchObject({ error: { code: 'NO_NODE' } });
  return false;
}

/** Waits (bounded, polling the member) until `path` is gone. */
async function goneWithin(client: ProtocolClient, path: string, ms: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (!(await exists(client, path))) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 100)); // polling interval, bounded by ms
  }
  throw new Error(`${path} still exists after ${ms} ms`);
}

/** A member other than the leader. */
async function follower(): Promise<string> {
  const leader = await cluster.leader();
  return cluster.members.find((m) => m.name !== leader && m.process !== null)!.name;
}

describe('leases over the protocol', () => {
  it('keeps an ephemeral node while its lease is kept alive, and deletes it once the keep-alives stop', async () => {
    const client = await ProtocolClient.connect(cluster.member(await follower()).clientUrl);
    const lease = await grantWithNode(client, '/leases/alive/a');
    const keeper = keepAlive(client, () => [lease]);
    // Twice the TTL with keep-alives: still there.
    const until = Date.now() + 2 * TTL_MS;
    while (Date.now() < until) {
      expect(await exists(client, '/leases/alive/a')).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 250)); // sampling interval, bounded by `until`
    }
    keeper.stop();
    // Gone within the TTL and a bit (expiry is checked every tick and goes through the log).
    const tookMs = await goneWithin(client, '/leases/alive/a', TTL_MS + 3_000);
    expect(tookMs).toBeGreaterThan(TTL_MS / 2);
    const ttl = await client.request('leaseTimeToLive', { lease });
    expect(ttl).toMatchObject({ ok: false, error: { code: 'LEASE_NOT_FOUND' } });
    client.close();
  }, 60_000);

  it('answers timeToLive (remaining, attached paths) and list, through any member', async () => {
    const client = await ProtocolClient.connect(cluster.member(await follower()).clientUrl);
    const lease = await grantWithNode(client, '/leases/ttl/a');
    expect(await client.request('create', { path: '/leases/ttl/b', value: b64('x'), lease })).toMatchObject({ ok: true });
    const ttl = await client.request('leaseTimeToLive', { lease, paths: true });
    expect(ttl).toMatchObject({ ok: true, lease: { id: lease, ttlMs: TTL_MS }, paths: ['/leases/ttl/a', '/leases/ttl/b'] });
    const remaining = (ttl['lease'] as { remainingMs: number }).remainingMs;
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(TTL_MS);
    const list = await client.request('leaseList');
    expect(list).toMatchObject({ ok: true });
    expect(list['leases']).toContainEqual({ id: lease, ttlMs: TTL_MS });
    expect(await client.request('leaseRevoke', { lease })).toMatchObject({ ok: true, op: 'leaseRevoke', leases: [lease], deleted: 2 });
    expect(await exists(client, '/leases/ttl/a')).toBe(false);
    client.close();
  }, 60_000);

  it('refuses bad lease requests with a clear code and keeps serving', async () => {
    const client = await ProtocolClient.connect(cluster.members[0]!.clientUrl);
    expect(await client.request('leaseGrant', { ttlMs: -5 })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await client.request('leaseGrant', { ttlMs: 500 })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('at least 2000') } });
    expect(await client.request('leaseGrant', { ttlMs: 'long' })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await client.request('leaseRevoke', { lease: 987_654 })).toMatchObject({ ok: false, error: { code: 'LEASE_NOT_FOUND' } });
    expect(await client.request('leaseTimeToLive', { lease: 987_654 })).toMatchObject({ ok: false, error: { code: 'LEASE_NOT_FOUND' } });
    const kept = await client.request('leaseKeepAlive', { leases: [987_654] });
    expect(kept).toMatchObject({ ok: true, leases: [{ id: 987_654, ok: false, code: 'LEASE_NOT_FOUND' }] });
    expect(await client.request('leaseKeepAlive', { leases: [] })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await client.request('create', { path: '/leases/bad', value: b64('x'), lease: 987_654 })).toMatchObject({ ok: false, error: { code: 'LEASE_NOT_FOUND' } });
    expect(await client.request('put', { path: '/leases/fine', value: b64('x') })).toMatchObject({ ok: true });
    client.close();
  }, 60_000);

  it('expires no lease when the leader is killed while a client keeps its lease alive through a follower', async () => {
    const via = await follower();
    const client = await ProtocolClient.connect(cluster.member(via).clientUrl);
    const lease = await grantWithNode(client, '/leases/failover/a');
    const keeper = keepAlive(client, () => [lease]);
    const leader = await cluster.leader();
    await cluster.kill(leader);
    const next = await cluster.leader();
    expect(next).not.toBe(leader);
    // Twice the TTL after the failover, the lease and its node are still there.
    const until = Date.now() + 2 * TTL_MS;
    while (Date.now() < until) {
      expect(await exists(client, '/leases/failover/a')).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 250)); // sampling interval, bounded by `until`
    }
    keeper.stop();
    cluster.launch(cluster.member(leader));
    await cluster.leader();
    expect(await client.request('leaseRevoke', { lease })).toMatchObject({ ok: true });
    client.close();
  }, 90_000);

  it('revokes none of 20 leases kept alive through the followers while the leader is frozen (SIGSTOP) for twice the TTL', async () => {
    const leader = await cluster.leader();
    const followers = cluster.members.filter((m) => m.name !== leader && m.process !== null);
    const clients = await Promise.all(followers.map((m) => ProtocolClient.connect(m.clientUrl)));
    const leases: number[][] = [[], []];
    for (let i = 0; i < 20; i++) leases[i % 2]!.push(await grantWithNode(clients[i % 2]!, `/leases/frozen/n${i}`));
    const keepers = clients.map((client, i) => keepAlive(client, () => leases[i]!));
    const frozen = cluster.member(leader).process!;
    frozen.kill('SIGSTOP');
    try {
      // The followers elect a new leader, which refreshes every lease; the clients go on through it.
      const started = Date.now();
      while (Date.now() - started < 2 * TTL_MS) {
        await new Promise((resolve) => setTimeout(resolve, 250)); // waiting out the freeze, bounded
      }
    } finally {
      frozen.kill('SIGCONT');
    }
    // The old leader wakes with every deadline it knew long past. Give it time to act on that.
    await cluster.leader();
    const settleUntil = Date.now() + TTL_MS;
    while (Date.now() < settleUntil) await new Promise((resolve) => setTimeout(resolve, 250)); // bounded
    for (let i = 0; i < 20; i++) expect(await exists(clients[0]!, `/leases/frozen/n${i}`), `/leases/frozen/n${i}`).toBe(true);
    for (const keeper of keepers) keeper.stop();
    for (const client of clients) client.close();
  }, 90_000);
});
