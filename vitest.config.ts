import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{common,consensus,ordering,sim,server,client,experiments,scripts,examples,test,docs}/**/*.test.ts'],
    // End-to-end tests start real replica processes; two cores cannot run many at once.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
