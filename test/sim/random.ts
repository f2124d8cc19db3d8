/**
 * The simulator's one source of randomness: a seeded generator (xoroshiro128+ from pure-rand),
 * so a seed decides every choice and replays it exactly.
 *
 * Must never: fall back to Math.random, or be shared with code outside one simulation run.
 */

import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import type { RandomSource } from '../../server/raft/index.js';

type Generator = ReturnType<typeof xoroshiro128plus>;

export class SimRandom implements RandomSource {
  private readonly rng: Generator;

  constructor(seed: number) {
    this.rng = xoroshiro128plus(seed);
  }

  intBelow(boundExclusive: number): number {
    return uniformInt(this.rng, 0, boundExclusive - 1);
  }

  /** An integer in [from, to], both included. */
  between(from: number, to: number): number {
    return uniformInt(this.rng, from, to);
  }

  chance(probability: number): boolean {
    if (probability <= 0) return false;
    return uniformInt(this.rng, 0, 999_999) < probability * 1_000_000;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.intBelow(items.length)]!;
  }

  shuffled<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.intBelow(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /** An independent stream for one member, so its choices do not shift when others change. */
  fork(): SimRandom {
    return new SimRandom(this.between(0, 0x7fffffff));
  }
}
