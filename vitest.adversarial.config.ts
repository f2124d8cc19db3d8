import { defineConfig } from 'vitest/config';

/**
 * The adversarial suite (test/adversarial): real 3-member clusters attacked as a careless or
 * hostile client would, while a canary client's puts and reads must keep working and the
 * members' event-loop lag, memory and leadership are watched. One file at a time, after the
 * rest of `npm test`, so nothing else competes for the cores it measures.
 */
export default defineConfig({
  test: {
    include: ['test/adversarial/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
