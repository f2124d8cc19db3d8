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
 * members; the runner issues --puts puts, 20 a second, each value carrying its send time. A
 * delivery's latency is from the put's send to the watcher's receipt (both clocks are this
 * process's); the put's own latency is printed beside it, so the difference is what commit →
 * delivery costs. This is not a runner workload: one put gives a sample per watcher, and the
 * runner times one sample per operation, so the watchers record into a histogram of their own.
 *
 * Lease CPU: 10,000 leases of 9 s, each kept alive every 3 s, for 20 s; the leader's CPU time
 * over that window (from /proc). Warden gets one keep-alive frame with all 10,000 ids per round
 * (a raw frame: the public client keeps its own leases alive and has no batch call); etcd one
 * LeaseKeepAlive request per lease on a single stream (its protocol has no batch). Not a runner
 * workload either: the figure is the server's CPU, not an operation's latency.
 *
 * Memory: each member's resident set before the watchers are registered and with them.
 *
 * Flags: --only warden (no etcd), --watchers 1,100,10000, --puts N (default 100), --leases N
 * (default 10,000).
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
import { ensureAnchor, ETCD_ENDPOINTS, etcdLeader, etcdWatchWorkload, etcdWorkload, stopAnchor } from './anchors.js';

const { values } = parseArgs({
  options: { only: { type: 'string' }, watchers: { type: 'string', default: '1,100,10000' }, puts: { type: 'string', default: '100' }, leases: { type: 'string', default: '10000' } },
});
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
const withEtcd = values.only !== 'warden';

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
let startedEtcd = false;
let writer: WardenClient | null = null;
let etcdWriter: Etcd3 | null = null;
let cleaning: Promise<void> | null = null;
/** Everything this run started, let go once (at the end, or on Ctrl-C: the anchor's members ignore it). */
const cleanUp = (): Promise<void> =>
  (cleaning ??= (async () => {
    await writer?.close();
    etcdWriter?.close();
    if (startedEtcd) stopAnchor('etcd');
    await cluster.stop();
  })());
process.once('SIGINT', () => {
  process.stderr.write('interrupted: stopping what this run started\n');
  void cleanUp().finally(() => process.exit(130));
});
try {
  const leaderUrl = cluster.member(await cluster.leader()).clientUrl;
  writer = connect({ endpoints: leaderUrl, timeoutMs: options.timeoutMs });
  if (withEtcd) {
    startedEtcd = ensureAnchor('etcd');
    etcdWriter = new Etcd3({ hosts: [etcdLeader().endpoint] });
  }
  await warm(await prepare('put', [writer], options));
  if (etcdWriter !== null) await warm(await etcdWorkload('put', [etcdWriter], options));

  const watchRows = [await putToEvent('warden', await prepare('watch', [writer], options))];
  if (etcdWriter !== null) watchRows.push(await putToEvent('etcd', await etcdWatchWorkload([etcdWriter], options)));
  process.stdout.write(`put → event (the bench watch workload; 1 in flight, ${PUT_RATE}/s, ${PUTS} puts)\n${comparison(watchRows, 'warden', 'p50')}\n`);
  for (const r of watchRows) results.push({ bench: 'put-to-event', system: r.system, ok: r.summary.ok, failed: r.summary.failed, latencyMs: r.summary.latencyMs });

  for (const n of WATCHER_COUNTS) {
    const w = await wardenFanOut(cluster, writer, n);
    process.stdout.write(fanOutLine('warden', n, w));
    results.push({ bench: 'fan-out', system: 'warden', watchers: n, ...w });
    if (etcdWriter !== null) {
      const e = await etcdFanOut(etcdWriter, n);
      process.stdout.write(fanOutLine('etcd', n, e));
      results.push({ bench: 'fan-out', system: 'etcd', watchers: n, ...e });
    }
  }

  const leader = cluster.member(await cluster.leader());
  const w = await wardenLeaseCpu(leader.process!.pid!, leader.clientUrl);
  process.stdout.write(`leases  warden  ${LEASES} kept alive every 3 s: leader CPU ${(w * 100).toFixed(1)}% of a core\n`);
  results.push({ bench: 'lease-cpu', system: 'warden', leases: LEASES, cpuShare: w });
  if (withEtcd) {
    const e = await etcdLeaseCpu();
    process.stdout.write(`leases  etcd    ${LEASES} kept alive every 3 s: leader CPU ${(e * 100).toFixed(1)}% of a core\n`);
    results.push({ bench: 'lease-cpu', system: 'etcd', leases: LEASES, cpuShare: e });
  }
} finally {
  await cleanUp();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
process.exit(0);
