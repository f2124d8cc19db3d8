/**
 * Auth attacked, on a cluster with auth enabled (the canary authenticates as its own user): a
 * flood of wrong passwords from many connections, a flood of password hashing by an admin, an
 * unauthenticated flood of every request type, forged tokens, a flood of writes a user may not
 * make, and a watch of / by a user holding a thousand roles and ten thousand prefixes while the
 * cluster takes writes everywhere. Each must be refused with its code, apply nothing it may not,
 * and leave the arena's invariants standing (arena.ts): the canary works, no member stalls, the
 * leader stays.
 *
 * Must never: sleep as synchronisation; leave a process, connection or folder behind; use a
 * server module.
 */

import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { arena } from './arena.js';
import { b64, codeOf, pipeline, until, type Answer, type Conn } from './conn.js';

const CANARY = { user: 'canary', password: 'canary-pw' };
const a = arena({ canaryAuth: CANARY });
let root: Conn;

/**
 * A connection to `url` authenticated as `user`. Every client here shares 127.0.0.1, so after a
 * flood of wrong passwords the address is held back (up to 10 s): the login waits it out, bounded.
 */
async function as(user: string, password: string, url = a.followerUrl): Promise<Conn> {
  const conn = await a.open(url);
  let answer: Answer = {};
  const ok = await until(async () => {
    answer = await conn.call('authenticate', { user, password }, 30_000);
    return codeOf(answer) !== 'RESOURCE_EXHAUSTED';
  }, 30_000, 250);
  if (!ok || codeOf(answer) !== null) throw new Error(`login as ${user}: ${JSON.stringify(answer)}`);
  return conn;
}

async function must(conn: Conn, type: string, fields: Record<string, unknown>): Promise<Answer> {
  const answer = await conn.call(type, fields, 60_000);
  if (codeOf(answer) !== null) throw new Error(`${type} ${JSON.stringify(fields).slice(0, 120)}: ${JSON.stringify(answer).slice(0, 300)}`);
  return answer;
}

const revisionOf = async (conn: Conn): Promise<number> => (await must(conn, 'get', { path: '/' }))['revision'] as number;

beforeAll(async () => {
  const setup = await a.open(a.leaderUrl);
  for (const [type, fields] of [
    ['userAdd', { name: 'root', password: 'root-pw' }],
    ['userAdd', { name: CANARY.user, password: CANARY.password }],
    ['roleAdd', { name: 'canary' }],
    ['roleGrant', { name: 'canary', path: '/canary', access: 'write' }],
    ['userGrantRole', { name: CANARY.user, role: 'canary' }],
    ['userAdd', { name: 'alice', password: 'alice-pw' }],
    ['roleAdd', { name: 'a-reader' }],
    ['roleGrant', { name: 'a-reader', path: '/a', access: 'read' }],
    ['userGrantRole', { name: 'alice', role: 'a-reader' }],
    ['create', { path: '/a' }],
    ['create', { path: '/b' }],
    ['authEnable', {}],
  ] as const) {
    await must(setup, type, fields);
  }
  // The canary notices auth is on, authenticates, and is back to ok answers before any case.
  const back = await until(async () => (await a.monitor.snapshot(performance.timeOrigin + performance.now() - 500)).canary.some(([, , , code]) => code === null), 30_000, 100);
  if (!back) throw new Error('the canary did not authenticate after auth was enabled');
}, 120_000);

