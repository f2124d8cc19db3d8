/**
 * `npm run bench:watch`: watch delivery latency and the leader's CPU for lease keep-alives, for
 * a local 3-member Warden cluster and for etcd 3.4 (../shared/anchors), in one run.
 *
 * Watch latency: 1, 100 and 10,000 watchers on one key, spread over 10 connections across the
 * three members; 100 puts, 50 ms apart, each value carrying its send time. A delivery's latency
 * is from the put's send to the watcher's receipt (both clocks are this process's); the put's
 * own latency is printed beside it, so the difference is what commit → delivery costs.
 *
 * Lease CPU: 10,000 leases of 9 s, each kept alive every 3 s, for 20 s; the leader's CPU time
 * over that window (from /proc). Warden gets one keep-alive frame with all 10,000 ids per
 * round; etcd gets one LeaseKeepAlive request per lease on a single stream (its protocol has
 * no batch).
 *
 * Memory: each member's resident set before the watchers are registered and with them.
 *
 * Flags: --only warden, --watchers 1,100,10000, --puts N, --leases N (default 10,000).
 *
 * Must never: run in CI (it starts the anchors); be read as a test; leave members behind.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { Etcd3 } from 'etcd3';
import { Cluster } from '../test/integration/cluster.js';

const { values } = parseArgs({
  options: { only: { type: 'string' }, watchers: { type: 'string', default: '1,100,10000' }, puts: { type: 'string', default: '100' }, leases: { type: 'string', default: '10000' } },
});
const WATCHER_COUNTS = values.watchers.split(',').map(Number);
const PUTS = Number(values.puts);
const CONNECTIONS = 10;
const ANCHORS = fileURLToPath(new URL('../../shared/anchors/', import.meta.url));
const LEASES = Number(values.leases);
/** Ids per keep-alive frame (the schema's bound). */
const KEEPALIVE_BATCH = 10_000;
const LEASE_TTL_S = 9;

/** 3,000 puts, 16 at a time, before measuring: a fresh process runs cold until its JIT has seen the path. */
async function warm(put: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 3_000; i += 16) await Promise.all(Array.from({ length: 16 }, (_, k) => put(i + k)));
}

const pct = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Math.round(Number(line.split(/\s+/)[1]) / 1024);
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
}

/** A raw Warden connection: requests by id, pushes to a handler. */
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
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        socket.send(JSON.stringify({ id, ...frame }));
      }),
    close: () => socket.close(),
  };
}

interface Figures {
  readonly deliveries: number;
  readonly expected: number;
  readonly p50: number;
  readonly p99: number;
  readonly putP50: number;
}

async function wardenWatch(cluster: Cluster, leaderUrl: string, watchers: number): Promise<Figures> {
  const latencies: number[] = [];
  const onPush = (frame: Record<string, unknown>): void => {
    const events = frame['events'] as { node?: { value: string } }[] | undefined;
    if (events === undefined) return;
    const now = performance.now();
    for (const event of events) if (event.node !== undefined) latencies.push(now - Number(Buffer.from(event.node.value, 'base64').toString()));
  };
  const connections = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => wardenConnection(cluster.members[i % 3]!.clientUrl, onPush)));
  const rssBefore = cluster.members.map((m) => rssMiB(m.process!.pid!));
  let watchId = 0;
  await Promise.all(Array.from({ length: watchers }, (_, i) => connections[i % CONNECTIONS]!.call({ type: 'watch', watchId: ++watchId, path: '/bench/watched' })));
  const rssWith = cluster.members.map((m) => rssMiB(m.process!.pid!));
  process.stdout.write(`memory  warden  ${String(watchers).padStart(6)} watchers  member RSS ${rssBefore.map((b, i) => `${b}→${rssWith[i]}`).join(', ')} MiB\n`);
  const writer = await wardenConnection(leaderUrl, () => undefined);
  await warm((i) => writer.call({ type: 'put', path: `/bench/warm${i % 100}`, value: 'eA==' }));
  const putLatencies: number[] = [];
  for (let i = 0; i < PUTS; i++) {
    const sent = performance.now();
    await writer.call({ type: 'put', path: '/bench/watched', value: Buffer.from(String(sent)).toString('base64') });
    putLatencies.push(performance.now() - sent);
    await pause(50);
  }
  await pause(1_000);
  for (const c of [...connections, writer]) c.close();
  latencies.sort((a, b) => a - b);
  putLatencies.sort((a, b) => a - b);
  return { deliveries: latencies.length, expected: watchers * PUTS, p50: pct(latencies, 0.5), p99: pct(latencies, 0.99), putP50: pct(putLatencies, 0.5) };
}

async function etcdWatch(watchers: number): Promise<Figures> {
  const latencies: number[] = [];
  const clients = Array.from({ length: CONNECTIONS }, (_, i) => new Etcd3({ hosts: [`127.0.0.1:2379${(i % 3) + 1}`] }));
  const created = await Promise.all(
    Array.from({ length: watchers }, async (_, i) => {
      const watcher = await clients[i % CONNECTIONS]!.watch().key('/bench/watched').create();
      watcher.on('put', (kv) => latencies.push(performance.now() - Number(kv.value.toString())));
      return watcher;
    }),
  );
  const writer = new Etcd3({ hosts: ['127.0.0.1:23791'] });
  await warm((i) => writer.put(`/bench/warm${i % 100}`).value('x').exec());
  const putLatencies: number[] = [];
  for (let i = 0; i < PUTS; i++) {
    const sent = performance.now();
    await writer.put('/bench/watched').value(String(sent));
    putLatencies.push(performance.now() - sent);
    await pause(50);
  }
  await pause(1_000);
  await Promise.all(created.map((w) => w.cancel()));
  for (const c of [...clients, writer]) c.close();
  latencies.sort((a, b) => a - b);
  putLatencies.sort((a, b) => a - b);
  return { deliveries: latencies.length, expected: watchers * PUTS, p50: pct(latencies, 0.5), p99: pct(latencies, 0.99), putP50: pct(putLatencies, 0.5) };
}

