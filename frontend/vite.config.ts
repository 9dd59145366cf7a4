// The build writes into the backend package (services/backend/ui/dist, gitignored), which the
// wheel carries as package data: the project image serves exactly these files, and nothing is
// fetched at run time.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  build: {
    outDir: fileURLToPath(new URL("../services/backend/ui/dist", import.meta.url)),
    emptyOutDir: true,
    // The rasa-x image has no CDN and no source maps to hide: keep the output small and plain.
    sourcemap: false,
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev` beside a backend on 5002: the API is proxied, the SPA is served by Vite.
    proxy: { "/api": "http://127.0.0.1:5002" },
  },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
