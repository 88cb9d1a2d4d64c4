/**
 * Authorisation against the project's own database, the way hosted Realtime
 * does it:
 *
 * - Private channels (`config.private: true`) — RLS on `realtime.messages`
 *   (`Realtime.Tenants.Authorization`). Read: in a transaction that is rolled
 *   back, insert probe rows for the topic (as the server), switch to the
 *   subscriber's role with its claims and `realtime.topic`, and see which probe
 *   rows `select` returns. Write: as the subscriber, try to `insert` a message
 *   for the topic; an RLS refusal means no.
 * - `postgres_changes` bindings — what hosted's subscription insert and its
 *   `subscription_check_filters` trigger accept: tables of the
 *   `supabase_realtime` publication matching schema/table (`*` = any; matched
 *   with `like`, as hosted does), filter columns the role may select, filter
 *   values castable to the column type.
 */
import { randomUUID } from "node:crypto";
import type postgres from "postgres";
import type { ColumnFilter, SubscriptionParams } from "./filters.ts";
import type { Claims } from "./jwt.ts";

/** What a private channel's subscriber may do. `null`: not evaluated. */
export interface ChannelPolicies {
  broadcastRead: boolean | null;
  presenceRead: boolean | null;
  broadcastWrite: boolean | null;
}

export interface AuthorizationContext {
  /** The channel name without `realtime:`. */
  subTopic: string;
  claims: Claims;
  /** The `x-*` headers of the WebSocket upgrade (hosted's `request.headers`). */
  headers: Record<string, string>;
}

/** Thrown when a policy itself fails (hosted's `RlsPolicyError`); the caller treats it as a refusal. */
export class PolicyError extends Error {
  override name = "PolicyError";
}

async function setRequestContext(tx: postgres.Sql, context: AuthorizationContext): Promise<void> {
  await tx`
    select
      set_config('role', ${context.claims.role}, true),
      set_config('realtime.topic', ${context.subTopic}, true),
      set_config('request.jwt.claims', ${JSON.stringify(context.claims)}, true),
      set_config('request.jwt.claim.sub', ${context.claims.sub ?? null}, true),
      set_config('request.jwt.claim.role', ${context.claims.role}, true),
      set_config('request.headers', ${JSON.stringify(context.headers)}, true)`;
}

/** Runs `fn` in a transaction that is always rolled back, on a reserved connection. */
async function inRolledBackTransaction<T>(
  sql: postgres.Sql,
  fn: (tx: postgres.Sql) => Promise<T>,
): Promise<T> {
  const conn = await sql.reserve();
  try {
    await conn`begin`;
    try {
      return await fn(conn);
    } finally {
      await conn`rollback`;
    }
  } finally {
    conn.release();
  }
}

/**
 * Evaluates the read policies of a private channel: may the subscriber receive
 * broadcasts, and presence (when `withPresence`). Throws `PolicyError` when a
 * policy raises an error.
 */
export async function authorizeRead(
  sql: postgres.Sql,
  context: AuthorizationContext,
  withPresence: boolean,
): Promise<Pick<ChannelPolicies, "broadcastRead" | "presenceRead">> {
  const probes: Record<string, string> = { broadcast: randomUUID() };
  if (withPresence) probes.presence = randomUUID();
  try {
    return await inRolledBackTransaction(sql, async (tx) => {
      for (const [extension, id] of Object.entries(probes)) {
        await tx`insert into realtime.messages (id, topic, extension)
                 values (${id}, ${context.subTopic}, ${extension})`;
      }
      await setRequestContext(tx, context);
      const visible = new Set(
        (await tx<{ id: string }[]>`
          select id::text from realtime.messages where id = any(${Object.values(probes)}::uuid[])`)
          .map((r) => r.id),
      );
      return {
        broadcastRead: visible.has(probes.broadcast!),
        presenceRead: probes.presence ? visible.has(probes.presence) : null,
      };
    });
  } catch (error) {
    throw new PolicyError((error as Error).message);
  }
}

/**
 * Evaluates whether the subscriber may send broadcasts on a private channel.
 * Throws `PolicyError` when a policy raises an error other than a refusal.
 */
export async function authorizeBroadcastWrite(
  sql: postgres.Sql,
  context: AuthorizationContext,
): Promise<boolean> {
  try {
    return await inRolledBackTransaction(sql, async (tx) => {
      await setRequestContext(tx, context);
      try {
        await tx`savepoint write_check`;
        await tx`insert into realtime.messages (topic, extension)
                 values (${context.subTopic}, 'broadcast')`;
        return true;
      } catch (error) {
        // 42501: insufficient_privilege, which is also what an RLS refusal raises.
        if ((error as { code?: string }).code === "42501") {
          await tx`rollback to savepoint write_check`;
          return false;
        }
        throw error;
      }
    });
  } catch (error) {
    throw new PolicyError((error as Error).message);
  }
}

