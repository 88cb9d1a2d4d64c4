/**
 * `npm run check`: the static checks, one after another, stopping at the first
 * failure — `deno check` of every function entrypoint (and the local function
 * host), `deno lint`, `deno fmt --check`, and `tsc --noEmit` for the Node side
 * and for the dashboard.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { denoBinary, repoRoot } from "../local/toolchain.ts";

const deno = denoBinary();
const entrypoints = readdirSync(path.join(repoRoot, "functions"), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => path.join("functions", d.name, "index.ts"));

const steps: [string, string, string[]][] = [
  ["deno check", deno, ["check", "--quiet", ...entrypoints, "local/deno/function-host.ts"]],
  ["deno lint", deno, ["lint", "--quiet"]],
  ["deno fmt --check", deno, ["fmt", "--check", "--quiet"]],
  ["tsc --noEmit", process.execPath, [
    path.join(repoRoot, "node_modules", "typescript", "bin", "tsc"),
    "--noEmit",
    "-p",
    ".",
  ]],
  // The dashboard is browser code (DOM types, no Node): its own tsconfig.
  ["tsc -p dashboard", process.execPath, [
    path.join(repoRoot, "node_modules", "typescript", "bin", "tsc"),
    "--noEmit",
    "-p",
    "dashboard",
  ]],
];

for (const [label, command, args] of steps) {
  const started = Date.now();
  const result = spawnSync(command, args, {
    cwd: repoRoot,
    stdio: "inherit",
    env: { ...process.env, NO_COLOR: "1" },
  });
  if (result.status !== 0) {
    console.error(`check failed: ${label}`);
    process.exit(result.status ?? 1);
  }
  console.log(`check ok: ${label} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
