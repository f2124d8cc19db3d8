/**
 * Users, roles and permissions on a real 3-member cluster, spoken to over the raw protocol: once
 * auth is enabled nothing runs unauthenticated; a user with read on /a cannot write /a, read /b,
 * see /b's events in a watch of /, touch /b inside a transaction, or revoke, keep alive or list
 * another user's lease; a token opens a second connection, and is refused once it expires or
 * its user's password changes; auth changes replicate (a new leader, after the old one is
 * killed, enforces a grant made before); every change and login reaches the audit log with its
 * user and address; a flood of wrong passwords is held back by the throttle without slowing
 * another user's requests.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { b64, ProtocolClient, until, type Cluster } from './cluster.js';
import { clusterForSuite } from './suite.js';
import { connect } from '../../client/index.js';
import { runCli } from '../cli/run.js';

let cluster: Cluster;
// A token lives 4 s here, so its expiry can be waited for.
clusterForSuite((c) => (cluster = c), { extraArgs: ['--auth-token-ttl', '4'] });

const PASSWORDS: Record<string, string> = { root: 'root-pw', alice: 'alice-pw', bob: 'bob-pw' };


/** A connection to `member`, authenticated as `user` (auth on) — retried while the throttle holds its address. */
async function login(member: string, user: string): Promise<ProtocolClient> {
  const client = await ProtocolClient.connect(cluster.member(member).clientUrl);
  const answer = await until(`login as ${user}`, async () => {
    const a = await client.request('authenticate', { user, password: PASSWORDS[user] });
    return (a['error'] as { code?: string } | undefined)?.code === 'RESOURCE_EXHAUSTED' ? null : a;
  });
  expect(answer).toMatchObject({ ok: true, user });
  return client;
}

const code = (answer: Record<string, unknown>): string | undefined => (answer['error'] as { code?: string } | undefined)?.code;

