/**
 * Keeps dashboard/dist in step with its sources so that `npm start` serves
 * the dashboard on a fresh clone without a separate build step (npm 11 may
 * skip install scripts, so nothing relies on postinstall).
 *
 * Freshness: the build writes dist/build-sources.json listing every source
 * file the bundle came from (its own files and what it imports from shared/);
 * dist is stale when that list is missing, or any listed file, index.html,
 * the Vite config or package-lock.json is newer than it (or gone).
 *
 * Building runs Vite in a child process into a private folder, then swaps it
 * in with renames, so two stacks starting at once (tests) never serve a
 * half-written dist.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "./toolchain.ts";

export const dashboardDir = path.join(repoRoot, "dashboard");
export const dashboardDist = path.join(dashboardDir, "dist");

/** Why dist must be rebuilt, or null when it is up to date. */
export function dashboardStaleReason(dist = dashboardDist): string | null {
  if (!existsSync(path.join(dist, "index.html"))) return "not built yet";
  const listFile = path.join(dist, "build-sources.json");
  if (!existsSync(listFile)) return "built without a source list";
  const builtAt = statSync(listFile).mtimeMs;
  let files: string[];
  try {
    files = (JSON.parse(readFileSync(listFile, "utf8")) as { files: string[] }).files;
  } catch {
    return "unreadable source list";
  }
  const always = ["index.html", "vite.config.ts"].map((f) => path.join(dashboardDir, f))
    .concat(path.join(repoRoot, "package-lock.json"));
  for (const file of new Set([...always, ...files.map((f) => path.resolve(repoRoot, f))])) {
    if (!existsSync(file)) return `${path.relative(repoRoot, file)} is gone`;
    if (statSync(file).mtimeMs > builtAt) return `${path.relative(repoRoot, file)} changed`;
  }
  return null;
}

/** Runs `vite build` for the dashboard into `outDir`; rejects with Vite's output on failure. */
export function buildDashboard(outDir: string): Promise<void> {
  const vite = path.join(repoRoot, "node_modules", "vite", "bin", "vite.js");
  if (!existsSync(vite)) {
    return Promise.reject(new Error("vite is not installed (run `npm install`)"));
  }
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [vite, "build", dashboardDir, "--outDir", outDir, "--emptyOutDir", "--logLevel", "warn"],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
    );
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on(
      "exit",
      (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`vite build exited with ${code}:\n${output.trim()}`)),
    );
  });
}

/**
 * Builds the dashboard when dist is missing or stale; resolves either way.
 * A failed build is reported, not thrown: the API works without the dashboard
 * (its server then answers 503 with instructions).
 */
export async function ensureDashboardBuilt(log: (line: string) => void): Promise<void> {
  const reason = dashboardStaleReason();
  if (!reason) return;
  const started = Date.now();
  log(`dashboard: building (${reason})…`);
  const tmp = path.join(dashboardDir, `.dist-${process.pid}-${started}`);
  const old = path.join(dashboardDir, `.dist-old-${process.pid}-${started}`);
  try {
    await buildDashboard(tmp);
    try {
      renameSync(dashboardDist, old);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    try {
      renameSync(tmp, dashboardDist);
    } catch (error) {
      // Another stack swapped in its (equally fresh) build first.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
    }
    log(`dashboard: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    log(`dashboard: build failed, not served: ${(error as Error).message}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(old, { recursive: true, force: true });
  }
}
