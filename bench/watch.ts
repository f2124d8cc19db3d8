/**
 * `npm run bench:watch`: watch delivery latency and the leader's CPU for lease keep-alives, for
 * a local 3-member Warden cluster and for etcd 3.4 (../shared/anchors), in one run. Loads go
 * through `warden bench`'s runner and latencies through its HDR histogram and report
 * (client/cli/bench); etcd's side comes from bench/anchors.ts.
 *
 * Put → event: the `warden bench watch` workload itself (a put to the requester's own key,
 * timed until its event arrives on a watch of the same connection), and its etcd twin; 1 in
 * flight, 20 puts a second (the runner's rate cap), --puts operations, systems in turn.
 *
 * Fan-out: 1, 100 and 10,000 watchers on one key, spread over 10 connections across the three
 * members; the runner issues --puts puts, 20 a second, each value carrying its send time, through a
 * **follower** (as most clients meet a cluster; `--writer leader` for the leader). A delivery's
 * latency is from the put's send to the watcher's receipt (both clocks are this process's); the
 * put's own latency is printed beside it, so the difference is what commit → delivery costs. This
 * is not a runner workload: one put gives a sample per watcher, and the runner times one sample per
 * operation, so the watchers record into a histogram of their own. Systems take turns within each
 * watcher count and round (Warden, etcd, ZooKeeper; --rounds, default 3), and the last table gives
 * the medians over the rounds. ZooKeeper's watches are one-shot and say only that the node
 * changed: each watcher is armed by a getData, and on its notification records the time, reads
 * the value (which re-arms it) and counts the delivery from the value's send time — so a ZooKeeper
 * delivery is its notification, the data coming one round trip later.

 * Lease CPU: 10,000 leases of 9 s, each kept alive every 3 s, for 20 s; the leader's CPU time
 * over that window (from /proc). Warden gets one keep-alive frame with all 10,000 ids per round
 * (a raw frame: the public client keeps its own leases alive and has no batch call); etcd one
 * LeaseKeepAlive request per lease on a single stream (its protocol has no batch). Not a runner
 * workload either: the figure is the server's CPU, not an operation's latency.
 *
 * Memory: each member's resident set before the watchers are registered and with them.
 *
 * Flags: --only warden (no anchors; or a list of warden, etcd, zookeeper), --watchers 1,100,10000,
 * --puts N (default 100), --rounds N (default 3), --writer follower|leader (default follower),
 * --leases N (default 10,000), --baseline PATH (another build's server/main.ts: a second Warden
 * cluster takes its turn in the fan-out beside this one).
 *
 * Must never: run in CI (it starts the anchors); be read as a test; leave members behind; stop
 * an anchor it did not start.
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { Etcd3 } from 'etcd3';
import { comparison, latencyOf, summarize, type BenchSummary, type Compared } from '../client/cli/bench/report.js';
import { newHistogram, run, type Operation } from '../client/cli/bench/runner.js';
import { prepare, type Workload, type WorkloadOptions } from '../client/cli/bench/workloads.js';
import { connect, type WardenClient } from '../client/index.js';
import { Cluster } from '../test/integration/cluster.js';
import type zookeeper from 'node-zookeeper-client';
import { connectZookeeper, ensureAnchor, ETCD_ENDPOINTS, etcdLeader, etcdWatchWorkload, etcdWorkload, stopAnchor, ZOOKEEPER_ENDPOINTS, zookeeperLeader, zookeeperSetData, type Anchor } from './anchors.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'warden,etcd,zookeeper' },
    watchers: { type: 'string', default: '1,100,10000' },
    puts: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    writer: { type: 'string', default: 'follower' },
    leases: { type: 'string', default: '10000' },
    baseline: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const WRITER = values.writer === 'leader' ? 'leader' : 'follower';
const systemsAsked = new Set(values.only.split(','));
const WATCHER_COUNTS = values.watchers.split(',').map(Number);
const PUTS = Number(values.puts);
const LEASES = Number(values.leases);
const CONNECTIONS = 10;
/** Puts per second while watch latency is measured: far below saturation, so it is delivery that is timed. */
const PUT_RATE = 20;
/** Ids per keep-alive frame (the schema's bound). */
const KEEPALIVE_BATCH = 10_000;
const LEASE_TTL_S = 9;
const CALL_TIMEOUT_MS = 30_000;
const options: WorkloadOptions = { prefix: '/bench', keySize: 8, valSize: 256, keySpace: 1_000, consistency: 'linearizable', timeoutMs: 10_000 };
const withEtcd = systemsAsked.has('etcd');
const withZookeeper = systemsAsked.has('zookeeper');

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Math.round(Number(line.split(/\s+/)[1]) / 1024);
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
}

