/**
 * The client protocol's JSON forms (server/api/wire.ts): values are read from base64 in its one
 * canonical spelling only, and every error frame says what the client may do next.
 *
 * An answer's bytes are its JSON, whether or not its large values were spliced in.
 *
 * Must never: accept two spellings of one value.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeAnswer, errorFrame, wireAnswer } from '../../../server/api/wire.js';
import { ERROR_CODES, ERROR_OUTCOMES, type ErrorCode } from '../../../shared/errors.js';

describe('decodeBase64', () => {
  it('reads back exactly what any bytes encode to', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(decodeBase64(Buffer.from(bytes).toString('base64'))).toEqual(bytes);
      }),
      { seed: 11, numRuns: 500 },
    );
  });

  it.each([
    ['A', 'a lone character (was stored as an empty value)'],
    ['AAAAA', 'a length that is no multiple of 4 (was stored as AAAA)'],
    ['AB==', 'bits set past the data (AA== is the spelling)'],
    ['AAE', 'missing padding'],
    ['AA=A', 'padding in the middle'],
    ['AAAA====', 'padding past the end'],
    ['AA-_', 'the URL-safe alphabet'],
  ])('refuses %s (%s)', (text) => {
    expect(decodeBase64(text)).toBeNull();
  });
});

describe('errorFrame', () => {
  it('carries, for every code, the outcome the registry gives it, and any extra fields', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      expect(errorFrame(code, 'why')).toEqual({ ok: false, error: { code, message: 'why', outcome: ERROR_OUTCOMES[code] } });
    }
    expect(errorFrame('TOO_LARGE', 'big', { limit: { name: 'valueBytesMax', flag: '--max-value-bytes', value: 1 } }).error).toMatchObject({ outcome: 'final', limit: { flag: '--max-value-bytes' } });
  });
});

describe('encodeAnswer', () => {
  const bytesOf = (encoded: string | Buffer): string => (typeof encoded === 'string' ? encoded : encoded.toString('utf8'));
  const large = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

  it('writes any answer as exactly its JSON, large values spliced or not', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ path: fc.string({ maxLength: 12, unit: 'binary' }), value: fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.constantFrom(large(70_000, 1), large(100_000, 250))) }), { maxLength: 4 }),
        fc.string({ maxLength: 8, unit: 'binary' }),
        (nodes, note) => {
          const answer = { ok: true, revision: 7, note, nodes };
          const wire = wireAnswer(answer) as object;
          const frame = { id: 1, ...wire }; // as the client port sends it
          expect(JSON.parse(bytesOf(encodeAnswer(frame)))).toEqual(JSON.parse(JSON.stringify(frame)));
        },
      ),
      { seed: 12, numRuns: 200 },
    );
  });

  it('splices a large value into bytes, and leaves a small answer a JSON string', () => {
    const frame = { id: 'a', ...(wireAnswer({ ok: true, node: { path: '/big', value: large(1 << 20, 7), stat: { version: 1 } } }) as object) };
    const encoded = encodeAnswer(frame);
    expect(Buffer.isBuffer(encoded)).toBe(true);
    expect(bytesOf(encoded)).toBe(JSON.stringify(frame));
    const small = { id: 'b', ...(wireAnswer({ ok: true, node: { path: '/s', value: large(10, 7) } }) as object) };
    expect(encodeAnswer(small)).toBe(JSON.stringify(small));
  });

  it('is not turned off by an answer string that holds a NUL', () => {
    const frame = { id: '\u0000', ...(wireAnswer({ ok: true, note: 'a\u0000b', node: { path: '/big', value: large(80_000, 3) } }) as object) };
    const encoded = encodeAnswer(frame);
    expect(Buffer.isBuffer(encoded)).toBe(true);
    expect(bytesOf(encoded)).toBe(JSON.stringify(frame));
  });
});
