/**
 * The lock recipes against a real 3-member cluster (processes): Lock (fair queue, no herd,
 * timeouts and aborts that leave nothing behind — even when the cleanup's first delete fails:
 * swept in the background on a shared session, or by closing the recipe's own session —,
 * lock-delay, fenced writes), ReadWriteLock and
 * Semaphore — and the race: 10 contender processes increment one counter only while holding the
 * lock, each increment a fenced read-modify-write, while the leader is SIGKILLed (and restarted)
 * and one holder is SIGSTOPped past its session TTL and then continued. The cluster's own history
 * (a watch from revision 1) is the judge: the counter went up by one per acknowledged write, every
 * write came from the head of the queue, no hold began before every earlier one ended, and every
 * write the stale holder tried was refused.
 *
 * Must never: synchronise by sleeping (waits are on events, each with a bound); leave a process
 * behind (contenders are killed in afterAll if still alive).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmp, connect, op, WardenError, type WardenClient, type WatchEvent } from '../../client/index.js';
import { Lock, RELEASED_MARKER } from '../../client/recipes/lock.js';
import { BLOCKER_WATCHES_MAX, LockLostError } from '../../client/recipes/queue.js';
import { ReadWriteLock } from '../../client/recipes/rw-lock.js';
import { Semaphore } from '../../client/recipes/semaphore.js';
import type { Cluster } from '../integration/cluster.js';
import { clusterForSuite } from '../integration/suite.js';
import { contend, queueWatcher, spied, Waiters, within } from './lock-helpers.js';

/** A client whose deletes and listings fail while `broken.on` (the cluster out of reach for the cleanup only). */
function flaky(real: WardenClient): { client: WardenClient; broken: { on: boolean } } {
  const broken = { on: false };
  const proxy = new Proxy(real, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      const bound = (value as (...args: unknown[]) => unknown).bind(target);
      if (property !== 'delete' && property !== 'children') return bound;
      return (...args: unknown[]) => (broken.on ? Promise.reject(new WardenError('UNAVAILABLE', `${String(property)}: unreachable (the test broke it)`)) : bound(...args));
    },
  });
  return { client: proxy, broken };
}

const CONTENDER = fileURLToPath(new URL('./lock-contender.ts', import.meta.url));
const TTL_MS = 2_000; // the test cluster's minimum (--tick-ms 50)

let cluster: Cluster;
clusterForSuite((c) => (cluster = c));

let client: WardenClient;
const endpoints = (): string => cluster.members.map((m) => m.clientUrl).join(',');
beforeAll(() => {
  client = connect({ endpoints: endpoints() });
});
afterAll(async () => {
  await client?.close();
});

