/**
 * Every error code in the registry is documented for users in README.md, and the README
 * documents no code that the registry lacks.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ERROR_OUTCOMES, WardenError, isErrorCode, outcomeUnknown } from '../../shared/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const documented = [...readme.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);

describe('error codes', () => {
  it('documents every registered code in the README table', () => {
    expect([...documented].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('documents what a client may do after each code (its outcome) as the registry says', () => {
    const rows = [...readme.matchAll(/^\| `([A-Z_]+)` \| (retry|unknown|final) \|/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(rows)).toEqual(ERROR_OUTCOMES);
    // Only the codes that may hide an applied write say so (a stamped retry whose session expired may have been applied before).
    expect(Object.keys(ERROR_CODES).filter((code) => outcomeUnknown(code as keyof typeof ERROR_CODES)).sort()).toEqual(['OUTCOME_UNKNOWN', 'SESSION_EXPIRED', 'TIMEOUT']);
  });

  it('carries its code on a WardenError and recognises only registered codes', () => {
    const error = new WardenError('NOT_LEADER');
    expect(error.code).toBe('NOT_LEADER');
    expect(error.message).toBe(ERROR_CODES.NOT_LEADER);
    expect(isErrorCode('NO_NODE')).toBe(true);
    expect(isErrorCode('NOPE')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
  });
});
