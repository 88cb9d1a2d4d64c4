/** A direct connection to the stack's Postgres, for asserting what the database holds. */
import postgres from "postgres";
import { afterAll } from "vitest";
import { stack } from "./http.ts";

/** Opens a pool for this test file and closes it after the file. */
export function useDb(): postgres.Sql {
  const sql = postgres(stack().info.dbUrl, { max: 3, onnotice: () => {} });
  afterAll(() => sql.end({ timeout: 5 }));
  return sql;
}
