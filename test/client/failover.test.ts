/**
 * The client core's connection behaviour against a real 3-member cluster (processes, tick
 * 50 ms): a watch across a member kill sees every event exactly once; a watch alone on a frozen
 * member leaves it; a session whose member is frozen past its TTL fails over without losing its
 * lease; sequential creates pipelined across a cut connection and a leader kill are applied
 * exactly once each; a serializable read after a change of member never sees state older than
 * the client's own write; and the Cache recipe equals a fresh read after a burst of writes, a
 * member kill, and a compaction past its revision while its connection was cut. TCP proxies in
 * front of the members make cuts exact (and can drop a member's answers while its requests go
 * through: writes applied whose answers are lost).
 *
 * Must never: wait without a bound; leave a process, a proxy or a stopped (SIGSTOP) member
 * behind; pass if the behaviour it names breaks.
 */

import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, op, WardenError, type WardenClient, type WardenNode } from '../../client/index.js';
import { Cache, type CacheChange, type CacheResync } from '../../client/recipes/cache.js';
import type { Cluster, MemberProcess } from '../integration/cluster.js';
import { clusterForSuite } from '../integration/suite.js';

let cluster: Cluster;
clusterForSuite((started) => (cluster = started));

/**
 * A TCP proxy in front of one member: `cut()` drops every connection and refuses new ones until
 * `mend()`; `swallowAnswers(n)` lets requests through but drops what the member answers until
 * it has dropped `n` successful answers (writes applied whose answers are lost).
 */
class Proxy {
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  private swallowing: { wanted: number; seen: number; done: () => void } | null = null;
  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly member: MemberProcess,
  ) {}

  static async start(member: MemberProcess): Promise<Proxy> {
    const target = new URL(member.clientUrl);
    let proxy: Proxy | null = null;
    const server = createServer((downstream) => {
      if (proxy === null || proxy.refusing) {
        downstream.destroy();
        return;
      }
      const self = proxy;
      const upstream = tcpConnect(Number(target.port), target.hostname);
      for (const [a, b] of [
        [downstream, upstream],
        [upstream, downstream],
      ] as const) {
        self.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          self.sockets.delete(a);
          b.destroy();
        });
      }
      downstream.on('data', (chunk: Buffer) => upstream.write(chunk));
      upstream.on('data', (chunk: Buffer) => {
        const swallowing = self.swallowing;
        if (swallowing === null) {
          downstream.write(chunk);
          return;
        }
        // Frames from a member are unmasked text: count the successful answers dropped.
        swallowing.seen += chunk.toString('latin1').split('"ok":true').length - 1;
        if (swallowing.seen >= swallowing.wanted) swallowing.done();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    proxy = new Proxy(server, `ws://127.0.0.1:${port}`, member);
    return proxy;
  }

  /** Resolves once `wanted` successful answers were dropped (rejects after 10 s). */
  swallowAnswers(wanted: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`swallowed ${this.swallowing?.seen ?? 0} of ${wanted} answers in 10 s`)), 10_000);
      this.swallowing = {
        wanted,
        seen: 0,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      };
    });
  }

  cut(): void {
    this.refusing = true;
    this.swallowing = null;
    for (const socket of [...this.sockets]) socket.destroy();
  }

  mend(): void {
    this.refusing = false;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** One proxy per member, in member order, for the whole suite. */
const proxies: Proxy[] = [];
beforeAll(async () => {
  for (const member of cluster.members) proxies.push(await Proxy.start(member));
});
afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
});

const clients: WardenClient[] = [];
afterAll(async () => {
  for (const client of clients) await client.close();
});

/** A client, closed after the suite. `first` makes it dial that endpoint first (the list is rotated by the client's random start). */
function client(endpoints: readonly string[], options: { first?: string; timeoutMs?: number } = {}): WardenClient {
  let list = [...endpoints];
  let random: (() => number) | undefined;
  if (options.first !== undefined) {
    // The client starts at floor(random() · n): put `first` at index 0 and make that the start.
    list = [options.first, ...endpoints.filter((e) => e !== options.first)];
    random = () => 0;
  }
  const made = connect({ endpoints: list, timeoutMs: options.timeoutMs ?? 20_000, ...(random === undefined ? {} : { random }) });
  clients.push(made);
  return made;
}