describe('Lock', () => {
  it('grants in queue order (fair) and each waiter watches only its predecessor (no herd)', async () => {
    const dir = '/fair';
    const queue = await queueWatcher(client, dir);
    const holder = new Lock(client, dir, { ttlMs: TTL_MS });
    await holder.acquire();
    const seen = new Waiters();
    const waiters = Array.from({ length: 4 }, () => spied(client, seen));
    const locks = waiters.map((w) => new Lock(w.client, dir, { ttlMs: TTL_MS }));
    const order: number[] = [];
    const granted: Promise<void>[] = [];
    for (const [i, lock] of locks.entries()) {
      granted.push(lock.acquire().then(() => void order.push(i)));
      await queue.until(i + 2, `waiter ${i} queued`);
    }
    // Every waiter watches exactly one node: the entry just ahead of its own.
    const names = queue.names().sort((a, b) => Number(a.slice(-10)) - Number(b.slice(-10)));
    await seen.until(() => waiters.every((w) => w.watched.length > 0), 'every waiter watching');
    for (const [i, w] of waiters.entries()) expect(w.watched).toEqual([`${dir}/${names[i]}`]);
    const listingsBefore = waiters.map((w) => w.listings());

    await holder.release();
    await within(granted[0]!, 'waiter 0 granted');
    // The release woke waiter 0 alone: nobody else listed the queue again or moved its watch.
    await client.get(dir); // a round trip on the shared socket, after any events of the release
    expect(waiters.slice(1).map((w) => w.listings())).toEqual(listingsBefore.slice(1));
    expect(waiters.slice(1).map((w) => w.watched.length)).toEqual([1, 1, 1]);

    for (let i = 0; i < locks.length; i++) {
      await within(granted[i]!, `waiter ${i} granted`);
      expect(locks[i]!.held).toBe(true);
      await locks[i]!.release();
    }
    expect(order).toEqual([0, 1, 2, 3]);
    for (const lock of [holder, ...locks]) await lock.close();
    await queue.until(0, 'all released');
    await queue.stop();
  });

  it('an acquire that times out or is aborted leaves no queue entry behind', async () => {
    const dir = '/giveup';
    const queue = await queueWatcher(client, dir);
    const session = await client.session({ ttlMs: TTL_MS });
    const holder = new Lock(client, dir, { session });
    await holder.acquire();
    const waiter = new Lock(client, dir, { session }); // the same lease: only a delete can remove its entry

    const timedOut = await waiter.acquire({ timeoutMs: 300 }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(WardenError);
    expect((timedOut as WardenError).code).toBe('UNAVAILABLE');
    expect((timedOut as WardenError).message).toMatch(/within 300 ms/);
    await queue.until(1, 'the timed-out entry removed');

    const controller = new AbortController();
    const aborted = waiter.acquire({ signal: controller.signal }).catch((e: unknown) => e);
    await queue.until(2, 'the second waiter queued');
    controller.abort();
    expect(((await aborted) as WardenError).code).toBe('UNAVAILABLE');
    await queue.until(1, 'the aborted entry removed');
    expect(await client.children(dir)).toEqual([holder.entryPath!.slice(dir.length + 1)]);
    expect(session.lost).toBe(false);
    expect(waiter.held).toBe(false);

    await holder.release();
    await session.close();
    await queue.stop();
  });

  it('an entry whose removal failed does not stay in line: swept in the background (shared session), or its own session closed', async () => {
    const dir = '/stray';
    const queue = await queueWatcher(client, dir);
    const session = await client.session({ ttlMs: TTL_MS });
    const holder = new Lock(client, dir, { session });
    await holder.acquire();

    // A shared session (kept alive): the delete and the sweep fail, so the entry is swept later.
    const shared = flaky(client);
    const waiter = new Lock(shared.client, dir, { session });
    const stranded: WardenError[] = [];
    waiter.on('stranded', (error) => stranded.push(error));
    const controller = new AbortController();
    const aborted = waiter.acquire({ signal: controller.signal }).catch((e: unknown) => e);
    await queue.until(2, 'the waiter queued');
    shared.broken.on = true;
    controller.abort();
    expect(((await aborted) as WardenError).code).toBe('UNAVAILABLE');
    expect(await client.children(dir)).toHaveLength(2); // not removed yet: the cluster was "out of reach"
    shared.broken.on = false;
    await queue.until(1, 'the entry swept in the background');
    expect(session.lost).toBe(false);

    // The recipe's own session: closed at once (its lease takes the entry); the next acquire makes a new one.
    const own = flaky(client);
    const ownLock = new Lock(own.client, dir, { ttlMs: TTL_MS });
    const ownController = new AbortController();
    const ownAborted = ownLock.acquire({ signal: ownController.signal }).catch((e: unknown) => e);
    await queue.until(2, 'the own-session waiter queued');
    const firstLease = (await client.get(`${dir}/${queue.names().find((n) => n !== holder.entryPath!.slice(dir.length + 1))!}`))!.stat.lease;
    own.broken.on = true;
    ownController.abort();
    expect(((await ownAborted) as WardenError).code).toBe('UNAVAILABLE');
    await queue.until(1, 'the entry gone with its own session');
    own.broken.on = false;
    const granted = ownLock.acquire();
    await holder.release();
    await within(granted, 'granted on a new session');
    expect((await client.get(ownLock.entryPath!))!.stat.lease).not.toBe(firstLease);
    expect(stranded).toEqual([]);
    await ownLock.close();
    await session.close();
    await queue.until(0, 'all gone');
    await queue.stop();
  });

  it('fences writes: a holder whose session is gone cannot write, through fencedPut, fencedTxn or guard', async () => {
    const dir = '/fence';
    const session = await client.session({ ttlMs: TTL_MS });
    const lock = new Lock(client, dir, { session });
    const token = await lock.acquire();
    expect(token).toBe((await client.get(lock.entryPath!))!.stat.createRevision);
    const first = await lock.fencedPut('/fence-data', 'one');
    expect((await client.get('/fence-data'))!.value).toBe('one');
    // Its own compares failing is not a lost lock: succeeded false, and no extra result shows.
    const declined = await lock.fencedTxn().if(cmp.value('/fence-data', '=', 'other')).do(op.put('/fence-data', 'x')).else(op.get('/fence-data')).commit();
    expect(declined.succeeded).toBe(false);
    expect(declined.results).toHaveLength(1);

    const lost = new Promise<WardenError>((resolve) => lock.on('lost', resolve));
    await client.leases.revoke(session.lease); // the holder's lease ends under it (as an expiry would)
    const refused = await lock.fencedPut('/fence-data', 'stale').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LockLostError);
    expect((refused as LockLostError).token).toBe(token);
    const raw = await lock.guard(client.txn().do(op.put('/fence-data', 'stale'))).commit().catch((e: unknown) => e);
    expect((raw as WardenError).code).toBe('NO_NODE');
    const node = await client.get('/fence-data');
    expect(node!.value).toBe('one');
    expect(node!.stat.modRevision).toBe(first.revision);
    await lost;
    expect(lock.held).toBe(false);
    expect(lock.signal.aborted).toBe(true);
    expect(await lock.release()).toBeNull();
    await session.close();
  });

  it('lock-delay: no grant for lockDelayMs after a holder is lost, but none after a clean release', async () => {
    const dir = '/delay';
    const delayMs = 3_000;
    const queue = await queueWatcher(client, dir);
    const sessionA = await client.session({ ttlMs: TTL_MS });
    const a = new Lock(client, dir, { session: sessionA });
    await a.acquire();
    const b = new Lock(client, dir, { ttlMs: TTL_MS, lockDelayMs: delayMs });
    const bGranted = b.acquire().then(() => Date.now());
    await queue.until(2, 'b queued');
    const lostAt = Date.now();
    await client.leases.revoke(sessionA.lease); // a's node goes with its lease: not a release
    expect((await within(bGranted, 'b granted')) - lostAt).toBeGreaterThanOrEqual(delayMs);

    // A clean release: the next waiter is granted at once.
    const sessionC = await client.session({ ttlMs: TTL_MS });
    const c = new Lock(client, dir, { session: sessionC, lockDelayMs: delayMs });
    const cGranted = c.acquire().then(() => Date.now());
    await queue.until(2, 'c queued');
    const releasedAt = Date.now();
    expect(await b.release()).toBeGreaterThan(0);
    expect((await within(cGranted, 'c granted')) - releasedAt).toBeLessThan(delayMs);
    expect((await client.get(`${dir}/${RELEASED_MARKER}`))!.value).toMatch(/^lock-/);

    // A loss nobody was waiting on delays the next fresh contender too.
    await client.leases.revoke(sessionC.lease);
    await queue.until(0, 'c lost');
    const d = new Lock(client, dir, { ttlMs: TTL_MS, lockDelayMs: delayMs });
    const freshAt = Date.now();
    await within(d.acquire(), 'd granted');
    expect(Date.now() - freshAt).toBeGreaterThanOrEqual(delayMs);
    for (const lock of [a, b, c, d]) await lock.close();
    await sessionA.close();
    await sessionC.close();
    await queue.stop();
  });
});

