/**
 * The state machine's storage seam: the in-memory KvEngine twin (atomic ordered batches, copies,
 * a crash that loses unsynced batches newest first), the store layout (keys sort as paths do;
 * a lease record holds its ttl and grant time, the meta record the lease epoch; unreadable
 * records and foreign formats refuse to load, naming the key), and StateStore
 * (open, persist, reopen; batches land in order; a failed write fails every later persist).
 * The state machine's property tests run a second time against a store-backed machine
 * (store-backed.ts); this file covers what those cannot see.
 *
 * Must never: read a clock, or reach into the store's private state.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { comparePaths } from '../../../shared/paths.js';
import { compareKeys, type KvEngine, type KvWrite } from '../../../server/state/kv-engine.js';
import { MemoryKvEngine } from '../../../server/state/memory-kv.js';
import { StateMachine, type StateCommand } from '../../../server/state/state-machine.js';
import { StateStore } from '../../../server/state/state-store.js';
import { encodeFull, imageFromEntries, META_KEY, nodeKey, openValue, sealValue, STORE_FORMAT } from '../../../server/state/store-format.js';
import { StoreBacked } from './store-backed.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const key = (...b: number[]): Uint8Array => new Uint8Array(b);
const SECRET = '5ec7e70123456789abcdef0123456789';
const put = (k: Uint8Array, v: string): KvWrite => ({ type: 'put', key: k, value: bytes(v) });
/** A version recording that the path was deleted (nil, sealed with its checksum). */
const TOMBSTONE = sealValue(null);

async function all(kv: KvEngine): Promise<string[]> {
  const found: string[] = [];
  for await (const [k, v] of kv.scan({ gte: key(0), lt: key(0xff) })) found.push(`${[...k].join('.')}=${new TextDecoder().decode(v)}`);
  return found;
}

describe('MemoryKvEngine', () => {
  it('applies a batch in order (a later op on the same key wins) and scans in byte order within [gte, lt)', async () => {
    const kv = new MemoryKvEngine();
    await kv.write([put(key(3), 'c'), put(key(1), 'a'), put(key(1, 0), 'a0'), { type: 'del', key: key(3) }, put(key(2), 'b'), put(key(3), 'c2')], { sync: true });
    expect(await all(kv)).toEqual(['1=a', '1.0=a0', '2=b', '3=c2']);
    const ranged: string[] = [];
    for await (const [k] of kv.scan({ gte: key(1, 0), lt: key(3) })) ranged.push([...k].join('.'));
    expect(ranged).toEqual(['1.0', '2']);
    expect(await kv.get(key(2))).toEqual(bytes('b'));
    expect(await kv.get(key(9))).toBeUndefined();
  });

  it('copies keys and values in and out: a caller reusing its buffers changes nothing stored', async () => {
    const kv = new MemoryKvEngine();
    const k = key(1);
    const v = bytes('x');
    await kv.write([{ type: 'put', key: k, value: v }], { sync: true });
    k[0] = 2;
    v[0] = 0x79;
    const out = (await kv.get(key(1)))!;
    out[0] = 0x7a;
    expect(await kv.get(key(1))).toEqual(bytes('x'));
  });

  it('loses at a crash only the unsynced batches, newest first; a synced batch makes the earlier ones durable too', async () => {
    const writeAll = async (kv: MemoryKvEngine): Promise<void> => {
      await kv.write([put(key(1), 'a')], { sync: false });
      await kv.write([put(key(2), 'b')], { sync: true });
      await kv.write([put(key(1), 'a2'), { type: 'del', key: key(2) }], { sync: false });
      await kv.write([put(key(3), 'c')], { sync: false });
    };
    const some = new MemoryKvEngine();
    await writeAll(some);
    some.crash(1);
    expect(await all(some)).toEqual(['1=a2']);
    const every = new MemoryKvEngine();
    await writeAll(every);
    every.crash();
    expect(await all(every)).toEqual(['1=a', '2=b']);
  });

  it('refuses every call once closed', async () => {
    const kv = new MemoryKvEngine();
    await kv.close();
    await expect(kv.get(key(1))).rejects.toThrow(/closed/);
  });
});

/** Segments whose characters sort around "/" (0x2F): "-" and "." below it, letters and beyond above. */
const segment = fc.constantFrom('a', 'b', 'ab', 'a-b', 'a.b', 'a b', '-', '_', '0', 'é', 'e\u0301', '🙂', '\u{10FFFD}', '\uFDD0');
const pathArb = fc.array(segment, { minLength: 0, maxLength: 4 }).map((segments) => `/${segments.join('/')}`);

