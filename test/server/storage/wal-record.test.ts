/**
 * The WAL's record format (server/storage/wal/record.ts): every record type round-trips through
 * its frame (entries of every type, empty and 1 MiB data, indexes and terms up to 2^53-1; hard
 * state with and without a vote; bases both ways; segment headers), the CRC32C is the
 * Castagnoli one (a known vector), and readRecord's verdicts hold: 'zero' on an all-zero header,
 * 'truncated' when the bytes stop early, 'bad' on any single flipped bit, an unknown type or an
 * absurd length. A COMMIT record vouches for exactly the batch it closes and nothing else.
 *
 * Every fc.assert has a fixed seed.
 */

import { Encoder } from '@msgpack/msgpack';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Entry, EntryType, HardState } from '../../../server/raft/types.js';
import { crc32c } from '../../../server/storage/crc32c.js';
import {
  batchStartOf,
  COMMIT_RECORD_BYTES,
  commitHolds,
  decodeBase,
  decodeEntry,
  decodeHardState,
  decodeSegmentHeader,
  encodeBase,
  encodeHardState,
  encodeSegmentHeader,
  entryIndexOf,
  entryRecordBytes,
  HEADER_BYTES,
  readRecord,
  RECORD_BYTES_MAX,
  RecordType,
  WAL_FORMAT,
  WAL_MAGIC,
  writeCommit,
  writeEntryRecord,
  writeRecord,
  type LogBase,
  type ReadResult,
  type SegmentHeader,
} from '../../../server/storage/wal/record.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'noop', 'config'];

/** Deterministic, non-repeating-looking bytes. */
function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function entryRecord(entry: Entry): Uint8Array {
  const out = new Uint8Array(entryRecordBytes(entry));
  expect(writeEntryRecord(out, 0, entry)).toBe(out.length);
  return out;
}

function record(type: RecordType, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  expect(writeRecord(out, 0, type, payload)).toBe(out.length);
  return out;
}

function expectRecord(result: ReadResult): Extract<ReadResult, { kind: 'record' }> {
  if (result.kind !== 'record') throw new Error(`expected a record, got ${JSON.stringify(result)}`);
  return result;
}

/** A record framed by hand: crc over length|type|payload, with any type and length field. */
function handFramed(type: number, payload: Uint8Array, lengthField = payload.length): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(4, lengthField, true);
  out[8] = type;
  out.set(payload, HEADER_BYTES);
  view.setUint32(0, crc32c(out.subarray(4)), true);
  return out;
}

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('crc32c', () => {
  it('is CRC32C (Castagnoli): the check value of "123456789" is 0xe3069283', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
  });

  it('is 0 for no bytes, unsigned, and continues from an initial value', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    const data = pattern(1000, 7);
    const whole = crc32c(data);
    expect(whole).toBeGreaterThanOrEqual(0);
    expect(crc32c(data.subarray(400), crc32c(data.subarray(0, 400)))).toBe(whole);
  });

  it('reads a view at its own offset (a subarray of a larger buffer)', () => {
    const big = new Uint8Array(20);
    big.set(ascii('123456789'), 7);
    expect(crc32c(big.subarray(7, 16))).toBe(0xe3069283);
  });

  it('is not plain CRC32 (whose check value is 0xcbf43926)', () => {
    expect(crc32c(ascii('123456789'))).not.toBe(0xcbf43926);
  });
});

