/**
 * The anchors — etcd 3.4 and ZooKeeper 3.8, 3 members each on loopback, from ../shared/anchors —
 * for the side-by-side benchmarks: start one only when it is not already running (and say so, so
 * a caller stops only what it started), find its leader, and the `warden bench` workloads put,
 * get and watch written for their Node clients (etcd3, node-zookeeper-client), so one runner
 * and one report (client/cli/bench/runner.ts, report.ts) time all three systems alike.
 *
 * Pattern: Adapter — each client's calls behind the `Workload` shape of
 * client/cli/bench/workloads.ts (describe, an operation per requester, close), with keys and
 * values made as Warden's workloads make them (`keyOf`, `--val-size` bytes of 'v').
 *
 * Must never: be imported from client/ (the CLI does not depend on etcd3 or ZooKeeper); run in
 * CI; start an anchor that is already running (the scripts' `start` wipes and restarts it, which
 * would pull it from under whoever started it); wait without a bound.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import zookeeper from 'node-zookeeper-client';
import { keyOf, type Workload, type WorkloadOptions } from '../client/cli/bench/workloads.js';

export type Anchor = 'etcd' | 'zookeeper';

const SCRIPTS = fileURLToPath(new URL('../../shared/anchors/', import.meta.url));
const PIDS: Record<Anchor, string[]> = {
  etcd: [1, 2, 3].map((i) => `/tmp/anchors/etcd/e${i}.pid`),
  zookeeper: [1, 2, 3].map((i) => `/tmp/anchors/zookeeper/z${i}.pid`),
};
export const ETCD_ENDPOINTS = ['127.0.0.1:23791', '127.0.0.1:23792', '127.0.0.1:23793'];
export const ZOOKEEPER_ENDPOINTS = ['127.0.0.1:21811', '127.0.0.1:21812', '127.0.0.1:21813'];

const alive = (pidFile: string): boolean => existsSync(pidFile) && existsSync(`/proc/${readFileSync(pidFile, 'utf8').trim()}`);

/** How many of the anchor's 3 members run (by the pid files its script keeps). */
function membersUp(anchor: Anchor): number {
  return PIDS[anchor].filter(alive).length;
}

/**
 * The anchor up: started by its script when no member runs. Answers whether this call started
 * it (only then should the caller stop it). A partly running anchor is left alone, as an error.
 */
