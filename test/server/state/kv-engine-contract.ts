/**
 * The KvEngine contract (server/state/kv-engine.ts) as tests, for every engine to run: atomic
 * batches applied in order and landing in call order, bytewise key order, scans over exactly
 * [gte, lt) on the store as it was when they began, copies in and out, empty and large values,
 * scans left early, and a closed engine refusing work. The in-memory twin runs it in
 * memory-kv.contract.test.ts, RocksDB in test/server/storage/rocks-kv.test.ts.
 *
 * Pattern: a contract test — one suite, parameterised by how to open a fresh engine, so the twin
 * the simulator trusts and the engine a member runs are held to the same words.
 *
 * Must never: use anything but the KvEngine interface; compare bytes by type (an engine may hand
 * out Buffers or plain Uint8Arrays, so bytes are compared as hex); leave an engine open or its
 * files behind (cleanup runs after every test, passed or failed).
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KvEngine, KvWrite } from '../../../server/state/kv-engine.js';

export interface OpenedKvEngine {
  readonly engine: KvEngine;
  /** Closes the engine if the test has not, and removes whatever it keeps. */
  readonly cleanup: () => Promise<void>;
}

type Range = { readonly gte: Uint8Array; readonly lt: Uint8Array };

const b = (...bytes: number[]): Uint8Array => new Uint8Array(bytes);
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const put = (key: Uint8Array, value: string | Uint8Array): KvWrite => ({ type: 'put', key, value: typeof value === 'string' ? utf8(value) : value });
const del = (key: Uint8Array): KvWrite => ({ type: 'del', key });
/** One entry as the tests spell it: hex key, "=", hex value. */
const row = (key: Uint8Array, value: string | Uint8Array): string => `${hex(key)}=${hex(typeof value === 'string' ? utf8(value) : value)}`;
/** Wider than every key these tests write (none begins ff ff ff ff). */
const ALL: Range = { gte: b(0x00), lt: b(0xff, 0xff, 0xff, 0xff) };
const SYNC = { sync: true };
/** Two bytes, big-endian: keys that sort as the numbers do. */
const be16 = (n: number): Uint8Array => b(n >> 8, n & 0xff);

async function entries(kv: KvEngine, range: Range = ALL): Promise<(readonly [Uint8Array, Uint8Array])[]> {
  const found: (readonly [Uint8Array, Uint8Array])[] = [];
  for await (const entry of kv.scan(range)) found.push(entry);
  return found;
}

async function rows(kv: KvEngine, range: Range = ALL): Promise<string[]> {
  return (await entries(kv, range)).map(([key, value]) => row(key, value));
}

/** A call's failure as a rejection, whether the engine throws at once or rejects later. */
function attempt(call: () => unknown): Promise<unknown> {
  return Promise.resolve().then(call);
}