/** A raw Warden connection (requests by id, each bounded; pushes to a handler): a watcher costs this process little. */
async function wardenConnection(url: string, onPush: (frame: Record<string, unknown>) => void): Promise<{ call(frame: Record<string, unknown>): Promise<Record<string, unknown>>; close(): void }> {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const pending = new Map<number, (answer: Record<string, unknown>) => void>();
  let nextId = 1;
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Record<string, unknown>;
    if (typeof frame['id'] === 'number') {
      pending.get(frame['id'])?.(frame);
      pending.delete(frame['id']);
    } else {
      onPush(frame);
    }
  });
  return {
    call: (frame) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`no answer to ${String(frame['type'])} within ${CALL_TIMEOUT_MS} ms`));
        }, CALL_TIMEOUT_MS);
        pending.set(id, (answer) => {
          clearTimeout(timer);
          resolve(answer);
        });
        socket.send(JSON.stringify({ id, ...frame }));
      }),
    close: () => socket.close(),
  };
}

/** A workload's load, unrecorded: a fresh process runs cold until its JIT has seen the path. */
async function warm(workload: Workload): Promise<void> {
  await run(workload.operation, { clients: 16, rate: 0, total: 3_000 });
  await workload.close();
}

/** Put → event through the runner, 1 in flight at PUT_RATE. */
async function putToEvent(system: string, workload: Workload): Promise<Compared & { summary: BenchSummary }> {
  try {
    const result = await run(workload.operation, { clients: 1, rate: PUT_RATE, total: PUTS });
    const summary = summarize(result, { workload: 'watch', describe: workload.describe, endpoints: system, clients: 1, conns: 1, rate: PUT_RATE, keySize: options.keySize, valSize: options.valSize, keySpace: options.keySpace });
    return { label: 'watch@1', round: 1, system, summary };
  } finally {
    await workload.close();
  }
}

interface FanOut {
  readonly delivered: number;
  readonly expected: number;
  readonly deliveryMs: BenchSummary['latencyMs'];
  readonly putMs: BenchSummary['latencyMs'];
}

/**
 * The paced puts through the runner (`put` carries its send time), then a bounded wait for the
 * last deliveries; `deliveries` is the watchers' histogram (µs), `count()` how many arrived.
 */
async function fanOut(put: Operation, watchers: number, deliveries: ReturnType<typeof newHistogram>, count: () => number, allIn: Promise<void>): Promise<FanOut> {
  const result = await run(put, { clients: 1, rate: PUT_RATE, total: PUTS });
  await Promise.race([allIn, pause(2_000)]);
  return { delivered: count(), expected: watchers * PUTS, deliveryMs: latencyOf(deliveries), putMs: latencyOf(result.histogram) };
}

/** A sink for delivery latencies that says when `expected` have come in. */
function sink(expected: number): { histogram: ReturnType<typeof newHistogram>; record(sentMs: number): void; count(): number; allIn: Promise<void> } {
  const histogram = newHistogram();
  let n = 0;
  let done!: () => void;
  const allIn = new Promise<void>((resolve) => (done = resolve));
  return {
    histogram,
    record: (sentMs) => {
      histogram.recordValue(Math.max(1, Math.round((performance.now() - sentMs) * 1000)));
      if (++n >= expected) done();
    },
    count: () => n,
    allIn,
  };
}

async function wardenFanOut(cluster: Cluster, writer: WardenClient, watchers: number): Promise<FanOut> {
  const deliveries = sink(watchers * PUTS);
  const onPush = (frame: Record<string, unknown>): void => {
    const events = frame['events'] as { node?: { value: string } }[] | undefined;
    for (const event of events ?? []) if (event.node !== undefined) deliveries.record(Number(Buffer.from(event.node.value, 'base64').toString()));
  };
  const connections = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => wardenConnection(cluster.members[i % 3]!.clientUrl, onPush)));
  try {
    const rssBefore = cluster.members.map((m) => rssMiB(m.process!.pid!));
    await Promise.all(Array.from({ length: watchers }, (_, i) => connections[i % CONNECTIONS]!.call({ type: 'watch', watchId: i + 1, path: '/bench/watched' })));
    const rssWith = cluster.members.map((m) => rssMiB(m.process!.pid!));
    process.stdout.write(`memory  warden  ${String(watchers).padStart(6)} watchers  member RSS ${rssBefore.map((b, i) => `${b}→${rssWith[i]}`).join(', ')} MiB\n`);
    return await fanOut(async () => void (await writer.put('/bench/watched', String(performance.now()), { timeoutMs: options.timeoutMs })), watchers, deliveries.histogram, deliveries.count, deliveries.allIn);
  } finally {
    for (const c of connections) c.close();
  }
}

