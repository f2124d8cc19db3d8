/**
 * RocksKvEngine (server/storage/rocks-kv.ts): the KvEngine contract (kv-engine-contract.ts) on a
 * real RocksDB in a fresh temporary directory per test, then what only a disk can show — data
 * surviving close and reopen, the directory lock, the WAL synced exactly when asked, batches in
 * call order and close after them even when a pool thread is slow, scans in native chunks,
 * iterators ended however a scan ends, a failed read told from a missing key, the memory handed
 * out — and a StateStore reopened from RocksDB equal to the machine that persisted it.
 *
 * Must never: leave a directory behind (every one is removed after its test, passed or failed —
 * only a crashed worker can skip that); reach into the engine's private state (RocksDB properties
 * are its public diagnostics; the binding beneath it is wrapped only to play a slow pool thread
 * or count round trips, and always put back).
 */

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { KvWrite } from '../../../server/state/kv-engine.js';
import { StateMachine, type StateCommand } from '../../../server/state/state-machine.js';
import { StateStore } from '../../../server/state/state-store.js';
import { RocksKvEngine } from '../../../server/storage/rocks-kv.js';
import { describeKvEngineContract } from '../state/kv-engine-contract.js';

const b = (...bytes: number[]): Uint8Array => new Uint8Array(bytes);
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const put = (key: Uint8Array, value: string): KvWrite => ({ type: 'put', key, value: utf8(value) });
const ALL = { gte: b(0x00), lt: b(0xff, 0xff) };

/** Every entry as hex key "=" value, the value as text or (`asHex`) as hex. */
async function rows(kv: RocksKvEngine, asHex = false): Promise<string[]> {
  const found: string[] = [];
  for await (const [k, v] of kv.scan(ALL)) found.push(`${Buffer.from(k).toString('hex')}=${asHex ? Buffer.from(v).toString('hex') : new TextDecoder().decode(v)}`);
  return found;
}

const freshDirectory = (): Promise<string> => mkdtemp(join(tmpdir(), 'warden-rocks-'));

