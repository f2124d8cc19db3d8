/**
 * The client protocol's JSON forms (server/api/wire.ts): values are read from base64 in its one
 * canonical spelling only, and every error frame says what the client may do next.
 *
 * Must never: accept two spellings of one value.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64, errorFrame } from '../../../server/api/wire.js';
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
