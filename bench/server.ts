/**
 * `npm run bench:server`: a local 3-member Warden cluster (real `wardend` processes, fsync on)
 * beside etcd 3.4 and ZooKeeper 3.8 (3 members each on loopback, started by ../shared/anchors),
 * driven from this one Node process over one connection each. Workloads: puts of 256-byte
 * values over 1,000 keys at 1, 16, 64 and 256 requests in flight, and reads at 64 in flight
 * (linearizable for Warden and etcd; ZooKeeper has no linearizable read, its getData is served
 * by the member the client is connected to). Systems take turns within each workload and each
 * round (W, E, Z, W, E, Z…), so a noisy neighbour hits all three alike; ratios are per round.
 *
 * Flags: --seconds N per case (default 4), --rounds N (default 2), --only warden (skip the
 * anchors), --cases put@64,read@64 (a subset), --profile (members write a CPU profile into
 * ./profiles on exit), --baseline PATH (another build's server/main.ts, e.g. a worktree of an
 * older commit: a second Warden cluster takes turns with this one, and the figures are also
 * given as this build ÷ that one, per round).
 *
 * Must never: run in CI (it starts the anchors); be read as a test; leave members behind.
 */

import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { Etcd3 } from 'etcd3';
import zookeeper from 'node-zookeeper-client';
import { Cluster } from '../test/integration/cluster.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    cases: { type: 'string' },
    baseline: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const KEYS = 1_000;
const VALUE = Buffer.alloc(256, 0x61);
const ANCHORS = fileURLToPath(new URL('../../shared/anchors/', import.meta.url));

/** One system under test: a put and a read of key number k, each resolving when answered. */
interface Target {
  readonly name: string;
  put(k: number): Promise<void>;
  read(k: number): Promise<void>;
  close(): Promise<void>;
}

interface Figures {
  readonly opsPerSecond: number;
  readonly p50: number;
  readonly p99: number;
}

/** A closed loop: `inFlight` workers, each issuing its next request as soon as the last answers. */
async function drive(op: (k: number) => Promise<void>, inFlight: number, ms: number): Promise<Figures> {
  const latencies: number[] = [];
  const warmUntil = performance.now() + Math.min(500, ms / 4);
  const stopAt = warmUntil + ms;
  let counted = 0;
  let countStart = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt) {
      const started = performance.now();
      await op(Math.floor(Math.random() * KEYS));
      const ended = performance.now();
      if (started >= warmUntil) {
        if (countStart === 0) countStart = started;
        latencies.push(ended - started);
        counted += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { opsPerSecond: counted / ((performance.now() - countStart) / 1000), p50: at(0.5), p99: at(0.99) };
}

async function warden(name = 'warden', main?: string): Promise<{ target: Target; cluster: Cluster }> {
  const cluster = await Cluster.start(3, { ...(values.profile ? { cpuProfileDir: 'profiles' } : {}), ...(main === undefined ? {} : { main }) });
  const leader = await cluster.leader();
  const socket = new WebSocket(cluster.member(leader).clientUrl, { perMessageDeflate: false });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  socket.on('message', (data) => {
    const answer = JSON.parse(data.toString()) as { id: number; ok: boolean; error?: { code: string; message: string } };
    const waiter = pending.get(answer.id);
    pending.delete(answer.id);
    if (answer.ok) waiter?.resolve();
    else waiter?.reject(new Error(`${answer.error?.code}: ${answer.error?.message}`));
  });
  let nextId = 1;
  const call = (frame: Record<string, unknown>): Promise<void> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, ...frame }));
    });
  const value = VALUE.toString('base64');
  const target: Target = {
    name,
    put: (k) => call({ type: 'put', path: `/bench/k${k}`, value }),
    read: (k) => call({ type: 'get', path: `/bench/k${k}` }),
    close: async () => {
      socket.close();
      // SIGTERM first: a clean exit is when a member writes its CPU profile.
      for (const member of cluster.members) await cluster.kill(member.name, 'SIGTERM').catch(() => undefined);
      await cluster.stop();
    },
  };
  await target.put(0).catch(() => call({ type: 'create', path: '/bench' }));
  await Promise.all(Array.from({ length: KEYS }, (_, k) => target.put(k)));
  return { target, cluster };
}

async function etcd(): Promise<Target> {
  execFileSync('bash', [`${ANCHORS}etcd.sh`, 'start'], { stdio: 'inherit' });
  const client = new Etcd3({ hosts: ['127.0.0.1:23791'] });
  const target: Target = {
    name: 'etcd',
    put: async (k) => void (await client.put(`/bench/k${k}`).value(VALUE)),
    read: async (k) => void (await client.get(`/bench/k${k}`).buffer()),
    close: async () => {
      client.close();
      execFileSync('bash', [`${ANCHORS}etcd.sh`, 'stop'], { stdio: 'inherit' });
    },
  };
  await Promise.all(Array.from({ length: KEYS }, (_, k) => target.put(k)));
  return target;
}

