/**
 * `npm run bench:server`: a local 3-member Warden cluster (real `wardend` processes, fsync on)
 * beside etcd 3.4 and ZooKeeper 3.8 (3 members each on loopback, from ../shared/anchors), all
 * loaded by `warden bench`'s own driver: the runner, HDR histogram and report of
 * client/cli/bench. Warden runs the very `put` and `get` workloads `warden bench put|get` runs;
 * etcd (etcd3) and ZooKeeper (node-zookeeper-client) run the same operations from bench/anchors.ts.
 * Cases: puts of 256-byte values to 1,000 keys, and gets of them, at 1, 16, 64 and 256 requests
 * in flight, over one connection to a **follower** — as most clients meet a cluster — and,
 * separately, to the leader (gets are linearizable for Warden and etcd; ZooKeeper has no
 * linearizable read, its getData is served from the member's own state). Systems take turns
 * within each case and round (W, E, Z, W, E, Z…), each turn after a short unrecorded warm-up, so
 * a noisy neighbour hits all three alike. Each turn also records the CPU time all three members
 * of the system spent (from /proc) and the client's own, per 1,000 requests. The last table gives
 * each point's medians over the rounds, and Warden ÷ each anchor.
 *
 * Flags: --seconds N per turn (default 4), --rounds N (default 3), --targets follower,leader
 * (default both), --only warden (skip the anchors; or a list, e.g. warden,etcd), --cases
 * put@64,get@64 (a subset; read@N is get@N), --profile (members write a CPU profile into
 * ./profiles on exit), --baseline PATH (another build's server/main.ts, e.g. a worktree of an
 * older commit: a second Warden cluster takes turns with this one, and its rows show this build
 * ÷ that one; it is loaded through this build's client library, so it must speak this build's
 * client protocol), --tls (a second Warden cluster with TLS on both ports, certificates from
 * deploy/tls/make-certs.sh, takes turns with the plain one: its rows show the cost of TLS as TLS
 * ÷ plain).
 *
 * Must never: run in CI (it starts the anchors); be read as a test; leave members behind; stop
 * an anchor it did not start.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import type zookeeper from 'node-zookeeper-client';
import { comparison, summarize, type BenchSummary, type Compared } from '../client/cli/bench/report.js';
import { run } from '../client/cli/bench/runner.js';
import { prepare, type Workload, type WorkloadOptions } from '../client/cli/bench/workloads.js';
import { connect, WardenError } from '../client/index.js';
import { Cluster } from '../test/integration/cluster.js';
import { connectZookeeper, ensureAnchor, ETCD_ENDPOINTS, etcdLeader, etcdWorkload, stopAnchor, ZOOKEEPER_ENDPOINTS, zookeeperLeader, zookeeperWorkload, type Anchor } from './anchors.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    targets: { type: 'string', default: 'follower,leader' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    cases: { type: 'string' },
    baseline: { type: 'string' },
    tls: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1) throw new Error(`--seconds must be > 0 and --rounds a whole number ≥ 1 (got ${values.seconds}, ${values.rounds})`);
const TARGETS = ['follower', 'leader'] as const;
type Target = (typeof TARGETS)[number];
const targets = values.targets!.split(',') as Target[];
for (const t of targets) if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`--targets: unknown target ${t} (${TARGETS.join(', ')})`);
const SYSTEMS = ['warden', 'etcd', 'zookeeper'] as const;
const only = (values.only ?? SYSTEMS.join(',')).split(',');
for (const name of only) if (!(SYSTEMS as readonly string[]).includes(name)) throw new Error(`--only: unknown system ${name} (${SYSTEMS.join(', ')})`);
const ALL_CASES = (['put', 'get'] as const).flatMap((workload) => [1, 16, 64, 256].map((inFlight) => ({ workload, inFlight, label: `${workload}@${inFlight}` })));
const asked = values.cases?.split(',').map((c) => c.replace(/^read@/, 'get@'));
for (const c of asked ?? []) if (!ALL_CASES.some((k) => k.label === c)) throw new Error(`--cases: unknown case ${c} (${ALL_CASES.map((k) => k.label).join(', ')})`);
const cases = ALL_CASES.filter((c) => asked === undefined || asked.includes(c.label));
const options: WorkloadOptions = { prefix: '/bench', keySize: 8, valSize: 256, keySpace: 1_000, consistency: 'linearizable', timeoutMs: 10_000 };
const WARMUP_S = Math.min(0.5, seconds / 4);

/** One system under test through one member: the `put` or `get` workload on it, its members' processes, and how to let it go. */
interface System {
  readonly name: string;
  readonly endpoint: string;
  /** Every member's process id now (their CPU time is the server's cost). */
  pids(): number[];
  prepare(workload: 'put' | 'get'): Promise<Workload>;
  close(): Promise<void>;
}

