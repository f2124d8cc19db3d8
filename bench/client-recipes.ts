/**
 * The recipe workloads of `npm run bench:client` (bench/client.ts), one function per workload,
 * each run for Warden's recipes (client/recipes/lock.ts `Lock`, client/recipes/election.ts
 * `Election`), etcd3's own (`client.lock(name)`, `client.election(name)`) and the classic
 * ZooKeeper recipe on `node-zookeeper-client` (Hunt et al., ZooKeeper's "Locks" recipe: a
 * sequential ephemeral node per waiter, each watching only its predecessor; the lowest holds).
 *
 * - lockCycles: acquire+release cycles per second with 1 and 10 contenders, each contender with
 *   its own connection and session, looping until the time is up; overlapping holders are
 *   counted (they must be 0). etcd3's `Lock` is a try-lock (one txn: create if absent), so under
 *   contention its contenders retry after a jittered backoff (1 ms doubling to 32 ms); etcd3's
 *   `Election` is the queue (waiters watch the key just ahead, like etcd's Go `concurrency.Mutex`)
 *   and is measured as a lock too (campaign = acquire, resign = release).
 * - electionFailover: candidates in their own processes (bench/client-candidate.ts); the leading
 *   one is SIGKILLed, and the time until a watcher in this process sees another leader is one
 *   sample. Sessions have a 4 s TTL everywhere (Warden's floor at its default 100 ms tick, and
 *   ZooKeeper's at tickTime 2 s), so failover is mostly that TTL.
 *
 * Must never: wait without a bound; leave a candidate process behind; hide an overlap of holders.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Etcd3, EtcdLockFailedError } from 'etcd3';
import { connect } from '../client/index.js';
import { Election } from '../client/recipes/election.js';
import { Lock } from '../client/recipes/lock.js';
import { SESSION_TTL_MS, zkCall, zkConnect, ZkQueue } from './zookeeper-queue.js';

export { SESSION_TTL_MS };

export type System = 'warden' | 'zookeeper' | 'etcd';
export type Endpoints = Readonly<Record<System, readonly string[]>>;

const ACQUIRE_TIMEOUT_MS = 60_000;
const FAILOVER_TIMEOUT_MS = 60_000;
const CANDIDATE = fileURLToPath(new URL('./client-candidate.ts', import.meta.url));

export interface LockFigures {
  readonly label: string;
  readonly system: System;
  readonly contenders: number;
  readonly cycles: number;
  readonly cyclesPerSecond: number;
  /** Times a contender found another holding the lock it had just acquired (must be 0). */
  readonly overlaps: number;
  readonly cpuMsPerCycle: number;
}

export interface FailoverFigures {
  readonly label: string;
  readonly system: System;
  readonly samplesMs: readonly number[];
  readonly p50Ms: number;
  readonly p99Ms: number;
}

// ---- Lock cycles ----

interface Contender {
  acquire(): Promise<void>;
  release(): Promise<void>;
  close(): Promise<void>;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms)); // a retry backoff, not synchronisation

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function runLock(label: string, system: System, contenders: number, ms: number, make: (index: number) => Promise<Contender>): Promise<LockFigures> {
  const all = await Promise.all(Array.from({ length: contenders }, (_, i) => make(i)));
  let holding = 0;
  let overlaps = 0;
  let cycles = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const stopAt = started + ms;
  try {
    await Promise.all(
      all.map(async (contender) => {
        while (performance.now() < stopAt) {
          await withTimeout(contender.acquire(), ACQUIRE_TIMEOUT_MS, `${label} acquire`);
          holding += 1;
          if (holding > 1) overlaps += 1;
          await new Promise<void>((resolve) => setImmediate(resolve)); // hold across an I/O turn, so an overlapping grant would show
          holding -= 1;
          await withTimeout(contender.release(), ACQUIRE_TIMEOUT_MS, `${label} release`);
          cycles += 1;
        }
      }),
    );
  } finally {
    await Promise.all(all.map((c) => c.close().catch(() => undefined)));
  }
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return { label, system, contenders, cycles, cyclesPerSecond: cycles / (wallMs / 1000), overlaps, cpuMsPerCycle: (cpu.user + cpu.system) / 1000 / Math.max(1, cycles) };
}

