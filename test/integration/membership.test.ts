/**
 * Membership changes on real processes: a fourth member joins a running 3-member cluster
 * (`--initial-cluster-state existing`, added as a learner, caught up, promoted), holds the data,
 * and is removed — its name never used again; then the leader itself is removed and the others
 * elect a new one and go on taking writes. Only the leader takes changes (NOT_LEADER elsewhere).
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, Cluster, ProtocolClient, unb64, until } from './cluster.js';
import { connect, type Session, type WardenClient } from '../../client/index.js';

let cluster: Cluster;
const FIRST = ['n1', 'n2', 'n3'];
/** 20 leases kept alive by one client through every change: none may be lost (the etcd #14096 class). */
let holder: WardenClient;
let sessions: Session[] = [];


const code = (answer: Record<string, unknown>): string | undefined => (answer['error'] as { code?: string } | undefined)?.code;

describe('membership changes', () => {
  beforeAll(async () => {
    cluster = await Cluster.plan(4);
    for (const name of FIRST) cluster.launch(cluster.member(name), { initialCluster: cluster.specOf(FIRST) });
    await cluster.leader();
    holder = connect({ endpoints: FIRST.map((n) => cluster.member(n).clientUrl).join(','), timeoutMs: 15_000 });
    // TTLs short enough that a lost keep-alive round would show within the test.
    sessions = await Promise.all(Array.from({ length: 20 }, () => holder.session({ ttlMs: 3_000 })));
    await Promise.all(sessions.map((session, i) => holder.create(`/eph/s${i}`, 'alive', { lease: session.lease, parents: true })));
  }, 60_000);

  afterAll(async () => {
    await holder?.close();
    await cluster?.stop();
  });

  it('adds a member as a learner, catches it up, promotes it; removes it, and never takes its name again', async () => {
    const leader = await cluster.leader();
    const admin = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    const follower = await ProtocolClient.connect(cluster.member(FIRST.find((n) => n !== leader)!).clientUrl);
    expect(await admin.request('put', { path: '/before', value: b64('kept') })).toMatchObject({ ok: true });
    expect(code(await follower.request('memberAdd', { name: 'n4', peerUrl: cluster.peerUrlOf('n4') }))).toBe('NOT_LEADER');

    expect(await admin.request('memberAdd', { name: 'n4', peerUrl: cluster.peerUrlOf('n4') })).toMatchObject({ ok: true, member: { name: 'n4', role: 'learner' } });
    cluster.launch(cluster.member('n4'), { extraArgs: ['--initial-cluster-state', 'existing'] });
    await until('n4 caught up', async () => {
      const list = await admin.request('memberList');
      const n4 = (list['members'] as { name: string; lag: number | null }[]).find((m) => m.name === 'n4');
      return n4 !== undefined && n4.lag !== null && n4.lag <= 1 ? n4 : null;
    });
    expect(await admin.request('memberPromote', { name: 'n4' })).toMatchObject({ ok: true, member: { name: 'n4', role: 'voter' } });
    const joined = await ProtocolClient.connect(cluster.member('n4').clientUrl);
    const read = await joined.request('get', { path: '/before' });
    expect(unb64((read['node'] as { value: string }).value)).toBe('kept');
    const members = (await admin.request('memberList'))['members'] as { name: string; role: string }[];
    expect(members.map((m) => [m.name, m.role])).toEqual([['n1', 'voter'], ['n2', 'voter'], ['n3', 'voter'], ['n4', 'voter']]);
    expect(code(await admin.request('memberAdd', { name: 'n4', peerUrl: cluster.peerUrlOf('n4') }))).toBe('INVALID_ARGUMENT');

    expect(await admin.request('memberRemove', { name: 'n4' })).toMatchObject({ ok: true });
    const again = await admin.request('memberAdd', { name: 'n4', peerUrl: cluster.peerUrlOf('n4') });
    expect(again).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/never used again/) } });
    expect(await admin.request('put', { path: '/after-n4', value: b64('ok') })).toMatchObject({ ok: true });
    for (const c of [admin, follower, joined]) c.close();
    await cluster.kill('n4');
  });

  it('removes the leader: it hands over (its TimeoutNow reaches the most caught-up voter), and writes go on', async () => {
    const leader = await cluster.leader();
    const admin = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    const marks = new Map(FIRST.map((n) => [n, cluster.member(n).logs.length]));
    expect(await admin.request('memberRemove', { name: leader })).toMatchObject({ ok: true });
    admin.close();
    const rest = FIRST.filter((n) => n !== leader);
    const next = await until('a new leader', async () => {
      for (const name of rest) {
        const status = await cluster.status(name);
        const led = status?.['leader'];
        if (typeof led === 'string' && rest.includes(led)) return led;
      }
      return null;
    }, 10_000);
    // Handed over: the new leader campaigned at once on the old one's TimeoutNow (a transfer skips
    // pre-vote), not after an election timeout (which starts with one).
    const since = cluster.member(next).logs.slice(marks.get(next)!).filter((line) => line.includes('role_changed'));
    expect(since.some((line) => line.includes('now candidate'))).toBe(true);
    expect(since.some((line) => line.includes('now precandidate'))).toBe(false);
    const writer = await ProtocolClient.connect(cluster.member(next).clientUrl);
    expect(await writer.request('put', { path: '/after-leader', value: b64('ok') })).toMatchObject({ ok: true });
    const members = (await writer.request('memberList'))['members'] as { name: string }[];
    expect(members.map((m) => m.name)).toEqual(rest);
    writer.close();
  });

  it("lost none of the 20 leases kept alive through every change, the leader's removal included", async () => {
    // Watched over two TTLs after the last change: a lease the new leader let run out would show.
    const watchUntil = Date.now() + 2 * 3_000 + 500;
    while (Date.now() < watchUntil) {
      expect(sessions.filter((session) => session.lost).map((session) => session.lease)).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 250)); // observing for a fixed time, not waiting on an event
    }
    for (let i = 0; i < 20; i++) expect(await holder.get(`/eph/s${i}`)).toMatchObject({ value: 'alive', stat: { lease: sessions[i]!.lease } });
  });
});