describe('entry records', () => {
  const sizes = [0, 1, 17, 511, 4096, 1024 * 1024];
  for (const type of ENTRY_TYPES) {
    for (const size of sizes) {
      it(`round-trips a ${type} entry with ${size} bytes of data`, () => {
        const entry: Entry = { index: 12345 + size, term: 7, type, data: pattern(size, size + 3) };
        const bytes = entryRecord(entry);
        expect(bytes.length).toBe(HEADER_BYTES + 17 + size);
        const read = expectRecord(readRecord(bytes, 0));
        expect(read.type).toBe(RecordType.ENTRY);
        expect(read.next).toBe(bytes.length);
        expect(entryIndexOf(read.payload)).toBe(entry.index);
        const decoded = decodeEntry(read.payload);
        expect(decoded.index).toBe(entry.index);
        expect(decoded.term).toBe(entry.term);
        expect(decoded.type).toBe(type);
        expect(decoded.data.length).toBe(size);
        expect(Buffer.from(decoded.data).equals(Buffer.from(entry.data))).toBe(true);
      });
    }
  }

  it('round-trips indexes and terms across the 32-bit boundary up to 2^53-1', () => {
    const values = [0, 1, 0xff, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, 2 ** 40 + 3, MAX_SAFE - 1, MAX_SAFE];
    for (const index of values) {
      for (const term of values) {
        const entry: Entry = { index, term, type: 'normal', data: ascii('x') };
        const read = expectRecord(readRecord(entryRecord(entry), 0));
        const decoded = decodeEntry(read.payload);
        expect([decoded.index, decoded.term]).toEqual([index, term]);
        expect(entryIndexOf(read.payload)).toBe(index);
      }
    }
  });

  it('round-trips arbitrary entries (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_SAFE }),
        fc.integer({ min: 0, max: MAX_SAFE }),
        fc.constantFrom(...ENTRY_TYPES),
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(50),
        (index, term, type, data, offset) => {
          const entry: Entry = { index, term, type, data };
          // Written at an offset inside a larger buffer, read back through a view with its own byteOffset.
          const backing = new Uint8Array(offset + entryRecordBytes(entry) + 13);
          const end = writeEntryRecord(backing, offset, entry);
          expect(end).toBe(offset + entryRecordBytes(entry));
          const view = backing.subarray(0, end + 5);
          const read = expectRecord(readRecord(view, offset));
          expect(read.next).toBe(end);
          expect(decodeEntry(read.payload)).toEqual({ index, term, type, data: new Uint8Array(data) });
        },
      ),
      { seed: 2024, numRuns: 300 },
    );
  });

  it('copies the decoded data out of the segment buffer', () => {
    const bytes = entryRecord({ index: 3, term: 1, type: 'normal', data: ascii('hello') });
    const decoded = decodeEntry(expectRecord(readRecord(bytes, 0)).payload);
    bytes.fill(0);
    expect(Buffer.from(decoded.data).toString()).toBe('hello');
  });

  it('refuses to decode an entry payload that is too short or has an unknown entry type', () => {
    const read = expectRecord(readRecord(entryRecord({ index: 3, term: 1, type: 'config', data: ascii('ab') }), 0));
    expect(() => decodeEntry(read.payload.subarray(0, 16))).toThrow();
    expect(() => entryIndexOf(read.payload.subarray(0, 16))).toThrow();
    const wrongType = new Uint8Array(read.payload);
    wrongType[16] = 3;
    expect(() => decodeEntry(wrongType)).toThrow();
  });
});

