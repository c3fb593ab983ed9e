// The dashboard's build: `vite build` writes the app to $ABLATE_WEB_OUT (CMake passes
// <build>/web/dist), or web/dist when it is unset.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  base: '/',
  build: {
    outDir: process.env.ABLATE_WEB_OUT || 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1024,
  },
  test: {
    environment: 'node',  // component tests ask for jsdom in their first line
    globals: true,
    include: ['src/**/*.test.ts'],
  },
});
