/**
 * `client.members` (client/members.ts) on a fake clock against scripted fake members: the frames
 * each call sends and the typed results it makes of the answers; the changes go unstamped (no
 * session, no `client` field) and are never sent again once they may have reached a member; a
 * NOT_LEADER refusal is followed to the leader it names; an add that waits for its promotion is
 * not taken for a frozen member, and gets a deadline longer than the leader's wait.
 */

import { describe, expect, it } from 'vitest';
import { WardenClient } from '../../client/client.js';
import { PROMOTE_DEADLINE_MS } from '../../client/members.js';
import { WardenError } from '../../shared/errors.js';
import { drive, fakeCluster, FakeClock, FakeMember, okBehaviour, type Frame } from './fakes.js';

const refusal = (code: string, message: string, extra: Frame = {}): Frame => ({ ok: false, error: { code, message, ...extra } });
const changed = (name: string, role: string, peerUrl: string | null = `ws://${name}:7081`): Frame => ({ ok: true, revision: 9, member: { name, role, peerUrl } });

/** A member answering `answers` by type (null: silence), anything else as okBehaviour does. */
function scripted(url: string, answers: Map<string, (frame: Frame) => Frame | null>): FakeMember {
  const ok = okBehaviour();
  return new FakeMember(url, (frame, member) => answers.get(frame['type'] as string)?.(frame) ?? (answers.has(frame['type'] as string) ? null : ok(frame, member)));
}

function setup(count = 1, timeoutMs = 10_000) {
  const clock = new FakeClock();
  const answers = Array.from({ length: count }, () => new Map<string, (frame: Frame) => Frame | null>());
  const members = answers.map((a, i) => scripted(`ws://m${i + 1}`, a));
  const client = new WardenClient({ endpoints: members.map((m) => m.url), clock, random: () => 0, attemptTimeoutMs: 1_000, timeoutMs }, fakeCluster(members));
  const types = (m: FakeMember): string[] => m.received.map((f) => f['type'] as string);
  return { clock, members, answers, client, types };
}

const failure = async (promise: Promise<unknown>): Promise<WardenError> => {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(WardenError);
  return error as WardenError;
};

