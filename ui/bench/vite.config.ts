import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';

// The page scripts/bench/chart.mjs measures: the app's own LossChart, built like the app, into
// target/ so that nothing of it is committed or shipped.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [svelte({ configFile: fileURLToPath(new URL('../svelte.config.js', import.meta.url)) })],
  base: './',
  build: {
    outDir: fileURLToPath(new URL('../../target/bench-chart', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: { input: fileURLToPath(new URL('chart.html', import.meta.url)) },
  },
});