async function etcdFanOut(writer: Etcd3, watchers: number): Promise<FanOut> {
  const deliveries = sink(watchers * PUTS);
  const clients = Array.from({ length: CONNECTIONS }, (_, i) => new Etcd3({ hosts: [ETCD_ENDPOINTS[i % 3]!] }));
  try {
    const created = await Promise.all(
      Array.from({ length: watchers }, async (_, i) => {
        const watcher = await clients[i % CONNECTIONS]!.watch().key('/bench/watched').create();
        watcher.on('put', (kv) => deliveries.record(Number(kv.value.toString())));
        return watcher;
      }),
    );
    const figures = await fanOut(async () => void (await writer.put('/bench/watched').value(String(performance.now()))), watchers, deliveries.histogram, deliveries.count, deliveries.allIn);
    await Promise.all(created.map((w) => w.cancel()));
    return figures;
  } finally {
    for (const c of clients) c.close();
  }
}

/**
 * ZooKeeper's one-shot watches: each watcher armed by a getData; a notification records its
 * arrival, and the getData that re-arms the watcher reads the value — the put's send time — so the
 * delivery is timed from the put's send to the notification.
 */
async function zookeeperFanOut(writer: zookeeper.Client, watchers: number): Promise<FanOut> {
  const deliveries = sink(watchers * PUTS);
  const path = '/bench/watched';
  await zookeeperSetData(writer, '/bench', Buffer.alloc(0));
  await zookeeperSetData(writer, path, Buffer.from(String(performance.now())));
  const sessions = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => connectZookeeper(ZOOKEEPER_ENDPOINTS[i % 3]!)));
  let stopped = false;
  try {
    const arm = (session: zookeeper.Client, notifiedMs: number | null): Promise<void> =>
      new Promise((resolve, reject) => {
        session.getData(
          path,
          (event) => {
            if (stopped || event.getName() !== 'NODE_DATA_CHANGED') return;
            void arm(session, performance.now());
          },
          (error, data) => {
            if (error) {
              reject(error);
              return;
            }
            // The value is the send time of the put that fired the watch (or a later one, at most 50 ms on: never earlier).
            if (notifiedMs !== null) deliveries.record(Number(data.toString()) + (performance.now() - notifiedMs));
            resolve();
          },
        );
      });
    await Promise.all(Array.from({ length: watchers }, (_, i) => arm(sessions[i % CONNECTIONS]!, null)));
    return await fanOut(() => new Promise<void>((resolve, reject) => writer.setData(path, Buffer.from(String(performance.now())), -1, (error) => (error ? reject(error) : resolve()))), watchers, deliveries.histogram, deliveries.count, deliveries.allIn);
  } finally {
    stopped = true;
    for (const session of sessions) session.close();
  }
}

async function wardenLeaseCpu(leaderPid: number, leaderUrl: string): Promise<number> {
  const client = await wardenConnection(leaderUrl, () => undefined);
  try {
    const ids: number[] = [];
    for (let start = 0; start < LEASES; start += 1_000) {
      const answers = await Promise.all(Array.from({ length: Math.min(1_000, LEASES - start) }, () => client.call({ type: 'leaseGrant', ttlMs: LEASE_TTL_S * 1000 })));
      for (const a of answers) ids.push((a['lease'] as { id: number }).id);
    }
    const keepAll = async (): Promise<void> => {
      const answers = await Promise.all(Array.from({ length: Math.ceil(ids.length / KEEPALIVE_BATCH) }, (_, i) => client.call({ type: 'leaseKeepAlive', leases: ids.slice(i * KEEPALIVE_BATCH, (i + 1) * KEEPALIVE_BATCH) })));
      const failed = answers.find((a) => a['ok'] !== true);
      if (failed !== undefined) throw new Error(`keep-alive failed: ${JSON.stringify(failed).slice(0, 200)}`);
    };
    await keepAll();
    const before = cpuSeconds(leaderPid);
    const started = performance.now();
    for (let round = 0; round < 7; round++) {
      await pause(3_000); // the keep-alive period being measured, not a synchronisation
      await keepAll();
    }
    const share = (cpuSeconds(leaderPid) - before) / ((performance.now() - started) / 1000);
    for (let start = 0; start < ids.length; start += 1_000) await Promise.all(ids.slice(start, start + 1_000).map((lease) => client.call({ type: 'leaseRevoke', lease })));
    return share;
  } finally {
    client.close();
  }
}