describe('ReadWriteLock', () => {
  it('readers share; a writer waits for all before it; a reader after a waiting writer waits for it', async () => {
    const dir = '/rw';
    const seen = new Waiters();
    const locks: ReadWriteLock[] = [];
    const rw = (c: WardenClient): ReadWriteLock => (locks.push(new ReadWriteLock(c, dir, { ttlMs: TTL_MS })), locks[locks.length - 1]!);
    const r1 = await contend(client, (c) => rw(c).readLock.acquire(), seen, 'reader 1');
    const r2 = await contend(client, (c) => rw(c).readLock.acquire(), seen, 'reader 2');
    expect([r1.state, r2.state]).toEqual(['granted', 'granted']);
    expect(locks[0]!.readLock.held && locks[1]!.readLock.held).toBe(true);
    const w = await contend(client, (c) => rw(c).writeLock.acquire(), seen, 'writer');
    expect(w.state).toBe('waiting');
    expect(w.watched).toEqual([locks[1]!.readLock.entryPath]); // its predecessor only
    const r3 = await contend(client, (c) => rw(c).readLock.acquire(), seen, 'late reader');
    expect(r3.state).toBe('waiting'); // it came after a waiting writer
    const writerEntry = (await client.children(dir)).find((n) => n.startsWith('write-'));
    expect(r3.watched).toEqual([`${dir}/${writerEntry}`]); // the nearest writer ahead, not the readers

    await locks[0]!.readLock.release();
    expect(locks[2]!.writeLock.held).toBe(false);
    await locks[1]!.readLock.release();
    const tw = await within(w.granted, 'writer granted');
    expect(locks[3]!.readLock.held).toBe(false);
    await locks[2]!.writeLock.fencedPut('/rw-data', 'written');
    await locks[2]!.writeLock.release();
    const t3 = await within(r3.granted, 'late reader granted');
    const tokens = [await r1.granted, await r2.granted, tw, t3];
    expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
    for (const lock of locks) await lock.close();
    expect(await client.children(dir)).toEqual([]);
  });
});

