import { readFileSync } from "node:fs";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

// `npm run dev` proxies the API of a local `polyfarm serve` (or `polyfarm demo`).
const api = process.env.POLYFARM_API ?? "http://127.0.0.1:8000";

// The API's /docs page runs Swagger UI from these copies, never from a CDN: it works offline
// and under the dashboard's content security policy. Its licence travels with it.
const SWAGGER_UI = ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"];

function swaggerUiAssets(): Plugin {
  return {
    name: "polyfarm-swagger-ui",
    apply: "build",
    generateBundle() {
      for (const name of SWAGGER_UI) {
        const source = readFileSync(new URL(`./node_modules/swagger-ui-dist/${name}`, import.meta.url));
        const fileName = name.includes(".") ? `docs/${name}` : `docs/swagger-ui-${name}.txt`;
        this.emitFile({ type: "asset", fileName, source });
      }
    },
  };
}

export default defineConfig({
  plugins: [react(), swaggerUiAssets()],
  server: {
    proxy: { "/api": api, "/health": api, "/metrics": api, "/openapi.json": api },
  },
  // The build ships inside the Python package, so running polyfarm needs no Node.js.
  build: {
    outDir: "../src/polyfarm/api/dashboard_build",
    emptyOutDir: true,
    chunkSizeWarningLimit: 800,
  },
});
