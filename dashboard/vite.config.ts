/**
 * Builds the static dashboard: `npm run build:dashboard` (= `vite build dashboard`),
 * and `npm start` runs the same build when dist/ is missing or stale.
 *
 * The output is plain static files: deploy dist/ to any static host together
 * with a config.json naming the project (see README).
 */
import { defineConfig, type Plugin } from "vite";

/**
 * Emits dist/build-sources.json: every source file (outside node_modules) the
 * bundle was built from, relative to the repository (no local paths end up
 * on a static host), so `npm start` can tell whether dist/ is older than its
 * sources without guessing which files of shared/ the dashboard imports.
 */
function buildSources(): Plugin {
  const repo = decodeURIComponent(new URL("..", import.meta.url).pathname);
  return {
    name: "cutover-build-sources",
    generateBundle() {
      const files = [...this.getModuleIds()]
        .filter((id) => !id.includes("node_modules") && !id.startsWith("\0") && id.startsWith("/"))
        .map((id) => id.split("?")[0]!)
        .filter((id) => id.startsWith(repo))
        .map((id) => id.slice(repo.length))
        .sort();
      this.emitFile({
        type: "asset",
        fileName: "build-sources.json",
        source: JSON.stringify({ builtAt: new Date().toISOString(), files }, null, 1),
      });
    },
  };
}

export default defineConfig({
  base: "./",
  plugins: [buildSources()],
  build: {
    target: "es2022",
    sourcemap: true,
    chunkSizeWarningLimit: 600,
    reportCompressedSize: false,
  },
  server: {
    // The dashboard imports the fanout client and the Realtime consumer from shared/.
    fs: { allow: [".."] },
  },
});