describe('auth under attack', () => {
  // The arena closes a test's connections after it: each test logs root in anew.
  beforeEach(async () => {
    root = await as('root', 'root-pw', a.leaderUrl);
  }, 60_000);

  it('holds back 1,000 wrong passwords from 20 connections, hashing few of them', async () => {
    const attackers = await Promise.all(Array.from({ length: 20 }, () => a.open(a.followerUrl)));
    const results = await a.underAttack('wrong-password flood', () =>
      Promise.all(attackers.map((conn, c) => pipeline(conn, 50, 50, (i) => ['authenticate', { user: i % 2 === 0 ? 'alice' : 'root', password: `guess-${c}-${i}` }], { timeoutMs: 60_000 }))),
    );
    const codes: Record<string, number> = {};
    for (const r of results) for (const [code, n] of Object.entries(r.codes)) codes[code] = (codes[code] ?? 0) + n;
    expect(Object.keys(codes).sort()).toEqual(expect.arrayContaining(['RESOURCE_EXHAUSTED']));
    expect(Object.keys(codes).every((code) => code === 'UNAUTHENTICATED' || code === 'RESOURCE_EXHAUSTED')).toBe(true);
    expect(results.reduce((n, r) => n + r.ok, 0)).toBe(0);
    expect(codes['RESOURCE_EXHAUSTED']!).toBeGreaterThan(900);
  });

  it('keeps an admin adding users to a bounded hashing queue, the disk never starved', async () => {
    const result = await a.underAttack('password hashing flood', () => pipeline(root, 300, 300, (i) => ['userAdd', { name: `flood${i}`, password: `pw-${i}` }], { timeoutMs: 60_000 }));
    expect(Object.keys(result.codes).every((code) => code === 'RESOURCE_EXHAUSTED')).toBe(true);
    expect(result.ok).toBeGreaterThan(0);
  });

  it('refuses every request type from an unauthenticated connection, applying nothing', async () => {
    const stranger = await a.open(a.followerUrl);
    await a.monitor.canaryWrites(false); // the canary reads only: the revision must not move
    const before = await revisionOf(root);
    const types: [string, Record<string, unknown>][] = [
      ['put', { path: '/b/x', value: b64('x') }],
      ['create', { path: '/b/y' }],
      ['delete', { path: '/b', recursive: true }],
      ['txn', { success: [{ op: 'put', path: '/b/z', value: b64('z') }] }],
      ['get', { path: '/b' }],
      ['range', { path: '/', limit: 100 }],
      ['children', { path: '/' }],
      ['watch', { watchId: 1, path: '/', scope: 'subtree' }],
      ['compact', { revision: 1 }],
      ['leaseGrant', { ttlMs: 60_000 }],
      ['leaseList', {}],
      ['register', {}],
      ['snapshot', {}],
      ['userAdd', { name: 'mallory', password: 'x' }],
      ['authDisable', {}],
      ['roleGrant', { name: 'a-reader', path: '/', access: 'admin' }],
    ];
    const result = await a.underAttack('unauthenticated flood', () => pipeline(stranger, 2_000, 500, (i) => types[i % types.length]!));
    expect(result.codes).toEqual({ UNAUTHENTICATED: 2_000 });
    expect(await revisionOf(root)).toBe(before);
    await a.monitor.canaryWrites(true);
  });

  it('refuses 1,000 forged and garbage tokens, holding most back unread', async () => {
    const forger = await a.open(a.followerUrl);
    const token = (await must(await as('root', 'root-pw'), 'authenticate', { user: 'root', password: 'root-pw' }))['token'] as string;
    const [prefix, payload] = token.split('.') as [string, string];
    const result = await a.underAttack('forged tokens', () =>
      pipeline(forger, 1_000, 200, (i) => ['authenticate', { token: i % 2 === 0 ? `${prefix}.${payload}.${Buffer.from(`sig${i}`).toString('base64url')}` : `garbage-${i}` }]),
    );
    // Each failure delays the address's next try: most are held back before any signature is checked.
    expect(Object.keys(result.codes).every((code) => code === 'UNAUTHENTICATED' || code === 'RESOURCE_EXHAUSTED')).toBe(true);
    expect(result.codes['RESOURCE_EXHAUSTED']!).toBeGreaterThan(900);
    expect(codeOf(await forger.call('get', { path: '/a' }))).toBe('UNAUTHENTICATED');
  });

  it('refuses 2,000 writes a reader may not make, changing nothing', async () => {
    const alice = await as('alice', 'alice-pw');
    await a.monitor.canaryWrites(false);
    const before = await revisionOf(root);
    const result = await a.underAttack('denied write flood', () =>
      pipeline(alice, 2_000, 500, (i) => (i % 3 === 0 ? ['put', { path: `/a/x${i}`, value: b64('x') }] : i % 3 === 1 ? ['delete', { path: '/b', recursive: true }] : ['txn', { success: [{ op: 'get', path: '/a' }], failure: [{ op: 'put', path: '/b', value: b64('b') }] }])),
    );
    expect(result.codes).toEqual({ PERMISSION_DENIED: 2_000 });
    expect(await revisionOf(root)).toBe(before);
    await a.monitor.canaryWrites(true);
  });

  it('filters a watch of / for a user of 1,000 roles and 10,000 prefixes while 4,000 writes land everywhere', async () => {
    await must(root, 'userAdd', { name: 'many', password: 'many-pw' });
    for (let r = 0; r < 1_000; r += 50) {
      await pipeline(root, 50, 50, (k) => ['roleAdd', { name: `role${r + k}` }]);
      const grants = await pipeline(root, 500, 100, (k) => ['roleGrant', { name: `role${r + Math.floor(k / 10)}`, path: `/t${r + Math.floor(k / 10)}/p${k % 10}`, access: 'read' }]);
      if (grants.failed > 0) throw new Error(`grants failed: ${JSON.stringify(grants.codes)}`);
      await pipeline(root, 50, 50, (k) => ['userGrantRole', { name: 'many', role: `role${r + k}` }]);
    }
    const many = await as('many', 'many-pw');
    const events: string[] = [];
    many.onFrame = (frame) => {
      for (const event of (frame['events'] as { path: string }[] | undefined) ?? []) events.push(event.path);
    };
    await must(many, 'watch', { watchId: 7, path: '/', scope: 'subtree' });
    await a.underAttack('filtered watch under writes', () => pipeline(root, 4_000, 256, (i) => ['put', { path: i % 2 === 0 ? `/t${i % 1_000}/p${i % 10}` : `/b/k${i % 100}`, value: b64(`v${i}`) }]));
    await until(() => events.length >= 2_000, 30_000, 50);
    expect(events.length).toBe(2_000);
    expect(events.every((path) => /^\/t\d+\/p\d$/.test(path))).toBe(true);
  });
});
