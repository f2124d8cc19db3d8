/**
 * The Election recipe against a real 3-member cluster (processes, tick 50 ms): candidates are
 * elected in line, each with a greater fencing token; observe() sees every change of leader;
 * a campaign that times out or is aborted leaves no candidacy behind; a resign (or a failed
 * campaign's withdrawal) whose delete failed is done by the next resign; a leader whose node is
 * deleted or whose lease is revoked hears `lost` and its proclaim is refused; a deposed leader's
 * guarded writes (guard / fencedTxn / fencedPut) are refused whole. Then the safety
 * run: four clients campaign, proclaim and resign while cluster members are SIGKILLed and
 * restarted and a leader's lease is revoked; a raw watch of the election records the truth
 * (which candidate node was first in line at every revision), and the run is judged against it:
 * every term a client claimed was a real term (its token the node's createRevision), tokens
 * only grow, every proclaim that succeeded landed while its term was the real one (so no two
 * terms overlap in what they wrote), every term ended (resigned or lost), and observe() saw
 * exactly the real sequence of leaders.
 *
 * Must never: wait without a bound; sleep to synchronise; pass if the behaviour it names breaks.
 */

import { afterAll, describe, expect, it } from 'vitest';
import { cmp, connect, op, WardenError, type Session, type WardenClient, type WatchEvent } from '../../client/index.js';
import { Election, leaderOf, type Leader, type Term } from '../../client/recipes/election.js';
import type { Cluster } from '../integration/cluster.js';
import { clusterForSuite } from '../integration/suite.js';

let cluster: Cluster;
clusterForSuite((started) => (cluster = started));

const TTL_MS = 3_000;
const clients: WardenClient[] = [];
afterAll(async () => {
  for (const client of clients) await client.close();
});

function client(): WardenClient {
  const made = connect({ endpoints: cluster.members.map((m) => m.clientUrl), timeoutMs: 20_000 });
  clients.push(made);
  return made;
}

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects what an async iterable yields, and lets a test wait (bounded) for a condition on it. */
class Collector<T> {
  readonly items: T[] = [];
  private waiters: (() => void)[] = [];
  failure: unknown = null;
  readonly done: Promise<void>;

  constructor(source: AsyncIterable<T>) {
    this.done = (async () => {
      try {
        for await (const item of source) {
          this.items.push(item);
          for (const wake of this.waiters.splice(0)) wake();
        }
      } catch (error) {
        this.failure = error;
      }
    })();
  }

  async until(what: string, condition: (items: readonly T[]) => boolean, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition(this.items)) {
      if (this.failure !== null) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`not within ${ms} ms: ${what}; saw ${JSON.stringify(this.items)}`);
      await within(new Promise<void>((resolve) => this.waiters.push(resolve)), left, what).catch(() => undefined);
    }
  }
}

/** Waits (bounded, on the children watch) until `path` has `count` children: candidates in line. */
async function inLine(c: WardenClient, path: string, count: number, ms = 10_000): Promise<void> {
  const watch = c.watch(path, { scope: 'children' });
  try {
    await within(watch.started, ms, 'the watch starts');
    if ((await c.children(path)).length === count) return;
    await within((async () => {
      for await (const _event of watch) if ((await c.children(path)).length === count) return;
    })(), ms, `${count} in line under ${path}`);
  } finally {
    await watch.cancel();
  }
}

/** A client whose listings, txns and deletes fail while `broken.on` (the cluster out of reach for the cleanup only). */
function flaky(real: WardenClient): { client: WardenClient; broken: { on: boolean } } {
  const broken = { on: false };
  const failing = new Set<PropertyKey>(['range', 'children', 'txn', 'delete']);
  const proxy = new Proxy(real, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      const bound = (value as (...args: unknown[]) => unknown).bind(target);
      if (!failing.has(property)) return bound;
      return (...args: unknown[]) => {
        if (broken.on) throw new WardenError('UNAVAILABLE', `${String(property)}: unreachable (the test broke it)`);
        return bound(...args);
      };
    },
  });
  return { client: proxy, broken };
}

const shape = (leader: Leader | null): string | null => (leader === null ? null : `${leader.value}@${leader.token}`);

