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
