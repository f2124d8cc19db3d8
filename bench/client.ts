/**
 * `npm run bench:client`: what a client library costs its host — the bench process's own CPU
 * (`process.cpuUsage()`: user + system, all its threads) around a fixed number of requests at 64
 * in flight, for Warden's client (client/index.ts) against a local 3-member cluster (real
 * `wardend` processes, default 100 ms tick), ZooKeeper 3.8 through `node-zookeeper-client` and
 * etcd 3.4 through `etcd3` (3 members each on loopback, started by ../shared/anchors), in one
 * run. The members are other processes, so the CPU measured is the client's (and this bench's
 * driving loop, the same for all three). Workloads: puts of 256-byte values over 1,000 keys, and
 * reads of them (linearizable for Warden and etcd; ZooKeeper's getData is served by the member
 * the client is connected to — it has no linearizable read without a sync). Every value is read
 * back as text, as a user would. Systems take turns in each round (W, Z, E, W, Z, E…); the
 * table gives each system's median over rounds.
 *
 * Then the recipes (bench/client-recipes.ts): lock acquire+release cycles per second with 1 and
 * 10 contenders, and election failover time (the leading candidate's process SIGKILLed → a new
 * leader seen by a watcher), each beside etcd3's Lock/Election and a ZooKeeper lock recipe.
 *
 * Flags: --requests N per case (default 20,000) or --seconds N per case (time-bound instead),
 * --rounds N (default 3), --only warden|zookeeper|etcd, --workloads cpu,lock,election (default
 * all), --lock-seconds N (default 5), --failovers N samples per system (default 8).
 *
 * Must never: run in CI (it starts the anchors); be read as a test; leave members or candidate
 * processes behind; count a request that was not answered.
 */

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import zookeeper from 'node-zookeeper-client';
import { connect, WardenError, type WardenClient } from '../client/index.js';
import { Cluster } from '../test/integration/cluster.js';
import { electionFailover, lockCycles, type FailoverFigures, type LockFigures, type System } from './client-recipes.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    seconds: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' },
    workloads: { type: 'string', default: 'cpu,lock,election' },
    'lock-seconds': { type: 'string', default: '5' },
    failovers: { type: 'string', default: '8' },
  },
});
const SYSTEMS: readonly System[] = ['warden', 'zookeeper', 'etcd'];
if (values.only !== undefined && !SYSTEMS.includes(values.only as System)) throw new Error(`--only must be one of ${SYSTEMS.join(', ')}`);
const systems = SYSTEMS.filter((s) => values.only === undefined || values.only === s);
const workloads = new Set(values.workloads.split(','));
const requests = Number(values.requests);
const seconds = values.seconds === undefined ? null : Number(values.seconds);
const rounds = Number(values.rounds);
const IN_FLIGHT = 64;
const KEYS = 1_000;
const WARMUP_REQUESTS = 2_000;
const MAX_REQUESTS = 10_000_000; // a --seconds run stops here too
const TEXT = 'a'.repeat(256);
const BYTES = Buffer.from(TEXT);
const ANCHORS = fileURLToPath(new URL('../../shared/anchors/', import.meta.url));

/** One client library under test: a put and a read of key k, each resolving when answered. */
interface Target {
  readonly system: System;
  put(k: number): Promise<void>;
  get(k: number): Promise<void>;
  close(): Promise<void>;
}

interface CpuFigures {
  readonly requests: number;
  readonly opsPerSecond: number;
  /** The bench process's CPU (user + system) per 1,000 answered requests, in ms. */
  readonly cpuMsPer1000: number;
  /** CPU time ÷ wall time: cores the client kept busy. */
  readonly cores: number;
}

/** A closed loop at `inFlight`: each worker sends its next request when its last one is answered. */
async function closedLoop(op: (k: number) => Promise<void>, inFlight: number, count: number, stopAt: number): Promise<number> {
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < count && performance.now() < stopAt) {
      issued += 1;
      await op(Math.floor(Math.random() * KEYS));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return issued;
}

async function measureCpu(op: (k: number) => Promise<void>): Promise<CpuFigures> {
  await closedLoop(op, IN_FLIGHT, WARMUP_REQUESTS, Infinity);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const done = seconds === null ? await closedLoop(op, IN_FLIGHT, requests, Infinity) : await closedLoop(op, IN_FLIGHT, MAX_REQUESTS, started + seconds * 1000);
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { requests: done, opsPerSecond: done / (wallMs / 1000), cpuMsPer1000: (cpuMs / done) * 1000, cores: cpuMs / wallMs };
}