/** CPU milliseconds `pids` have used so far (user + system, from /proc; a process gone counts 0). */
function cpuMsOf(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

const pidsOf = (files: readonly string[]): number[] => files.map((f) => Number(readFileSync(f, 'utf8').trim()));

async function warden(name: string, main?: string, tlsDir?: string): Promise<System[]> {
  const cluster = await Cluster.start(3, { ...(values.profile ? { cpuProfileDir: 'profiles' } : {}), ...(main === undefined ? {} : { main }), ...(tlsDir === undefined ? {} : { tlsDir }) });
  const leader = await cluster.leader();
  const systems: System[] = [];
  try {
    for (const target of targets) systems.push(await wardenThrough(cluster, `${name} (${target})`, target === 'leader' ? leader : cluster.members.find((m) => m.name !== leader)!.name, tlsDir));
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  // The cluster goes with the last of its systems.
  const last = systems[systems.length - 1]!;
  const closeLast = last.close;
  systems[systems.length - 1] = {
    ...last,
    close: async () => {
      await closeLast();
      // SIGTERM first: a clean exit is when a member writes its CPU profile.
      for (const member of cluster.members) await cluster.kill(member.name, 'SIGTERM').catch(() => undefined);
      await cluster.stop();
    },
  };
  return systems;
}

/** A client of `cluster` through `member` alone. */
async function wardenThrough(cluster: Cluster, name: string, member: string, tlsDir?: string): Promise<System> {
  const endpoint = cluster.member(member).clientUrl;
  const client = connect({ endpoints: endpoint, timeoutMs: options.timeoutMs, ...(tlsDir === undefined ? {} : { tls: { ca: readFileSync(join(tlsDir, 'client-ca.pem')) } }) });
  await client.status({ timeoutMs: options.timeoutMs });
  // A write first: a baseline is driven through this build's client library, so it must speak its protocol.
  await client.create(options.prefix, '', { parents: true, timeoutMs: options.timeoutMs }).catch((error: unknown) => {
    if (error instanceof WardenError && error.code === 'NODE_EXISTS') return;
    throw new Error(`${name}: a first write failed (${String(error)}); a --baseline build must speak this build's client protocol`, { cause: error });
  });
  return {
    name,
    endpoint,
    pids: () => cluster.members.flatMap((m) => (m.process?.pid === undefined ? [] : [m.process.pid])),
    prepare: (workload) => prepare(workload, [client], options),
    close: () => client.close(),
  };
}

/** Anchors this run started: only those are stopped at the end. */
const started: Anchor[] = [];

function etcd(): System[] {
  if (ensureAnchor('etcd')) started.push('etcd');
  const leader = etcdLeader().endpoint;
  const pids = pidsOf([1, 2, 3].map((i) => `/tmp/anchors/etcd/e${i}.pid`));
  return targets.map((target) => {
    const endpoint = target === 'leader' ? leader : ETCD_ENDPOINTS.find((e) => e !== leader)!;
    const client = new Etcd3({ hosts: [endpoint] });
    return { name: `etcd (${target})`, endpoint, pids: () => pids, prepare: (workload) => etcdWorkload(workload, [client], options), close: async () => client.close() };
  });
}

async function zk(): Promise<System[]> {
  if (ensureAnchor('zookeeper')) started.push('zookeeper');
  const leader = zookeeperLeader();
  const pids = pidsOf([1, 2, 3].map((i) => `/tmp/anchors/zookeeper/z${i}.pid`));
  const systems: System[] = [];
  for (const target of targets) {
    const endpoint = target === 'leader' ? leader : ZOOKEEPER_ENDPOINTS.find((e) => e !== leader)!;
    const client: zookeeper.Client = await connectZookeeper(endpoint);
    systems.push({ name: `zookeeper (${target})`, endpoint, pids: () => pids, prepare: (workload) => zookeeperWorkload(workload, [client], options), close: async () => client.close() });
  }
  return systems;
}

const systems: System[] = [];
const rows: (Compared & { summary: BenchSummary; serverCpuMsPer1k: number; clientCpuMsPer1k: number })[] = [];
let closing: Promise<void> | null = null;
/** Everything this run started, let go once (from the end of the run or from Ctrl-C). */
const closeAll = (): Promise<void> =>
  (closing ??= (async () => {
    for (const system of systems) await system.close().catch((error: unknown) => process.stderr.write(`closing ${system.name}: ${String(error)}\n`));
    for (const anchor of started) stopAnchor(anchor);
  })());
process.once('SIGINT', () => {
  process.stderr.write('interrupted: stopping what this run started\n');
  void closeAll().finally(() => process.exit(130));
});

try {
  systems.push(...(await warden('warden')));
  if (values.baseline !== undefined) systems.push(...(await warden('baseline', values.baseline)));
  if (values.tls) {
    const tlsDir = mkdtempSync(join(tmpdir(), 'warden-bench-tls-'));
    process.once('exit', () => rmSync(tlsDir, { recursive: true, force: true }));
    execFileSync('bash', [fileURLToPath(new URL('../deploy/tls/make-certs.sh', import.meta.url)), tlsDir, 'n1', 'n2', 'n3']);
    systems.push(...(await warden('warden-tls', undefined, tlsDir)));
  }
  if (only.includes('etcd')) systems.push(...etcd());
  if (only.includes('zookeeper')) systems.push(...(await zk()));
  for (const c of cases) {
    const workloads: Workload[] = [];
    for (const system of systems) workloads.push(await system.prepare(c.workload));
    try {
      for (let round = 1; round <= rounds; round++) {
        for (const [i, system] of systems.entries()) {
          const operation = workloads[i]!.operation;
          await run(operation, { clients: c.inFlight, rate: 0, durationS: WARMUP_S });
          const serverBefore = cpuMsOf(system.pids());
          const clientBefore = process.cpuUsage();
          const result = await run(operation, { clients: c.inFlight, rate: 0, durationS: seconds });
          const clientUsed = process.cpuUsage(clientBefore);
          const serverCpuMs = cpuMsOf(system.pids()) - serverBefore;
          const thousands = Math.max(1, result.ok) / 1_000;
          const summary = summarize(result, {
            workload: c.workload,
            describe: workloads[i]!.describe,
            endpoints: system.endpoint,
            clients: c.inFlight,
            conns: 1,
            rate: 0,
            keySize: options.keySize,
            valSize: options.valSize,
            keySpace: options.keySpace,
            ...(c.workload === 'get' ? { consistency: system.name === 'zookeeper' ? 'local (getData)' : options.consistency } : {}),
          });
          const serverCpuMsPer1k = serverCpuMs / thousands;
          const clientCpuMsPer1k = (clientUsed.user + clientUsed.system) / 1_000 / thousands;
          rows.push({ label: c.label, round, system: system.name, summary, serverCpuMsPer1k, clientCpuMsPer1k });
          const l = summary.latencyMs;
          process.stderr.write(`${c.label.padEnd(8)} round ${round}  ${system.name.padEnd(20)} ${summary.throughput.toFixed(0).padStart(7)}/s  p50 ${l.p50.toFixed(2)}  p99 ${l.p99.toFixed(2)}  p99.9 ${l.p999.toFixed(2)} ms  cpu/1k server ${serverCpuMsPer1k.toFixed(0)} ms client ${clientCpuMsPer1k.toFixed(0)} ms${summary.failed > 0 ? `  failed ${summary.failed} ${JSON.stringify(summary.errors)}` : ''}\n`);
        }
      }
    } finally {
      for (const workload of workloads) await workload.close();
    }
  }
} finally {
  await closeAll();
}

for (const target of targets) {
  const mine = rows.filter((r) => r.system.endsWith(`(${target})`));
  process.stdout.write(`\nthrough a ${target}:\n${comparison(mine, `warden (${target})`)}`);
}
process.stdout.write(`\n${medians(rows)}`);
const results = rows.map(({ label, round, system, summary, serverCpuMsPer1k, clientCpuMsPer1k }) => ({ case: label, round, system, describe: summary.describe, throughput: summary.throughput, ok: summary.ok, failed: summary.failed, errors: summary.errors, latencyMs: summary.latencyMs, serverCpuMsPer1k, clientCpuMsPer1k }));
process.stdout.write(`${JSON.stringify({ bench: 'server', seconds, rounds, targets, results })}\n`);
process.exit(0);

/** Each point's medians over the rounds (throughput, p50, p99, CPU per 1,000 requests), and Warden ÷ each anchor through the same target. */
function medians(all: typeof rows): string {
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const head = ['case', 'system', 'ops/s', 'p50 ms', 'p99 ms', 'server cpu ms/1k', 'client cpu ms/1k', 'warden ÷ it'];
  const points = new Map<string, typeof rows>();
  for (const r of all) points.set(`${r.label}|${r.system}`, [...(points.get(`${r.label}|${r.system}`) ?? []), r]);
  const stat = (key: string): { ops: number; p50: number; p99: number; server: number; client: number } | null => {
    const rs = points.get(key);
    if (rs === undefined) return null;
    return { ops: median(rs.map((r) => r.summary.throughput)), p50: median(rs.map((r) => r.summary.latencyMs.p50)), p99: median(rs.map((r) => r.summary.latencyMs.p99)), server: median(rs.map((r) => r.serverCpuMsPer1k)), client: median(rs.map((r) => r.clientCpuMsPer1k)) };
  };
  const body: string[][] = [];
  for (const key of points.keys()) {
    const [label, system] = key.split('|') as [string, string];
    const m = stat(key)!;
    const target = /\((\w+)\)$/.exec(system)?.[1];
    const mine = stat(`${label}|warden (${target})`);
    const ratio = mine === null || system.startsWith('warden') ? '' : `×${(mine.ops / m.ops).toFixed(2)} ops/s`;
    body.push([label, system, m.ops.toFixed(0), m.p50.toFixed(2), m.p99.toFixed(2), m.server.toFixed(0), m.client.toFixed(0), ratio]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i <= 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [`medians over ${rounds} rounds`, line(head), ...body.map(line)].join('\n') + '\n';
}
