/**
 * The one way functions reach Postgres: postgres.js over SUPABASE_DB_URL.
 * Prepared statements are off so the same code works through Supabase's
 * transaction-mode pooler (Supavisor), which cannot keep them.
 */
import postgres from "postgres";

export type Sql = postgres.Sql;

export interface SqlOptions {
  /** Connections per function instance; Edge Functions should keep this small. */
  max?: number;
}

/** Opens a lazily-connecting pool; the first query connects. */
export function createSql(url: string, options: SqlOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 4,
    prepare: false,
    idle_timeout: 20,
    connect_timeout: 5,
    onnotice: () => {},
    connection: { application_name: "cutover" },
  });
}

/**
 * Error codes meaning the connection is gone or cannot be made: the socket
 * layer's (a write after the server closed is EPIPE, "This socket has been
 * ended by the other party"), postgres.js's own, and the server's
 * admin_shutdown / crash_shutdown / cannot_connect_now / too_many_connections.
 */
const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01",
  "57P02",
  "57P03",
  "53300",
]);

/** True when `error` means the database cannot be reached (as opposed to a query failing). */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === "string" && CONNECTION_ERROR_CODES.has(e.code)) return true;
  // Deno's node:net compatibility layer may raise the write-after-close error without its code.
  return typeof e?.message === "string" && e.message.includes("ended by the other party");
}

/**
 * True when retrying the same statement may succeed: the database is
 * unreachable, shutting down, out of connections, or the transaction lost a
 * serialization or deadlock race.
 */
export function isTransientDbError(error: unknown): boolean {
  if (isConnectionError(error)) return true;
  const code = (error as { code?: string } | null)?.code ?? "";
  return code === "40001" || code === "40P01" || code.startsWith("08") || code.startsWith("53") ||
    code.startsWith("57");
}