/** A `postgres_changes` binding hosted would accept, with the tables it covers. */
export type SubscriptionCheck =
  | { ok: true; entities: Set<string> }
  | { ok: false; error: string };

/** Elixir-style rendering of the params, as hosted puts them in its error messages. */
function describeParams(params: SubscriptionParams): string {
  const filters = `[${
    params.filters.map((f) =>
      `{${JSON.stringify(f.column)}, ${JSON.stringify(f.op)}, ${
        JSON.stringify(f.value)
      }, ${f.negate}}`
    ).join(", ")
  }]`;
  return `event: ${params.action}, schema: ${params.schema}, table: ${params.table}, filters: ${filters}, select: nil`;
}

/**
 * Checks a parsed binding against the database for a subscriber with `claims`,
 * as hosted does when it inserts the subscription. Never throws for a bad
 * binding; the error text is hosted's.
 */
export async function checkSubscription(
  sql: postgres.Sql,
  params: SubscriptionParams,
  claims: Claims,
): Promise<SubscriptionCheck> {
  const tables = await sql<{ schemaname: string; tablename: string; oid: number }[]>`
    select schemaname, tablename, format('%I.%I', schemaname, tablename)::regclass::oid::int as oid
    from pg_publication_tables
    where pubname = 'supabase_realtime'
      and schemaname like (case ${params.schema}::text when '*' then '%' else ${params.schema}::text end) escape ''
      and tablename like (case ${params.table}::text when '*' then '%' else ${params.table}::text end) escape ''`;
  if (tables.length === 0) {
    return {
      ok: false,
      error:
        `Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [${
          describeParams(params)
        }]`,
    };
  }
  const exception = (message: string) => ({
    ok: false as const,
    error:
      `Unable to subscribe to changes with given parameters. An exception happened so please check your connect parameters: [${
        describeParams(params)
      }]. Exception: ${message}`,
  });
  const [role] = await sql<{ exists: boolean }[]>`
    select to_regrole(${claims.role}) is not null as exists`;
  if (!role?.exists) {
    return exception(`ERROR 22023 (invalid_parameter_value) role "${claims.role}" does not exist`);
  }
  for (const table of tables) {
    for (const filter of params.filters) {
      const problem = await checkFilter(sql, table.oid, filter, claims.role);
      if (problem) return exception(`ERROR P0001 (raise_exception) ${problem}`);
    }
  }
  return { ok: true, entities: new Set(tables.map((t) => `${t.schemaname}.${t.tablename}`)) };
}

/** What hosted's `subscription_check_filters` trigger would raise for `filter`, or null. */
async function checkFilter(
  sql: postgres.Sql,
  tableOid: number,
  filter: ColumnFilter,
  role: string,
): Promise<string | null> {
  const [column] = await sql<{ type_oid: number; cast_type: string; selectable: boolean }[]>`
    select a.atttypid::int as type_oid, format_type(a.atttypid, null) as cast_type,
           has_column_privilege(${role}, a.attrelid, a.attnum, 'SELECT') as selectable
    from pg_attribute a
    where a.attrelid = ${tableOid} and a.attname = ${filter.column}
      and a.attnum > 0 and not a.attisdropped`;
  if (!column || !column.selectable) return `invalid column for filter ${filter.column}`;
  const castType = column.cast_type;
  try {
    switch (filter.op) {
      case "in": {
        const [row] = await sql.unsafe<{ n: number | null }[]>(
          `select cardinality($1::text::${castType}[]) as n`,
          [filter.value],
        );
        if ((row?.n ?? 0) > 100) return "too many values for `in` filter. Maximum 100";
        return null;
      }
      case "is":
        if (!["null", "true", "false", "unknown"].includes(filter.value)) {
          return "invalid value for is filter: must be null, true, false, or unknown";
        }
        if (filter.value !== "null" && castType !== "boolean") {
          return `is ${filter.value} filter requires a boolean column, got ${castType}`;
        }
        return null;
      case "like":
      case "ilike":
      case "match":
      case "imatch": {
        const operator = { like: "~~", ilike: "~~", match: "~", imatch: "~*" }[filter.op];
        const [found] = await sql<{ exists: boolean }[]>`
          select exists (
            select 1 from pg_operator
            where oprname = ${operator} and oprleft = ${column.type_oid}
          ) as exists`;
        if (!found?.exists) {
          return `operator ${filter.op} requires a text-compatible column type, got ${castType}`;
        }
        if (filter.op === "match" || filter.op === "imatch") {
          try {
            await sql`select '' ~ ${filter.value}`;
          } catch (error) {
            return `invalid regular expression for ${filter.op} filter: ${
              (error as Error).message
            }`;
          }
        }
        return null;
      }
      default:
        await sql.unsafe(`select $1::text::${castType}`, [filter.value]);
        return null;
    }
  } catch (error) {
    return (error as Error).message;
  }
}
