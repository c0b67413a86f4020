import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  plugins: [svelte()],
  // Relative URLs: the page is served from Tauri's custom protocol in the app and from `/` by
  // `whet serve`, and neither should need to know the other's origin.
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // A separate stylesheet and script files only: the app's CSP forbids inline scripts and styles.
    assetsInlineLimit: 0,
    rollupOptions: {
      input: {
        index: 'index.html',
        // The transport is its own entry, kept at a stable `transport.js` with its exports intact,
        // so that the end-to-end tests can call the backend through the very code the screens use.
        transport: 'src/lib/transport.ts',
      },
      preserveEntrySignatures: 'exports-only',
      output: {
        entryFileNames: (chunk) => (chunk.name === 'transport' ? 'transport.js' : 'assets/[name]-[hash].js'),
      },
    },
  },
});
