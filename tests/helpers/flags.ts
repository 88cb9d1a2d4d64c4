/** Changing flags directly in the database (as an operator's SQL would) and restoring them. */
import type postgres from "postgres";
import { builtInDefaults } from "../../shared/config/settings.ts";
import { CONFIG_REFRESH_MS } from "../../shared/config/source.ts";
import type { Category } from "../../shared/events/schema.ts";

export async function setCategory(
  sql: postgres.Sql,
  category: Category,
  changes: Partial<
    { enabled: boolean; percentage: number; adapters: string[]; delivery_mode: string }
  >,
): Promise<void> {
  const current = builtInDefaults().categories[category];
  const next = { ...current, ...changes };
  await sql.begin(async (tx) => {
    await tx`select set_config('cutover.actor', 'test', true), set_config('cutover.reason', 'test setup', true)`;
    await tx`update cutover.category_flags set enabled = ${next.enabled}, percentage = ${next.percentage},
      adapters = ${next.adapters}, delivery_mode = ${next.delivery_mode} where category = ${category}`;
  });
}

export async function setSetting(sql: postgres.Sql, key: string, value: unknown): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`select set_config('cutover.actor', 'test', true), set_config('cutover.reason', 'test setup', true)`;
    await tx`update cutover.settings set value = ${
      JSON.stringify(value)
    }::text::jsonb where key = ${key}`;
  });
}

/**
 * Puts every flag and setting back to the built-in defaults; resolves with
 * how many rows it changed. Function instances see the change within
 * CONFIG_REFRESH_MS (see settleConfig).
 */
export async function restoreDefaults(sql: postgres.Sql): Promise<number> {
  const d = builtInDefaults();
  let changed = 0;
  for (const [category, f] of Object.entries(d.categories)) {
    changed +=
      (await sql`update cutover.category_flags set enabled = ${f.enabled}, percentage = ${f.percentage},
      adapters = ${f.adapters}, delivery_mode = ${f.delivery_mode}, checksum_alg = ${f.checksum_alg}
      where category = ${category} and (enabled, percentage, adapters, delivery_mode, checksum_alg)
        is distinct from (${f.enabled}, ${f.percentage}::numeric, ${f.adapters}::text[], ${f.delivery_mode}, ${f.checksum_alg})`)
        .count;
  }
  for (const [key, value] of Object.entries(d.settings)) {
    changed += (await sql`update cutover.settings set value = ${JSON.stringify(value)}::text::jsonb
      where key = ${key} and value is distinct from ${JSON.stringify(value)}::text::jsonb`).count;
  }
  return changed;
}

/**
 * Waits until every function instance has seen the latest config change:
 * each re-checks the version at most CONFIG_REFRESH_MS after it last did, so
 * a test that starts sooner may be routed by the previous flags. Returns at
 * once when the last change (whoever made it) is older than that.
 */
export async function settleConfig(sql: postgres.Sql): Promise<void> {
  const [row] = await sql<{ ago_ms: number }[]>`
    select (extract(epoch from clock_timestamp() - changed_at) * 1000)::float8 as ago_ms
    from cutover.config_state`;
  const wait = CONFIG_REFRESH_MS + 500 - (row?.ago_ms ?? Infinity);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** Waits until `check` passes (polling), up to `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T>,
  timeoutMs = 8000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
