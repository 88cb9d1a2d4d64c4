/**
 * The Docker-free local stack (DESIGN §4): embedded PostgreSQL with the
 * Supabase shape and the project's migrations, every Edge Function under real
 * Deno, the gateway, and the dashboard server. `startStack` is what `npm start`
 * and the integration tests both run.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import postgres from "postgres";
import { createFunctionInstance, type FunctionInstance } from "./functions.ts";
import { type Gateway, type GatewayMount, startGateway } from "./gateway.ts";
import { deriveKeys, loadOrCreateSecrets, type LocalKeys } from "./keys.ts";
import { applyMigrations, currentMigrationVersion } from "./migrate.ts";
import { refuseIfClusterRunning, startPostgres } from "./postgres.ts";
import { readFunctionConfigs, supabaseDir } from "./project.ts";
import { startStaticServer } from "./static-server.ts";
import { dashboardDist, ensureDashboardBuilt } from "./dashboard-build.ts";
import { createControlMount } from "./control.ts";
import { type Scheduler, startScheduler } from "./scheduler.ts";
import { applyRealtimeBootstrap, startLocalRealtime } from "./realtime/server.ts";
import { freePort, portProblem } from "./ports.ts";

export { freePort, portProblem };

export interface StackPorts {
  api: number;
  db: number;
  dashboard: number;
}

export interface StackOptions {
  ports: StackPorts;
  /** Holds the cluster, secrets and stack.json (default `.local/`). */
  stateDir: string;
  reset?: boolean;
  /** Throwaway database: no fsync. For tests. */
  ephemeral?: boolean;
  /** Extra instances per function, e.g. `{ "ws-fanout": 2 }`. */
  instances?: Record<string, number>;
  /** Extra environment for every function (settings such as DUAL_WRITE_*). */
  functionEnv?: Record<string, string>;
  log?: (line: string) => void;
}

/** The contract of `.local/stack.json` (DESIGN §4). Exactly these keys. */
export interface StackInfo {
  apiUrl: string;
  dbUrl: string;
  dashboardUrl: string;
  anonKey: string;
  serviceRoleKey: string;
  producerKey: string;
}

export interface RunningStack {
  info: StackInfo;
  keys: LocalKeys;
  migrationVersion: string | null;
  functions: FunctionInstance[];
  /** Drains requests, stops functions (they flush), then PostgreSQL. Data is kept. */
  stop(): Promise<void>;
}

/** Environment variable prefixes passed through to functions: the settings that seed defaults. */
const SETTING_PREFIXES = [
  "DUAL_WRITE_",
  "ADAPTER_",
  "CIRCUIT_BREAKER_",
  "CUTOVER_",
  "ROLLBACK_",
  "RECONCILE_",
  "DLQ_",
];

export const DEFAULT_PORTS: StackPorts = { api: 54321, db: 54322, dashboard: 54323 };

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Claims the state directory for this process; throws when another stack holds it. */
function claimStateDir(stateDir: string): () => void {
  mkdirSync(stateDir, { recursive: true });
  const lock = path.join(stateDir, "stack.pid");
  if (existsSync(lock)) {
    const pid = Number(readFileSync(lock, "utf8"));
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new Error(
        `cutover is already running from ${stateDir} (pid ${pid}). Stop it first (Ctrl-C in its terminal, or \`kill ${pid}\`).`,
      );
    }
  }
  writeFileSync(lock, String(process.pid));
  return () => rmSync(lock, { force: true });
}

