/**
 * Serves each Edge Function with real Deno from its deployed entrypoint, one
 * process per instance (hosted Supabase runs many instances of a function; the
 * local stack can run several side by side to prove the design holds).
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import type { FunctionConfig } from "./project.ts";
import { freePort } from "./ports.ts";
import { denoBinary, repoRoot } from "./toolchain.ts";

export interface FunctionInstance {
  name: string;
  index: number;
  /** Where it listens; a start that finds the port taken moves it (the gateway reads it per request). */
  readonly port: number;
  /** True while the process is up and listening. */
  readonly ready: boolean;
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL after the grace period. */
  stop(): Promise<void>;
  /** SIGKILL at once: a crash, for fault tests. */
  kill(): Promise<void>;
}

export interface FunctionRunnerOptions {
  env: Record<string, string>;
  log: (line: string) => void;
  graceMs?: number;
}

const hostScript = path.join(repoRoot, "local", "deno", "function-host.ts");

/** The instance's port was bound by someone else before Deno could listen on it. */
class PortTaken extends Error {}

/** Creates (does not start) an instance of `fn` that will listen on `port`. */
export function createFunctionInstance(
  fn: FunctionConfig,
  index: number,
  initialPort: number,
  options: FunctionRunnerOptions,
): FunctionInstance {
  let port = initialPort;
  let child: ChildProcess | undefined;
  let ready = false;
  const graceMs = options.graceMs ?? 12_000;
  const label = index === 0 ? fn.name : `${fn.name}#${index}`;

  const exited = () =>
    new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });

  function launch(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const proc = spawn(denoBinary(), [
        "run",
        "--quiet",
        "--no-prompt",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        "--allow-sys",
        `--config=${path.join(repoRoot, "deno.json")}`,
        hostScript,
      ], {
        cwd: repoRoot,
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "",
          DENO_DIR: process.env.DENO_DIR ?? path.join(repoRoot, ".local", "deno-cache"),
          NO_COLOR: "1",
          ...options.env,
          CUTOVER_FUNCTION_ENTRYPOINT: fn.entrypoint,
          CUTOVER_FUNCTION_PORT: String(port),
          CUTOVER_FUNCTION_INSTANCE: label,
          CUTOVER_SHUTDOWN_GRACE_MS: String(graceMs - 2000),
        },
        stdio: ["ignore", "pipe", "pipe"],
        // Its own process group: a Ctrl-C in the terminal reaches only the
        // stack, which then stops functions in order (after draining requests).
        detached: true,
      });
      child = proc;
      let settled = false;
      let portTaken = false;
      const onLine = (line: string) => {
        if (!settled && line.includes("AddrInUse")) portTaken = true;
        if (!settled && line.includes("function-host: listening")) {
          settled = true;
          ready = true;
          resolve();
          return;
        }
        options.log(`[${label}] ${line}`);
      };
      createInterface({ input: proc.stdout! }).on("line", onLine);
      createInterface({ input: proc.stderr! }).on("line", onLine);
      proc.once("exit", (code, signal) => {
        ready = false;
        if (!settled) {
          settled = true;
          const message =
            `function ${label} exited before listening (code ${code}, signal ${signal})`;
          reject(portTaken ? new PortTaken(message) : new Error(message));
        }
      });
    });
  }

  const instance: FunctionInstance = {
    name: fn.name,
    index,
    // Read per request by the gateway: a restart may have moved it (see start).
    get port() {
      return port;
    },
    get ready() {
      return ready;
    },
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      // The port was free when chosen, but another process may bind it before
      // Deno does (or while the instance was stopped): then take another.
      for (let attempt = 1;; attempt++) {
        try {
          return await launch();
        } catch (error) {
          if (!(error instanceof PortTaken) || attempt >= 3) throw error;
          options.log(`[${label}] port ${port} was taken meanwhile; starting on another`);
          port = await freePort();
        }
      }
    },
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const done = exited();
      child.kill("SIGTERM");
      const timer = setTimeout(() => child?.kill("SIGKILL"), graceMs);
      await done;
      clearTimeout(timer);
      ready = false;
    },
    async kill() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const done = exited();
      child.kill("SIGKILL");
      await done;
      ready = false;
    },
  };
  return instance;
}