export function describeKvEngineContract(name: string, open: () => Promise<OpenedKvEngine>): void {
  describe(`${name} keeps the KvEngine contract`, () => {
    let opened: OpenedKvEngine | undefined;
    let kv: KvEngine;

    beforeEach(async () => {
      opened = await open();
      kv = opened.engine;
    });

    afterEach(async () => {
      const done = opened;
      opened = undefined;
      await done?.cleanup();
    });

    it('applies a batch in order: a later put or delete of the same key wins', async () => {
      await kv.write(
        [
          put(b(1), 'first'), put(b(1), 'second'),
          put(b(2), 'gone'), del(b(2)),
          del(b(3)), put(b(3), 'back'),
          put(b(4), 'x'), del(b(4)), put(b(4), 'y'), del(b(4)),
        ],
        SYNC,
      );
      expect(await rows(kv)).toEqual([row(b(1), 'second'), row(b(3), 'back')]);
      expect(hex((await kv.get(b(1)))!)).toBe(hex(utf8('second')));
      expect(await kv.get(b(2))).toBeUndefined();
      expect(await kv.get(b(4))).toBeUndefined();

      await kv.write([put(b(3), 'third'), put(b(2), 'new')], { sync: false });
      expect(await rows(kv)).toEqual([row(b(1), 'second'), row(b(2), 'new'), row(b(3), 'third')]);
    });

    it('deletes exactly the keys named: their prefixes and extensions stay, and deleting a missing key is harmless', async () => {
      await kv.write([put(b(1), 'a'), put(b(1, 0), 'a0'), put(b(1, 0, 0), 'a00'), put(b(2), 'b')], SYNC);
      await kv.write([del(b(1, 0)), del(b(9)), del(b(2, 0))], SYNC);
      expect(await rows(kv)).toEqual([row(b(1), 'a'), row(b(1, 0, 0), 'a00'), row(b(2), 'b')]);
      expect(await kv.get(b(1, 0))).toBeUndefined();
      await kv.write([del(b(1)), del(b(1, 0, 0)), del(b(2))], SYNC);
      expect(await rows(kv)).toEqual([]);
    });

    it('shows every scan a batch whole or not at all, and lands batches in call order even when not awaited', async () => {
      const keys = [b(5, 1), b(5, 2), b(5, 3), b(5, 4)];
      const band: Range = { gte: b(5), lt: b(6) };
      const scanBand = async (): Promise<string[]> => (await entries(kv, band)).map(([, value]) => new TextDecoder().decode(value));
      const writes: Promise<void>[] = [];
      const seen: string[][] = [];
      for (let generation = 1; generation <= 60; generation++) {
        // Each batch rewrites every key of the band, and drops the band's extra key or brings it back.
        const extra = generation % 2 === 0 ? put(b(5, 9), `g${generation}`) : del(b(5, 9));
        writes.push(kv.write([...keys.map((k) => put(k, `g${generation}`)), extra], { sync: generation % 10 === 0 }));
        // Scans taken while the batches called so far land, never awaiting a write.
        if (generation % 4 === 0) seen.push(await scanBand());
      }
      let landed = false;
      void Promise.allSettled(writes).then(() => (landed = true));
      while (!landed) {
        seen.push(await scanBand());
        // A turn of the event loop: an engine whose writes finish on I/O must get to finish them.
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(writes);
      let last = 0;
      for (const values of seen) {
        if (values.length === 0) continue;
        const generation = Number(values[0]!.slice(1));
        // Whole: all four keys at one generation, and the extra key exactly when that generation put it.
        expect(values).toEqual(Array.from({ length: generation % 2 === 0 ? 5 : 4 }, () => `g${generation}`));
        // In order: scans one after another never see the store go back.
        expect(generation).toBeGreaterThanOrEqual(last);
        last = generation;
      }
      expect(await rows(kv, band)).toEqual([...keys, b(5, 9)].map((k) => row(k, 'g60')));
    });

    it('orders keys bytewise and unsigned, a prefix before its extensions, with 0x00 and 0xff bytes anywhere', async () => {
      const sorted = [
        b(0x00), b(0x00, 0x00), b(0x00, 0x00, 0x01), b(0x00, 0x01), b(0x00, 0xff),
        b(0x01), b(0x01, 0x00), b(0x01, 0xff), b(0x41), b(0x41, 0x00), b(0x41, 0x41), b(0x61),
        b(0x7f), b(0x7f, 0xff), b(0x80), b(0x80, 0x00), b(0xfe, 0xff),
        b(0xff), b(0xff, 0x00), b(0xff, 0xfe), b(0xff, 0xff), b(0xff, 0xff, 0xff),
      ];
      // Written in a scrambled order, one key per batch and then all in one, so no engine can lean on arrival order.
      const scrambled = sorted.map((_, i) => sorted[(i * 7) % sorted.length]!);
      expect(new Set(scrambled.map(hex)).size).toBe(sorted.length);
      for (const k of scrambled.slice(0, 8)) await kv.write([put(k, hex(k))], { sync: false });
      await kv.write(scrambled.slice(8).map((k) => put(k, hex(k))), SYNC);
      expect(await rows(kv)).toEqual(sorted.map((k) => row(k, hex(k))));
      expect(await rows(kv, { gte: b(0xff), lt: b(0xff, 0xff) })).toEqual([b(0xff), b(0xff, 0x00), b(0xff, 0xfe)].map((k) => row(k, hex(k))));
      expect(await rows(kv, { gte: b(0x7f, 0xff), lt: b(0x80, 0x00) })).toEqual([b(0x7f, 0xff), b(0x80)].map((k) => row(k, hex(k))));
    });

    it('scans exactly [gte, lt): gte included, lt excluded, bounds between keys, on prefixes and empty', async () => {
      const stored = [b(1), b(1, 0), b(1, 5), b(1, 5, 0), b(2), b(3)];
      await kv.write(stored.map((k) => put(k, hex(k))), SYNC);
      const cases: Record<string, [Range, Uint8Array[]]> = {
        'gte a key, lt a key': [{ gte: b(1), lt: b(2) }, [b(1), b(1, 0), b(1, 5), b(1, 5, 0)]],
        'lt an extension of gte': [{ gte: b(1, 0), lt: b(1, 5) }, [b(1, 0)]],
        'gte between keys, lt an existing extension': [{ gte: b(1, 1), lt: b(1, 5, 0) }, [b(1, 5)]],
        'gte past a key by a byte, lt past a key by a byte': [{ gte: b(1, 5, 0, 0), lt: b(2, 0) }, [b(2)]],
        'lt the first key': [{ gte: b(0), lt: b(1) }, []],
        'one key alone': [{ gte: b(3), lt: b(3, 0) }, [b(3)]],
        'past the last key': [{ gte: b(3, 0), lt: b(9) }, []],
        'gte equal to lt': [{ gte: b(2), lt: b(2) }, []],
        'gte above lt': [{ gte: b(3), lt: b(1) }, []],
        'empty gte: from the first key': [{ gte: b(), lt: b(1, 0) }, [b(1)]],
        'empty lt: nothing is below it': [{ gte: b(1), lt: b() }, []],
      };
      const found: Record<string, string[]> = {};
      const expected: Record<string, string[]> = {};
      for (const [label, [range, keys]] of Object.entries(cases)) {
        found[label] = (await entries(kv, range)).map(([k]) => hex(k));
        expected[label] = keys.map(hex);
      }
      expect(found).toEqual(expected);
    });

    it('answers undefined for a key never written, deleted, or only a prefix or extension of a stored key', async () => {
      await kv.write([put(b(1, 2), 'v'), put(b(3), 'w')], SYNC);
      await kv.write([del(b(3))], SYNC);
      expect(hex((await kv.get(b(1, 2)))!)).toBe(hex(utf8('v')));
      expect(await kv.get(b(1))).toBeUndefined();
      expect(await kv.get(b(1, 2, 0))).toBeUndefined();
      expect(await kv.get(b(3))).toBeUndefined();
      expect(await kv.get(b(9))).toBeUndefined();
    });

    it('copies what it is given when write is called: the caller may reuse its buffers at once, even behind a write in flight', async () => {
      const earlier = kv.write([put(b(0x10), new Uint8Array(64 * 1024).fill(1))], SYNC);
      // Key and value are views into the middle of one buffer, which the caller then wipes.
      const backing = b(0xaa, 7, 7, 0x61, 0x62, 0x63, 0xbb);
      const written = kv.write([{ type: 'put', key: backing.subarray(1, 3), value: backing.subarray(3, 6) }], { sync: false });
      backing.fill(0);
      await Promise.all([earlier, written]);
      expect(await rows(kv, { gte: b(0), lt: b(0x10) })).toEqual([row(b(7, 7), 'abc')]);
      expect(await kv.get(b(0, 0))).toBeUndefined();
    });

    it('hands out copies it never touches again: changing one changes nothing stored, and results kept stay as they were', async () => {
      const count = 2_500;
      const value = (n: number, generation: string): string => `${generation}-${n}-${'v'.repeat(100)}`;
      for (let start = 0; start < count; start += 500) {
        await kv.write(Array.from({ length: 500 }, (_, i) => put(be16(start + i), value(start + i, 'old'))), SYNC);
      }
      const before = Array.from({ length: count }, (_, n) => row(be16(n), value(n, 'old')));

      const got = (await kv.get(be16(1)))!;
      got.fill(0x7a);
      expect(hex((await kv.get(be16(1)))!)).toBe(hex(utf8(value(1, 'old'))));

      for await (const [k, v] of kv.scan({ gte: be16(0), lt: be16(3) })) {
        k.fill(0xee);
        v.fill(0xee);
      }
      // Kept across several chunks of any engine that reads in chunks, then the store rewritten under them.
      const kept = await entries(kv);
      expect(await rows(kv)).toEqual(before);
      for (let start = 0; start < count; start += 500) {
        await kv.write(Array.from({ length: 500 }, (_, i) => put(be16(start + i), value(start + i, 'new'))), SYNC);
      }
      expect(await rows(kv)).toEqual(Array.from({ length: count }, (_, n) => row(be16(n), value(n, 'new'))));
      kept[0]![1].fill(0);
      kept[0]![0].fill(0xff);
      expect(kept.slice(1).map(([k, v]) => row(k, v))).toEqual(before.slice(1));
    });

    it('stores an empty value as a value, not as absence', async () => {
      await kv.write([put(b(1), ''), put(b(2), 'x')], SYNC);
      const empty = await kv.get(b(1));
      expect(empty).toBeInstanceOf(Uint8Array);
      expect(empty!.length).toBe(0);
      expect(await rows(kv)).toEqual([row(b(1), ''), row(b(2), 'x')]);
      await kv.write([put(b(2), '')], SYNC);
      expect(await rows(kv)).toEqual([row(b(1), ''), row(b(2), '')]);
    });

    it('stores a 1 MiB value whole, between two small ones', async () => {
      const big = new Uint8Array(1 << 20);
      for (let i = 0; i < big.length; i++) big[i] = (i * 131 + (i >>> 8)) & 0xff;
      await kv.write([put(b(0x41), 'a'), put(b(0x42), big), put(b(0x43), 'c')], SYNC);
      const got = (await kv.get(b(0x42)))!;
      expect(got.length).toBe(big.length);
      expect(Buffer.compare(got, big)).toBe(0);
      const scanned = await entries(kv);
      expect(scanned.map(([k, v]) => `${hex(k)}:${v.length}`)).toEqual(['41:1', '42:1048576', '43:1']);
      expect(Buffer.compare(scanned[1]![1], big)).toBe(0);
    });

    it('lets a consumer leave a scan early, by break or by throwing, and then writes and scans as before', async () => {
      const count = 3_000;
      await kv.write(Array.from({ length: count }, (_, n) => put(be16(n), `${n}`)), SYNC);
      let read = 0;
      for await (const _entry of kv.scan(ALL)) if (++read === 3) break;
      expect(read).toBe(3);
      const thrown = new Error('the consumer gave up');
      await expect(
        attempt(async () => {
          let n = 0;
          for await (const _entry of kv.scan(ALL)) if (++n === 1_500) throw thrown;
        }),
      ).rejects.toBe(thrown);
      // Left by hand: one entry taken, then return() as a for-await's break would call it.
      const iterator = kv.scan(ALL)[Symbol.asyncIterator]();
      expect((await iterator.next()).done).toBe(false);
      await iterator.return?.();

      await kv.write([put(b(0xf0), 'after'), del(be16(0))], SYNC);
      const after = await rows(kv);
      expect(after.length).toBe(count);
      expect(after[0]).toBe(row(be16(1), '1'));
      expect(after.at(-1)).toBe(row(b(0xf0), 'after'));
      expect(hex((await kv.get(be16(2_999)))!)).toBe(hex(utf8('2999')));
    });

    it('scans 10,000 keys in key order, whatever order they were written in', async () => {
      const count = 10_000;
      // Two big-endian bytes order the keys; every fifth carries a trailing 0xff, so prefixes and lengths mix.
      const keyOf = (n: number): Uint8Array => (n % 5 === 0 ? b(n >> 8, n & 0xff, 0xff) : be16(n));
      // 7919 is prime to 10,000: n -> n * 7919 mod 10,000 visits every key once, scattered.
      for (let start = 0; start < count; start += 1_000) {
        const batch = Array.from({ length: 1_000 }, (_, i) => (start + i) * 7919 % count).map((n) => put(keyOf(n), `v${n}`));
        await kv.write(batch, { sync: start === 0 });
      }
      const expected = Array.from({ length: count }, (_, n) => row(keyOf(n), `v${n}`));
      expect(await rows(kv)).toEqual(expected);
      expect(await rows(kv, { gte: be16(2_500), lt: be16(7_500) })).toEqual(expected.slice(2_500, 7_500));
    });

    it('scans the store as it was when the scan began', async () => {
      await kv.write([put(b(1), 'a'), put(b(2), 'b'), put(b(3), 'c')], SYNC);
      const iterator = kv.scan(ALL)[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.done).toBe(false);
      await kv.write([put(b(2), 'B'), del(b(3)), put(b(4), 'd')], SYNC);
      const rest: string[] = [];
      for (let step = await iterator.next(); !step.done; step = await iterator.next()) rest.push(row(step.value[0], step.value[1]));
      expect(rest).toEqual([row(b(2), 'b'), row(b(3), 'c')]);
      expect(await rows(kv)).toEqual([row(b(1), 'a'), row(b(2), 'B'), row(b(4), 'd')]);
    });

    it('refuses writes, gets and scans once closed', async () => {
      await kv.write([put(b(1), 'a')], SYNC);
      await kv.close();
      await expect(attempt(() => kv.write([put(b(2), 'b')], SYNC))).rejects.toThrow(/closed/);
      await expect(attempt(() => kv.get(b(1)))).rejects.toThrow(/closed/);
      await expect(attempt(() => entries(kv))).rejects.toThrow(/closed/);
    });
  });
}
