import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Network-heavy suites share 2 cores; file-level parallelism beyond that only adds jitter.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
