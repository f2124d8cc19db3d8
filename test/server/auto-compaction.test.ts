/**
 * Compaction by age: every member samples its revision, the leader compacts to the newest sample
 * at least the retention old (never a younger one), one proposal at a time, only while leading;
 * and the flag's durations parse as etcd's do (a bare number is hours).
 *
 * Must never: use real time (the clock is a variable here) or wait on a timer.
 */

import { describe, expect, it } from 'vitest';
import { AutoCompaction, parseRetention, sampleEveryMs } from '../../server/auto-compaction.js';

describe('auto-compaction by age', () => {
  it('compacts to the newest revision older than the retention, only while leading, one at a time', async () => {
    let now = 0;
    let revision = 10;
    let compactRevision = 0;
    let leading = true;
    const proposed: number[] = [];
    let settle: (() => void) | null = null;
    const compaction = new AutoCompaction({
      retentionMs: 10_000,
      monotonicMs: () => now,
      leading: () => leading,
      revision: () => revision,
      compactRevision: () => compactRevision,
      propose: (command) => {
        proposed.push(command.revision);
        return new Promise<void>((resolve) => (settle = () => { compactRevision = command.revision; resolve(); }));
      },
      logger: { info: () => undefined, warn: () => undefined },
    });
    const step = (ms: number, revisions: number): number | null => {
      now += ms;
      revision += revisions;
      return compaction.tick();
    };
    expect(compaction.tick()).toBeNull(); // t=0, revision 10: nothing is old enough
    for (let i = 0; i < 9; i++) expect(step(1_000, 5)).toBeNull(); // t=9 s
    expect(step(1_000, 5)).toBe(10); // t=10 s: the sample at t=0 (revision 10) is 10 s old
    expect(step(1_000, 5)).toBeNull(); // its proposal is in flight: no second one
    settle!();
    await Promise.resolve();
    await Promise.resolve();
    expect(step(1_000, 5)).toBe(20); // t=12 s: the newest sample ≥ 10 s old is t=2 s, revision 20
    settle!();
    await Promise.resolve();
    await Promise.resolve();
    leading = false;
    expect(step(5_000, 5)).toBeNull(); // a follower samples, proposes nothing
    expect(proposed).toEqual([10, 20]);
  });

  it('keeps samples far enough back for a long retention (1 h, 24 h)', () => {
    for (const retentionMs of [3_600_000, 86_400_000]) {
      let now = 0;
      let revision = 1;
      const proposed: number[] = [];
      const compaction = new AutoCompaction({
        retentionMs,
        monotonicMs: () => now,
        leading: () => true,
        revision: () => revision,
        compactRevision: () => 0,
        propose: (command) => {
          proposed.push(command.revision);
          return new Promise(() => undefined);
        },
        logger: { info: () => undefined, warn: () => undefined },
      });
      const every = sampleEveryMs(retentionMs);
      for (let t = 0; t <= retentionMs + every && proposed.length === 0; t += every) {
        now = t;
        compaction.tick();
        revision += 1;
      }
      expect(proposed, `retention ${retentionMs} ms`).toEqual([1]);
    }
  });

  it('samples a tenth of the retention, between 1 s and 5 min; parses durations', () => {
    expect(sampleEveryMs(3_600_000)).toBe(300_000);
    expect(sampleEveryMs(60_000)).toBe(6_000);
    expect(sampleEveryMs(2_000)).toBe(1_000);
    expect(parseRetention('1h')).toBe(3_600_000);
    expect(parseRetention('30m')).toBe(1_800_000);
    expect(parseRetention('90s')).toBe(90_000);
    expect(parseRetention('500ms')).toBe(500);
    expect(parseRetention('2')).toBe(7_200_000); // etcd's form: hours
    expect(parseRetention('0')).toBe(0);
    expect(() => parseRetention('soon')).toThrow(/not a duration/);
  });
});