describe('hard state, base and segment header records', () => {
  const hardStates: HardState[] = [
    { term: 0, vote: null, commit: 0 },
    { term: 5, vote: null, commit: 17 },
    { term: 9, vote: 'nœud-β-🦊-成员', commit: 3 },
    { term: MAX_SAFE, vote: 'm1', commit: MAX_SAFE },
    { term: 2 ** 32, vote: '', commit: 2 ** 32 + 1 },
  ];

  for (const hs of hardStates) {
    it(`round-trips hard state ${JSON.stringify(hs)}`, () => {
      const bytes = record(RecordType.HARD_STATE, encodeHardState(hs));
      const read = expectRecord(readRecord(bytes, 0));
      expect(read.type).toBe(RecordType.HARD_STATE);
      expect(decodeHardState(read.payload)).toEqual(hs);
    });
  }

  for (const replacesLog of [true, false]) {
    it(`round-trips a base with replacesLog ${replacesLog}`, () => {
      const base: LogBase = { meta: { index: 4096 + Number(replacesLog), term: 3, conf: { voters: ['a', 'b', 'ç-🦊'] } }, replacesLog };
      const bytes = record(RecordType.BASE, encodeBase(base));
      const read = expectRecord(readRecord(bytes, 0));
      expect(read.type).toBe(RecordType.BASE);
      expect(decodeBase(read.payload)).toEqual(base);
    });
  }

  it('round-trips a base with learners, and reads a base written before learners (four fields) as one without', () => {
    const base: LogBase = { meta: { index: 7, term: 2, conf: { voters: ['a', 'b', 'c'], learners: ['d'] } }, replacesLog: false };
    expect(decodeBase(expectRecord(readRecord(record(RecordType.BASE, encodeBase(base)), 0)).payload)).toEqual(base);
    const plain: LogBase = { meta: { index: 7, term: 2, conf: { voters: ['a'] } }, replacesLog: false };
    const bytes = encodeBase(plain);
    expect(decodeBase(expectRecord(readRecord(record(RecordType.BASE, bytes), 0)).payload)).toEqual(plain);
  });

  it('round-trips a base at 2^53-1 with no voters', () => {
    const base: LogBase = { meta: { index: MAX_SAFE, term: MAX_SAFE, conf: { voters: [] } }, replacesLog: true };
    expect(decodeBase(expectRecord(readRecord(record(RecordType.BASE, encodeBase(base)), 0)).payload)).toEqual(base);
  });

  const headers: SegmentHeader[] = [
    { seq: 0, hardState: { term: 0, vote: null, commit: 0 }, base: null },
    { seq: 0x1234_5678_9, hardState: { term: 4, vote: 'é', commit: 99 }, base: { meta: { index: 50, term: 2, conf: { voters: ['x'] } }, replacesLog: false } },
    { seq: 7, hardState: { term: 4, vote: null, commit: 99 }, base: { meta: { index: 60, term: 3, conf: { voters: ['x', 'y'] } }, replacesLog: true } },
  ];
  for (const header of headers) {
    it(`round-trips segment header seq ${header.seq} (base ${header.base === null ? 'none' : 'set'})`, () => {
      const read = expectRecord(readRecord(record(RecordType.SEGMENT, encodeSegmentHeader(header)), 0));
      expect(read.type).toBe(RecordType.SEGMENT);
      expect(decodeSegmentHeader(read.payload)).toEqual(header);
    });
  }

  it('refuses a segment header without the magic, of another format, or without a sequence number', () => {
    const encoder = new Encoder();
    const hs = [1, null, 0];
    expect(() => decodeSegmentHeader(encoder.encode(['other-wal', WAL_FORMAT, 0, hs, null]))).toThrow(/magic/);
    expect(() => decodeSegmentHeader(encoder.encode({ magic: WAL_MAGIC }))).toThrow(/magic/);
    expect(() => decodeSegmentHeader(encoder.encode([WAL_MAGIC, WAL_FORMAT + 1, 0, hs, null]))).toThrow(/format/);
    expect(() => decodeSegmentHeader(encoder.encode([WAL_MAGIC, WAL_FORMAT, 'one', hs, null]))).toThrow(/sequence/);
    expect(decodeSegmentHeader(encoder.encode([WAL_MAGIC, WAL_FORMAT, 3, hs, null])).seq).toBe(3);
  });

  it('refuses malformed hard states and bases', () => {
    const encoder = new Encoder();
    expect(() => decodeHardState(encoder.encode([1, null]))).toThrow();
    expect(() => decodeHardState(encoder.encode([1.5, null, 0]))).toThrow();
    expect(() => decodeHardState(encoder.encode([1, 7, 0]))).toThrow();
    expect(() => decodeBase(encoder.encode([1, 1, ['a']]))).toThrow();
    expect(() => decodeBase(encoder.encode([1, 1, [2], false]))).toThrow();
    expect(() => decodeBase(encoder.encode([1, 1, ['a'], 'yes']))).toThrow();
  });
});