/** Lock acquire+release cycles per second with 1 and 10 contenders, per system. */
export async function lockCycles(systems: readonly System[], endpoints: Endpoints, ms: number): Promise<LockFigures[]> {
  const results: LockFigures[] = [];
  const report = (figures: LockFigures): void => {
    results.push(figures);
    process.stdout.write(`lock   ${figures.label.padEnd(44)} ${String(figures.contenders).padStart(2)}  ${figures.cyclesPerSecond.toFixed(1)} cycles/s, overlaps ${figures.overlaps}\n`);
  };
  const run = `${Date.now().toString(36)}`;
  for (const contenders of [1, 10]) {
    for (const system of systems) {
      if (system === 'warden') {
        const label = 'warden Lock (client/recipes/lock.ts)';
        const path = `/bench-lock/${run}-${contenders}`;
        const setup = connect({ endpoints: [...endpoints.warden] });
        await setup.create(path, '', { parents: true });
        await setup.close();
        report(
          await runLock(label, system, contenders, ms, async () => {
            const client = connect({ endpoints: [...endpoints.warden], timeoutMs: 30_000 });
            const session = await client.session({ ttlMs: SESSION_TTL_MS });
            const lock = new Lock(client, path, { session });
            return {
              acquire: async () => void (await lock.acquire({ timeoutMs: ACQUIRE_TIMEOUT_MS })),
              release: async () => void (await lock.release()),
              close: async () => {
                await lock.close();
                await session.close();
                await client.close();
              },
            };
          }),
        );
      } else if (system === 'etcd') {
        const name = `bench-lock-${run}-${contenders}`;
        report(
          await runLock('etcd3 Lock (try-lock, retried with backoff)', system, contenders, ms, async () => {
            const client = new Etcd3({ hosts: [...endpoints.etcd] });
            let lock: ReturnType<Etcd3['lock']> | null = null;
            return {
              acquire: async () => {
                for (let attempt = 0; ; attempt++) {
                  const candidate = client.lock(name).ttl(SESSION_TTL_MS / 1000);
                  try {
                    await candidate.acquire();
                    lock = candidate;
                    return;
                  } catch (error) {
                    if (!(error instanceof EtcdLockFailedError)) throw error;
                    await pause(Math.random() * Math.min(32, 2 ** attempt));
                  }
                }
              },
              release: async () => void (await lock!.release()),
              close: async () => client.close(),
            };
          }),
        );
        report(
          await runLock('etcd3 Election as a queue lock (campaign/resign)', system, contenders, ms, async (i) => {
            const client = new Etcd3({ hosts: [...endpoints.etcd] });
            const election = client.election(`${name}-queue`, SESSION_TTL_MS / 1000);
            let campaign: ReturnType<typeof election.campaign> | null = null;
            return {
              acquire: async () => {
                campaign = election.campaign(`contender-${i}`);
                await campaign.wait();
              },
              release: async () => void (await campaign!.resign()),
              close: async () => client.close(),
            };
          }),
        );
      } else {
        const dir = `/bench-lock/${run}-${contenders}`;
        const setup = await zkConnect(endpoints.zookeeper);
        await zkCall((done) => setup.mkdirp(dir, done));
        setup.close();
        report(
          await runLock('zookeeper lock recipe (node-zookeeper-client)', system, contenders, ms, async () => {
            const zk = await zkConnect(endpoints.zookeeper);
            const queue = new ZkQueue(zk, dir);
            return { acquire: () => queue.enter(), release: () => queue.leave(), close: async () => zk.close() };
          }),
        );
      }
    }
  }
  return results;
}

// ---- Election failover ----

/** The leader's value as a watcher in this process sees it, and a way to wait for a change. */
class LeaderView {
  private value: string | null = null;
  private readonly waiters = new Set<() => void>();

  get current(): string | null {
    return this.value;
  }

  set(value: string | null): void {
    this.value = value;
    for (const wake of [...this.waiters]) wake();
  }