describe('client.members', () => {
  it('sends memberList, memberAdd, memberPromote and memberRemove with their fields, unstamped, and types the answers', async () => {
    const { clock, members, answers, client } = setup();
    const a = answers[0]!;
    a.set('memberList', () => ({
      ok: true,
      revision: 8,
      members: [
        { name: 'n1', role: 'voter', peerUrl: 'ws://n1:7081', clientUrl: 'ws://n1:7071', isLeader: true, lag: 0 },
        { name: 'n4', role: 'learner', peerUrl: 'ws://n4:7081', clientUrl: null, isLeader: false, lag: 5000 },
        { name: 'n5', role: 'learner', peerUrl: null, isLeader: false }, // what the leader does not know, left out
      ],
    }));
    a.set('memberAdd', (f) => changed(f['name'] as string, f['learner'] === true ? 'learner' : 'voter', f['peerUrl'] as string));
    a.set('memberPromote', (f) => changed(f['name'] as string, 'voter'));
    a.set('memberRemove', (f) => ({ ok: true, revision: 9, member: { name: f['name'], role: null, peerUrl: null } }));

    expect(await drive(clock, client.members.list())).toEqual([
      { name: 'n1', role: 'voter', peerUrl: 'ws://n1:7081', clientUrl: 'ws://n1:7071', isLeader: true, lag: 0 },
      { name: 'n4', role: 'learner', peerUrl: 'ws://n4:7081', clientUrl: null, isLeader: false, lag: 5000 },
      { name: 'n5', role: 'learner', peerUrl: null, clientUrl: null, isLeader: false, lag: null },
    ]);
    expect(await drive(clock, client.members.add('n4', 'ws://n4:7081', { learner: true }))).toEqual({ revision: 9, member: { name: 'n4', role: 'learner', peerUrl: 'ws://n4:7081' } });
    expect(await drive(clock, client.members.add('n6', 'wss://n6:7081'))).toEqual({ revision: 9, member: { name: 'n6', role: 'voter', peerUrl: 'wss://n6:7081' } });
    expect(await drive(clock, client.members.promote('n4'))).toEqual({ revision: 9, member: { name: 'n4', role: 'voter', peerUrl: 'ws://n4:7081' } });
    expect(await drive(clock, client.members.remove('n2'))).toEqual({ revision: 9, member: { name: 'n2', role: null, peerUrl: null } });
    expect(client.revision).toBe(9);

    const frames = members[0]!.received.map(({ id: _id, ...rest }) => rest);
    expect(frames).toEqual([
      { type: 'memberList' },
      { type: 'memberAdd', name: 'n4', peerUrl: 'ws://n4:7081', learner: true },
      // The default waits for the promotion, said outright rather than left to the member's default.
      { type: 'memberAdd', name: 'n6', peerUrl: 'wss://n6:7081', learner: false },
      { type: 'memberPromote', name: 'n4' },
      { type: 'memberRemove', name: 'n2' },
    ]);
    for (const f of members[0]!.received) expect(f).not.toHaveProperty('client');
  });

  it('passes a refusal on as it is, sent once: INVALID_ARGUMENT with its message, PERMISSION_DENIED', async () => {
    const { clock, members, answers, client, types } = setup();
    answers[0]!.set('memberPromote', () => refusal('INVALID_ARGUMENT', 'n4 is 5000 entries behind the leader (at most 1000 to promote)'));
    answers[0]!.set('memberAdd', () => refusal('INVALID_ARGUMENT', 'n2 was removed and its name is never used again'));
    answers[0]!.set('memberRemove', () => refusal('PERMISSION_DENIED', 'needs admin on /'));
    const promote = await failure(drive(clock, client.members.promote('n4')));
    expect(promote.code).toBe('INVALID_ARGUMENT');
    expect(promote.message).toMatch(/5000 entries behind/);
    expect((await failure(drive(clock, client.members.add('n2', 'ws://n2:7081')))).message).toMatch(/never used again/);
    expect((await failure(drive(clock, client.members.remove('n3')))).code).toBe('PERMISSION_DENIED');
    expect(types(members[0]!)).toEqual(['memberPromote', 'memberAdd', 'memberRemove']);
  });

  it('say OUTCOME_UNKNOWN, and do not send the change again, when the member is lost after it went out', async () => {
    const { clock, members, answers, client, types } = setup(2);
    await drive(clock, client.members.list().catch(() => undefined)); // a socket on m1
    answers[0]!.set('memberRemove', () => null);
    const removed = client.members.remove('n2').catch((e: unknown) => e);
    await clock.advance(1);
    members[0]!.kill();
    const error = (await drive(clock, removed)) as WardenError;
    expect(error.code).toBe('OUTCOME_UNKNOWN');
    expect(error.message).toMatch(/may have been applied/);
    await clock.advance(30_000);
    expect([...types(members[0]!), ...types(members[1]!)].filter((t) => t === 'memberRemove')).toHaveLength(1);
  });

  it('do not send again a change answered TIMEOUT or OUTCOME_UNKNOWN', async () => {
    const { clock, members, answers, client, types } = setup(2);
    answers[0]!.set('memberAdd', () => refusal('TIMEOUT', 'not committed in time'));
    answers[0]!.set('memberPromote', () => refusal('OUTCOME_UNKNOWN', 'leadership changed'));
    expect((await failure(drive(clock, client.members.add('n4', 'ws://n4:7081')))).code).toBe('TIMEOUT');
    expect((await failure(drive(clock, client.members.promote('n4')))).code).toBe('OUTCOME_UNKNOWN');
    expect([...types(members[0]!), ...types(members[1]!)]).toEqual(['memberAdd', 'memberPromote']);
  });

  it('follow NOT_LEADER to the leader it names, the list and the changes alike', async () => {
    for (const type of ['memberList', 'memberRemove']) {
      const { clock, members, answers, client, types } = setup(3);
      answers[0]!.set(type, () => refusal('NOT_LEADER', 'n3 leads', { leader: { name: 'n3', url: 'ws://m3' } }));
      answers[2]!.set('memberList', () => ({ ok: true, revision: 4, members: [{ name: 'n3', role: 'voter', peerUrl: 'ws://n3:7081', clientUrl: 'ws://m3', isLeader: true, lag: 0 }] }));
      answers[2]!.set('memberRemove', (f) => changed(f['name'] as string, 'voter'));
      if (type === 'memberList') expect((await drive(clock, client.members.list())).map((m) => m.name)).toEqual(['n3']);
      else expect((await drive(clock, client.members.remove('n2'))).member.name).toBe('n2');
      expect(types(members[0]!)).toEqual([type]); // refused there, certainly not applied
      expect(types(members[1]!)).toEqual([]); // the hint, not the next in line
      expect(types(members[2]!)).toEqual([type]);
    }
  });

  it('wait for an add that promotes as long as its deadline, a member silent meanwhile not left; a learner add keeps the usual attempt deadline', async () => {
    const { clock, members, answers, client, types } = setup(2);
    answers[0]!.set('memberAdd', () => null); // answered by hand, late
    const adding = client.members.add('n4', 'ws://n4:7081');
    await clock.advance(5_000); // five attempt deadlines of silence
    const sent = members[0]!.received.find((f) => f['type'] === 'memberAdd')!;
    members[0]!.socket!.deliver({ ...changed('n4', 'voter'), id: sent['id'] });
    expect((await drive(clock, adding)).member.role).toBe('voter');
    expect(members[0]!.sockets).toHaveLength(1);
    expect(types(members[1]!)).toEqual([]);

    // Never answered: the deadline is PROMOTE_DEADLINE_MS, not the client's 10 s, and then OUTCOME_UNKNOWN.
    const started = clock.now();
    const waiting = failure(client.members.add('n5', 'ws://n5:7081'));
    let settledAt: number | null = null;
    void waiting.finally(() => (settledAt = clock.now()));
    await drive(clock, waiting, 2 * PROMOTE_DEADLINE_MS, 250);
    expect((await waiting).code).toBe('OUTCOME_UNKNOWN');
    expect(settledAt! - started).toBeGreaterThanOrEqual(PROMOTE_DEADLINE_MS);
    expect(settledAt! - started).toBeLessThan(PROMOTE_DEADLINE_MS + 1_000);
    expect([...types(members[0]!), ...types(members[1]!)].filter((t) => t === 'memberAdd')).toHaveLength(2);

    // A learner add is answered at once by a live leader: a silent one is left at the attempt deadline.
    const learnerStarted = clock.now();
    const learner = failure(client.members.add('n6', 'ws://n6:7081', { learner: true }));
    let learnerAt: number | null = null;
    void learner.finally(() => (learnerAt = clock.now()));
    await drive(clock, learner, 20_000, 50);
    expect((await learner).code).toBe('OUTCOME_UNKNOWN');
    expect(learnerAt! - learnerStarted).toBeLessThan(3_000);
  });

  it('give an add its own timeoutMs when the caller sets one', async () => {
    const { clock, answers, client } = setup();
    answers[0]!.set('memberAdd', () => null);
    const started = clock.now();
    const error = failure(client.members.add('n4', 'ws://n4:7081', { timeoutMs: 5_000 }));
    let at: number | null = null;
    void error.finally(() => (at = clock.now()));
    await drive(clock, error, 20_000, 50);
    expect((await error).code).toBe('OUTCOME_UNKNOWN');
    expect(at! - started).toBeLessThan(6_000);
  });
});
