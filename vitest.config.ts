import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // the wasm backend is a process-wide singleton; files run in separate forks
    pool: 'forks',
  },
});