const urls = (): string[] => cluster.members.map((m) => m.clientUrl);
const memberAt = (url: string | null): MemberProcess => {
  const member = cluster.members.find((m) => m.clientUrl === url);
  if (member === undefined) throw new Error(`no member serves ${String(url)}`);
  return member;
};

/** Poll a condition (state we cannot be told of by an event), bounded. */
async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Every member running, one leader agreed, every member applied what the leader had when asked. */
async function healthy(): Promise<void> {
  for (const member of cluster.members) if (member.process === null) cluster.launch(member);
  const leader = await cluster.leader();
  const target = (await cluster.status(leader))?.['applied'] as number;
  await until('every member caught up', async () => {
    const all = await Promise.all(cluster.members.map((m) => cluster.status(m.name)));
    return all.every((s) => s !== null && (s['applied'] as number) >= target);
  });
}

function freeze(member: MemberProcess): () => void {
  const child = member.process!;
  child.kill('SIGSTOP');
  let thawed = false;
  return () => {
    if (thawed) return;
    thawed = true;
    child.kill('SIGCONT');
  };
}

describe('connection behaviour with real members', () => {
  it('a watch across the kill of its member sees every event once, in order', async () => {
    const N = 240;
    const writer = client(urls());
    const watcher = client(urls());
    await writer.create('/a-watch', '');
    const watch = watcher.watch('/a-watch', { scope: 'children' });
    await watch.started;
    const watched = memberAt(watcher.endpoint);
    const seen: { value: string; revision: number }[] = [];
    const collecting = (async () => {
      for await (const event of watch) {
        seen.push({ value: event.node?.value ?? '<deleted>', revision: event.revision });
        if (seen.length >= N) return;
      }
    })();
    let killed: Promise<unknown> | null = null;
    for (let i = 0; i < N; i++) {
      await writer.put('/a-watch/n', String(i));
      if (i === Math.floor(N / 3)) killed = cluster.kill(watched.name, 'SIGKILL');
      if (i === Math.floor((2 * N) / 3)) {
        await killed;
        cluster.launch(watched); // restarted later, while the writes go on
      }
    }
    await Promise.race([collecting, new Promise((_, reject) => setTimeout(() => reject(new Error(`the watch saw ${seen.length} of ${N} events`)), 20_000))]);
    await watch.cancel();
    expect(watcher.endpoint).not.toBe(watched.clientUrl); // it did move
    expect(seen.map((s) => s.value)).toEqual(Array.from({ length: N }, (_, i) => String(i)));
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.revision).toBeGreaterThan(seen[i - 1]!.revision);
    await healthy();
  }, 60_000);

  it('a watch alone on a frozen member leaves it and goes on (the client asks that member nothing else)', async () => {
    const watcher = client(urls());
    const watch = watcher.watch('/a-frozen', { scope: 'children' });
    await watch.started;
    const frozen = memberAt(watcher.endpoint);
    const writer = client(cluster.members.filter((m) => m !== frozen).map((m) => m.clientUrl));
    await writer.create('/a-frozen', '');
    const thaw = freeze(frozen);
    try {
      const put = await writer.create('/a-frozen/x', 'written while its member was frozen');
      const events = watch[Symbol.asyncIterator]();
      const next = await Promise.race([
        events.next(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`no event 10 s after the write: the watcher is still on the frozen member (${String(watcher.endpoint)}, frozen: ${frozen.clientUrl})`)), 10_000),
        ),
      ]);
      expect(next.value).toMatchObject({ type: 'create', path: '/a-frozen/x', revision: put.revision });
      expect(watcher.endpoint).not.toBe(frozen.clientUrl);
    } finally {
      thaw();
      await watch.cancel();
    }
    await healthy();
  }, 60_000);

  it('a session whose member is frozen past its TTL fails over and keeps its lease and its ephemeral node', async () => {
    const ttlMs = 2_500;
    const holder = client(urls());
    const session = await holder.session({ ttlMs });
    await holder.create('/b-frozen', '');
    await holder.create('/b-frozen/owner', 'me', { lease: session.lease });
    const frozen = memberAt(holder.endpoint);
    const others = cluster.members.filter((m) => m !== frozen);
    const checker = client(others.map((m) => m.clientUrl));
    let lost: WardenError | null = null;
    session.on('lost', (error) => (lost = error));
    const thaw = freeze(frozen);
    try {
      const frozenAt = Date.now();
      let renewedAfterSwitch = 0;
      const off = session.on('renewed', () => {
        if (holder.endpoint !== null && holder.endpoint !== frozen.clientUrl) renewedAfterSwitch += 1;
      });
      // The freeze must outlast the TTL (that is the point), and the lease must be renewed elsewhere meanwhile.
      await until('frozen past the TTL, renewed through another member', () => Date.now() - frozenAt > ttlMs * 1.6 && renewedAfterSwitch >= 2, 20_000);
      off();
      expect(holder.endpoint).not.toBe(frozen.clientUrl);
      expect(await checker.get('/b-frozen/owner')).toMatchObject({ value: 'me', stat: { lease: session.lease } });
      expect((await checker.leases.timeToLive(session.lease)).remainingMs).toBeGreaterThan(0);
    } finally {
      thaw();
    }
    await healthy();
    expect(await checker.get('/b-frozen/owner')).not.toBe(null);
    expect(lost).toBe(null);
    expect(session.lost).toBe(false);
    await session.close();
    expect(await checker.get('/b-frozen/owner')).toBe(null);
  }, 60_000);

  it('sequential creates pipelined across a leader kill: one node per acknowledged create, no duplicate', async () => {
    const leaderName = await cluster.leader();
    const leaderProxy = proxies.find((p) => p.member.name === leaderName)!;
    const writer = client(
      proxies.map((p) => p.url),
      { first: leaderProxy.url, timeoutMs: 20_000 },
    );
    await writer.create('/c-once', '');
    expect(writer.endpoint).toBe(leaderProxy.url);
    const TOTAL = 600;
    const LANES = 24;
    const acked = new Map<string, string>(); // id → path made
    const failed = new Map<string, WardenError>();
    let issued = 0;
    let cut: Promise<void> | null = null;
    let killed: Promise<unknown> | null = null;
    const lane = async (): Promise<void> => {
      while (issued < TOTAL) {
        const id = `w${issued++}`;
        try {
          const made = await writer.create('/c-once/job-', id, { sequential: true });
          acked.set(id, made.path);
        } catch (error) {
          failed.set(id, error as WardenError);
        }
        if (cut === null && acked.size >= TOTAL / 4) {
          // Creates reach the leader and are applied, their answers are lost, then the connection
          // is cut: the client must retry them through another member without applying any twice.
          cut = leaderProxy.swallowAnswers(LANES / 2).then(() => leaderProxy.cut());
        }
        if (killed === null && acked.size >= TOTAL / 2) killed = cluster.kill(leaderName, 'SIGKILL'); // and then the leader itself dies
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
    expect(cut).not.toBe(null);
    expect(killed).not.toBe(null);
    await cut;
    await killed;
    leaderProxy.mend();
    await healthy();
    const reader = client(urls());
    const nodes: WardenNode[] = [];
    for await (const node of reader.range('/c-once')) nodes.push(node);
    const byValue = new Map<string, string[]>();
    for (const node of nodes) byValue.set(node.value, [...(byValue.get(node.value) ?? []), node.path]);
    const duplicates = [...byValue].filter(([, paths]) => paths.length > 1);
    expect(duplicates).toEqual([]);
    for (const [id, path] of acked) expect(byValue.get(id), `acknowledged ${id} at ${path}`).toEqual([path]);
    for (const [id, error] of failed) if (!error.outcomeUnknown) expect(byValue.has(id), `${id} failed ${error.code} (not applied) yet exists`).toBe(false);
    // Within a 20 s deadline one cut and one leader kill must not cost any write its answer.
    expect([...failed].map(([id, e]) => `${id}: ${e.code} ${e.message}`)).toEqual([]);
    expect(nodes.length).toBe(acked.size);
    expect((await reader.children('/c-once')).length).toBe(TOTAL);
  }, 60_000);

  it("a serializable read after a change of member never sees state older than the client's write", async () => {
    const leaderName = await cluster.leader();
    const leader = cluster.member(leaderName);
    const [behind, third] = cluster.members.filter((m) => m !== leader) as [MemberProcess, MemberProcess];
    // Only these two: once the leader is gone the client has one place to go, the member that missed the writes.
    const reader = client([leader.clientUrl, behind.clientUrl], { first: leader.clientUrl });
    await reader.put('/d-ryw', 'v0');
    expect(reader.endpoint).toBe(leader.clientUrl);
    await cluster.kill(behind.name, 'SIGKILL');
    let last = { revision: 0 };
    for (let i = 1; i <= 30; i++) last = await reader.put('/d-ryw', `v${i}`);
    expect(reader.revision).toBeGreaterThanOrEqual(last.revision);
    // The two that hold the writes freeze; the one that missed them comes back, alone, and cannot learn them.
    const thawLeader = freeze(leader);
    const thawThird = freeze(third);
    try {
      cluster.launch(behind);
      let settled = false;
      const read = reader.get('/d-ryw', { consistency: 'serializable' }).finally(() => (settled = true));
      read.catch(() => undefined);
      await until('the reader left the frozen leader for the member that missed the writes', () => reader.endpoint === behind.clientUrl, 20_000);
      // A window in which a stale answer (v0, from its own state) would have come back: it must wait instead.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(settled).toBe(false);
      thawThird(); // a quorum again: the member catches up and answers
      expect(await read).toMatchObject({ value: 'v30', stat: { modRevision: last.revision } });
      expect(reader.endpoint).toBe(behind.clientUrl);
    } finally {
      thawThird();
      thawLeader();
    }
    await healthy();
  }, 60_000);
});

