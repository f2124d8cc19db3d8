/**
 * The workloads of `warden bench`: each prepares what it needs on the cluster (keys to read, a
 * watch, sessions) and answers one operation for the driver (runner.ts) to time. Requester r
 * uses connection r mod conns, so requesters spread evenly over the connections.
 *
 * Pattern: Strategy — one small object per workload behind `Workload`, built only on the public
 * client library (Lock, Election, txn builders, watches).
 *
 * Must never: import server/; write outside `prefix`; leave a session, lock or watch open after
 * `close()`.
 */

import { setMaxListeners } from 'node:events';
import { cmp, Election, Lock, op, WardenError, type Session, type Watch, type WardenClient } from '../../api.js';
import type { Operation } from './runner.js';

export const WORKLOADS = ['put', 'get', 'txn', 'range', 'watch', 'lease-keepalive', 'lock', 'election'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface WorkloadOptions {
  readonly prefix: string;
  readonly keySize: number;
  readonly valSize: number;
  readonly keySpace: number;
  readonly consistency: 'linearizable' | 'serializable';
  /** Each call's deadline, retries included. */
  readonly timeoutMs: number;
}

export interface Workload {
  /** What one operation is, for the report. */
  readonly describe: string;
  readonly operation: Operation;
  close(): Promise<void>;
}

/** Key number n under the prefix, its name padded with zeros to `keySize` characters. */
export function keyOf(options: WorkloadOptions, n: number, family = 'k'): string {
  const digits = String(n);
  const width = Math.max(digits.length, options.keySize - family.length);
  return `${options.prefix}/${family}${digits.padStart(width, '0')}`;
}

const valueOf = (size: number): string => 'v'.repeat(Math.max(0, size));

async function ensurePath(client: WardenClient, path: string, timeoutMs: number): Promise<void> {
  try {
    await client.create(path, '', { parents: true, timeoutMs });
  } catch (error) {
    if (!(error instanceof WardenError && error.code === 'NODE_EXISTS')) throw error;
  }
}

/** Put every key of the key space once (64 at a time), so reads find them. */
async function fill(client: WardenClient, options: WorkloadOptions, value: string): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.keySpace) await client.put(keyOf(options, next++), value, { timeoutMs: options.timeoutMs });
  };
  await Promise.all(Array.from({ length: Math.min(64, options.keySpace) }, worker));
}

const randomKey = (options: WorkloadOptions): number => Math.floor(Math.random() * options.keySpace);
const conn = (clients: readonly WardenClient[], requester: number): WardenClient => clients[requester % clients.length]!;

export async function prepare(name: WorkloadName, clients: readonly WardenClient[], options: WorkloadOptions): Promise<Workload> {
  const first = clients[0]!;
  const call = { timeoutMs: options.timeoutMs };
  const value = valueOf(options.valSize);
  await ensurePath(first, options.prefix, options.timeoutMs);
  const nothing = async (): Promise<void> => undefined;
  switch (name) {
    case 'put':
      return {
        describe: `put of a ${options.valSize}-byte value to one of ${options.keySpace} keys`,
        operation: async (r) => void (await conn(clients, r).put(keyOf(options, randomKey(options)), value, call)),
        close: nothing,
      };
    case 'get':
      await fill(first, options, value);
      return {
        describe: `${options.consistency} get of one of ${options.keySpace} keys`,
        operation: async (r) => void (await conn(clients, r).get(keyOf(options, randomKey(options)), { ...call, consistency: options.consistency })),
        close: nothing,
      };
    case 'txn':
      await fill(first, options, value);
      return {
        describe: `txn: if the key exists, put it and get another (of ${options.keySpace} keys)`,
        operation: async (r) => {
          const key = keyOf(options, randomKey(options));
          await conn(clients, r).txn().if(cmp.exists(key)).do(op.put(key, value), op.get(keyOf(options, randomKey(options)))).else(op.put(key, value)).commit(call);
        },
        close: nothing,
      };
    case 'range': {
      const base = `${options.prefix}/range`;
      await ensurePath(first, base, options.timeoutMs);
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(64, options.keySpace) }, async () => {
        while (next < options.keySpace) await first.put(`${base}/${String(next++).padStart(options.keySize, '0')}`, value, call);
      }));
      return {
        describe: `${options.consistency} range over ${options.keySpace} nodes`,
        operation: async (r) => {
          for await (const node of conn(clients, r).range(base, { ...call, consistency: options.consistency })) void node;
        },
        close: nothing,
      };
    }
    case 'watch':
      return watchWorkload(clients, options, value);
    case 'lease-keepalive':
      return leaseWorkload(clients, options);
    case 'lock':
    case 'election':
      return recipeWorkload(name, clients, options);
  }
}

