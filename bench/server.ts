/**
 * `npm run bench:server`: a local 3-member Warden cluster (real `wardend` processes, fsync on)
 * beside etcd 3.4 and ZooKeeper 3.8 (3 members each on loopback, from ../shared/anchors), all
 * loaded by `warden bench`'s own driver: the runner, HDR histogram and report of
 * client/cli/bench. Warden runs the very `put` and `get` workloads `warden bench put|get` runs;
 * etcd (etcd3) and ZooKeeper (node-zookeeper-client) run the same operations from bench/anchors.ts.
 * Cases: puts of 256-byte values to 1,000 keys, and gets of them, at 1, 16, 64 and 256 requests
 * in flight, over one connection to each system's leader (gets are linearizable for Warden and
 * etcd; ZooKeeper has no linearizable read, its getData is served from the member's own state).
 * Systems take turns within each case and round (W, E, Z, W, E, Z…), each turn after a short
 * unrecorded warm-up, so a noisy neighbour hits all three alike; ratios are per round.
 *
 * Flags: --seconds N per turn (default 4), --rounds N (default 2), --only warden (skip the
 * anchors; or a list, e.g. warden,etcd), --cases put@64,get@64 (a subset; read@N is get@N),
 * --profile (members write a CPU profile into ./profiles on exit), --baseline PATH (another
 * build's server/main.ts, e.g. a worktree of an older commit: a second Warden cluster takes
 * turns with this one, and its rows show this build ÷ that one; it is loaded through this build's
 * client library, so it must speak this build's client protocol), --tls (a second Warden cluster
 * with TLS on both ports, certificates from deploy/tls/make-certs.sh, takes turns with the plain
 * one: its rows show the cost of TLS as TLS ÷ plain).
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
import { connectZookeeper, ensureAnchor, etcdLeader, etcdWorkload, stopAnchor, zookeeperLeader, zookeeperWorkload, type Anchor } from './anchors.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
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
const SYSTEMS = ['warden', 'etcd', 'zookeeper'] as const;
const only = (values.only ?? SYSTEMS.join(',')).split(',');
for (const name of only) if (!(SYSTEMS as readonly string[]).includes(name)) throw new Error(`--only: unknown system ${name} (${SYSTEMS.join(', ')})`);
const ALL_CASES = (['put', 'get'] as const).flatMap((workload) => [1, 16, 64, 256].map((inFlight) => ({ workload, inFlight, label: `${workload}@${inFlight}` })));
const asked = values.cases?.split(',').map((c) => c.replace(/^read@/, 'get@'));
for (const c of asked ?? []) if (!ALL_CASES.some((k) => k.label === c)) throw new Error(`--cases: unknown case ${c} (${ALL_CASES.map((k) => k.label).join(', ')})`);
const cases = ALL_CASES.filter((c) => asked === undefined || asked.includes(c.label));
const options: WorkloadOptions = { prefix: '/bench', keySize: 8, valSize: 256, keySpace: 1_000, consistency: 'linearizable', timeoutMs: 10_000 };
const WARMUP_S = Math.min(0.5, seconds / 4);

/** One system under test: the `put` or `get` workload on it, and how to let it go. */
interface System {
  readonly name: string;
  readonly endpoint: string;
  prepare(workload: 'put' | 'get'): Promise<Workload>;
  close(): Promise<void>;
}

async function warden(name: string, main?: string, tlsDir?: string): Promise<System> {
  const cluster = await Cluster.start(3, { ...(values.profile ? { cpuProfileDir: 'profiles' } : {}), ...(main === undefined ? {} : { main }), ...(tlsDir === undefined ? {} : { tlsDir }) });
  try {
    const endpoint = cluster.member(await cluster.leader()).clientUrl;
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
      prepare: (workload) => prepare(workload, [client], options),
      close: async () => {
        await client.close();
        // SIGTERM first: a clean exit is when a member writes its CPU profile.
        for (const member of cluster.members) await cluster.kill(member.name, 'SIGTERM').catch(() => undefined);
        await cluster.stop();
      },
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/** Anchors this run started: only those are stopped at the end. */
const started: Anchor[] = [];

function etcd(): System {
  if (ensureAnchor('etcd')) started.push('etcd');
  const { endpoint } = etcdLeader();
  const client = new Etcd3({ hosts: [endpoint] });
  return { name: 'etcd', endpoint, prepare: (workload) => etcdWorkload(workload, [client], options), close: async () => client.close() };
}

async function zk(): Promise<System> {
  if (ensureAnchor('zookeeper')) started.push('zookeeper');
  const endpoint = zookeeperLeader();
  const client: zookeeper.Client = await connectZookeeper(endpoint);
  return { name: 'zookeeper', endpoint, prepare: (workload) => zookeeperWorkload(workload, [client], options), close: async () => client.close() };
}

const systems: System[] = [];
const rows: (Compared & { summary: BenchSummary })[] = [];
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
  systems.push(await warden('warden'));
  if (values.baseline !== undefined) systems.push(await warden('baseline', values.baseline));
  if (values.tls) {
    const tlsDir = mkdtempSync(join(tmpdir(), 'warden-bench-tls-'));
    process.once('exit', () => rmSync(tlsDir, { recursive: true, force: true }));
    execFileSync('bash', [fileURLToPath(new URL('../deploy/tls/make-certs.sh', import.meta.url)), tlsDir, 'n1', 'n2', 'n3']);
    systems.push(await warden('warden-tls', undefined, tlsDir));
  }
  if (only.includes('etcd')) systems.push(etcd());
  if (only.includes('zookeeper')) systems.push(await zk());
  for (const c of cases) {
    const workloads: Workload[] = [];
    for (const system of systems) workloads.push(await system.prepare(c.workload));
    try {
      for (let round = 1; round <= rounds; round++) {
        for (const [i, system] of systems.entries()) {
          const operation = workloads[i]!.operation;
          await run(operation, { clients: c.inFlight, rate: 0, durationS: WARMUP_S });
          const result = await run(operation, { clients: c.inFlight, rate: 0, durationS: seconds });
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
          rows.push({ label: c.label, round, system: system.name, summary });
          const l = summary.latencyMs;
          process.stderr.write(`${c.label.padEnd(8)} round ${round}  ${system.name.padEnd(10)} ${summary.throughput.toFixed(0).padStart(7)}/s  p50 ${l.p50.toFixed(2)}  p99 ${l.p99.toFixed(2)}  p99.9 ${l.p999.toFixed(2)} ms${summary.failed > 0 ? `  failed ${summary.failed} ${JSON.stringify(summary.errors)}` : ''}\n`);
        }
      }
    } finally {
      for (const workload of workloads) await workload.close();
    }
  }
} finally {
  await closeAll();
}

process.stdout.write(`\n${comparison(rows, 'warden')}`);
const results = rows.map(({ label, round, system, summary }) => ({ case: label, round, system, describe: summary.describe, throughput: summary.throughput, ok: summary.ok, failed: summary.failed, errors: summary.errors, latencyMs: summary.latencyMs }));
process.stdout.write(`${JSON.stringify({ bench: 'server', seconds, rounds, results })}\n`);
process.exit(0);