/** Starts everything; on failure, stops what had started and rethrows. */
export async function startStack(options: StackOptions): Promise<RunningStack> {
  const log = options.log ?? ((line: string) => console.log(line));
  const stateDir = path.resolve(options.stateDir);
  const release = claimStateDir(stateDir);
  const cleanups: (() => Promise<void> | void)[] = [release];
  const runCleanups = async () => {
    for (const fn of cleanups.reverse()) await fn();
    cleanups.length = 0;
  };

  try {
    // We hold the lock, so a server still running on our data is an orphan
    // of a crashed stack (and would hold the database port): stop it first.
    await refuseIfClusterRunning(path.join(stateDir, "db"), true, log);
    for (
      const [port, what] of [
        [options.ports.api, "API gateway"],
        [options.ports.db, "PostgreSQL"],
        [options.ports.dashboard, "dashboard"],
      ] as const
    ) {
      const problem = await portProblem(port, what);
      if (problem) throw new Error(problem);
    }

    // Built (when stale) while Postgres and the functions start; awaited before it is served.
    const dashboardBuilt = ensureDashboardBuilt(log);
    cleanups.push(() => dashboardBuilt);

    if (options.reset) rmSync(path.join(stateDir, "secrets.json"), { force: true });
    const keys = await deriveKeys(loadOrCreateSecrets(stateDir));

    const pg = await startPostgres({
      dataDir: path.join(stateDir, "db"),
      port: options.ports.db,
      reset: options.reset,
      ephemeral: options.ephemeral,
      stopOrphan: true,
      log: (line) => {
        if (/ERROR|FATAL|PANIC/.test(line)) log(`[postgres] ${line}`);
      },
    });
    cleanups.push(() => pg.stop());

    const sql = postgres(pg.url, { max: 2, onnotice: () => {} });
    cleanups.push(() => sql.end({ timeout: 5 }));
    // The realtime schema hosted Supabase provides; migrations may write policies on it.
    await applyRealtimeBootstrap(sql);
    await applyMigrations(sql, path.join(supabaseDir, "migrations"), log);
    if (pg.fresh) {
      const seed = path.join(supabaseDir, "seed.sql");
      if (existsSync(seed)) await sql.unsafe(readFileSync(seed, "utf8"));
      log("applied seed.sql");
    }
    await registerLocalProducer(sql, keys.producerKey);
    const migrationVersion = await currentMigrationVersion(sql);
    const realtime = await startLocalRealtime({ dbUrl: pg.url, jwtSecret: keys.jwtSecret, log });
    cleanups.push(() => realtime.stop());

    const apiUrl = `http://127.0.0.1:${options.ports.api}`;
    const functionEnv: Record<string, string> = {
      SUPABASE_URL: apiUrl,
      SUPABASE_ANON_KEY: keys.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
      SUPABASE_DB_URL: pg.url,
      CUTOVER_JWT_SECRET: keys.jwtSecret,
    };
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && SETTING_PREFIXES.some((p) => k.startsWith(p))) functionEnv[k] = v;
    }
    Object.assign(functionEnv, options.functionEnv);

    const configs = readFunctionConfigs();
    const functions: FunctionInstance[] = [];
    const routes = new Map<string, { verifyJwt: boolean; instances: FunctionInstance[] }>();
    for (const fn of configs) {
      const count = Math.max(1, options.instances?.[fn.name] ?? 1);
      const instances: FunctionInstance[] = [];
      for (let i = 0; i < count; i++) {
        instances.push(createFunctionInstance(fn, i, await freePort(), { env: functionEnv, log }));
      }
      routes.set(fn.name, { verifyJwt: fn.verifyJwt, instances });
      functions.push(...instances);
    }
    cleanups.push(async () => {
      await Promise.all(functions.map((f) => f.stop()));
    });
    await Promise.all(functions.map((f) => f.start()));

    // Started once the gateway listens (its function jobs call through it).
    const scheduler: { current?: Scheduler } = {};
    const mounts: GatewayMount[] = [
      createControlMount({
        serviceRoleKey: keys.serviceRoleKey,
        functions,
        postgres: pg,
        runJob: (name) => {
          if (!scheduler.current) throw new Error("the scheduler is not running");
          return scheduler.current.runNow(name);
        },
      }),
      realtime.mount,
    ];
    const gateway: Gateway = await startGateway({
      port: options.ports.api,
      jwtSecret: keys.jwtSecret,
      routes,
      mounts,
      log,
    });
    // Stop order: answer in-flight requests, then stop functions (they flush
    // and close their WebSockets with 1012), then drop what is left.
    cleanups.splice(cleanups.length - 1, 0, () => gateway.close());
    cleanups.push(() => gateway.drain());

    // The same jobs pg_cron runs on hosted Supabase, from cutover.scheduled_jobs.
    const running = startScheduler({
      sql,
      apiUrl,
      serviceRoleKey: keys.serviceRoleKey,
      log,
      reloadMs: Number(process.env.CUTOVER_SCHEDULER_RELOAD_MS) || undefined,
    });
    scheduler.current = running;
    cleanups.push(() => running.stop());
    // Partitions may have fallen behind while the stack was stopped.
    await sql`select cutover.maintain_partitions()`;

    const dashboardUrl = `http://127.0.0.1:${options.ports.dashboard}`;
    await dashboardBuilt;
    const dashboard = await startStaticServer({
      port: options.ports.dashboard,
      root: dashboardDist,
      publicConfig: { apiUrl, anonKey: keys.anonKey },
    });
    cleanups.push(() => dashboard.close());

    const info: StackInfo = {
      apiUrl,
      dbUrl: pg.url,
      dashboardUrl,
      anonKey: keys.anonKey,
      serviceRoleKey: keys.serviceRoleKey,
      producerKey: keys.producerKey,
    };
    writeFileSync(path.join(stateDir, "stack.json"), JSON.stringify(info, null, 2) + "\n");
    cleanups.push(() => rmSync(path.join(stateDir, "stack.json"), { force: true }));

    let stopping: Promise<void> | undefined;
    return {
      info,
      keys,
      migrationVersion,
      functions,
      stop: () => (stopping ??= runCleanups()),
    };
  } catch (error) {
    await runCleanups();
    throw error;
  }
}

/** Registers the stack's producer key (hashed) once the producers table exists. */
async function registerLocalProducer(sql: postgres.Sql, producerKey: string): Promise<void> {
  const [row] = await sql<
    { exists: boolean }[]
  >`select to_regclass('cutover.producers') is not null as exists`;
  if (!row?.exists) return;
  await sql`
    insert into cutover.producers (name, key_hash)
    values ('local-dev', encode(extensions.digest(${producerKey}, 'sha256'), 'hex'))
    on conflict (name) do update set key_hash = excluded.key_hash, revoked_at = null`;
}