describe('the store layout', () => {
  it('sorts node keys as comparePaths sorts paths, and a path’s versions by revision', () => {
    fc.assert(
      fc.property(pathArb, pathArb, fc.nat({ max: 2 ** 40 }), fc.nat({ max: 2 ** 40 }), (a, b, ra, rb) => {
        const byKey = Math.sign(compareKeys(nodeKey(a, ra), nodeKey(b, rb)));
        const expected = a === b ? Math.sign(ra - rb) : Math.sign(comparePaths(a, b));
        expect(byKey).toBe(expected);
      }),
      { seed: 0x5eed, numRuns: 3000 },
    );
  });

  it('reads back every path and revision it wrote', () => {
    const meta = storeOf(new StateMachine()).entries();
    fc.assert(
      fc.property(pathArb, fc.nat({ max: 2 ** 52 }), (path, since) => {
        const image = imageFromEntries([...meta, [nodeKey(path, since), TOMBSTONE]]);
        expect([...image!.versions]).toEqual([{ path, since, node: null }]);
      }),
      { seed: 0x7ead, numRuns: 500 },
    );
  });

  it('holds nothing for a new member: an empty store has no image', () => {
    expect(imageFromEntries([])).toBeNull();
  });

  it('refuses records without a meta record', () => {
    expect(() => imageFromEntries([[nodeKey('/a', 1), TOMBSTONE]])).toThrow(/without a meta record/);
  });

  it('refuses a store of another format, saying which it found', () => {
    const sm = new StateMachine();
    const entries = storeOf(sm).entries();
    const foreign = entries.map(([k, v]): [Uint8Array, Uint8Array] => (compareKeys(k, META_KEY) === 0 ? [k, sealValue([STORE_FORMAT + 1, 0])] : [k, v]));
    expect(() => imageFromEntries(foreign)).toThrow(new RegExp(`store format ${STORE_FORMAT + 1} is not ${STORE_FORMAT}`));
  });

  it.each([
    ['a value that is not MessagePack', (v: Uint8Array) => new Uint8Array([0xc1, ...v])],
    ['a node of the wrong shape', () => sealValue([1])],
    ['a flipped bit in the value (RocksDB scans do not verify their own checksums)', (v: Uint8Array) => v.map((b, i) => (i === v.length - 3 ? b ^ 0x04 : b))],
    ['a value shorter than its checksum', () => new Uint8Array([0xc0])],
    ['a truncated value', (v: Uint8Array) => v.subarray(0, v.length - 2)],
  ])('refuses %s, naming the key', (_name, damage) => {
    const sm = new StateMachine();
    sm.apply({ index: 1, timeMs: 0, command: { op: 'put', path: '/config/db', value: bytes('postgres://db') } });
    const entries = storeOf(sm).entries();
    const target = nodeKey('/config/db', 1);
    const damaged = entries.map(([k, v]): [Uint8Array, Uint8Array] => (compareKeys(k, target) === 0 ? [k, damage(v)] : [k, v]));
    expect(() => imageFromEntries(damaged)).toThrow(`cannot read the record at key ${Buffer.from(target).toString('hex')}`);
  });

  it('keeps a lease as its ttl and grant time, and the lease epoch in the meta record (format 3)', () => {
    const sm = new StateMachine();
    sm.apply({ index: 1, timeMs: 7_000, command: { op: 'leaseGrant', ttlMs: 4_000 } });
    sm.apply({ index: 2, timeMs: 8_000, command: { op: 'leaseRefreshAll', term: 12 } });
    const entries = storeOf(sm).entries();
    const leaseKey = key(0x4c, 0, 0, 0, 0, 0, 0, 0, 1);
    const record = entries.find(([k]) => compareKeys(k, leaseKey) === 0);
    expect(record === undefined ? undefined : openValue(record[1])).toEqual([4_000, 7_000]);
    const meta = entries.find(([k]) => compareKeys(k, META_KEY) === 0)!;
    // format, applied index, log time, revision, compact revision, next lease, next client, session activity, lease epoch
    expect(openValue(meta[1])).toEqual([3, 2, 8_000, 0, 0, 2, 1, 0, 12]);
    const image = imageFromEntries(entries)!;
    expect(image.leases).toEqual([{ id: 1, ttlMs: 4_000, grantedAtMs: 7_000 }]);
    expect(image.meta.leaseEpoch).toBe(12);
  });

  it('refuses a format-1 store, whose leases held deadlines and whose meta had no lease epoch', () => {
    const entries = storeOf(new StateMachine()).entries();
    const old = entries.map(([k, v]): [Uint8Array, Uint8Array] => (compareKeys(k, META_KEY) === 0 ? [k, sealValue([1, 0, 0, 0, 0, 1, 1, 0])] : [k, v]));
    expect(() => imageFromEntries(old)).toThrow(/store format 1 is not 3/);
  });

  it('refuses a format-2 store, whose sessions had no secret', () => {
    const entries = storeOf(new StateMachine()).entries();
    const old = entries.map(([k, v]): [Uint8Array, Uint8Array] => (compareKeys(k, META_KEY) === 0 ? [k, sealValue([2, 0, 0, 0, 0, 1, 1, 0, 0])] : [k, v]));
    expect(() => imageFromEntries(old)).toThrow(/store format 2 is not 3/);
  });

  it('keeps a session with its secret, its nonce and the highest seq whose answer it dropped', () => {
    const sm = new StateMachine({ resultsPerSessionMax: 1 });
    sm.apply({ index: 1, timeMs: 0, command: { op: 'registerClient', secret: SECRET, nonce: 'nonce-0123456789ab' } });
    sm.apply({ index: 2, timeMs: 0, command: { op: 'put', path: '/a', value: bytes('1') }, client: { id: 1, seq: 1, ackedThrough: 0, secret: SECRET } });
    sm.apply({ index: 3, timeMs: 0, command: { op: 'put', path: '/a', value: bytes('2') }, client: { id: 1, seq: 2, ackedThrough: 0, secret: SECRET } });
    const entries = storeOf(sm).entries();
    const session = entries.find(([k]) => compareKeys(k, key(0x53, 0, 0, 0, 0, 0, 0, 0, 1)) === 0)!;
    // lastActiveMs, lastActivity, ackedThrough, secret, nonce, forgottenThrough
    expect(openValue(session[1])).toEqual([0, 3, 0, SECRET, 'nonce-0123456789ab', 1]);
    const image = imageFromEntries(entries)!;
    const restored = StateMachine.restore(image, { resultsPerSessionMax: 1 });
    expect(restored.sessions.dump()).toEqual(sm.sessions.dump());
    expect(restored.apply({ index: 4, timeMs: 0, command: { op: 'put', path: '/a', value: bytes('1') }, client: { id: 1, seq: 1, ackedThrough: 0, secret: SECRET } }).result).toMatchObject({ ok: false, code: 'OUTCOME_UNKNOWN' });
    expect(restored.apply({ index: 5, timeMs: 0, command: { op: 'registerClient', secret: '0'.repeat(32), nonce: 'nonce-0123456789ab' } }).result).toMatchObject({ ok: true, clientId: 1, secret: SECRET });
  });

  it('refuses a meta record without the lease epoch', () => {
    const entries = storeOf(new StateMachine()).entries();
    const short = entries.map(([k, v]): [Uint8Array, Uint8Array] => (compareKeys(k, META_KEY) === 0 ? [k, sealValue([STORE_FORMAT, 0, 0, 0, 0, 1, 1, 0])] : [k, v]));
    expect(() => imageFromEntries(short)).toThrow(/cannot read the record at key 01: expected 8 numbers/);
  });

  it('refuses a key of unknown kind', () => {
    const entries = storeOf(new StateMachine()).entries();
    expect(() => imageFromEntries([...entries, [key(0x5a, 1), TOMBSTONE]])).toThrow(/unknown record kind/);
  });
});