describe('Election', () => {
  it('elects candidates in line with growing tokens; observe() and leader() follow; proclaim changes the value', async () => {
    const path = '/it/election/basic';
    const watcher = client();
    const observer = new Election(watcher, path, await watcher.session({ ttlMs: TTL_MS }));
    const stop = new AbortController();
    const seen = new Collector(observer.observe({ signal: stop.signal }));
    await seen.until('the empty election', (items) => items.length === 1);
    expect(seen.items).toEqual([null]);

    const candidates = await Promise.all(['a', 'b', 'c'].map(async () => {
      const c = client();
      return new Election(c, path, await c.session({ ttlMs: TTL_MS }));
    }));
    const termA = await within(candidates[0]!.campaign('a'), 10_000, 'a elected');
    const pendingB = candidates[1]!.campaign('b');
    await inLine(watcher, path, 2); // b stands before c: the line is the order of arrival
    const pendingC = candidates[2]!.campaign('c');
    await inLine(watcher, path, 3);
    let bSettled = false;
    void pendingB.finally(() => (bSettled = true));
    expect(await observer.leader()).toEqual({ value: 'a', path: termA.path, token: termA.token });
    await candidates[0]!.proclaim('a2');
    expect((await observer.leader())?.value).toBe('a2');
    expect(bSettled).toBe(false);

    await candidates[0]!.resign();
    expect(termA.signal.aborted).toBe(true);
    expect(candidates[0]!.isLeader).toBe(false);
    const termB = await within(pendingB, 10_000, 'b elected');
    expect(termB.token).toBeGreaterThan(termA.token);
    await expect(candidates[0]!.proclaim('a3')).rejects.toMatchObject({ code: 'NO_NODE' });
    await candidates[1]!.resign();
    const termC = await within(pendingC, 10_000, 'c elected');
    expect(termC.token).toBeGreaterThan(termB.token);
    await candidates[2]!.resign();
    expect(await observer.leader()).toBeNull();

    await seen.until('every change', (items) => items.length === 6);
    expect(seen.items.map(shape)).toEqual([null, `a@${termA.token}`, `a2@${termA.token}`, `b@${termB.token}`, `c@${termC.token}`, null]);
    stop.abort();
    await within(seen.done, 5_000, 'observe ends on abort');
  });

  it('a campaign that times out or is aborted leaves no candidacy; resign stops a campaign', async () => {
    const path = '/it/election/withdraw';
    const make = async (): Promise<{ election: Election; session: Session; client: WardenClient }> => {
      const c = client();
      const session = await c.session({ ttlMs: TTL_MS });
      return { election: new Election(c, path, session), session, client: c };
    };
    const holder = await make();
    const term = await holder.election.campaign('holder');
    const late = await make();
    await expect(late.election.campaign('late', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const aborter = new AbortController();
    const aborted = late.election.campaign('late', { signal: aborter.signal });
    aborter.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const resigned = late.election.campaign('late');
    const rejected = expect(resigned).rejects.toBeInstanceOf(WardenError);
    await late.election.resign();
    await rejected;
    const names = await holder.client.children(path);
    expect(names).toEqual([term.path.slice(path.length + 1)]); // only the holder's node is in line
    await holder.election.resign();
    expect(await holder.client.children(path)).toEqual([]);
  });

  it('a resign whose delete failed is done by the next resign: the node keeps the line waiting until then', async () => {
    const path = '/it/election/resign-retry';
    const admin = client();
    const make = async (): Promise<Election> => {
      const c = client();
      return new Election(c, path, await c.session({ ttlMs: TTL_MS }));
    };
    const first = await make();
    const second = await make();
    const resigned: Term[] = [];
    first.on('resigned', (term) => resigned.push(term));
    const t1 = await first.campaign('one');
    const pending2 = second.campaign('two');
    let secondElected = false;
    void pending2.then(() => (secondElected = true), () => undefined);
    await inLine(admin, path, 2);

    // The delete cannot be sent (its signal is aborted): the term ends, the node stays first in line.
    const failed = await first.resign({ signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(WardenError);
    expect(t1.signal.aborted).toBe(true);
    expect(first.isLeader).toBe(false);
    expect((await admin.get(t1.path))?.stat.createRevision).toBe(t1.token);
    expect(secondElected).toBe(false);

    await first.resign(); // the retry deletes it
    const t2 = await within(pending2, 10_000, 'second elected once the retried resign deleted the node');
    expect(t2.token).toBeGreaterThan(t1.token);
    expect(await admin.get(t1.path)).toBeNull();
    expect(resigned).toEqual([t1]); // the term ended once
    await second.resign();
    expect(await admin.children(path)).toEqual([]);
  });

  it('a campaign whose withdrawal failed leaves its node remembered: resign deletes it', async () => {
    const path = '/it/election/stray';
    const admin = client();
    const holderClient = client();
    const holder = new Election(holderClient, path, await holderClient.session({ ttlMs: TTL_MS }));
    const term = await holder.campaign('holder');
    const late = flaky(client());
    const election = new Election(late.client, path, await late.client.session({ ttlMs: TTL_MS }));
    const aborter = new AbortController();
    const campaign = election.campaign('late', { signal: aborter.signal }).catch((e: unknown) => e);
    await inLine(admin, path, 2);
    late.broken.on = true;
    aborter.abort();
    expect(((await campaign) as WardenError).code).toBe('OUTCOME_UNKNOWN'); // it says it could not withdraw
    expect(await admin.children(path)).toHaveLength(2);
    late.broken.on = false;
    await election.resign();
    expect(await admin.children(path)).toEqual([term.path.slice(path.length + 1)]);
    await holder.resign();
  });

  it('a deposed leader\'s guarded writes are refused whole; its own compares failing is not a lost term', async () => {
    const path = '/it/election/guard';
    const data = '/it/election-guard/data';
    const admin = client();
    const make = async (): Promise<Election> => {
      const c = client();
      return new Election(c, path, await c.session({ ttlMs: TTL_MS }));
    };
    const first = await make();
    const second = await make();
    const t1 = await first.campaign('one');
    const written = await first.fencedPut(data, 'one');
    expect(written.path).toBe(data);
    const declined = await first.fencedTxn().if(cmp.value(data, '=', 'other')).do(op.put(data, 'x')).else(op.get(data)).commit();
    expect(declined.succeeded).toBe(false);
    expect(declined.results).toHaveLength(1); // the fence's read is not shown
    expect(first.isLeader).toBe(true);

    const pending2 = second.campaign('two');
    await inLine(admin, path, 2);
    await admin.delete(t1.path); // deposed, as by an expired lease
    // Sent with the old term's fence whatever first has heard yet: the cluster refuses all of it.
    const raw = await first.guard(admin.txn().do(op.put(data, 'stale'), op.put(`${data}-2`, 'stale')), t1).commit().catch((e: unknown) => e);
    expect((raw as WardenError).code).toBe('NO_NODE');
    await expect(first.fencedPut(data, 'stale')).rejects.toMatchObject({ code: 'NO_NODE' });
    const t2 = await within(pending2, 10_000, 'second elected');
    await within(new Promise((resolve) => (t1.signal.aborted ? resolve(null) : t1.signal.addEventListener('abort', resolve))), 5_000, 'first hears lost');
    expect(first.isLeader).toBe(false);
    const node = await admin.get(data);
    expect(node?.value).toBe('one');
    expect(node?.stat.modRevision).toBe(written.revision);
    expect(await admin.get(`${data}-2`)).toBeNull();

    expect((await second.fencedPut(data, 'two')).revision).toBeGreaterThan(t2.token);
    expect((await admin.get(data))?.value).toBe('two');
    await second.resign();
  });

  it('a leader whose node is deleted or whose lease is revoked hears lost; its proclaim is refused; the next leads', async () => {
    const path = '/it/election/lost';
    const admin = client();
    const make = async (): Promise<Election> => {
      const c = client();
      return new Election(c, path, await c.session({ ttlMs: TTL_MS }));
    };
    const first = await make();
    const second = await make();
    const third = await make();
    const losses: Term[] = [];
    first.on('lost', ({ term }) => losses.push(term));
    second.on('lost', ({ term }) => losses.push(term));

    const t1 = await first.campaign('one');
    const pending2 = second.campaign('two');
    await admin.delete(t1.path);
    await expect(first.proclaim('one again')).rejects.toMatchObject({ code: 'NO_NODE' });
    const t2 = await within(pending2, 10_000, 'second elected');
    await within(new Promise((resolve) => (t1.signal.aborted ? resolve(null) : t1.signal.addEventListener('abort', resolve))), 5_000, 'first hears lost');
    expect(losses).toEqual([t1]);
    expect(t2.token).toBeGreaterThan(t1.token);

    const pending3 = third.campaign('three');
    const lease = (await admin.get(t2.path))!.stat.lease!;
    await admin.leases.revoke(lease);
    await expect(second.proclaim('two again')).rejects.toMatchObject({ code: 'NO_NODE' });
    const t3 = await within(pending3, 10_000, 'third elected');
    await within(new Promise((resolve) => (t2.signal.aborted ? resolve(null) : t2.signal.addEventListener('abort', resolve))), 5_000, 'second hears lost');
    expect(losses).toEqual([t1, t2]);
    expect((await admin.get(t3.path))?.value).toBe('three');
    expect(shape(await third.leader())).toBe(`three@${t3.token}`);
    await third.resign();
  });

  it('at most one leader per term of office while cluster members are killed and restarted', async () => {
    const path = '/it/election/chaos';
    const admin = client();
    const made = await admin.create(path, '', { parents: true });

    // The truth: every change to the election's children, from the revision after it was made.
    const history: WatchEvent[] = [];
    const historyWake = { wake: (): void => undefined };
    const raw = admin.watch(path, { scope: 'children', fromRevision: made.revision + 1 });
    const recording = (async () => {
      for await (const event of raw) {
        history.push(event);
        historyWake.wake();
      }
    })();
    const observing = new Election(client(), path);
    const stopObserving = new AbortController();
    const observed = new Collector(observing.observe({ signal: stopObserving.signal }));
    await observed.until('the empty election', (items) => items.length === 1);

    // What the candidates claim, in the order they claim it.
    type Entry =
      | { kind: 'elected'; who: string; token: number; path: string }
      | { kind: 'proclaimed'; who: string; token: number; revision: number }
      | { kind: 'refused' | 'unknown'; who: string; token: number }
      | { kind: 'ended'; how: 'lost' | 'resigned'; who: string; token: number };
    const log: Entry[] = [];
    const logWake = { wake: (): void => undefined };
    const note = (entry: Entry): void => {
      log.push(entry);
      logWake.wake();
    };
    const elections = (): number => log.filter((e) => e.kind === 'elected').length;
    const moreElections = async (more: number, what: string): Promise<void> => {
      const target = elections() + more;
      const deadline = Date.now() + 30_000;
      while (elections() < target) {
        if (Date.now() > deadline) throw new Error(`fewer than ${target} elections after ${what}`);
        await within(new Promise<void>((resolve) => (logWake.wake = resolve)), deadline - Date.now(), what).catch(() => undefined);
      }
    };

    // A leader asked to hold office: once the test has revoked its lease it proclaims at once
    // (likely before it has heard of the loss: the fence must refuse it), then waits for its term to end.
    type Held = { who: string; token: number; lease: number; revoked: () => void };
    let holdWanted: ((held: Held) => void) | null = null;
    const holdOffice = (): Promise<Held> => new Promise((resolve) => (holdWanted = resolve));

    const stop = new AbortController();
    const candidate = async (who: string): Promise<void> => {
      const c = client();
      for (let round = 0; round < 400 && !stop.signal.aborted; ) {
        let session: Session;
        try {
          session = await c.session({ ttlMs: TTL_MS, timeoutMs: 10_000 });
        } catch {
          round++;
          continue;
        }
        const election = new Election(c, path, session);
        election.on('lost', ({ term }) => note({ kind: 'ended', how: 'lost', who, token: term.token }));
        election.on('resigned', (term) => note({ kind: 'ended', how: 'resigned', who, token: term.token }));
        while (round < 400 && !stop.signal.aborted && !session.signal.aborted) {
          round++;
          let term: Term;
          try {
            term = await election.campaign(`${who}-${round}`, { signal: stop.signal, timeoutMs: 20_000 });
          } catch {
            continue;
          }
          note({ kind: 'elected', who, token: term.token, path: term.path });
          for (let j = 0; j < 2 && !term.signal.aborted; j++) {
            try {
              note({ kind: 'proclaimed', who, token: term.token, revision: await election.proclaim(`${who}-${round}-${j}`) });
            } catch (error) {
              note({ kind: error instanceof WardenError && error.code === 'NO_NODE' ? 'refused' : 'unknown', who, token: term.token });
            }
          }
          const tellHeld = holdWanted as ((held: Held) => void) | null;
          if (tellHeld !== null && !term.signal.aborted) {
            holdWanted = null;
            const ended = new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
            await within(new Promise<void>((revoked) => tellHeld({ who, token: term.token, lease: session.lease, revoked })), 20_000, 'the test revokes');
            try {
              note({ kind: 'proclaimed', who, token: term.token, revision: await election.proclaim(`${who}-${round}-late`) });
            } catch (error) {
              note({ kind: error instanceof WardenError && error.code === 'NO_NODE' ? 'refused' : 'unknown', who, token: term.token });
            }
            await within(ended, 20_000, `${who} hears its term ${term.token} end`).catch(() => undefined);
          }
          await election.resign().catch(() => undefined);
        }
        await session.close().catch(() => undefined);
      }
    };
    const running = ['w1', 'w2', 'w3', 'w4'].map((who) => candidate(who));

    const restart = async (name: string): Promise<void> => {
      await cluster.kill(name, 'SIGKILL');
      await cluster.leader();
      cluster.launch(cluster.member(name));
      await cluster.leader();
    };
    expect(cluster.members.filter((m) => m.process === null).map((m) => `${m.name}: ${m.logs.slice(-3).join(' | ')}`), 'every member runs before one is killed').toEqual([]);
    await moreElections(3, 'the start');
    await restart(await cluster.leader());
    await moreElections(3, 'the leader was killed and restarted');
    const held = await within(holdOffice(), 20_000, 'a leader holds office');
    await admin.leases.revoke(held.lease);
    held.revoked();
    await moreElections(3, 'the leader\'s lease was revoked');
    const raftLeader = await cluster.leader();
    await restart(cluster.members.find((m) => m.name !== raftLeader)!.name);
    await moreElections(3, 'a follower was killed and restarted');
    stop.abort();
    await within(Promise.all(running), 40_000, 'the candidates stop');
    const sentinel = await admin.create(`${path}/zz-end`, '');
    const historyDeadline = Date.now() + 15_000;
    while (!history.some((e) => e.revision >= sentinel.revision)) {
      if (Date.now() > historyDeadline) throw new Error('the raw watch did not reach the end of the run');
      await within(new Promise<void>((resolve) => (historyWake.wake = resolve)), historyDeadline - Date.now(), 'history').catch(() => undefined);
    }
    await raw.cancel();
    await recording;

    // The truth, revision by revision: the first candidate in line, and each term's span.
    const line = new Map<string, { value: string; stat: { createRevision: number } }>();
    const spans = new Map<string, { token: number; from: number; to: number }>();
    const truth: (string | null)[] = [null];
    let current = null as Leader | null;
    const puts: WatchEvent[] = [];
    for (let i = 0; i < history.length; ) {
      const revision = history[i]!.revision;
      for (; i < history.length && history[i]!.revision === revision; i++) {
        const event = history[i]!;
        if (event.type === 'delete') line.delete(event.path);
        else line.set(event.path, event.node!);
        if (event.type === 'put') puts.push(event);
      }
      const now = leaderOf([...line].map(([p, n]) => ({ path: p, value: n.value, stat: n.stat as never })));
      if (now?.path !== current?.path) {
        if (current !== null) spans.get(current.path)!.to = revision;
        if (now !== null) spans.set(now.path, { token: now.token, from: revision, to: Number.POSITIVE_INFINITY });
      }
      if (shape(now) !== truth[truth.length - 1]) truth.push(shape(now));
      current = now;
    }

    const claimed = log.filter((e): e is Extract<Entry, { kind: 'elected' }> => e.kind === 'elected');
    expect(claimed.length).toBeGreaterThanOrEqual(15);
    let lastToken = 0;
    for (const claim of claimed) {
      const span = spans.get(claim.path);
      expect(span, `${claim.who}'s term ${claim.token} was a real term`).toBeDefined();
      expect(span!.token).toBe(claim.token);
      expect(claim.token, 'tokens only grow').toBeGreaterThan(lastToken);
      lastToken = claim.token;
      const ends = log.filter((e) => e.kind === 'ended' && e.token === claim.token && e.who === claim.who);
      expect(ends.length, `${claim.who}'s term ${claim.token} ended once`).toBe(1);
    }
    // Every write as leader landed inside its own term: no two terms overlap in what they did.
    for (const put of puts) {
      const span = spans.get(put.path);
      expect(span, `a put on ${put.path} at ${put.revision} by a node that never led`).toBeDefined();
      expect(put.revision).toBeGreaterThanOrEqual(span!.from);
      expect(put.revision).toBeLessThan(span!.to);
    }
    const proclaimed = log.filter((e): e is Extract<Entry, { kind: 'proclaimed' }> => e.kind === 'proclaimed');
    expect(proclaimed.length).toBeGreaterThan(0);
    for (const p of proclaimed) expect(puts.some((put) => put.revision === p.revision && spans.get(put.path)?.token === p.token)).toBe(true);
    expect(log.some((e) => e.kind === 'ended' && e.how === 'lost' && e.token === held.token), 'the revoked leader heard lost').toBe(true);
    expect(log.some((e) => e.kind === 'refused' && e.token === held.token), 'the revoked leader\'s proclaim was refused').toBe(true);
    console.log(`election run: ${claimed.length} terms, ${proclaimed.length} proclaims, ${log.filter((e) => e.kind === 'refused').length} refused, ${log.filter((e) => e.kind === 'ended' && e.how === 'lost').length} lost, ${truth.length} leader changes observed`);

    // observe() saw exactly the real sequence of leaders (and values), across the kills.
    await observed.until('observe reaches the end', (items) => items.length >= truth.length);
    expect(observed.items.map(shape)).toEqual(truth);
    stopObserving.abort();
    await within(observed.done, 5_000, 'observe ends');
  });
});
