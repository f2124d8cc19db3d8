/**
 * The limits (server/limits.ts): each has a flag documented in README's Limits table with its
 * default, and a value that is not a positive integer, or passes the limit's ceiling, is refused
 * naming the flag.
 *
 * Must never: let the README and the code disagree on a limit's flag or default.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, LIMIT_SPECS, limitField, resolveLimits } from '../../server/limits.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** "1.5 MiB", "4,096 B", "10,000" → a number. */
function parseDefault(text: string): number {
  const match = /^([\d.,]+)( MiB| KiB| B| ms)?$/.exec(text.trim());
  if (match === null) throw new Error(`cannot read the default ${JSON.stringify(text)}`);
  const value = Number(match[1]!.replaceAll(',', ''));
  return match[2] === ' MiB' ? value * 1024 * 1024 : match[2] === ' KiB' ? value * 1024 : value;
}

describe('limits', () => {
  it('documents every limit in the README table with its flag and default, and nothing else', () => {
    const rows = [...readme.matchAll(/^\| [^|]+ \| `--(max-[a-z-]+)` \| ([^|]+) \| [^|]+ \|$/gm)].map((m) => [m[1], parseDefault(m[2]!)]);
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(LIMIT_SPECS.map((spec) => [spec.flag, spec.defaultValue])));
  });

  it('refuses a value that is not a positive integer, or past the ceiling, naming the flag', () => {
    expect(resolveLimits()).toEqual(DEFAULT_LIMITS);
    expect(() => resolveLimits({ valueBytesMax: 0 })).toThrow('--max-value-bytes must be a positive integer');
    expect(() => resolveLimits({ txnOpsMax: 1.5 })).toThrow('--max-txn-ops must be a positive integer');
    expect(() => resolveLimits({ pathBytesMax: 4097 })).toThrow('--max-path-bytes can be at most 4096');
    expect(resolveLimits({ sessionsMax: 7 }).sessionsMax).toBe(7);
    expect(() => resolveLimits({ sessionsMax: 2_000_000 })).toThrow('--max-sessions can be at most 1000000');
    expect(() => resolveLimits({ leasesMax: 2_000_000 })).toThrow('--max-leases can be at most 1000000');
  });

  it('refuses a value bound that no frame could carry or no answer could read back', () => {
    expect(() => resolveLimits({ valueBytesMax: 2 * 1024 * 1024 })).toThrow('--max-frame-bytes must hold one value of --max-value-bytes');
    expect(() => resolveLimits({ answerBytesMax: 1024 * 1024 })).toThrow('--max-answer-bytes must hold one node of --max-value-bytes');
    expect(resolveLimits({ valueBytesMax: 2 * 1024 * 1024, frameBytesMax: 3 * 1024 * 1024 }).valueBytesMax).toBe(2 * 1024 * 1024);
  });

  it('names a limit in an error frame by key, flag and value', () => {
    expect(limitField(resolveLimits({ answerBytesMax: 2_000_000 }), 'answerBytesMax')).toEqual({ name: 'answerBytesMax', flag: '--max-answer-bytes', value: 2_000_000 });
  });
});