async function etcdLeaseCpu(): Promise<number> {
  const leader = etcdLeader();
  const client = new Etcd3({ hosts: [leader.endpoint] });
  try {
    // etcd3 keeps its own leases alive; its raw lease service lets this send one keep-alive per lease per round.
    const leaseClient = (client as unknown as { leaseClient: { leaseGrant(req: { TTL: number }): Promise<{ ID: string }>; leaseKeepAlive(): Promise<{ write(req: { ID: string }): void; on(event: string, fn: () => void): void; end(): void }> } }).leaseClient;
    const ids: string[] = [];
    for (let start = 0; start < LEASES; start += 500) ids.push(...(await Promise.all(Array.from({ length: Math.min(500, LEASES - start) }, () => leaseClient.leaseGrant({ TTL: LEASE_TTL_S })))).map((r) => r.ID));
    const stream = await leaseClient.leaseKeepAlive();
    stream.on('data', () => undefined);
    const keepAll = (): void => {
      for (const ID of ids) stream.write({ ID });
    };
    keepAll();
    const before = cpuSeconds(leader.pid);
    const started = performance.now();
    for (let round = 0; round < 7; round++) {
      await pause(3_000); // the keep-alive period being measured
      keepAll();
    }
    const share = (cpuSeconds(leader.pid) - before) / ((performance.now() - started) / 1000);
    stream.end();
    return share;
  } finally {
    client.close();
  }
}

const fanOutLine = (system: string, n: number, f: FanOut): string =>
  `fan-out ${system.padEnd(7)} ${String(n).padStart(6)} watchers  delivered ${f.delivered}/${f.expected}  p50 ${f.deliveryMs.p50.toFixed(2)}  p99 ${f.deliveryMs.p99.toFixed(2)}  p99.9 ${f.deliveryMs.p999.toFixed(2)} ms  (put p50 ${f.putMs.p50.toFixed(2)} ms)\n`;

const results: Record<string, unknown>[] = [];
const cluster = await Cluster.start(3);
const baseline = values.baseline === undefined ? null : await Cluster.start(3, { main: values.baseline });
const startedAnchors: Anchor[] = [];
const writers: WardenClient[] = [];
let etcdWriter: Etcd3 | null = null;
let zookeeperWriter: zookeeper.Client | null = null;
let cleaning: Promise<void> | null = null;
/** Everything this run started, let go once (at the end, or on Ctrl-C: the anchor's members ignore it). */
const cleanUp = (): Promise<void> =>
  (cleaning ??= (async () => {
    for (const w of writers) await w.close();
    etcdWriter?.close();
    zookeeperWriter?.close();
    for (const anchor of startedAnchors) stopAnchor(anchor);
    await cluster.stop();
    await baseline?.stop();
  })());
process.once('SIGINT', () => {
  process.stderr.write('interrupted: stopping what this run started\n');
  void cleanUp().finally(() => process.exit(130));
});

/** A Warden client through the member the writer uses (a follower unless --writer leader). */
async function wardenWriter(c: Cluster): Promise<WardenClient> {
  const leader = await c.leader();
  const member = WRITER === 'leader' ? leader : c.members.find((m) => m.name !== leader)!.name;
  const client = connect({ endpoints: c.member(member).clientUrl, timeoutMs: options.timeoutMs });
  writers.push(client);
  return client;
}

/** The run ends early, on purpose (--leases 0: no lease figures). */
class Done extends Error {}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};