async function wardenTarget(cluster: Cluster): Promise<{ target: Target; client: WardenClient }> {
  const leader = await cluster.leader();
  const endpoints = [cluster.member(leader).clientUrl, ...cluster.members.filter((m) => m.name !== leader).map((m) => m.clientUrl)];
  const client = connect({ endpoints, timeoutMs: 30_000 });
  await client.create('/bench').catch((error: unknown) => {
    if (!(error instanceof WardenError && error.code === 'NODE_EXISTS')) throw error;
  });
  const target: Target = {
    system: 'warden',
    put: async (k) => void (await client.put(`/bench/k${k}`, TEXT)),
    get: async (k) => void (await client.get(`/bench/k${k}`))?.value,
    close: () => client.close(),
  };
  for (let k = 0; k < KEYS; k += 100) await Promise.all(Array.from({ length: 100 }, (_, i) => target.put(k + i)));
  return { target, client };
}

async function etcdTarget(): Promise<Target> {
  const client = new Etcd3({ hosts: ['127.0.0.1:23791'] });
  const target: Target = {
    system: 'etcd',
    put: async (k) => void (await client.put(`/bench/k${k}`).value(TEXT)),
    get: async (k) => void (await client.get(`/bench/k${k}`).string()),
    close: async () => client.close(),
  };
  for (let k = 0; k < KEYS; k += 100) await Promise.all(Array.from({ length: 100 }, (_, i) => target.put(k + i)));
  return target;
}