async function zk(): Promise<Target> {
  execFileSync('bash', [`${ANCHORS}zookeeper.sh`, 'start'], { stdio: 'inherit' });
  const client = zookeeper.createClient('127.0.0.1:21811', { sessionTimeout: 30_000 });
  await new Promise<void>((resolve) => {
    client.once('connected', () => resolve());
    client.connect();
  });
  const promised = (run: (done: (error: unknown) => void) => void): Promise<void> =>
    new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
  const ignoreExists = (error: unknown): void => {
    if ((error as { getCode?: () => number }).getCode?.() !== zookeeper.Exception.NODE_EXISTS) throw error;
  };
  await promised((done) => client.create('/bench', done)).catch(ignoreExists);
  await Promise.all(Array.from({ length: KEYS }, (_, k) => promised((done) => client.create(`/bench/k${k}`, VALUE, done)).catch(ignoreExists)));
  return {
    name: 'zookeeper',
    put: (k) => promised((done) => client.setData(`/bench/k${k}`, VALUE, -1, done)),
    read: (k) => promised((done) => client.getData(`/bench/k${k}`, done)),
    close: async () => {
      client.close();
      execFileSync('bash', [`${ANCHORS}zookeeper.sh`, 'stop'], { stdio: 'inherit' });
    },
  };
}

const workloads = [
  { name: 'put', inFlight: 1 },
  { name: 'put', inFlight: 16 },
  { name: 'put', inFlight: 64 },
  { name: 'put', inFlight: 256 },
  { name: 'read', inFlight: 64 },
].filter((w) => values.cases === undefined || values.cases.split(',').includes(`${w.name}@${w.inFlight}`));

const { target: w } = await warden();
const targets: Target[] = [w];
if (values.baseline !== undefined) targets.push((await warden('baseline', values.baseline)).target);
if (values.only !== 'warden') targets.push(await etcd(), await zk());

const results: { workload: string; round: number; system: string; figures: Figures }[] = [];
try {
  for (const workload of workloads) {
    for (let round = 1; round <= rounds; round++) {
      for (const target of targets) {
        const op = workload.name === 'put' ? (k: number) => target.put(k) : (k: number) => target.read(k);
        const figures = await drive(op, workload.inFlight, seconds * 1000);
        results.push({ workload: `${workload.name}@${workload.inFlight}`, round, system: target.name, figures });
        process.stdout.write(
          `${`${workload.name} @${workload.inFlight}`.padEnd(10)} round ${round}  ${target.name.padEnd(10)} ${figures.opsPerSecond.toFixed(0).padStart(8)}/s  p50 ${figures.p50.toFixed(2).padStart(7)} ms  p99 ${figures.p99.toFixed(2).padStart(7)} ms\n`,
        );
      }
    }
  }
} finally {
  for (const target of targets) await target.close();
}

// Ratios per round: Warden against the better peer by throughput in that round.
process.stdout.write('\nWarden ÷ better peer (per round, throughput; p99 Warden vs that peer):\n');
for (const workload of workloads) {
  const label = `${workload.name}@${workload.inFlight}`;
  for (let round = 1; round <= rounds; round++) {
    const inRound = results.filter((r) => r.workload === label && r.round === round);
    const mine = inRound.find((r) => r.system === 'warden')!;
    const peers = inRound.filter((r) => r.system !== 'warden' && r.system !== 'baseline').sort((a, b) => b.figures.opsPerSecond - a.figures.opsPerSecond);
    if (peers.length === 0) continue;
    const best = peers[0]!;
    process.stdout.write(
      `${label.padEnd(10)} round ${round}  ×${(mine.figures.opsPerSecond / best.figures.opsPerSecond).toFixed(2)} vs ${best.system}  p99 ${mine.figures.p99.toFixed(1)} vs ${best.figures.p99.toFixed(1)} ms\n`,
    );
  }
}
if (values.baseline !== undefined) {
  process.stdout.write('\nThis build ÷ baseline (per round, throughput; p99 this vs baseline):\n');
  for (const workload of workloads) {
    const label = `${workload.name}@${workload.inFlight}`;
    for (let round = 1; round <= rounds; round++) {
      const inRound = results.filter((r) => r.workload === label && r.round === round);
      const mine = inRound.find((r) => r.system === 'warden')!;
      const base = inRound.find((r) => r.system === 'baseline')!;
      process.stdout.write(`${label.padEnd(10)} round ${round}  ×${(mine.figures.opsPerSecond / base.figures.opsPerSecond).toFixed(2)}  p99 ${mine.figures.p99.toFixed(1)} vs ${base.figures.p99.toFixed(1)} ms\n`);
    }
  }
}
process.stdout.write(`${JSON.stringify({ bench: 'server', seconds, rounds, results })}\n`);
process.exit(0);
