/**
 * The log-entry codec: entries round-trip with their bytes intact, any bytes decode without
 * throwing into something the state machine refuses cleanly, and the format is pinned by a
 * golden vector (entries outlive the code that wrote them).
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeEntry, ENTRY_FORMAT } from '../../../server/state/codec.js';
import { StateMachine, type StateCommand } from '../../../server/state/state-machine.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const SECRET = '00112233445566778899aabbccddeeff';
const hex = (data: Uint8Array): string => Buffer.from(data).toString('hex');

const commandArb: fc.Arbitrary<StateCommand> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), path: fc.constantFrom('/a', '/a/b', '/é/🙂'), value: fc.uint8Array({ maxLength: 64 }), ifVersion: fc.option(fc.integer({ min: -1, max: 9 }), { nil: undefined }) }),
  fc.record({ op: fc.constant('create' as const), path: fc.constantFrom('/q/job-', '/x'), value: fc.uint8Array({ maxLength: 16 }), sequential: fc.boolean(), parents: fc.boolean() }),
  fc.record({ op: fc.constant('delete' as const), path: fc.constantFrom('/a', '/x'), recursive: fc.boolean() }),
  fc.record({ op: fc.constant('leaseGrant' as const), ttlMs: fc.integer({ min: 1000, max: 100_000 }) }),
  fc.record({ op: fc.constant('leaseRevoke' as const), lease: fc.nat(100) }),
  // A lease epoch is a Raft term: any safe integer, so past 2^32 too (MessagePack's wider ints).
  fc.record({ op: fc.constant('leaseExpire' as const), leases: fc.array(fc.nat(100), { maxLength: 5 }), term: fc.oneof(fc.nat(100), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })) }),
  fc.record({ op: fc.constant('leaseRefreshAll' as const), term: fc.oneof(fc.nat(100), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })) }),
  fc.record({ op: fc.constant('registerClient' as const), secret: fc.constant(SECRET), nonce: fc.option(fc.string({ minLength: 1, maxLength: 64 }), { nil: undefined }) }),
);

describe('entry codec', () => {
  it('round-trips time, command (with raw bytes) and client stamp', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 52 }),
        commandArb,
        fc.option(fc.record({ id: fc.nat(), seq: fc.integer({ min: 1, max: 1e9 }), ackedThrough: fc.nat(), secret: fc.constant(SECRET) }), { nil: undefined }),
        (timeMs, command, client) => {
          const decoded = decodeEntry(encodeEntry({ timeMs, command, ...(client === undefined ? {} : { client }) }));
          // undefined fields are not encoded (MessagePack maps carry only what is there).
          const defined = JSON.parse(JSON.stringify(command, (_, v) => (v instanceof Uint8Array ? `bytes:${hex(v)}` : v)));
          expect(JSON.parse(JSON.stringify(decoded.command, (_, v) => (v instanceof Uint8Array ? `bytes:${hex(v)}` : v)))).toEqual(defined);
          expect(decoded.timeMs).toBe(timeMs);
          expect(decoded.client).toEqual(client);
        },
      ),
      { seed: 42, numRuns: 500 },
    );
  });

  it('decodes any bytes without throwing, into an entry the state machine refuses and that changes nothing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (data) => {
        const decoded = decodeEntry(data);
        const sm = new StateMachine();
        const { result } = sm.apply({ index: 1, ...decoded });
        // Random bytes can, rarely, be a well-formed entry; anything else must be refused cleanly.
        if (!result.ok) expect(['INVALID_ARGUMENT', 'SESSION_EXPIRED', 'TOO_LARGE']).toContain(result.code);
        expect(sm.revision).toBeLessThanOrEqual(1);
      }),
      { seed: 7, numRuns: 2000 },
    );
    expect(decodeEntry(new Uint8Array([0xc1])).command).toEqual({ op: 'malformedEntry', reason: 'the entry is not valid MessagePack' });
    expect(new StateMachine().apply({ index: 1, ...decodeEntry(new Uint8Array([])) }).result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
  });

  it('refuses an entry of an unknown format version', () => {
    const future = encodeEntry({ timeMs: 1, command: { op: 'registerClient', secret: SECRET } });
    future[1] = ENTRY_FORMAT + 1; // [fixarray, format, …]: the format is the second byte
    expect(decodeEntry(future).command).toMatchObject({ op: 'malformedEntry', reason: `unknown entry format ${ENTRY_FORMAT + 1}` });
  });

  it('keeps format 2 byte for byte (a golden vector: change it only with a new format number)', () => {
    const encoded = encodeEntry({ timeMs: 1_700_000_000_000, command: { op: 'put', path: '/a', value: bytes('hi') }, client: { id: 3, seq: 7, ackedThrough: 6, secret: SECRET } });
    expect(hex(encoded)).toBe(GOLDEN_FORMAT_2);
  });

  it('writes format 3 only for an entry that names its user, and reads the user back', () => {
    const encoded = encodeEntry({ timeMs: 1_700_000_000_000, command: { op: 'put', path: '/a', value: bytes('hi') }, user: 'alice' });
    expect(encoded[1]).toBe(3);
    expect(decodeEntry(encoded)).toMatchObject({ user: 'alice', command: { op: 'put', path: '/a' } });
    expect(decodeEntry(encodeEntry({ timeMs: 1, command: { op: 'compact', revision: 1 } }))).not.toHaveProperty('user');
    // A format-3 entry without its fifth field, or with a user that is not text, is malformed.
    expect(decodeEntry(new Uint8Array([0x94, 0x03, 0x01, 0xc0, 0xc0])).command).toMatchObject({ op: 'malformedEntry' });
    expect(decodeEntry(new Uint8Array([0x95, 0x03, 0x01, 0xc0, 0xc0, 0x07])).command).toMatchObject({ op: 'malformedEntry', reason: "the entry's user is not a name" });
  });

  it('refuses a format-1 entry (its stamp had no session secret): refused when applied, nothing changed', () => {
    const decoded = decodeEntry(Buffer.from(GOLDEN_FORMAT_1, 'hex'));
    expect(decoded.command).toMatchObject({ op: 'malformedEntry', reason: 'unknown entry format 1' });
  });
});

const GOLDEN_FORMAT_1 = '9401cf0000018bcfe5680083a26f70a3707574a470617468a22f61a576616c7565c402686983a2696403a373657107ac61636b65645468726f75676806';
const GOLDEN_FORMAT_2 = '9402cf0000018bcfe5680083a26f70a3707574a470617468a22f61a576616c7565c402686984a2696403a373657107ac61636b65645468726f75676806a6736563726574d9203030313132323333343435353636373738383939616162626363646465656666';
