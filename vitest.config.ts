import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Simulator seed batches are CPU-bound; one worker per core keeps them from starving each other.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 30_000,
  },
});
