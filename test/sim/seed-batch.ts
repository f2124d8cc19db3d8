/**
 * Runs a range of simulator seeds as vitest cases, a chunk per case, so a red run names the
 * failing seeds and the command that replays each.
 *
 * Must never: pass a chunk in which any seed reported a violation or an unproven history.
 */

import { expect, it } from 'vitest';
import { runSimulation, type Coverage } from './simulation.js';

export const CI_STEPS = 20_000;

export function seedBatch(nodes: 3 | 5, firstSeed: number, seedCount: number, chunk = 25): void {
  for (let start = firstSeed; start < firstSeed + seedCount; start += chunk) {
    const end = Math.min(firstSeed + seedCount, start + chunk) - 1;
    it(`seeds ${start}..${end} on ${nodes} members keep every safety, liveness and linearizability property`, async () => {
      const problems: string[] = [];
      const exercised: Coverage = { elections: 0, snapshotInstalled: 0, leaderRead: 0, followerRead: 0, unknownOutcomes: 0, leasesExpired: 0, leaseRenewals: 0, watchedRevisions: 0, watchResumes: 0, powerCuts: 0, batchesTorn: 0, tornTailsCut: 0, walSegmentsDeleted: 0, membershipChanges: 0 };
      for (let seed = start; seed <= end; seed++) {
        const r = await runSimulation({ seed, nodes, steps: CI_STEPS });
        for (const key of Object.keys(exercised) as (keyof Coverage)[]) exercised[key] += r.coverage[key];
        if (r.violation !== null) {
          problems.push(`seed ${seed}: ${r.violation.property}: ${r.violation.detail.split('\n')[0]}\n  replay: npm run sim -- --seed-start ${seed} --seeds 1 --nodes ${nodes} --trace`);
        } else if (r.linearizability !== 'ok') {
          problems.push(`seed ${seed}: linearizability check ${r.linearizability}`);
        }
      }
      expect(problems).toEqual([]);
      // A green batch that never elected, installed a snapshot or served a follower read proves little.
      for (const key of Object.keys(exercised) as (keyof Coverage)[]) expect(exercised[key], `${key} in seeds ${start}..${end}`).toBeGreaterThan(0);
    });
  }
}