describe('Semaphore', () => {
  it('lets `permits` hold at once; a waiter watches the `permits` entries just ahead and wakes when any goes', async () => {
    const dir = '/sem';
    const seen = new Waiters();
    const semaphores: Semaphore[] = [];
    const sem = (c: WardenClient): Semaphore => (semaphores.push(new Semaphore(c, dir, 2, { ttlMs: TTL_MS })), semaphores[semaphores.length - 1]!);
    const s1 = await contend(client, (c) => sem(c).acquire(), seen, 's1');
    const s2 = await contend(client, (c) => sem(c).acquire(), seen, 's2');
    expect([s1.state, s2.state]).toEqual(['granted', 'granted']);
    const s3 = await contend(client, (c) => sem(c).acquire(), seen, 's3');
    expect(s3.state).toBe('waiting');
    expect(s3.watched).toEqual([semaphores[0]!.entryPath, semaphores[1]!.entryPath]);
    // Released: the entry two ahead of s3, not its nearest — s3 wakes all the same.
    await semaphores[0]!.release();
    await within(s3.granted, 's3 granted');
    const s4 = await contend(client, (c) => sem(c).acquire(), seen, 's4');
    expect(s4.state).toBe('waiting');
    await semaphores[2]!.release();
    await within(s4.granted, 's4 granted');
    expect(semaphores.map((s) => s.held)).toEqual([false, true, false, true]);
    for (const s of semaphores) await s.close();
    expect(await client.children(dir)).toEqual([]);
  });
});

describe('Semaphore, wide', () => {
  it(`with more than ${BLOCKER_WATCHES_MAX} permits a waiter watches the queue's children (one watch) and wakes when any holder goes`, async () => {
    const dir = '/sem-wide';
    const permits = BLOCKER_WATCHES_MAX + 1;
    const session = await client.session({ ttlMs: TTL_MS });
    const holders = Array.from({ length: permits }, () => new Semaphore(client, dir, permits, { session }));
    for (const holder of holders) await holder.acquire();
    const seen = new Waiters();
    let waiter: Semaphore | undefined;
    const last = await contend(client, (c) => (waiter = new Semaphore(c, dir, permits, { session })).acquire(), seen, 'the waiter');
    expect(last.state).toBe('waiting');
    expect(last.watched).toEqual([dir]);
    await holders[3]!.release();
    await within(last.granted, 'the waiter granted');
    expect([...holders, waiter!].filter((s) => s.held)).toHaveLength(permits);
    await session.close();
  });
});

interface Line {
  readonly event: string;
  readonly name: string;
  readonly token?: number;
  readonly count?: number;
  readonly revision?: number | null;
  readonly how?: string;
  readonly at?: number;
}

