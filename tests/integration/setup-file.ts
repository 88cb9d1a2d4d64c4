/**
 * Runs before every integration file: flags back at their defaults (and
 * seen so by every function instance), the shared stack's circuit breakers
 * start closed, with a fresh judged window and no fault hook, whatever the
 * previous file did to ws-fanout or Postgres (a file that stops functions
 * can rightly open a breaker; the next file must not inherit it, as it does
 * not inherit changed flags). After the file, breaker transitions the file's
 * own traffic caused are printed: an open breaker defers deliveries and
 * adds the healthy adapter to routes, which explains many a surprise.
 */
import postgres from "postgres";
import { afterAll, beforeAll, inject } from "vitest";
import { restoreDefaults, settleConfig } from "../helpers/flags.ts";
import { resetResilience } from "../helpers/resilience.ts";

let since = 0;

function connect() {
  return postgres(inject("stack").info.dbUrl, { max: 1, onnotice: () => {} });
}

beforeAll(async () => {
  const sql = connect();
  try {
    await resetResilience(sql);
    // Flags too: a file starts from the defaults, as every function instance sees them
    // (the previous file's own restore may be only milliseconds old).
    await restoreDefaults(sql);
    await settleConfig(sql);
    const [row] = await sql<{ id: string | null }[]>`
      select max(id) as id from cutover.breaker_transitions`;
    since = Number(row?.id ?? 0);
  } finally {
    await sql.end({ timeout: 5 });
  }
});

afterAll(async () => {
  const sql = connect();
  try {
    const rows = await sql<
      { adapter: string; from_state: string; to_state: string; reason: string }[]
    >`
      select adapter, from_state, to_state, reason from cutover.breaker_transitions
      where id > ${since} and reason not like 'operator:%' order by id`;
    if (rows.length > 0) {
      console.warn(
        `circuit breaker transitions during this file:\n${
          rows.map((r) => `  ${r.adapter}: ${r.from_state} → ${r.to_state} (${r.reason})`).join(
            "\n",
          )
        }`,
      );
    }
  } catch {
    // The stack may be gone (a file that stops it); nothing to report then.
  } finally {
    await sql.end({ timeout: 5 });
  }
});