// ─── the Cache recipe ───────────────────────────────────────────────────────────────────────

/** The subtree as a fresh read sees it at `revision`: the root (if any) then everything below, in path order. */
async function freshRead(reader: WardenClient, path: string, revision?: number): Promise<WardenNode[]> {
  const at = revision === undefined ? {} : { revision };
  const root = await reader.get(path, at);
  const nodes: WardenNode[] = root === null ? [] : [root];
  for await (const node of reader.range(path, at)) nodes.push(node);
  return nodes;
}

/** A seeded source of choices: the burst replays the same way. */
function choices(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/** Writes of every kind under `root`: creates (nested), puts, recursive deletes, transactions; answers the last revision. */
async function burst(writer: WardenClient, root: string, count: number, seed: number, during?: (i: number) => void): Promise<number> {
  const pick = choices(seed);
  const place = (): string => {
    const depth = 1 + pick(3);
    return root + Array.from({ length: depth }, () => `/k${pick(4)}`).join('');
  };
  let revision = 0;
  for (let i = 0; i < count; i++) {
    during?.(i);
    const path = place();
    const kind = pick(10);
    try {
      if (kind < 5) revision = (await writer.put(path, `v${seed}-${i}`)).revision;
      else if (kind < 7) revision = (await writer.delete(path, { recursive: true })).revision;
      else if (kind < 8) revision = (await writer.create(path, `c${i}`, { parents: true })).revision;
      else {
        // One revision that changes a parent and its child together (the child's create moves the parent's counts).
        const child = `${path}/t${pick(3)}`;
        revision = (await writer.txn().do(op.put(path, `t${i}`), op.put(child, `tc${i}`)).commit()).revision;
      }
    } catch (error) {
      if (!(error instanceof WardenError && ['NO_NODE', 'NODE_EXISTS'].includes(error.code))) throw error;
    }
  }
  return revision;
}

describe('Cache', () => {
  it('equals a fresh read after a burst with a member kill, and after a compaction past it while cut off (resync)', async () => {
    const writer = client(urls());
    const reader = client(urls());
    await writer.create('/e-cache', 'root');
    await burst(writer, '/e-cache', 40, 1);
    const cached = client(proxies.map((p) => p.url));
    const cache = new Cache(cached, '/e-cache');
    const mirror = new Map<string, WardenNode>(); // kept from change events only
    const resyncs: CacheResync[] = [];
    cache.on('change', (change: CacheChange) => {
      if (change.node === null) mirror.delete(change.path);
      else mirror.set(change.path, change.node);
    });
    cache.on('resync', (resync) => resyncs.push(resync));
    await cache.start();
    for (const node of cache.nodes()) mirror.set(node.path, node);
    expect(cache.nodes()).toEqual(await freshRead(reader, '/e-cache', cache.revision));

    // A burst, and the member the cache reads from killed in the middle of it.
    const victimProxy = proxies.find((p) => p.url === cached.endpoint)!;
    const victim = victimProxy.member;
    let killed: Promise<unknown> | null = null;
    const first = await burst(writer, '/e-cache', 200, 2, (i) => {
      if (i === 80) killed = cluster.kill(victim.name, 'SIGKILL');
    });
    await killed;
    await cache.whenRevision(first, { timeoutMs: 20_000 });
    expect(cached.endpoint).not.toBe(victimProxy.url);
    expect(resyncs).toEqual([]);
    expect(cache.nodes()).toEqual(await freshRead(reader, '/e-cache', cache.revision));
    await healthy();

    // Cut off: writes and a compaction past the cache's revision, applied by every member.
    const before = cache.revision;
    for (const proxy of proxies) proxy.cut();
    const second = await burst(writer, '/e-cache', 120, 3);
    await writer.put('/elsewhere', 'x'); // the compaction mark passes the subtree's last write too
    const compacted = await writer.compact(writer.revision);
    expect(compacted.compactRevision).toBeGreaterThan(before);
    await healthy();
    for (const proxy of proxies) proxy.mend();
    await until('the cache resynced', () => resyncs.length > 0, 20_000);
    await cache.whenRevision(second, { timeoutMs: 20_000 });
    expect(resyncs[0]!.compactRevision).toBeGreaterThanOrEqual(compacted.compactRevision);
    expect(resyncs[0]!.changes).toBeGreaterThan(0);
    const fresh = await freshRead(reader, '/e-cache', cache.revision);
    expect(cache.nodes()).toEqual(fresh);
    expect([...mirror.values()].sort((a, b) => (a.path < b.path ? -1 : 1)).map((n) => [n.path, n.value])).toEqual(
      [...fresh].sort((a, b) => (a.path < b.path ? -1 : 1)).map((n) => [n.path, n.value]),
    );

    // And it goes on following after the resync.
    const after = await writer.put('/e-cache/after', 'resynced');
    await cache.whenRevision(after.revision);
    expect(cache.get('/e-cache/after')?.value).toBe('resynced');
    expect(cache.children('/e-cache')).toEqual((await reader.children('/e-cache')).sort());
    await cache.close();
  }, 60_000);

  it('keeps children and their counts as the cluster does, answers only for its subtree, and stops past maxNodes', async () => {
    const writer = client(urls());
    const reader = client(urls());
    await writer.create('/f-cache', '');
    await writer.create('/f-cache/a', '1');
    const cache = new Cache(writer, '/f-cache', { maxNodes: 6 });
    await cache.start();
    await writer.create('/f-cache/a/x', '');
    await writer.create('/f-cache/a/y', '');
    await writer.delete('/f-cache/a/x');
    const txn = await writer.txn().do(op.put('/f-cache/b', 'b'), op.create('/f-cache/b/c', 'c')).commit();
    await cache.whenRevision(txn.revision);
    expect(cache.nodes()).toEqual(await freshRead(reader, '/f-cache', cache.revision));
    expect(cache.children('/f-cache')).toEqual(['a', 'b']);
    expect(cache.children('/f-cache/a')).toEqual(['y']);
    expect(cache.children('/f-cache/none')).toBe(null);
    expect(() => cache.get('/f-cache-other')).toThrow(/outside the cached subtree/);
    const removed = await writer.delete('/f-cache/b', { recursive: true });
    await cache.whenRevision(removed.revision);
    expect(cache.get('/f-cache/b/c')).toBe(null);
    expect(cache.nodes()).toEqual(await freshRead(reader, '/f-cache', cache.revision));

    // Six allowed: /f-cache, a, a/y, then three more would be seven.
    const stopped = new Promise<WardenError>((resolve) => cache.on('error', resolve));
    for (const name of ['p', 'q', 'r', 's']) await writer.create(`/f-cache/${name}`, '');
    const error = await Promise.race([stopped, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no error event')), 10_000))]);
    expect(error).toMatchObject({ code: 'TOO_LARGE', details: { limit: { name: 'maxNodes', value: 6 } } });
    expect(() => cache.get('/f-cache')).toThrow(/maxNodes/);
    expect(cache.live).toBe(false);
    await expect(new Cache(writer, '/f-cache', { maxNodes: 3 }).start()).rejects.toMatchObject({ code: 'TOO_LARGE' });
  }, 30_000);
});