async function wardenLeaseCpu(leaderPid: number, leaderUrl: string): Promise<number> {
  const client = await wardenConnection(leaderUrl, () => undefined);
  const ids: number[] = [];
  for (let start = 0; start < LEASES; start += 1_000) {
    const answers = await Promise.all(Array.from({ length: 1_000 }, () => client.call({ type: 'leaseGrant', ttlMs: LEASE_TTL_S * 1000 })));
    for (const a of answers) ids.push((a['lease'] as { id: number }).id);
  }
  const keepAll = async (): Promise<Record<string, unknown>> => {
    const answers = await Promise.all(Array.from({ length: Math.ceil(ids.length / KEEPALIVE_BATCH) }, (_, i) => client.call({ type: 'leaseKeepAlive', leases: ids.slice(i * KEEPALIVE_BATCH, (i + 1) * KEEPALIVE_BATCH) })));
    return answers.find((a) => a['ok'] !== true) ?? { ok: true };
  };
  await keepAll();
  const before = cpuSeconds(leaderPid);
  const started = performance.now();
  for (let round = 0; round < 7; round++) {
    await pause(3_000);
    const answer = await keepAll();
    if ((answer as { ok?: boolean }).ok !== true) throw new Error(`keep-alive failed: ${JSON.stringify(answer).slice(0, 200)}`);
  }
  const share = (cpuSeconds(leaderPid) - before) / ((performance.now() - started) / 1000);
  for (let start = 0; start < ids.length; start += 1_000) await Promise.all(ids.slice(start, start + 1_000).map((lease) => client.call({ type: 'leaseRevoke', lease })));
  client.close();
  return share;
}

async function etcdLeaseCpu(): Promise<number> {
  const status = execFileSync('etcdctl', ['--endpoints=127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793', 'endpoint', 'status', '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } }).toString();
  const endpoints = JSON.parse(status) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
  const leader = endpoints.find((e) => String(e.Status.header.member_id) === String(e.Status.leader))!;
  const index = leader.Endpoint.slice(-1);
  const pid = Number(readFileSync(`/tmp/anchors/etcd/e${index}.pid`, 'utf8').trim());
  const client = new Etcd3({ hosts: [leader.Endpoint] });
  const leaseClient = (client as unknown as { leaseClient: { leaseGrant(req: { TTL: number }): Promise<{ ID: string }>; leaseKeepAlive(): Promise<{ write(req: { ID: string }): void; on(event: string, fn: () => void): void; end(): void }> } }).leaseClient;
  const ids: string[] = [];
  for (let start = 0; start < LEASES; start += 500) ids.push(...(await Promise.all(Array.from({ length: 500 }, () => leaseClient.leaseGrant({ TTL: LEASE_TTL_S })))).map((r) => r.ID));
  const stream = await leaseClient.leaseKeepAlive();
  stream.on('data', () => undefined);
  const keepAll = (): void => {
    for (const ID of ids) stream.write({ ID });
  };
  keepAll();
  const before = cpuSeconds(pid);
  const started = performance.now();
  for (let round = 0; round < 7; round++) {
    await pause(3_000);
    keepAll();
  }
  const share = (cpuSeconds(pid) - before) / ((performance.now() - started) / 1000);
  stream.end();
  client.close();
  return share;
}

const line = (system: string, n: number, f: Figures): string =>
  `watch   ${system.padEnd(7)} ${String(n).padStart(6)} watchers  delivered ${f.deliveries}/${f.expected}  p50 ${f.p50.toFixed(2)} ms  p99 ${f.p99.toFixed(2)} ms  (put p50 ${f.putP50.toFixed(2)} ms)\n`;

const results: Record<string, unknown>[] = [];
const cluster = await Cluster.start(3);
try {
  const leader = await cluster.leader();
  const leaderUrl = cluster.member(leader).clientUrl;
  const withEtcd = values.only !== 'warden';
  if (withEtcd) execFileSync('bash', [`${ANCHORS}etcd.sh`, 'start'], { stdio: 'inherit' });
  try {
    for (const n of WATCHER_COUNTS) {
      const w = await wardenWatch(cluster, leaderUrl, n);
      process.stdout.write(line('warden', n, w));
      results.push({ bench: 'watch', system: 'warden', watchers: n, ...w });
      if (withEtcd) {
        const e = await etcdWatch(n);
        process.stdout.write(line('etcd', n, e));
        results.push({ bench: 'watch', system: 'etcd', watchers: n, ...e });
      }
    }
    const leaderPid = cluster.member(await cluster.leader()).process!.pid!;
    const w = await wardenLeaseCpu(leaderPid, cluster.member(await cluster.leader()).clientUrl);
    process.stdout.write(`leases  warden  ${LEASES} kept alive every 3 s: leader CPU ${(w * 100).toFixed(1)}% of a core\n`);
    results.push({ bench: 'lease-cpu', system: 'warden', leases: LEASES, cpuShare: w });
    if (withEtcd) {
      const e = await etcdLeaseCpu();
      process.stdout.write(`leases  etcd    ${LEASES} kept alive every 3 s: leader CPU ${(e * 100).toFixed(1)}% of a core\n`);
      results.push({ bench: 'lease-cpu', system: 'etcd', leases: LEASES, cpuShare: e });
    }
  } finally {
    if (withEtcd) execFileSync('bash', [`${ANCHORS}etcd.sh`, 'stop'], { stdio: 'inherit' });
  }
} finally {
  await cluster.stop();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
process.exit(0);