describe('auth on a real cluster', () => {
  let leader: string;
  let follower: string;
  /** Where the setup and the first logins ran: its audit log holds them. */
  let audited: string;

  it('refuses everything unauthenticated once root enables auth', async () => {
    leader = await cluster.leader();
    follower = cluster.members.find((m) => m.name !== leader)!.name;
    audited = follower;
    const setup = await ProtocolClient.connect(cluster.member(follower).clientUrl);
    // Opened while auth is off: once it is on, this watch must not go on streaming.
    const anonymous = await ProtocolClient.connect(cluster.member(follower).clientUrl);
    expect(await anonymous.request('watch', { watchId: 9, path: '/', scope: 'subtree' })).toMatchObject({ ok: true });
    for (const [type, fields] of [
      ['userAdd', { name: 'root', password: PASSWORDS['root'] }],
      ['userAdd', { name: 'alice', password: PASSWORDS['alice'] }],
      ['userAdd', { name: 'bob', password: PASSWORDS['bob'] }],
      ['roleAdd', { name: 'a-reader' }],
      ['roleGrant', { name: 'a-reader', path: '/a', access: 'read' }],
      ['userGrantRole', { name: 'alice', role: 'a-reader' }],
      ['roleAdd', { name: 'b-writer' }],
      ['roleGrant', { name: 'b-writer', path: '/b', access: 'write' }],
      ['userGrantRole', { name: 'bob', role: 'b-writer' }],
      ['create', { path: '/a', value: b64('a') }],
      ['create', { path: '/b', value: b64('b') }],
      ['leaseGrant', { ttlMs: 60_000, lease: 4242 }],
      ['create', { path: '/a/ownerless', lease: 4242 }],
      ['authEnable', {}],
    ] as const) {
      expect(await setup.request(type, fields), `${type} ${JSON.stringify(fields)}`).toMatchObject({ ok: true });
    }
    const root = await login(leader, 'root');
    expect(await root.request('put', { path: '/a/after', value: b64('secret') })).toMatchObject({ ok: true });
    const canceled = await until('the anonymous watch is cancelled', async () => anonymous.unmatched.find((f) => f['canceled'] === true) ?? null);
    expect(canceled).toMatchObject({ watch: 9, code: 'UNAUTHENTICATED' });
    expect(JSON.stringify(anonymous.unmatched)).not.toContain('/a/after');
    // A lease made while auth was off belongs to no one: bob may not end it (its node is under /a),
    // nor see its paths outside his grants.
    const bob = await login(follower, 'bob');
    expect(code(await bob.request('leaseRevoke', { lease: 4242 }))).toBe('PERMISSION_DENIED');
    expect(await bob.request('leaseTimeToLive', { lease: 4242, paths: true })).toMatchObject({ ok: true, paths: [] });
    expect(await root.request('leaseTimeToLive', { lease: 4242, paths: true })).toMatchObject({ ok: true, paths: ['/a/ownerless'] });
    for (const c of [anonymous, root, bob]) c.close();
    expect(await setup.request('get', { path: '/a' })).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    expect(await setup.request('put', { path: '/a', value: b64('x') })).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    expect(await setup.request('authStatus')).toMatchObject({ ok: true, enabled: true, user: null });
    expect(await setup.request('authenticate', { user: 'alice', password: 'wrong' })).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED', message: 'wrong user or password' } });
    setup.close();
  });

  it('holds a reader of /a to reading /a: no write there, nothing of /b, in gets, txns and watches', async () => {
    const alice = await login(follower, 'alice');
    const bob = await login(follower, 'bob');
    const root = await login(leader, 'root');
    expect(await alice.request('get', { path: '/a' })).toMatchObject({ ok: true });
    expect(code(await alice.request('put', { path: '/a', value: b64('x') }))).toBe('PERMISSION_DENIED');
    expect(code(await alice.request('get', { path: '/b' }))).toBe('PERMISSION_DENIED');
    expect(code(await alice.request('range', { path: '/', limit: 10 }))).toBe('PERMISSION_DENIED');
    expect(code(await alice.request('txn', { compare: [{ path: '/b', target: 'exists', operator: '=', operand: true }], success: [{ op: 'get', path: '/a' }] }))).toBe('PERMISSION_DENIED');
    expect(code(await alice.request('txn', { success: [{ op: 'get', path: '/a' }], failure: [{ op: 'delete', path: '/b' }] }))).toBe('PERMISSION_DENIED');
    expect(code(await alice.request('watch', { watchId: 2, path: '/b' }))).toBe('PERMISSION_DENIED');
    expect(code(await alice.request('compact', { revision: 1 }))).toBe('PERMISSION_DENIED');
    expect(code(await alice.request('userList'))).toBe('PERMISSION_DENIED');

    // A watch of / sees /a's events and never /b's: bob's write to /b comes first, root's to /a after.
    expect(await alice.request('watch', { watchId: 1, path: '/', scope: 'subtree' })).toMatchObject({ ok: true });
    expect(await bob.request('put', { path: '/b', value: b64('by bob') })).toMatchObject({ ok: true });
    const rootWrite = await root.request('put', { path: '/a', value: b64('by root') });
    expect(rootWrite).toMatchObject({ ok: true });
    await until('alice sees /a change', async () => (alice.unmatched.some((f) => JSON.stringify(f).includes('"/a"')) ? true : null));
    const paths = alice.unmatched.flatMap((f) => ((f['events'] as { path: string }[] | undefined) ?? []).map((e) => e.path));
    expect(paths).toEqual(['/a']);
    for (const c of [alice, bob, root]) c.close();
  });

  it('keeps a lease to its user: another cannot revoke it, keep it alive, attach to it, or see it listed', async () => {
    const alice = await login(follower, 'alice');
    const bob = await login(follower, 'bob');
    const granted = await bob.request('leaseGrant', { ttlMs: 10_000 });
    expect(granted).toMatchObject({ ok: true });
    const id = (granted['lease'] as { id: number }).id;
    expect(code(await alice.request('leaseRevoke', { lease: id }))).toBe('PERMISSION_DENIED');
    expect(await alice.request('leaseKeepAlive', { leases: [id] })).toMatchObject({ ok: true, leases: [{ id, ok: false, code: 'PERMISSION_DENIED' }] });
    expect(code(await alice.request('leaseTimeToLive', { lease: id }))).toBe('PERMISSION_DENIED');
    const listed = await alice.request('leaseList');
    expect((listed['leases'] as { id: number }[]).map((l) => l.id)).not.toContain(id);
    expect(await bob.request('leaseKeepAlive', { leases: [id] })).toMatchObject({ ok: true, leases: [{ id, ok: true }] });
    expect(await bob.request('create', { path: '/b/eph', lease: id })).toMatchObject({ ok: true });
    expect(await bob.request('leaseRevoke', { lease: id })).toMatchObject({ ok: true });
    alice.close();
    bob.close();
  });

  it('opens a second connection with a token, and refuses it once it expires or the password changes', async () => {
    const bob = await login(follower, 'bob');
    const first = await bob.request('authStatus');
    expect(first).toMatchObject({ user: 'bob' });
    const fresh = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    const token = ((await (await login(follower, 'bob')).request('authenticate', { user: 'bob', password: PASSWORDS['bob'] })) as { token: string }).token;
    expect(await fresh.request('authenticate', { token })).toMatchObject({ ok: true, user: 'bob' });
    expect(await fresh.request('get', { path: '/b' })).toMatchObject({ ok: true });
    expect(code(await fresh.request('authenticate', { token: `${token.slice(0, -2)}xx` }))).toBe('UNAUTHENTICATED');
    // The token's 4 s run out: the connection's requests are refused, saying why; so is the token.
    const expired = await until('the token expires', async () => {
      const answer = await fresh.request('get', { path: '/b' });
      return code(answer) === 'UNAUTHENTICATED' ? answer : null;
    });
    expect((expired['error'] as { message: string }).message).toMatch(/expired/);
    expect(code(await fresh.request('authenticate', { token }))).toBe('UNAUTHENTICATED');
    // Holding bob's token is not holding his account: changing his password needs the old one.
    const thief = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    const fresher = (await (await login(follower, 'bob')).request('authenticate', { user: 'bob', password: PASSWORDS['bob'] }))['token'] as string;
    // (The expired token's refusals hold this address back a little: the login waits it out.)
    const stolen = await until('a login with the stolen token', async () => {
      const answer = await thief.request('authenticate', { token: fresher });
      return code(answer) === 'RESOURCE_EXHAUSTED' ? null : answer;
    });
    expect(stolen).toMatchObject({ ok: true, user: 'bob' });
    expect(code(await thief.request('userPasswd', { name: 'bob', password: 'stolen' }))).toBe('INVALID_ARGUMENT');
    expect(code(await thief.request('userPasswd', { name: 'bob', password: 'stolen', oldPassword: 'a guess' }))).toBe('PERMISSION_DENIED');
    expect(code(await thief.request('userPasswd', { name: 'alice', password: 'stolen', oldPassword: PASSWORDS['bob'] }))).toBe('PERMISSION_DENIED');
    thief.close();
    // A password change revokes at once.
    const again = await login(leader, 'bob');
    const root = await login(leader, 'root');
    PASSWORDS['bob'] = 'bob-pw-2';
    expect(await root.request('userPasswd', { name: 'bob', password: PASSWORDS['bob'] })).toMatchObject({ ok: true });
    expect((await again.request('get', { path: '/b' }))['error']).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringMatching(/password of bob changed/) });
    for (const c of [bob, fresh, again, root]) c.close();
  });

  it('replicates auth changes: a new leader enforces a grant made before the old one died', async () => {
    const root = await login(leader, 'root');
    expect(await root.request('roleGrant', { name: 'a-reader', path: '/a/notes', access: 'write' })).toMatchObject({ ok: true });
    await cluster.kill(leader);
    const next = await cluster.leader();
    expect(next).not.toBe(leader);
    const alice = await login(next, 'alice');
    expect(await alice.request('create', { path: '/a/notes', value: b64('mine') })).toMatchObject({ ok: true });
    expect(code(await alice.request('put', { path: '/a', value: b64('not mine') }))).toBe('PERMISSION_DENIED');
    root.close();
    alice.close();
    cluster.launch(cluster.member(leader));
    // The member that never stopped (the relaunched one may still be starting).
    follower = cluster.members.find((m) => m.name !== next && m.name !== leader)!.name;
    leader = next;
  });

  it('writes every change and login to the audit log, with the user and the address', async () => {
    const file = join(cluster.dataDirOf(audited), 'audit.log');
    const lines = await until('audit lines', async () => {
      if (!existsSync(file)) return null;
      const parsed = readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
      return parsed.some((l) => l['action'] === 'authEnable') ? parsed : null;
    });
    expect(lines.find((l) => l['action'] === 'roleGrant')).toMatchObject({ user: null, outcome: 'ok', source: expect.stringMatching(/^127\.0\.0\.1:\d+$/), target: { role: 'a-reader', path: '/a' } });
    expect(lines.find((l) => l['action'] === 'authenticate' && l['outcome'] === 'refused' && l['user'] === 'alice')).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'wrong user or password' });
    expect(lines.find((l) => l['action'] === 'authenticate' && l['outcome'] === 'ok')).toMatchObject({ source: expect.stringMatching(/^127\.0\.0\.1:/) });
    expect(lines.find((l) => l['action'] === 'denied' && l['user'] === 'alice')).toMatchObject({ code: 'PERMISSION_DENIED', target: { type: expect.any(String) } });
    expect(JSON.stringify(lines)).not.toContain(PASSWORDS['alice']);
  });

  it('serves the client library and the CLI with credentials: re-authenticating past a token\'s expiry, refusing a wrong password', async () => {
    const endpoints = cluster.members.filter((m) => m.process !== null).map((m) => m.clientUrl).join(',');
    const client = connect({ endpoints, auth: { user: 'alice', password: PASSWORDS['alice']! }, timeoutMs: 15_000 });
    try {
      expect(await client.get('/a')).toMatchObject({ path: '/a' });
      await expect(client.put('/a', 'no')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      // A token issued now runs out when the client's does (4 s): past it, the client logs in again by itself.
      const probe = await login(leader, 'alice');
      const token = (await probe.request('authenticate', { user: 'alice', password: PASSWORDS['alice'] }))['token'] as string;
      const other = await ProtocolClient.connect(cluster.member(leader).clientUrl);
      await until('the token expires', async () => (code(await other.request('authenticate', { token })) === 'UNAUTHENTICATED' ? true : null));
      expect(await client.get('/a')).toMatchObject({ path: '/a' });
      probe.close();
      other.close();
    } finally {
      await client.close();
    }
    const read = await runCli(['--user', `alice:${PASSWORDS['alice']!}`, '-o', 'json', 'get', '/a'], { endpoints });
    expect(read.code, read.stderr).toBe(0);
    const wrong = await runCli(['--user', 'alice:wrong', 'get', '/a'], { endpoints });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/UNAUTHENTICATED/);
    const users = await runCli(['--user', 'root', '-o', 'json', 'user', 'list'], { endpoints, env: { WARDEN_PASSWORD: PASSWORDS['root']! } });
    expect(users.code, users.stderr).toBe(0);
    expect(users.stdout).toContain('alice');
    const denied = await runCli(['--user', `alice:${PASSWORDS['alice']!}`, 'role', 'list'], { endpoints });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/PERMISSION_DENIED/);
  });

  it('holds back a flood of 1,000 wrong passwords without slowing another user', async () => {
    const bob = await login(follower, 'bob');
    const attacker = await ProtocolClient.connect(cluster.member(follower).clientUrl);
    const flood = Promise.all(Array.from({ length: 1_000 }, (_, i) => attacker.request('authenticate', { user: 'alice', password: `guess-${i}` }, 60_000)));
    const reads = [];
    for (let i = 0; i < 200; i++) reads.push(await bob.request('get', { path: '/b' }));
    const answers = await flood;
    expect(reads.every((r) => r['ok'] === true)).toBe(true);
    const codes = answers.map(code);
    expect(codes.every((c) => c === 'UNAUTHENTICATED' || c === 'RESOURCE_EXHAUSTED')).toBe(true);
    // Most guesses never reached a hash: the throttle refused them at once.
    expect(codes.filter((c) => c === 'RESOURCE_EXHAUSTED').length).toBeGreaterThan(900);
    attacker.close();
    bob.close();
  });
});