describeKvEngineContract('RocksKvEngine', async () => {
  const directory = await freshDirectory();
  try {
    const engine = await RocksKvEngine.open(directory);
    return {
      engine,
      cleanup: async () => {
        try {
          await engine.close();
        } finally {
          await rm(directory, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
});

/** Directories and engines of one test, removed and closed after it whatever happened. */
const made: { directories: string[]; engines: RocksKvEngine[] } = { directories: [], engines: [] };

afterEach(async () => {
  const engines = made.engines.splice(0);
  const directories = made.directories.splice(0);
  await Promise.allSettled(engines.map((engine) => engine.close()));
  await Promise.all(directories.map((directory) => rm(directory, { recursive: true, force: true })));
});

async function directory(): Promise<string> {
  const path = await freshDirectory();
  made.directories.push(path);
  return path;
}

async function openAt(path: string): Promise<RocksKvEngine> {
  const engine = await RocksKvEngine.open(path);
  made.engines.push(engine);
  return engine;
}

/**
 * The rocksdb package's native binding, the one its JavaScript calls through: a test may wrap a
 * function of it to play a slow pool thread or count round trips, and puts it back after.
 */
type Binding = Record<'batch_write' | 'iterator_next', (...args: unknown[]) => void>;
const binding = createRequire(import.meta.url)('rocksdb/binding.js') as Binding;

async function withBinding<T>(name: keyof Binding, wrap: (original: Binding[typeof name]) => Binding[typeof name], body: () => Promise<T>): Promise<T> {
  const original = binding[name];
  binding[name] = wrap(original);
  try {
    return await body();
  } finally {
    binding[name] = original;
  }
}

/** The "Cumulative WAL: N writes, M syncs" line of rocksdb.stats, as numbers. */
function wal(kv: RocksKvEngine): { writes: number; syncs: number } {
  const match = /Cumulative WAL: (\d+) writes, (\d+) syncs/.exec(kv.property('rocksdb.stats'));
  if (match === null) throw new Error('rocksdb.stats has no Cumulative WAL line');
  return { writes: Number(match[1]), syncs: Number(match[2]) };
}

describe('RocksKvEngine', () => {
  it('keeps what it wrote across close and reopen: synced, unsynced, and a write still in flight at close', async () => {
    const path = await directory();
    const first = await openAt(path);
    await first.write([put(b(1), 'synced'), put(b(2), 'doomed')], { sync: true });
    await first.write([put(b(3), 'unsynced'), { type: 'del', key: b(2) }], { sync: false });
    // The second waits for the first, so it reaches RocksDB only after close has been called.
    const inFlight = [first.write([put(b(4), 'in flight')], { sync: false }), first.write([put(b(5), 'queued')], { sync: true })];
    await first.close();
    await Promise.all(inFlight);
    const second = await openAt(path);
    expect(await rows(second)).toEqual(['01=synced', '03=unsynced', '04=in flight', '05=queued']);
  });

  it('creates the directory and its missing parents', async () => {
    const path = join(await directory(), 'a', 'b', 'store');
    const kv = await openAt(path);
    await kv.write([put(b(1), 'x')], { sync: true });
    expect(await rows(kv)).toEqual(['01=x']);
  });

  it('refuses a second engine on a directory one holds, naming the directory', async () => {
    const path = await directory();
    await openAt(path);
    await expect(RocksKvEngine.open(path)).rejects.toThrow(`cannot open the RocksDB store at ${path}`);
  });

  it('syncs the WAL for a synced batch and only for it', async () => {
    const kv = await openAt(await directory());
    const start = wal(kv);
    await kv.write([put(b(1), 'a')], { sync: false });
    await kv.write([put(b(2), 'b')], { sync: false });
    expect(wal(kv)).toEqual({ writes: start.writes + 2, syncs: start.syncs });
    await kv.write([put(b(3), 'c'), put(b(4), 'd')], { sync: true });
    expect(wal(kv)).toEqual({ writes: start.writes + 3, syncs: start.syncs + 1 });
  });

  it('lands batches in call order even when the pool thread of the first reaches RocksDB last', async () => {
    const kv = await openAt(await directory());
    let writes = 0;
    const slowFirst = (original: Binding['batch_write']): Binding['batch_write'] =>
      (...args) => void (writes++ === 0 ? setTimeout(() => original(...args), 50) : original(...args));
    await withBinding('batch_write', slowFirst, async () => {
      await Promise.all([kv.write([put(b(1), 'first'), put(b(2), 'first')], { sync: true }), kv.write([put(b(1), 'second')], { sync: false })]);
    });
    expect(writes).toBe(2);
    expect(await rows(kv)).toEqual(['01=second', '02=first']);
  });

  it('closes only after the writes already called have landed, even one no pool thread has started', async () => {
    const path = await directory();
    const kv = await openAt(path);
    const slow = (original: Binding['batch_write']): Binding['batch_write'] => (...args) => void setTimeout(() => original(...args), 50);
    await withBinding('batch_write', slow, async () => {
      const written = kv.write([put(b(1), 'called before close')], { sync: false });
      await kv.close();
      await written;
    });
    expect(await rows(await openAt(path))).toEqual(['01=called before close']);
  });

  it('scans in native chunks: 10,000 entries take a dozen round trips to the binding, not one each', async () => {
    const kv = await openAt(await directory());
    await kv.write(Array.from({ length: 10_000 }, (_, n) => put(b(n >> 8, n & 0xff), `${n}`.padEnd(100, '.'))), { sync: true });
    let trips = 0;
    const counted = (original: Binding['iterator_next']): Binding['iterator_next'] => (...args) => {
      trips++;
      original(...args);
    };
    const scanned = await withBinding('iterator_next', counted, () => rows(kv));
    expect(scanned.length).toBe(10_000);
    // The binding answers one entry first, then at most 1,000 per trip (or the chunk's bytes).
    expect(trips).toBeLessThanOrEqual(12);
  });

  it('rejects a get RocksDB fails (a corrupted block) with RocksDB\'s error, rather than answering "missing"', async () => {
    const path = await directory();
    // Bytes no compressor shortens, so they appear as written in the table file.
    const value = new Uint8Array(300).map((_, i) => (i * 2_654_435_761) >>> 24);
    const first = await openAt(path);
    await first.write([{ type: 'put', key: b(1), value }], { sync: true });
    await first.close();
    // Reopening replays the WAL into a table file (.sst), where a read checks the block checksum.
    await (await openAt(path)).close();
    let corrupted = 0;
    for (const name of (await readdir(path)).filter((file) => file.endsWith('.sst'))) {
      const bytes = await readFile(join(path, name));
      const at = bytes.indexOf(value.subarray(100, 132));
      if (at < 0) continue;
      bytes[at + 5]! ^= 0xff;
      await writeFile(join(path, name), bytes);
      corrupted++;
    }
    expect(corrupted).toBe(1);
    const damaged = await openAt(path);
    await expect(damaged.get(b(1))).rejects.toThrow(/Corruption/);
    expect(await damaged.get(b(2))).toBeUndefined();
  });

  it('applies none of a batch it refuses: an empty key (which RocksDB cannot hold) fails the whole batch', async () => {
    const kv = await openAt(await directory());
    await expect(kv.write([put(b(1), 'a'), put(b(), 'empty key'), put(b(2), 'b')], { sync: true })).rejects.toThrow(/empty/);
    expect(await rows(kv)).toEqual([]);
    await kv.write([put(b(1), 'a')], { sync: true });
    expect(await rows(kv)).toEqual(['01=a']);
  });

  it('ends the RocksDB iterator (and its snapshot) however a scan ends', async () => {
    const kv = await openAt(await directory());
    await kv.write(Array.from({ length: 2_000 }, (_, n) => put(b(n >> 8, n & 0xff), `${n}`)), { sync: true });
    const snapshots = (): string => kv.property('rocksdb.num-snapshots');
    expect(snapshots()).toBe('0');

    let held = '';
    for await (const _entry of kv.scan(ALL)) {
      held = snapshots();
      break;
    }
    expect(held).toBe('1');
    expect(snapshots()).toBe('0');

    await expect(
      (async () => {
        for await (const _entry of kv.scan(ALL)) throw new Error('consumer failed');
      })(),
    ).rejects.toThrow('consumer failed');
    expect(snapshots()).toBe('0');

    expect((await rows(kv)).length).toBe(2_000);
    expect(snapshots()).toBe('0');
  });

  it('closes under a scan a consumer still holds, which then refuses to go on', async () => {
    const kv = await openAt(await directory());
    await kv.write([put(b(1), 'a'), put(b(2), 'b')], { sync: true });
    const iterator = kv.scan(ALL)[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    await kv.close();
    await expect(iterator.next()).rejects.toThrow(/closed/);
  });

  it('hands out plain Uint8Arrays, each over memory of its own', async () => {
    const kv = await openAt(await directory());
    await kv.write([put(b(1), 'one'), put(b(2), 'two'), put(b(3), '')], { sync: true });
    const handedOut: Uint8Array[] = [(await kv.get(b(1)))!, (await kv.get(b(1)))!];
    for await (const [k, v] of kv.scan(ALL)) handedOut.push(k, v);
    for (const bytes of handedOut) {
      expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
      expect([bytes.byteOffset, bytes.buffer.byteLength]).toEqual([0, bytes.length]);
    }
    expect(new Set(handedOut.map((bytes) => bytes.buffer)).size).toBe(handedOut.length);
  });
});

describe('StateStore on RocksDB', () => {
  const commands: StateCommand[] = [
    { op: 'leaseGrant', ttlMs: 10_000 },
    { op: 'registerClient', secret: '00112233445566778899aabbccddeeff' },
    { op: 'create', path: '/svc/a', value: utf8('10.0.0.1'), lease: 1, parents: true },
    { op: 'create', path: '/q/job-', value: utf8('j'), sequential: true, parents: true },
    { op: 'put', path: '/config/db', value: utf8('v1') },
    { op: 'put', path: '/config/db', value: utf8('v2') },
    { op: 'compact', revision: 4 },
  ];

  function applyAll(machine: StateMachine): void {
    commands.forEach((command, i) => machine.apply({ index: i + 1, timeMs: 1_000 * i, command }));
    machine.apply({ index: commands.length + 1, timeMs: 9_000, command: { op: 'put', path: '/x', value: utf8('x') }, client: { id: 1, seq: 1, ackedThrough: 0, secret: '00112233445566778899aabbccddeeff' } });
  }

  function expectSameMachine(b: StateMachine, a: StateMachine): void {
    expect(b.appliedIndex).toBe(commands.length + 1);
    expect(b.meta).toEqual(a.meta);
    expect(b.namespace.range('/', { limit: 100 })).toEqual(a.namespace.range('/', { limit: 100 }));
    expect(b.leases.dump()).toEqual(a.leases.dump());
    expect(b.sessions.dump()).toEqual(a.sessions.dump());
  }

  it.each([
    ['synced', true],
    ['unsynced (the process did not crash, so RocksDB still has it)', false],
  ])('reopens, in a new engine on the same directory, the machine it persisted %s', async (_name, sync) => {
    const path = await directory();
    const firstEngine = await openAt(path);
    const first = await StateStore.open(firstEngine);
    expect(first.machine.appliedIndex).toBe(0);
    applyAll(first.machine);
    await first.persist({ sync });
    const stored = await rows(firstEngine, true);
    await firstEngine.close();

    const secondEngine = await openAt(path);
    const second = await StateStore.open(secondEngine);
    expectSameMachine(second.machine, first.machine);
    expect(await rows(secondEngine, true)).toEqual(stored);
  });
});
