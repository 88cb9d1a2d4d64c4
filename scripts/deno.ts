/** Runs the project's Deno (from node_modules) with the given arguments: `npm run deno -- fmt`. */
import { spawnSync } from "node:child_process";
import { denoBinary, repoRoot } from "../local/toolchain.ts";

const result = spawnSync(denoBinary(), process.argv.slice(2), { cwd: repoRoot, stdio: "inherit" });
process.exit(result.status ?? 1);
