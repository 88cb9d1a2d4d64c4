/**
 * `npm run bench`: measures the running local stack (`.local/stack.json`), or
 * starts a throwaway one when none is running, and prints comparisons
 * measured side by side in one run. Traffic goes to 127.0.0.1 only and every
 * loop is bounded in time.
 *
 *   npm run bench                 all benchmarks
 *   npm run bench -- ingest       one group (ingest, fanout, realtime)
 *   BENCH_CELL_SECONDS=5 npm run bench
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { StackInfo } from "../local/stack.ts";
import { repoRoot } from "../local/toolchain.ts";
import { removeStateDir, spawnStack } from "../tests/helpers/spawn-stack.ts";
import { benchIngest } from "./ingest.ts";

const log = (line: string) => console.log(line);
const only = process.argv.slice(2);
const cellSeconds = Number(process.env.BENCH_CELL_SECONDS ?? "3");

async function runningStack(): Promise<StackInfo | null> {
  const file = path.join(repoRoot, ".local", "stack.json");
  if (!existsSync(file)) return null;
  const info = JSON.parse(readFileSync(file, "utf8")) as StackInfo;
  try {
    const res = await fetch(`${info.apiUrl}/functions/v1/health`);
    return res.ok ? info : null;
  } catch {
    return null;
  }
}

let info = await runningStack();
let jwtSecret = "";
let stop: (() => Promise<void>) | undefined;
if (info) {
  log(`Using the running stack at ${info.apiUrl}.`);
  jwtSecret = (JSON.parse(readFileSync(path.join(repoRoot, ".local", "secrets.json"), "utf8")) as {
    jwtSecret: string;
  })
    .jwtSecret;
} else {
  log("No running stack; starting a throwaway one …");
  const spawned = await spawnStack({ extraArgs: ["--instances", "ws-fanout=2"] });
  info = spawned.info;
  jwtSecret = spawned.jwtSecret;
  stop = async () => {
    await spawned.stop();
    removeStateDir(spawned.stateDir);
  };
}

const groups: [string, () => Promise<void>][] = [
  ["ingest", () => benchIngest({ info: info!, log, cellSeconds })],
];
for (
  const [name, file, exported] of [
    ["fanout", "fanout.ts", "benchFanout"],
    ["realtime", "realtime.ts", "benchRealtime"],
  ] as const
) {
  if (existsSync(path.join(repoRoot, "bench", file))) {
    groups.push([name, async () => {
      const mod = await import(`./${file}`) as Record<string, (ctx: unknown) => Promise<void>>;
      await mod[exported]!({ info: info!, jwtSecret, log, cellSeconds });
    }]);
  }
}

try {
  for (const [name, fn] of groups) {
    if (only.length && !only.includes(name)) continue;
    log(`\n== ${name} ==`);
    await fn();
  }
} finally {
  await stop?.();
}
