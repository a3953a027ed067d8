import { defineConfig } from "vite";

// The console is served by the gateway at /console/, from the package's
// static/ directory: everything same-origin, nothing from a CDN.
export default defineConfig({
  base: "/console/",
  build: {
    outDir: "../ignite_gateway/console/static",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
  },
});
