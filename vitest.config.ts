import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The adversarial suite runs on its own afterwards (vitest.adversarial.config.ts): it judges
    // the members' event-loop lag, which other files' CPU load on the same cores would skew.
    exclude: ['test/adversarial/**', '**/node_modules/**'],
    // Simulator seed batches are CPU-bound; one worker per core keeps them from starving each other.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 30_000,
  },
});