describe('StateStore', () => {
  const commands: StateCommand[] = [
    { op: 'leaseGrant', ttlMs: 10_000 },
    { op: 'registerClient', secret: SECRET },
    { op: 'create', path: '/svc/a', value: bytes('10.0.0.1'), lease: 1, parents: true },
    { op: 'create', path: '/q/job-', value: bytes('j'), sequential: true, parents: true },
    { op: 'put', path: '/config/db', value: bytes('v1') },
    { op: 'put', path: '/config/db', value: bytes('v2') },
    { op: 'compact', revision: 4 },
    { op: 'leaseRefreshAll', term: 4 },
    { op: 'leaseExpire', leases: [1], term: 3 }, // stale: the lease and /svc/a stay
  ];

  it('opens an empty engine as a new state machine, and reopens what it persisted exactly', async () => {
    const kv = new MemoryKvEngine();
    const first = await StateStore.open(kv);
    expect(first.machine.appliedIndex).toBe(0);
    commands.forEach((command, i) => first.machine.apply({ index: i + 1, timeMs: 1_000 * (i + 1), command }));
    first.machine.apply({ index: commands.length + 1, timeMs: 9_000, command: { op: 'put', path: '/x', value: bytes('x') }, client: { id: 1, seq: 1, ackedThrough: 0, secret: SECRET } });
    await first.persist({ sync: true });

    const second = await StateStore.open(kv);
    const a = first.machine;
    const b = second.machine;
    expect(b.meta).toEqual(a.meta);
    expect(b.namespace.range('/', { limit: 100 })).toEqual(a.namespace.range('/', { limit: 100 }));
    expect(b.namespace.get('/config/db', 5)).toEqual(a.namespace.get('/config/db', 5));
    expect(b.namespace.get('/config/db', 3)).toMatchObject({ ok: false, code: 'COMPACTED' });
    expect(b.leases.dump()).toEqual(a.leases.dump());
    expect(b.leases.dump()).toEqual({ nextId: 2, epoch: 4, leases: [{ id: 1, ttlMs: 10_000, grantedAtMs: 1_000 }] });
    expect(b.namespace.get('/svc/a')).toMatchObject({ ok: true, node: { stat: { lease: 1 } } });
    expect(b.sessions.dump()).toEqual(a.sessions.dump());
    // A retried write answers from the reopened store's record.
    const retried = b.apply({ index: commands.length + 2, timeMs: 9_500, command: { op: 'put', path: '/x', value: bytes('x') }, client: { id: 1, seq: 1, ackedThrough: 0, secret: SECRET } });
    expect(retried.events).toEqual([]);
    expect(retried.result).toMatchObject({ ok: true, op: 'put', revision: a.revision });
  });

  it('lands batches in the order persist was called, even when an engine finishes them out of order', async () => {
    const inner = new MemoryKvEngine();
    const delays = [30, 0, 10];
    let n = 0;
    const slow: KvEngine = {
      write: (batch, options) => new Promise((resolve) => void Promise.resolve().then(async () => {
        const wait = delays[n++ % delays.length]!;
        for (let i = 0; i < wait; i++) await Promise.resolve();
        await inner.write(batch, options);
        resolve();
      })),
      get: (k) => inner.get(k),
      scan: (r) => inner.scan(r),
      close: () => inner.close(),
    };
    const store = await StateStore.open(slow);
    const writes: Promise<void>[] = [];
    for (let i = 1; i <= 3; i++) {
      store.machine.apply({ index: i, timeMs: 0, command: { op: 'put', path: '/k', value: bytes(`v${i}`) } });
      writes.push(store.persist({ sync: false }));
    }
    await Promise.all(writes);
    const reopened = await StateStore.open(inner);
    expect(reopened.machine.appliedIndex).toBe(3);
    expect(reopened.machine.namespace.get('/k')).toMatchObject({ ok: true, node: { value: bytes('v3') } });
  });

  it('fails every persist after a failed write: the member must stop, never go on as if the data were safe', async () => {
    const inner = new MemoryKvEngine();
    let fail = false;
    const flaky: KvEngine = { ...inner, write: (batch, options) => (fail ? Promise.reject(new Error('EIO: fsync failed')) : inner.write(batch, options)), scan: (r) => inner.scan(r), get: (k) => inner.get(k), close: () => inner.close() };
    const store = await StateStore.open(flaky);
    store.machine.apply({ index: 1, timeMs: 0, command: { op: 'put', path: '/a', value: bytes('') } });
    fail = true;
    await expect(store.persist({ sync: true })).rejects.toThrow(/EIO/);
    fail = false;
    store.machine.apply({ index: 2, timeMs: 0, command: { op: 'put', path: '/b', value: bytes('') } });
    await expect(store.persist({ sync: true })).rejects.toThrow(/EIO/);
  });

  it('keeps two members fed the same entries byte-identical in their stores, and equal to a whole write', () => {
    const run = (): MemoryKvEngine => {
      const backed = new StoreBacked({ historyRevisions: 5 });
      for (let i = 0; i < 300; i++) {
        const k = i % 7;
        const command: StateCommand =
          i % 11 === 0 ? { op: 'leaseGrant', ttlMs: 1_000 + (i % 5) * 500 }
          : i % 13 === 0 ? { op: 'leaseExpire', leases: [1, 2, 3, 4, 5, 6, 7, 8], term: i % 5 } // stale or not: refreshes reach terms 0–3
          : i % 19 === 0 ? { op: 'leaseRefreshAll', term: i % 4 }
          : i % 17 === 0 ? { op: 'registerClient', secret: SECRET }
          : i % 5 === 0 ? { op: 'create', path: '/s/q-', value: bytes(`${i}`), sequential: true, parents: true }
          : i % 3 === 0 ? { op: 'create', path: `/e${k}`, value: bytes(`${i}`), lease: (i % 8) + 1 }
          : { op: 'put', path: `/p/${k}`, value: bytes(`${i}`) };
        const client = i % 4 === 1 && i > 17 ? { client: { id: 1, seq: i, ackedThrough: i - 8 > 0 ? i - 8 : 0, secret: SECRET } } : {};
        backed.apply({ index: i + 1, timeMs: i * 100, command, ...client }, i % 3 !== 0);
      }
      backed.checkCanonical('after 300 entries');
      return backed.kv;
    };
    const a = run().entries();
    const b = run().entries();
    expect(a.length).toBeGreaterThan(20);
    expect(b).toEqual(a);
  });
});

function storeOf(sm: StateMachine): MemoryKvEngine {
  const kv = new MemoryKvEngine();
  kv.writeNow(encodeFull(sm), { sync: true });
  return kv;
}