describe('the race: 10 contender processes, a leader killed, a holder frozen past its TTL', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('counts every acknowledged increment once, never lets two holders overlap, and refuses every stale write', async () => {
    const base = '/race';
    const lockPath = `${base}/lock`;
    const counter = `${base}/counter`;
    const contenders = 10;
    const iterations = 6;
    const lines: Line[] = [];
    const waiters = new Waiters();
    const exits: Promise<number | null>[] = [];
    const startedAt = Date.now();
    for (let i = 0; i < contenders; i++) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', CONTENDER, '--endpoints', endpoints(), '--name', `c${i}`, '--lock', lockPath, '--counter', counter, '--iterations', String(iterations), '--ttl-ms', String(TTL_MS), ...(i === 0 ? ['--pause-at', '2'] : [])],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push(child);
      let buffered = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          lines.push({ ...(JSON.parse(buffered.slice(0, newline)) as Line), at: Date.now() - startedAt });
          buffered = buffered.slice(newline + 1);
          waiters.changed();
        }
      });
      const stderr: string[] = [];
      child.stderr!.on('data', (chunk: Buffer) => void stderr.push(chunk.toString()));
      exits.push(new Promise((resolve) => child.once('close', (code) => {
        if (code !== 0) console.error(`contender c${i} exited ${code}: ${stderr.join('').slice(-2000)}\n${lines.filter((l) => l.name === `c${i}`).map((l) => JSON.stringify(l)).join('\n')}`);
        resolve(code);
      })));
    }
    const acked = (): Line[] => lines.filter((l) => l.event === 'write');

    // The leader dies mid-run (SIGKILL) and comes back once the others agree on a new one.
    const leaderKilled = (async () => {
      await waiters.until(() => acked().length >= 12, '12 acknowledged increments');
      const leader = await cluster.leader();
      await cluster.kill(leader, 'SIGKILL');
      await cluster.leader();
      cluster.launch(cluster.member(leader));
      return leader;
    })();

    // c0 stops itself while holding; it is continued once another contender holds the lock —
    // proof that its lease expired and the queue moved on.
    const frozen = (async () => {
      await waiters.until(() => lines.some((l) => l.event === 'pausing'), 'c0 pausing', 45_000);
      const paused = lines.find((l) => l.event === 'pausing')!;
      await waiters.until(() => lines.some((l) => l.event === 'acquired' && l.name !== 'c0' && l.token! > paused.token!), 'another holder after c0 froze', 45_000);
      children[0]!.kill('SIGCONT');
      return paused.token!;
    })();

    const [killed, staleToken] = await Promise.all([leaderKilled, frozen]);
    expect(killed).toMatch(/^n\d$/);
    const codes = await within(Promise.all(exits), 'every contender done', 60_000);
    expect(codes).toEqual(Array(contenders).fill(0));
    expect(lines.filter((l) => l.event === 'error' || l.event === 'release-failed')).toEqual([]);

    // The cluster's history of the race, from revision 1 up to a sentinel written now.
    await client.put(`${base}/end`, '');
    const history: WatchEvent[] = [];
    const replay = client.watch(base, { scope: 'subtree', fromRevision: 1 });
    await within((async () => {
      for await (const event of replay) {
        history.push(event);
        if (event.path === `${base}/end`) return;
      }
    })(), 'the race history replayed').finally(() => replay.cancel());
    const writes = history.filter((e) => e.path === counter && e.type !== 'delete').map((e) => ({ revision: e.revision, count: Number(e.node!.value.split(' ')[0]), token: Number(e.node!.value.split(' ')[1]) }));
    const byPath = new Map<string, { created: number; deleted: number }>();
    for (const event of history) {
      if (!event.path.startsWith(`${lockPath}/lock-`)) continue;
      if (event.type === 'create') byPath.set(event.path, { created: event.revision, deleted: Number.POSITIVE_INFINITY });
      else if (event.type === 'delete') byPath.get(event.path)!.deleted = event.revision;
    }
    const entries = new Map([...byPath.values()].map((e) => [e.created, e] as const)); // by token (create revision)

    // LOCK_RACE_DUMP=1 prints the race as the contenders told it (ms since their spawn in `at`).
    if (process.env['LOCK_RACE_DUMP'] !== undefined) console.log(lines.map((l) => JSON.stringify(l)).join('\n'));
    // 1. The final count equals the acknowledged increments; the counter went up by one each time.
    const unknown = lines.filter((l) => l.event === 'unknown');
    const final = await client.get(counter);
    expect(writes.map((w) => w.count)).toEqual(writes.map((_, i) => i + 1));
    expect(Number(final!.value.split(' ')[0])).toBe(acked().length + unknown.filter((u) => writes.some((w) => w.token === u.token)).length);
    for (const line of acked()) expect(writes.filter((w) => w.token === line.token && w.count === line.count && w.revision === line.revision)).toHaveLength(1);

    // 2. Every write came from the head of the queue: its entry alive, no earlier entry alive.
    for (const write of writes) {
      const own = entries.get(write.token)!;
      expect(own.created <= write.revision && write.revision < own.deleted).toBe(true);
      for (const [token, entry] of entries) if (token < write.token) expect(entry.deleted).toBeLessThan(write.revision);
    }
    // No hold began before every earlier one had ended (tokens in order, no overlap).
    const acquisitions = lines.filter((l) => l.event === 'acquired');
    expect(new Set(acquisitions.map((a) => a.token)).size).toBe(acquisitions.length);
    for (const acquisition of acquisitions) {
      for (const [token, entry] of entries) if (token < acquisition.token!) expect(entry.deleted).toBeLessThanOrEqual(acquisition.revision!);
    }
    expect(writes.map((w) => w.token)).toEqual([...writes.map((w) => w.token)].sort((a, b) => a - b));

    // 3. The frozen holder resumed and tried its stale write twice; both were refused.
    const stale = lines.filter((l) => l.name === 'c0' && l.token === staleToken && ['write', 'refused', 'unknown'].includes(l.event));
    expect(stale.map((l) => `${l.event}:${l.how}`)).toEqual(['refused:fencedPut', 'refused:guard']);
    expect(writes.some((w) => w.token === staleToken)).toBe(false);
    expect(lines.some((l) => l.name === 'c0' && l.event === 'lost' && l.token === staleToken)).toBe(true);
    expect(lines.filter((l) => l.event === 'done')).toHaveLength(contenders);
  });
});