try {
  const writer = await wardenWriter(cluster);
  const baselineWriter = baseline === null ? null : await wardenWriter(baseline);
  if (withEtcd) {
    if (ensureAnchor('etcd')) startedAnchors.push('etcd');
    const leader = etcdLeader().endpoint;
    etcdWriter = new Etcd3({ hosts: [WRITER === 'leader' ? leader : ETCD_ENDPOINTS.find((e) => e !== leader)!] });
  }
  if (withZookeeper) {
    if (ensureAnchor('zookeeper')) startedAnchors.push('zookeeper');
    const leader = zookeeperLeader();
    zookeeperWriter = await connectZookeeper(WRITER === 'leader' ? leader : ZOOKEEPER_ENDPOINTS.find((e) => e !== leader)!);
  }
  await warm(await prepare('put', [writer], options));
  if (baselineWriter !== null) await warm(await prepare('put', [baselineWriter], options));
  if (etcdWriter !== null) await warm(await etcdWorkload('put', [etcdWriter], options));

  const watchRows = [await putToEvent('warden', await prepare('watch', [writer], options))];
  if (baselineWriter !== null) watchRows.push(await putToEvent('baseline', await prepare('watch', [baselineWriter], options)));
  if (etcdWriter !== null) watchRows.push(await putToEvent('etcd', await etcdWatchWorkload([etcdWriter], options)));
  process.stdout.write(`put → event (the bench watch workload; 1 in flight, ${PUT_RATE}/s, ${PUTS} puts)\n${comparison(watchRows, 'warden', 'p50')}\n`);
  for (const r of watchRows) results.push({ bench: 'put-to-event', system: r.system, ok: r.summary.ok, failed: r.summary.failed, latencyMs: r.summary.latencyMs });

  // Fan-out: the systems take turns within each watcher count and round.
  const turns: { system: string; run: (n: number) => Promise<FanOut> }[] = [{ system: 'warden', run: (n) => wardenFanOut(cluster, writer, n) }];
  if (baseline !== null && baselineWriter !== null) turns.push({ system: 'baseline', run: (n) => wardenFanOut(baseline, baselineWriter, n) });
  if (etcdWriter !== null) turns.push({ system: 'etcd', run: (n) => etcdFanOut(etcdWriter!, n) });
  if (zookeeperWriter !== null) turns.push({ system: 'zookeeper', run: (n) => zookeeperFanOut(zookeeperWriter!, n) });
  process.stdout.write(`fan-out: put through a ${WRITER} → event at each watcher (${PUTS} puts at ${PUT_RATE}/s per turn, ${ROUNDS} rounds)\n`);
  const byPoint = new Map<string, FanOut[]>();
  for (const n of WATCHER_COUNTS) {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const turn of turns) {
        const f = await turn.run(n);
        process.stdout.write(`round ${round} ${fanOutLine(turn.system, n, f)}`);
        results.push({ bench: 'fan-out', system: turn.system, watchers: n, round, writer: WRITER, ...f });
        const key = `${n}\u0000${turn.system}`;
        byPoint.set(key, [...(byPoint.get(key) ?? []), f]);
      }
    }
  }
  process.stdout.write(`\nfan-out medians over ${ROUNDS} rounds (put through a ${WRITER})\nwatchers  system      delivered   p50 ms   p99 ms  p99.9 ms  put p50 ms  warden p99 ÷ it\n`);
  for (const n of WATCHER_COUNTS) {
    const wardenP99 = median((byPoint.get(`${n}\u0000warden`) ?? []).map((f) => f.deliveryMs.p99));
    for (const turn of turns) {
      const fs = byPoint.get(`${n}\u0000${turn.system}`) ?? [];
      const p99 = median(fs.map((f) => f.deliveryMs.p99));
      const delivered = `${fs.reduce((a, f) => a + f.delivered, 0)}/${fs.reduce((a, f) => a + f.expected, 0)}`;
      const ratio = turn.system === 'warden' ? '' : `×${(wardenP99 / p99).toFixed(2)}`;
      process.stdout.write(`${String(n).padStart(8)}  ${turn.system.padEnd(10)} ${delivered.padStart(10)}  ${median(fs.map((f) => f.deliveryMs.p50)).toFixed(2).padStart(7)}  ${p99.toFixed(2).padStart(7)}  ${median(fs.map((f) => f.deliveryMs.p999)).toFixed(2).padStart(8)}  ${median(fs.map((f) => f.putMs.p50)).toFixed(2).padStart(10)}  ${ratio}\n`);
    }
  }

  const leader = cluster.member(await cluster.leader());
  if (LEASES === 0) throw new Done();
  const w = await wardenLeaseCpu(leader.process!.pid!, leader.clientUrl);
  process.stdout.write(`leases  warden  ${LEASES} kept alive every 3 s: leader CPU ${(w * 100).toFixed(1)}% of a core\n`);
  results.push({ bench: 'lease-cpu', system: 'warden', leases: LEASES, cpuShare: w });
  if (withEtcd) {
    const e = await etcdLeaseCpu();
    process.stdout.write(`leases  etcd    ${LEASES} kept alive every 3 s: leader CPU ${(e * 100).toFixed(1)}% of a core\n`);
    results.push({ bench: 'lease-cpu', system: 'etcd', leases: LEASES, cpuShare: e });
  }
} catch (error) {
  if (!(error instanceof Done)) throw error;
} finally {
  await cleanUp();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
process.exit(0);
