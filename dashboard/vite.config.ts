// Builds the dashboard into dashboard/dist, which the http-api plugin serves at `/`.
// Everything is bundled (no CDN): brokers often run where there is no internet.
import { defineConfig } from 'vite'

export default defineConfig({
  base: '/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    reportCompressedSize: false
  },
  server: {
    // `npx vite dashboard` for development, against a broker's API on 8081
    proxy: { '/api': 'http://127.0.0.1:8081' }
  }
})
