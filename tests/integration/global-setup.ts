/**
 * One throwaway stack for the integration project: started before the first
 * file, stopped after the last. Tests reach it through `inject("stack")`.
 */
import type { TestProject } from "vitest/node";
import path from "node:path";
import { repoRoot } from "../../local/toolchain.ts";
import { removeStateDir, type SpawnedStack, spawnStack } from "../helpers/spawn-stack.ts";

let stack: SpawnedStack | undefined;

export async function setup(project: TestProject): Promise<void> {
  stack = await spawnStack({
    extraArgs: ["--instances", "ws-fanout=2"],
    // The scheduler re-reads cutover.scheduled_jobs every 2 s instead of 30 s, so tests see edits quickly.
    env: { CUTOVER_SCHEDULER_RELOAD_MS: "2000" },
    // Everything the stack printed (function logs included), for diagnosing a failed test;
    // `.ci/run` prints its tail when `npm test` fails.
    logFile: path.join(repoRoot, "test-results", "stack.log"),
  });
  project.provide("stack", {
    info: stack.info,
    stateDir: stack.stateDir,
    jwtSecret: stack.jwtSecret,
    ports: stack.ports,
    pid: stack.process.pid!,
  });
}

export async function teardown(): Promise<void> {
  if (!stack) return;
  const code = await stack.stop();
  if (code !== 0) console.error(`stack exited with ${code}:\n${stack.output()}`);
  removeStateDir(stack.stateDir);
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: {
      info: import("../../local/stack.ts").StackInfo;
      stateDir: string;
      jwtSecret: string;
      ports: { api: number; db: number; dashboard: number };
      pid: number;
    };
  }
}