/** A put to the requester's own key, timed until the watch (one per connection) delivers its event. */
async function watchWorkload(clients: readonly WardenClient[], options: WorkloadOptions, value: string): Promise<Workload> {
  const base = `${options.prefix}/watch`;
  await ensurePath(clients[0]!, base, options.timeoutMs);
  // Each requester writes only its own key and waits for that key's next event before writing again.
  const waiters = new Map<string, () => void>();
  const controller = new AbortController();
  const watches: Watch[] = [];
  for (const client of clients) {
    const watch = client.watch(base, { scope: 'children', noDelete: true, signal: controller.signal });
    watches.push(watch);
    void (async () => {
      try {
        for await (const event of watch) {
          const waiter = waiters.get(event.path);
          if (waiter !== undefined) {
            waiters.delete(event.path);
            waiter();
          }
        }
      } catch {
        // ended by close()
      }
    })();
  }
  await Promise.all(watches.map((w) => w.started));
  return {
    describe: 'put, until its event arrives on a watch of the same connection',
    operation: async (r) => {
      const client = conn(clients, r);
      const path = `${base}/${String(r).padStart(options.keySize, '0')}`;
      let resolve!: () => void;
      const seen = new Promise<void>((done) => (resolve = done));
      // Waiting before the put: its event may arrive before its answer.
      waiters.set(path, resolve);
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await client.put(path, value, { timeoutMs: options.timeoutMs });
        await Promise.race([seen, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new WardenError('TIMEOUT', 'the put was answered but no watch event came in time')), options.timeoutMs)))]);
      } finally {
        clearTimeout(timer);
        waiters.delete(path);
      }
    },
    close: async () => {
      controller.abort();
      await Promise.all(watches.map((w) => w.cancel().catch(() => undefined)));
    },
  };
}

/**
 * Lease keep-alive, as near as the public library allows: it keeps sessions alive by itself and
 * has no one-shot keep-alive call, so each operation is a lease request the leader answers — a
 * grant of the requester's own lease again (idempotent: the same lease answers, its TTL is not
 * reset). A true keep-alive round trip needs a public `leases.keepAlive(id)`.
 */
async function leaseWorkload(clients: readonly WardenClient[], options: WorkloadOptions): Promise<Workload> {
  const leases = new Map<number, number>();
  return {
    describe: 'lease grant of the requester\'s own lease again (a lease round trip; the public client has no one-shot keep-alive)',
    operation: async (r) => {
      const client = conn(clients, r);
      const id = leases.get(r);
      const info = await client.leases.grant(30_000, { timeoutMs: options.timeoutMs, ...(id === undefined ? {} : { id }) });
      leases.set(r, info.id);
    },
    close: async () => {
      await Promise.all([...leases].map(([r, id]) => conn(clients, r).leases.revoke(id, { timeoutMs: options.timeoutMs }).catch(() => undefined)));
    },
  };
}

/** Acquire and release a lock, or win and resign an election, on one of key-space names. */
async function recipeWorkload(name: 'lock' | 'election', clients: readonly WardenClient[], options: WorkloadOptions): Promise<Workload> {
  const base = `${options.prefix}/${name}`;
  await ensurePath(clients[0]!, base, options.timeoutMs);
  // An election knows its candidate by the session's lease, so each requester stands with a
  // session of its own (one session per candidate per election); locks share one per connection.
  const sessions = new Map<number, Session>();
  const sessionFor = async (r: number): Promise<Session> => {
    const key = name === 'election' ? r : r % clients.length;
    let session = sessions.get(key);
    if (session === undefined) {
      session = await conn(clients, r).session({ ttlMs: 10_000, timeoutMs: options.timeoutMs });
      // Every Lock and Election listens on its session's signal: many of them share one here.
      setMaxListeners(0, session.signal);
      sessions.set(key, session);
    }
    return session;
  };
  const instances = new Map<string, Lock | Election>();
  const instance = async (r: number, n: number): Promise<Lock | Election> => {
    const id = `${r}/${n}`;
    let found = instances.get(id);
    if (found === undefined) {
      const client = conn(clients, r);
      const path = `${base}/${String(n).padStart(options.keySize, '0')}`;
      const session = await sessionFor(r);
      found = name === 'lock' ? new Lock(client, path, { session }) : new Election(client, path, session);
      instances.set(id, found);
    }
    return found;
  };
  return {
    describe: name === 'lock' ? `lock acquire + release on one of ${options.keySpace} locks` : `election campaign + resign on one of ${options.keySpace} elections`,
    operation: async (r) => {
      const target = await instance(r, randomKey(options));
      if (target instanceof Lock) {
        await target.acquire({ timeoutMs: options.timeoutMs });
        await target.release({ timeoutMs: options.timeoutMs });
      } else {
        await target.campaign(`r${r}`, { timeoutMs: options.timeoutMs });
        await target.resign({ timeoutMs: options.timeoutMs });
      }
    },
    close: async () => {
      for (const target of instances.values()) if (target instanceof Lock) await target.close().catch(() => undefined);
      await Promise.all([...sessions.values()].map((s) => s.close().catch(() => undefined)));
    },
  };
}
