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

/** True when `error` means the database cannot be reached (as opposed to a query failing). */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === "ECONNREFUSED" || code === "CONNECT_TIMEOUT" || code === "CONNECTION_CLOSED" ||
    code === "CONNECTION_ENDED" || code === "CONNECTION_DESTROYED" || code === "ECONNRESET" ||
    code === "57P01" || code === "57P02" || code === "57P03" || code === "53300";
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