describe('readRecord verdicts', () => {
  const samples: { name: string; bytes: Uint8Array }[] = [
    { name: 'entry', bytes: entryRecord({ index: 77, term: 3, type: 'normal', data: ascii('payload!') }) },
    { name: 'empty entry', bytes: entryRecord({ index: 1, term: 1, type: 'noop', data: new Uint8Array(0) }) },
    { name: 'hard state', bytes: record(RecordType.HARD_STATE, encodeHardState({ term: 2, vote: 'b', commit: 1 })) },
    { name: 'base', bytes: record(RecordType.BASE, encodeBase({ meta: { index: 9, term: 2, conf: { voters: ['a'] } }, replacesLog: true })) },
    { name: 'segment header', bytes: record(RecordType.SEGMENT, encodeSegmentHeader({ seq: 2, hardState: { term: 1, vote: null, commit: 0 }, base: null })) },
    {
      name: 'commit',
      bytes: (() => {
        const batch = new Uint8Array(100 + COMMIT_RECORD_BYTES);
        batch.set(pattern(100, 5));
        writeCommit(batch, 0, 100);
        return batch.slice(100);
      })(),
    },
  ];

  it("is 'zero' on an all-zero header, wherever it is", () => {
    expect(readRecord(new Uint8Array(HEADER_BYTES), 0)).toEqual({ kind: 'zero' });
    expect(readRecord(new Uint8Array(4096), 0)).toEqual({ kind: 'zero' });
    // After a record, in a zero-filled (preallocated) tail.
    const first = samples[0]!.bytes;
    const buffer = new Uint8Array(first.length + 200);
    buffer.set(first);
    const read = expectRecord(readRecord(buffer, 0));
    expect(readRecord(buffer, read.next)).toEqual({ kind: 'zero' });
    // An all-zero header whose (zero) length field points nowhere is still zero, not a record.
    const zeroHeaderThenData = new Uint8Array(HEADER_BYTES + 10).fill(0xab);
    zeroHeaderThenData.fill(0, 0, HEADER_BYTES);
    expect(readRecord(zeroHeaderThenData, 0).kind).toBe('zero');
    // At the very end, or fewer than a header's bytes left and all zero.
    expect(readRecord(buffer, buffer.length)).toEqual({ kind: 'zero' });
    expect(readRecord(new Uint8Array(5), 0)).toEqual({ kind: 'zero' });
  });

  it("is never 'zero' for a real record (five zero bytes do not have a zero CRC)", () => {
    expect(crc32c(new Uint8Array(5))).not.toBe(0);
    for (const { bytes } of samples) expect(readRecord(bytes, 0).kind).toBe('record');
  });

  it("is 'truncated' on every proper prefix of a record that is not all zero", () => {
    for (const { name, bytes } of samples) {
      for (let cut = 1; cut < bytes.length; cut++) {
        const prefix = bytes.slice(0, cut);
        const expected = prefix.every((b) => b === 0) ? 'zero' : 'truncated';
        expect(readRecord(prefix, 0).kind, `${name} cut at ${cut}`).toBe(expected);
      }
    }
    // A non-zero partial header at the end of the data.
    expect(readRecord(Uint8Array.of(0, 0, 1, 0), 0)).toEqual({ kind: 'truncated' });
  });

  it("is 'bad' or 'truncated' (never a record) on every single-bit flip of a record in a tight buffer; 'truncated' only from a longer length", () => {
    for (const { name, bytes } of samples) {
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const flipped = bytes.slice();
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        const result = readRecord(flipped, 0);
        const inLength = bit >> 3 >= 4 && bit >> 3 < 8;
        const lengthGrew = inLength && (bytes[bit >> 3]! & (1 << (bit & 7))) === 0;
        if (lengthGrew) expect(['bad', 'truncated'], `${name} bit ${bit}`).toContain(result.kind);
        else expect(result.kind, `${name} bit ${bit}`).toBe('bad');
      }
    }
  });

  it("is 'bad' on every single-bit flip of a record when enough bytes follow it", () => {
    // 33 MiB of zeros after the record: a length grown by a flip up to bit 25 (32 MiB) is in
    // range and fails the CRC; bit 26 and up pass RECORD_BYTES_MAX and fail the length check.
    const padded = new Uint8Array(33 * 1024 * 1024 + 4096);
    for (const { name, bytes } of samples) {
      padded.fill(0, 0, 4096);
      padded.set(bytes);
      expect(readRecord(padded, 0).kind).toBe('record');
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        padded[bit >> 3]! ^= 1 << (bit & 7);
        const result = readRecord(padded, 0);
        padded[bit >> 3]! ^= 1 << (bit & 7);
        expect(result.kind, `${name} bit ${bit}: ${JSON.stringify(result)}`).toBe('bad');
      }
    }
  });

  it("is 'bad' on a random single-bit flip of a random entry record (property)", () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.nat(MAX_SAFE), fc.uint8Array({ maxLength: 64 }), fc.nat(), (index, term, data, pick) => {
        const bytes = entryRecord({ index, term, type: 'normal', data });
        const bit = pick % (bytes.length * 8);
        bytes[bit >> 3]! ^= 1 << (bit & 7);
        expect(readRecord(bytes, 0).kind).not.toBe('record');
        expect(readRecord(bytes, 0).kind).not.toBe('zero');
      }),
      { seed: 7, numRuns: 500 },
    );
  });

  it("is 'bad' on an unknown record type even with a matching CRC", () => {
    for (const type of [0, 6, 7, 0x80, 0xff]) {
      const result = readRecord(handFramed(type, ascii('abc')), 0);
      expect(result.kind, `type ${type}`).toBe('bad');
      if (result.kind === 'bad') expect(result.reason).toMatch(/type/);
    }
    for (const type of Object.values(RecordType)) expect(readRecord(handFramed(type, ascii('abc')), 0).kind).toBe('record');
  });

  it("is 'bad' on an absurd length, even when the bytes stop early", () => {
    for (const length of [RECORD_BYTES_MAX + 1, 0x8000_0000, 0xffff_ffff]) {
      const bytes = handFramed(RecordType.ENTRY, new Uint8Array(20), length);
      const result = readRecord(bytes, 0);
      expect(result.kind, `length ${length}`).toBe('bad');
      if (result.kind === 'bad') expect(result.reason).toMatch(/length/);
    }
    // The largest allowed length is only short of bytes.
    expect(readRecord(handFramed(RecordType.ENTRY, new Uint8Array(20), RECORD_BYTES_MAX), 0).kind).toBe('truncated');
  });

  it('reads consecutive records and stops at the zero-filled end', () => {
    const buffer = new Uint8Array(4096);
    let at = 0;
    const written: number[] = [];
    for (let i = 1; i <= 10; i++) {
      written.push(at);
      at = writeEntryRecord(buffer, at, { index: i, term: 1, type: ENTRY_TYPES[i % 3]!, data: pattern(i * 13, i) });
    }
    const seen: number[] = [];
    let cursor = 0;
    for (;;) {
      const read = readRecord(buffer, cursor);
      if (read.kind !== 'record') {
        expect(read.kind).toBe('zero');
        break;
      }
      seen.push(entryIndexOf(read.payload));
      cursor = read.next;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(cursor).toBe(at);
  });
});

