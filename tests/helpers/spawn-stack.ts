/**
 * Starts a throwaway local stack as a child process — exactly what `npm start`
 * runs — on free ports with its own state directory, so tests pass while a
 * developer's own stack is running.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../../local/ports.ts";
import type { StackInfo } from "../../local/stack.ts";
import { repoRoot } from "../../local/toolchain.ts";

export interface SpawnedStack {
  info: StackInfo;
  stateDir: string;
  jwtSecret: string;
  ports: { api: number; db: number; dashboard: number };
  process: ChildProcess;
  /** Output so far (for diagnosing a failed start). */
  output(): string;
  /** SIGTERM and wait for a clean exit; returns the exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  stateDir?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Also append the stack's output to this file (kept after the run, for diagnosing failures). */
  logFile?: string;
}

/** Spawns `tsx local/main.ts` and resolves once `stack.json` is written. */
export async function spawnStack(options: SpawnOptions = {}): Promise<SpawnedStack> {
  const stateDir = options.stateDir ?? mkdtempSync(path.join(tmpdir(), "cutover-test-"));
  const ports = { api: await freePort(), db: await freePort(), dashboard: await freePort() };
  const child = spawn(process.execPath, [
    "--import",
    "tsx",
    path.join(repoRoot, "local", "main.ts"),
    "--api-port",
    String(ports.api),
    "--db-port",
    String(ports.db),
    "--dashboard-port",
    String(ports.dashboard),
    "--state-dir",
    stateDir,
    "--ephemeral",
    ...(options.extraArgs ?? []),
  ], { cwd: repoRoot, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let log: ReturnType<typeof createWriteStream> | undefined;
  if (options.logFile) {
    mkdirSync(path.dirname(options.logFile), { recursive: true });
    log = createWriteStream(options.logFile, { flags: "w" });
    child.once("exit", () => log!.end());
  }
  const collect = (d: Buffer) => {
    output += d;
    log?.write(d);
  };
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  const stackFile = path.join(stateDir, "stack.json");
  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  while (!existsSync(stackFile) || !output.includes("is running")) {
    if (child.exitCode !== null) throw new Error(`stack exited during start:\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`stack did not start in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = JSON.parse(readFileSync(stackFile, "utf8")) as StackInfo;
  const { jwtSecret } = JSON.parse(readFileSync(path.join(stateDir, "secrets.json"), "utf8")) as {
    jwtSecret: string;
  };
  return {
    info,
    stateDir,
    jwtSecret,
    ports,
    process: child,
    output: () => output,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once("exit", (code) => resolve(code));
        child.kill("SIGTERM");
      }),
  };
}

/** Removes a state directory made by spawnStack. */
export function removeStateDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
