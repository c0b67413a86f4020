import { defineConfig, loadEnv } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// `npm run dev` serves the UI with hot reload and passes API calls to a running `whet serve`
// (WHET_SERVE_URL, else its default address). Open the dev page with the `#token=…` that
// `whet serve` printed.
const DEFAULT_BACKEND = 'http://127.0.0.1:8787';

export default defineConfig(({ mode }) => {
  const backend = loadEnv(mode, '.', 'WHET_').WHET_SERVE_URL ?? DEFAULT_BACKEND;
  return {
    plugins: [svelte()],
    server: {
      proxy: {
        '/api': {
          target: backend,
          changeOrigin: true,
          // whet serve accepts calls only from its own pages; the dev server speaks for its page.
          configure: (proxy) => {
            proxy.on('proxyReq', (request) => {
              if (request.getHeader('origin')) request.setHeader('origin', backend);
            });
          },
        },
      },
    },
    // Relative URLs: the page is served from Tauri's custom protocol in the app and from `/` by
    // `whet serve`, and neither should need to know the other's origin.
    base: './',
    build: {
      outDir: 'dist',
      emptyOutDir: true,
      target: 'es2022',
      // A separate stylesheet and script files only: the app's CSP forbids inline scripts and styles.
      assetsInlineLimit: 0,
      // `whet serve --review` reads which files make up the raters' page from the manifest and
      // serves those alone.
      manifest: true,
      rollupOptions: {
        input: {
          index: 'index.html',
          // The raters' page, a page of its own: review mode serves it without the app.
          review: 'review.html',
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
  };
});