export function ensureAnchor(anchor: Anchor): boolean {
  const up = membersUp(anchor);
  if (up === 3) {
    process.stderr.write(`${anchor}: already running; using it as it is, and leaving it running\n`);
    return false;
  }
  if (up > 0) throw new Error(`${anchor}: ${up} of 3 members run; stop it (../shared/anchors/${anchor}.sh stop) or start the rest, then run again`);
  try {
    execFileSync('bash', [`${SCRIPTS}${anchor}.sh`, 'start'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  } catch (error) {
    stopAnchor(anchor); // whatever members did start
    throw error;
  }
  return true;
}

export function stopAnchor(anchor: Anchor): void {
  execFileSync('bash', [`${SCRIPTS}${anchor}.sh`, 'stop'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 60_000 });
}

/** etcd's leader: its client endpoint and its process id (for its CPU time). */
export function etcdLeader(): { endpoint: string; pid: number } {
  const status = execFileSync('etcdctl', [`--endpoints=${ETCD_ENDPOINTS.join(',')}`, '--dial-timeout=2s', '--command-timeout=3s', 'endpoint', 'status', '-w', 'json'], {
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 20_000,
  }).toString();
  const endpoints = JSON.parse(status) as { Endpoint: string; Status: { header: { member_id: number | string }; leader: number | string } }[];
  const leader = endpoints.find((e) => String(e.Status.header.member_id) === String(e.Status.leader));
  if (leader === undefined) throw new Error(`etcd has no leader: ${status.slice(0, 300)}`);
  const index = ETCD_ENDPOINTS.indexOf(leader.Endpoint) + 1;
  return { endpoint: leader.Endpoint, pid: Number(readFileSync(`/tmp/anchors/etcd/e${index}.pid`, 'utf8').trim()) };
}

/** ZooKeeper's leader's client endpoint (by the `srvr` word the script's status asks each member). */
export function zookeeperLeader(): string {
  const status = execFileSync('bash', [`${SCRIPTS}zookeeper.sh`, 'status'], { timeout: 20_000 }).toString();
  const line = status.split('\n').find((l) => l.includes('Mode: leader'));
  if (line === undefined) throw new Error(`zookeeper has no leader:\n${status}`);
  return line.split(' ')[0]!;
}

/** A ZooKeeper session, connected (bounded). */
export function connectZookeeper(endpoint: string, timeoutMs = 10_000): Promise<zookeeper.Client> {
  const client = zookeeper.createClient(endpoint, { sessionTimeout: 30_000 });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`no ZooKeeper session with ${endpoint} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.connect();
  });
}

const valueOf = (options: WorkloadOptions): Buffer => Buffer.alloc(options.valSize, 'v');
const randomKey = (options: WorkloadOptions): number => Math.floor(Math.random() * options.keySpace);
const nothing = async (): Promise<void> => undefined;

/** Every key of the key space written once (64 at a time), so reads find them. */
async function fill(options: WorkloadOptions, write: (key: string) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.keySpace) await write(keyOf(options, next++));
  };
  await Promise.all(Array.from({ length: Math.min(64, options.keySpace) }, worker));
}

/**
 * `put` and `get` for etcd: a put of the value to a random key; a linearizable range get of one
 * key (etcd3's default). Requester r uses client r mod clients.length, as Warden's do.
 */
export async function etcdWorkload(name: 'put' | 'get', clients: readonly Etcd3[], options: WorkloadOptions): Promise<Workload> {
  const value = valueOf(options);
  const conn = (r: number): Etcd3 => clients[r % clients.length]!;
  if (name === 'put') {
    return { describe: `etcd put of a ${options.valSize}-byte value to one of ${options.keySpace} keys`, operation: async (r) => void (await conn(r).put(keyOf(options, randomKey(options))).value(value)), close: nothing };
  }
  await fill(options, async (key) => void (await clients[0]!.put(key).value(value)));
  return { describe: `etcd linearizable get of one of ${options.keySpace} keys`, operation: async (r) => void (await conn(r).get(keyOf(options, randomKey(options))).buffer()), close: nothing };
}

function promised<T>(run: (done: (error: Error | zookeeper.Exception | null, answer?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => run((error, answer) => (error ? reject(error) : resolve(answer as T))));
}

/** Create a znode, or set its data when it exists. */
/** Set a znode's data, creating it first if it is missing. */
export async function zookeeperSetData(client: zookeeper.Client, path: string, data: Buffer): Promise<void> {
  return zkUpsert(client, path, data);
}

async function zkUpsert(client: zookeeper.Client, path: string, data: Buffer): Promise<void> {
  try {
    await promised<string>((done) => client.create(path, data, done));
  } catch (error) {
    if ((error as zookeeper.Exception).getCode?.() !== zookeeper.Exception.NODE_EXISTS) throw error;
    await promised((done) => client.setData(path, data, -1, done));
  }
}

/**
 * `put` and `get` for ZooKeeper: setData of the value on a random one of the key space's znodes
 * (made first, so a put is never a create), and getData — served by the member the session is
 * on, from its own state: ZooKeeper has no linearizable read (sync + getData would be two calls).
 */
export async function zookeeperWorkload(name: 'put' | 'get', clients: readonly zookeeper.Client[], options: WorkloadOptions): Promise<Workload> {
  const value = valueOf(options);
  const conn = (r: number): zookeeper.Client => clients[r % clients.length]!;
  const first = clients[0]!;
  await zkUpsert(first, options.prefix, Buffer.alloc(0));
  await fill(options, (key) => zkUpsert(first, key, value));
  if (name === 'put') {
    return { describe: `zookeeper setData of a ${options.valSize}-byte value on one of ${options.keySpace} znodes`, operation: (r) => promised((done) => conn(r).setData(keyOf(options, randomKey(options)), value, -1, done)).then(nothing), close: nothing };
  }
  return { describe: `zookeeper getData of one of ${options.keySpace} znodes (served by the session's member; not linearizable)`, operation: (r) => promised((done) => conn(r).getData(keyOf(options, randomKey(options)), done)).then(nothing), close: nothing };
}

/**
 * `watch` for etcd, as Warden's: a put to the requester's own key, timed until its event arrives
 * on a watch (one per client, of the prefix) of the same client.
 */
export async function etcdWatchWorkload(clients: readonly Etcd3[], options: WorkloadOptions): Promise<Workload> {
  const base = `${options.prefix}/watch/`;
  const value = valueOf(options);
  const waiters = new Map<string, () => void>();
  const watchers = await Promise.all(clients.map((client) => client.watch().prefix(base).create()));
  for (const watcher of watchers) {
    watcher.on('put', (kv) => {
      const key = kv.key.toString();
      const waiter = waiters.get(key);
      waiters.delete(key);
      waiter?.();
    });
  }
  return {
    describe: 'etcd put, until its event arrives on a watch of the same client',
    operation: async (r) => {
      const key = `${base}${String(r).padStart(options.keySize, '0')}`;
      let timer: ReturnType<typeof setTimeout> | undefined;
      // Waiting before the put: its event may arrive before its answer.
      const seen = new Promise<void>((resolve, reject) => {
        waiters.set(key, resolve);
        timer = setTimeout(() => reject(new Error('the put was answered but no watch event came in time')), options.timeoutMs);
      });
      // Handled here too, so a timeout while the put is still out is not an unhandled rejection.
      seen.catch(() => undefined);
      try {
        await clients[r % clients.length]!.put(key).value(value);
        await seen;
      } finally {
        clearTimeout(timer);
        waiters.delete(key);
      }
    },
    close: async () => void (await Promise.all(watchers.map((w) => w.cancel()))),
  };
}
