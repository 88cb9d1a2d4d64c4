/**
 * Runs before every integration file: the shared stack's circuit breakers
 * start closed, with a fresh judged window and no fault hook, whatever the
 * previous file did to ws-fanout or Postgres (a file that stops functions
 * can rightly open a breaker; the next file must not inherit it, as it does
 * not inherit changed flags).
 */
import postgres from "postgres";
import { beforeAll, inject } from "vitest";
import { resetResilience } from "../helpers/resilience.ts";

beforeAll(async () => {
  const sql = postgres(inject("stack").info.dbUrl, { max: 1, onnotice: () => {} });
  try {
    await resetResilience(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
});
