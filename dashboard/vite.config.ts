import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` proxies the API of a local `polyfarm serve` (or `polyfarm demo`).
const api = process.env.POLYFARM_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: { "/api": api, "/health": api, "/metrics": api },
  },
  // The build ships inside the Python package, so running polyfarm needs no Node.js.
  build: {
    outDir: "../src/polyfarm/api/dashboard_build",
    emptyOutDir: true,
    chunkSizeWarningLimit: 800,
  },
});