  waitFor(until: (value: string | null) => boolean, timeoutMs: number, what: string): Promise<string | null> {
    if (until(this.value)) return Promise.resolve(this.value);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${what}: not seen within ${timeoutMs} ms (leader now ${this.value})`));
      }, timeoutMs);
      const check = (): void => {
        if (!until(this.value)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(this.value);
      };
      this.waiters.add(check);
    });
  }
}

interface Watcher {
  readonly view: LeaderView;
  /** Candidates standing now, as the store shows them. */
  candidates(): Promise<number>;
  close(): Promise<void>;
}

async function wardenWatcher(endpoints: readonly string[], path: string): Promise<Watcher> {
  const client = connect({ endpoints: [...endpoints], timeoutMs: 30_000 });
  await client.create(path, '', { parents: true });
  const session = await client.session({ ttlMs: SESSION_TTL_MS });
  const election = new Election(client, path, session);
  const view = new LeaderView();
  const stop = new AbortController();
  const loop = (async () => {
    for await (const leader of election.observe({ signal: stop.signal })) view.set(leader?.value ?? null);
  })().catch(() => undefined);
  return {
    view,
    candidates: async () => (await client.children(path)).length,
    close: async () => {
      stop.abort();
      await loop;
      await session.close().catch(() => undefined);
      await client.close();
    },
  };
}

async function etcdWatcher(endpoints: readonly string[], name: string): Promise<Watcher> {
  const client = new Etcd3({ hosts: [...endpoints] });
  const observer = await client.election(name).observe();
  const view = new LeaderView();
  view.set(observer.leader() ?? null);
  observer.on('change', (value: string | undefined) => view.set(value ?? null));
  return {
    view,
    candidates: async () => Number(await client.getAll().prefix(`election/${name}/`).count()),
    close: async () => {
      await observer.cancel();
      client.close();
    },
  };
}

async function zookeeperWatcher(endpoints: readonly string[], dir: string): Promise<Watcher> {
  const zk = await zkConnect(endpoints, 30_000);
  await zkCall((done) => zk.mkdirp(dir, done));
  const view = new LeaderView();
  let running = true;
  // The leader is the lowest child; re-read on every change of the children (a one-shot watch each time).
  const look = (): void => {
    if (!running) return;
    zk.getChildren(dir, () => look(), (error, children) => {
      if (error || !running) return;
      const lowest = children.filter((n) => n.startsWith('lock-')).sort()[0];
      if (lowest === undefined) return view.set(null);
      zk.getData(`${dir}/${lowest}`, (e, data) => {
        if (e === null && running) view.set(data.toString());
        else if (running) look(); // the lowest left meanwhile: look again
      });
    });
  };
  look();
  return {
    view,
    candidates: async () => (await zkCall<string[]>((done) => zk.getChildren(dir, (e, c) => done(e, c)))).length,
    close: async () => {
      running = false;
      zk.close();
    },
  };
}

function spawnCandidate(system: System, endpoints: readonly string[], where: string, value: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', CANDIDATE, system, endpoints.join(','), where, value], { stdio: ['pipe', 'ignore', 'inherit'] });
  child.on('error', () => undefined);
  return child;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return;
    await pause(20); // polling the store's candidate count, bounded by the deadline
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;

async function measureFailover(label: string, system: System, samples: number, endpoints: readonly string[], where: string, watcher: Watcher): Promise<FailoverFigures> {
  const children = new Map<string, ChildProcess>();
  let next = 0;
  const stand = (): void => {
    const value = `${system}-candidate-${next++}`;
    children.set(value, spawnCandidate(system, endpoints, where, value));
  };
  const samplesMs: number[] = [];
  try {
    stand();
    await watcher.view.waitFor((v) => v !== null && children.has(v), FAILOVER_TIMEOUT_MS, `${label}: a first leader`);
    for (let i = 0; i < samples; i++) {
      stand();
      await waitUntil(async () => (await watcher.candidates()) === 2, FAILOVER_TIMEOUT_MS, `${label}: two candidates standing`);
      const leader = watcher.view.current!;
      const t0 = performance.now();
      children.get(leader)!.kill('SIGKILL');
      children.delete(leader);
      await watcher.view.waitFor((v) => v !== null && v !== leader, FAILOVER_TIMEOUT_MS, `${label}: a new leader after ${leader}`);
      samplesMs.push(performance.now() - t0);
      process.stdout.write(`failover ${label}: ${samplesMs.at(-1)!.toFixed(0)} ms\n`);
    }
  } finally {
    for (const child of children.values()) child.kill('SIGKILL');
    await watcher.close().catch(() => undefined);
  }
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { label, system, samplesMs, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99) };
}

/** Election failover time per system: the leading candidate's process killed → a new leader observed. */
export async function electionFailover(systems: readonly System[], endpoints: Endpoints, samples: number): Promise<FailoverFigures[]> {
  const results: FailoverFigures[] = [];
  const run = Date.now().toString(36);
  for (const system of systems) {
    if (system === 'warden') {
      const label = 'warden Election (client/recipes/election.ts)';
      const path = `/bench-election/${run}`;
      results.push(await measureFailover(label, system, samples, endpoints.warden, path, await wardenWatcher(endpoints.warden, path)));
    } else if (system === 'etcd') {
      const name = `bench-election-${run}`;
      results.push(await measureFailover('etcd3 Election', system, samples, endpoints.etcd, name, await etcdWatcher(endpoints.etcd, name)));
    } else {
      const dir = `/bench-election/${run}`;
      results.push(await measureFailover('zookeeper election recipe (node-zookeeper-client)', system, samples, endpoints.zookeeper, dir, await zookeeperWatcher(endpoints.zookeeper, dir)));
    }
  }
  return results;
}