async function zookeeperTarget(): Promise<Target> {
  const client = zookeeper.createClient('127.0.0.1:21811', { sessionTimeout: 30_000 });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('zookeeper: not connected within 30 s')), 30_000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect();
  });
  const promised = <T>(run: (done: (error: unknown, result?: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => run((error, result) => (error ? reject(error) : resolve(result as T))));
  const ignoreExists = (error: unknown): void => {
    if ((error as { getCode?: () => number }).getCode?.() !== zookeeper.Exception.NODE_EXISTS) throw error;
  };
  await promised((done) => client.create('/bench', done)).catch(ignoreExists);
  await Promise.all(Array.from({ length: KEYS }, (_, k) => promised((done) => client.create(`/bench/k${k}`, BYTES, done)).catch(ignoreExists)));
  return {
    system: 'zookeeper',
    put: (k) => promised((done) => client.setData(`/bench/k${k}`, Buffer.from(TEXT), -1, (error) => done(error))),
    get: async (k) => void (await promised<Buffer>((done) => client.getData(`/bench/k${k}`, (error, data) => done(error, data)))).toString(),
    close: async () => client.close(),
  };
}

function anchor(system: 'etcd' | 'zookeeper', action: 'start' | 'stop'): void {
  execFileSync('bash', [`${ANCHORS}${system === 'etcd' ? 'etcd.sh' : 'zookeeper.sh'}`, action], { stdio: 'inherit' });
}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const pad = (text: string | number, width: number): string => String(text).padStart(width);

// Bring up every system first (the anchors take a while), then alternate between them.
let cluster: Cluster | null = null;
const started: ('zookeeper' | 'etcd')[] = [];
const cpuResults: { workload: string; round: number; system: System; figures: CpuFigures }[] = [];
let lockResults: LockFigures[] = [];
let failoverResults: FailoverFigures[] = [];
try {
  if (systems.includes('warden')) cluster = await Cluster.start(3, { tickMs: 100 });
  for (const system of ['zookeeper', 'etcd'] as const) {
    if (!systems.includes(system)) continue;
    anchor(system, 'start');
    started.push(system);
  }
  const endpoints = {
    warden: cluster === null ? [] : await (async (c: Cluster) => {
      const leader = await c.leader();
      return [c.member(leader).clientUrl, ...c.members.filter((m) => m.name !== leader).map((m) => m.clientUrl)];
    })(cluster),
    zookeeper: ['127.0.0.1:21811', '127.0.0.1:21812', '127.0.0.1:21813'],
    etcd: ['127.0.0.1:23791', '127.0.0.1:23792', '127.0.0.1:23793'],
  };

  if (workloads.has('cpu')) {
    const targets: Target[] = [];
    for (const system of systems) targets.push(system === 'warden' ? (await wardenTarget(cluster!)).target : system === 'zookeeper' ? await zookeeperTarget() : await etcdTarget());
    try {
      for (const workload of ['put', 'get'] as const) {
        for (let round = 1; round <= rounds; round++) {
          for (const target of targets) {
            const figures = await measureCpu(workload === 'put' ? (k) => target.put(k) : (k) => target.get(k));
            cpuResults.push({ workload, round, system: target.system, figures });
            process.stdout.write(
              `${workload}@${IN_FLIGHT} round ${round}  ${target.system.padEnd(9)} ${pad(figures.opsPerSecond.toFixed(0), 7)} ops/s  client CPU ${pad(figures.cpuMsPer1000.toFixed(1), 6)} ms/1,000  ${figures.cores.toFixed(2)} cores  (${figures.requests} requests)\n`,
            );
          }
        }
      }
    } finally {
      for (const target of targets) await target.close();
    }
  }
  if (workloads.has('lock')) lockResults = await lockCycles(systems, endpoints, Number(values['lock-seconds']) * 1000);
  if (workloads.has('election')) failoverResults = await electionFailover(systems, endpoints, Number(values.failovers));
} finally {
  await cluster?.stop();
  for (const system of started) anchor(system, 'stop');
}

if (cpuResults.length > 0) {
  process.stdout.write(`\nClient CPU at ${IN_FLIGHT} in flight (median of ${rounds} rounds; ${seconds === null ? `${requests} requests` : `${seconds} s`} per case)\n`);
  process.stdout.write(`${'workload'.padEnd(12)}${'client'.padEnd(26)}${pad('ops/s', 8)}${pad('CPU ms/1,000', 14)}${pad('cores', 7)}\n`);
  const library: Record<System, string> = { warden: 'warden (client/)', zookeeper: 'node-zookeeper-client', etcd: 'etcd3' };
  for (const workload of ['put', 'get'] as const) {
    const label = workload === 'put' ? 'put' : 'get (lin.)';
    for (const system of systems) {
      const rows = cpuResults.filter((r) => r.workload === workload && r.system === system).map((r) => r.figures);
      if (rows.length === 0) continue;
      process.stdout.write(
        `${label.padEnd(12)}${library[system].padEnd(26)}${pad(median(rows.map((r) => r.opsPerSecond)).toFixed(0), 8)}${pad(median(rows.map((r) => r.cpuMsPer1000)).toFixed(1), 14)}${pad(median(rows.map((r) => r.cores)).toFixed(2), 7)}\n`,
      );
    }
    const per = (system: System): number[] => cpuResults.filter((r) => r.workload === workload && r.system === system).map((r) => r.figures.cpuMsPer1000);
    if (systems.includes('warden') && systems.includes('zookeeper')) {
      const ratios = per('warden').map((w, i) => w / per('zookeeper')[i]!);
      process.stdout.write(`${''.padEnd(12)}warden ÷ zookeeper CPU per request, per round: ${ratios.map((r) => `×${r.toFixed(2)}`).join(' ')}\n`);
    }
  }
}
if (lockResults.length > 0) {
  process.stdout.write('\nLock acquire+release cycles\n');
  for (const r of lockResults) {
    process.stdout.write(`${r.label.padEnd(48)} ${pad(r.contenders, 2)} contender(s)  ${pad(r.cyclesPerSecond.toFixed(1), 7)} cycles/s  overlaps ${r.overlaps}  client CPU ${r.cpuMsPerCycle.toFixed(2)} ms/cycle\n`);
  }
}
if (failoverResults.length > 0) {
  process.stdout.write('\nElection failover (leading candidate SIGKILLed → new leader seen by a watcher; session TTL 4 s everywhere)\n');
  for (const r of failoverResults) {
    process.stdout.write(`${r.label.padEnd(48)} p50 ${pad(r.p50Ms.toFixed(0), 5)} ms  p99 ${pad(r.p99Ms.toFixed(0), 5)} ms  (n=${r.samplesMs.length}; min ${Math.min(...r.samplesMs).toFixed(0)}, max ${Math.max(...r.samplesMs).toFixed(0)})\n`);
  }
}
process.stdout.write(`${JSON.stringify({ bench: 'client', inFlight: IN_FLIGHT, requests: seconds === null ? requests : null, seconds, rounds, cpu: cpuResults, lock: lockResults, failover: failoverResults })}\n`);
process.exit(0);