describe('COMMIT records', () => {
  /** Two batches back to back, each closed by its COMMIT. */
  function twoBatches(): { bytes: Uint8Array; firstCommit: number; secondStart: number; secondCommit: number; end: number } {
    const bytes = new Uint8Array(2048);
    let at = 0;
    at = writeEntryRecord(bytes, at, { index: 1, term: 1, type: 'normal', data: ascii('one') });
    at = writeRecord(bytes, at, RecordType.HARD_STATE, encodeHardState({ term: 1, vote: 'a', commit: 1 }));
    const firstCommit = at;
    const secondStart = writeCommit(bytes, 0, at);
    expect(secondStart).toBe(firstCommit + COMMIT_RECORD_BYTES);
    at = secondStart;
    at = writeEntryRecord(bytes, at, { index: 2, term: 1, type: 'normal', data: ascii('two') });
    at = writeEntryRecord(bytes, at, { index: 3, term: 2, type: 'config', data: ascii('three') });
    const secondCommit = at;
    const end = writeCommit(bytes, secondStart, at);
    return { bytes, firstCommit, secondStart, secondCommit, end };
  }

  function commitPayload(bytes: Uint8Array, at: number): Uint8Array {
    const read = expectRecord(readRecord(bytes, at));
    expect(read.type).toBe(RecordType.COMMIT);
    expect(read.payload.length).toBe(8);
    expect(read.next).toBe(at + COMMIT_RECORD_BYTES);
    return read.payload;
  }

  it('vouches for the batch it closes and says where it began', () => {
    const { bytes, firstCommit, secondStart, secondCommit } = twoBatches();
    const first = commitPayload(bytes, firstCommit);
    const second = commitPayload(bytes, secondCommit);
    expect(commitHolds(bytes, firstCommit, first)).toBe(true);
    expect(commitHolds(bytes, secondCommit, second)).toBe(true);
    expect(batchStartOf(firstCommit, first)).toBe(0);
    expect(batchStartOf(secondCommit, second)).toBe(secondStart);
  });

  it('does not hold once any byte of its batch changes', () => {
    const { bytes, secondStart, secondCommit } = twoBatches();
    const second = commitPayload(bytes, secondCommit).slice();
    for (let i = secondStart; i < secondCommit; i++) {
      bytes[i]! ^= 0x10;
      expect(commitHolds(bytes, secondCommit, second), `byte ${i}`).toBe(false);
      bytes[i]! ^= 0x10;
    }
    expect(commitHolds(bytes, secondCommit, second)).toBe(true);
  });

  it('does not hold for another batch: another position, another commit, a longer or shorter span', () => {
    const { bytes, firstCommit, secondStart, secondCommit } = twoBatches();
    const first = commitPayload(bytes, firstCommit).slice();
    const second = commitPayload(bytes, secondCommit).slice();
    // The first batch's COMMIT read as if it closed the second batch, and vice versa.
    expect(commitHolds(bytes, secondCommit, first)).toBe(false);
    expect(commitHolds(bytes, firstCommit, second)).toBe(false);
    // The second batch's COMMIT moved: its span now covers different bytes.
    expect(commitHolds(bytes, secondCommit - 1, second)).toBe(false);
    expect(commitHolds(bytes, secondCommit + 1, second)).toBe(false);
    // Both batches as one span (what a commit covering from 0 would claim), checked against the second CRC.
    const spanning = second.slice();
    new DataView(spanning.buffer).setUint32(0, secondCommit, true);
    expect(commitHolds(bytes, secondCommit, spanning)).toBe(false);
    // A length one short or one long with the CRC of the true batch.
    for (const delta of [-1, 1]) {
      const off = second.slice();
      new DataView(off.buffer).setUint32(0, secondCommit - secondStart + delta, true);
      expect(commitHolds(bytes, secondCommit, off)).toBe(false);
    }
  });

  it('does not hold with a span reaching before the start of the data or a payload of the wrong size', () => {
    const { bytes, secondCommit } = twoBatches();
    const second = commitPayload(bytes, secondCommit).slice();
    const tooLong = second.slice();
    new DataView(tooLong.buffer).setUint32(0, secondCommit + 1, true);
    expect(commitHolds(bytes, secondCommit, tooLong)).toBe(false);
    expect(commitHolds(bytes, secondCommit, second.subarray(0, 7))).toBe(false);
    const nine = new Uint8Array(9);
    nine.set(second);
    expect(commitHolds(bytes, secondCommit, nine)).toBe(false);
  });

  it('holds for an exact batch of arbitrary records at an arbitrary start (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.array(fc.uint8Array({ maxLength: 60 }), { minLength: 1, maxLength: 5 }), fc.nat(), (prefix, datas, pick) => {
        const bytes = new Uint8Array(prefix.length + datas.reduce((n, d) => n + HEADER_BYTES + 17 + d.length, 0) + COMMIT_RECORD_BYTES);
        bytes.set(prefix);
        let at = prefix.length;
        datas.forEach((data, i) => {
          at = writeEntryRecord(bytes, at, { index: i + 1, term: 1, type: 'normal', data });
        });
        expect(writeCommit(bytes, prefix.length, at)).toBe(bytes.length);
        const payload = commitPayload(bytes, at).slice();
        expect(commitHolds(bytes, at, payload)).toBe(true);
        expect(batchStartOf(at, payload)).toBe(prefix.length);
        // A change inside the batch breaks it; a change in the prefix before the batch does not.
        const inside = prefix.length + (pick % (at - prefix.length));
        bytes[inside]! ^= 1 << (pick % 8);
        expect(commitHolds(bytes, at, payload)).toBe(false);
        bytes[inside]! ^= 1 << (pick % 8);
        if (prefix.length > 0) {
          bytes[pick % prefix.length]! ^= 0xff;
          expect(commitHolds(bytes, at, payload)).toBe(true);
        }
      }),
      { seed: 99, numRuns: 300 },
    );
  });
});
