/**
 * `postgres_changes`: what each subscriber receives for a batch of row changes
 * from the replication feed — the local counterpart of hosted Realtime's
 * `realtime.apply_rls` (its "walrus" pipeline). For each change:
 *
 * 1. candidate subscriptions: those whose tables include the row's table and
 *    whose event matches;
 * 2. typed values: Postgres converts each value's text to JSON
 *    (`to_jsonb(value::type)`, as `realtime.cast` does) and evaluates every
 *    filter predicate with the column's type;
 * 3. per role: only columns the role may `select` appear; a table without a
 *    primary key, or whose key the role may not read, yields hosted's
 *    "Error 400"/"Error 401" payloads;
 * 4. RLS (inserts and updates of tables with RLS on): per distinct set of
 *    claims, in one transaction as that role with `request.jwt.claims` set,
 *    check the row is visible by primary key — hosted does the same. Deletes
 *    cannot be checked and are delivered with only the primary key when RLS
 *    is on, as hosted does.
 *
 * The payload is hosted's `{ids, data: {columns, commit_timestamp, errors,
 * (old_record), (record), schema, table, type}}`, which realtime-js turns into
 * `{eventType, new, old, ...}`.
 */
import type postgres from "postgres";
import { type ColumnFilter, filterPredicateSql } from "./filters.ts";
import type { Relation, TupleValue } from "./pgoutput.ts";
import type { PgSubscription, Subscriber } from "./registry.ts";
import type { Change } from "./replication.ts";

/** A change with its transaction's commit time (formatted as hosted formats it) and LSN. */
export interface TimedChange {
  change: Change;
  commitTimestamp: string;
  commitLsn: bigint;
}

/** One `postgres_changes` message for one subscriber. */
export interface ChangeDelivery {
  subscriber: Subscriber;
  payload: { ids: number[]; data: Record<string, unknown> };
}

/** `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds), hosted's `commit_timestamp` format. */
export function formatCommitTimestamp(unixMicros: bigint): string {
  return new Date(Number(unixMicros / 1000n)).toISOString();
}

/** Orders object keys as `jsonb` does (shorter keys first, then bytewise), so payloads read as hosted's. */
export function jsonbOrdered(entries: [string, unknown][]): Record<string, unknown> {
  const sorted = [...entries].sort(([a], [b]) => {
    const la = Buffer.byteLength(a);
    const lb = Buffer.byteLength(b);
    return la !== lb ? la - lb : Buffer.compare(Buffer.from(a), Buffer.from(b));
  });
  return Object.fromEntries(sorted);
}

interface Candidate {
  subscriber: Subscriber;
  subscription: PgSubscription;
}

interface CatalogColumn {
  name: string;
  type: string;
  is_pkey: boolean;
  rls: boolean;
  privileges: Record<string, boolean>;
}

interface TypeInfo {
  typname: string;
  castType: string;
}

/** Column values of one tuple by column index: present with a JSON value, or absent. */
type Values = Map<number, unknown>;

interface Typed {
  newValues: Values;
  oldValues: Values;
  /** Filter key → result on the new row / on the old row (null: column absent). */
  newChecks: Map<string, boolean>;
  oldChecks: Map<string, boolean>;
}

const filterKey = (f: ColumnFilter) => JSON.stringify([f.column, f.op, f.value, f.negate]);
const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

export interface ChangesEngineOptions {
  sql: postgres.Sql;
  log: (line: string) => void;
}

/** Builds the engine; it caches type names (type OIDs are stable). */
export function createChangesEngine(options: ChangesEngineOptions) {
  const { sql, log } = options;
  const types = new Map<number, TypeInfo>();

  async function typeInfo(oids: number[]): Promise<void> {
    const missing = [...new Set(oids)].filter((oid) => !types.has(oid));
    if (missing.length === 0) return;
    const rows = await sql<{ oid: number; typname: string; cast_type: string }[]>`
      select oid::int as oid, typname::text, format_type(oid, null) as cast_type
      from pg_type where oid = any(${missing}::oid[])`;
    for (const row of rows) types.set(row.oid, { typname: row.typname, castType: row.cast_type });
  }

  async function catalog(relation: Relation, roles: string[]): Promise<CatalogColumn[]> {
    return await sql<CatalogColumn[]>`
      select a.attname::text as name, t.typname::text as type,
             coalesce(a.attnum = any(pk.conkey), false) as is_pkey,
             c.relrowsecurity as rls,
             (select coalesce(json_object_agg(r, has_column_privilege(r, c.oid, a.attnum, 'SELECT')), '{}')
              from unnest(${roles}::text[]) r where to_regrole(r) is not null) as privileges
      from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      join pg_type t on t.oid = a.atttypid
      left join pg_constraint pk on pk.conrelid = c.oid and pk.contype = 'p'
      where n.nspname = ${relation.schema} and c.relname = ${relation.table}
      order by a.attnum`;
  }

  /** Old values hosted calls the "identity": the whole old row, or the key columns. */
  function identityTuple(change: Change): (TupleValue | null)[] {
    const columns = change.relation.columns;
    if (change.oldTuple && change.oldKind === "O") return change.oldTuple;
    const source = change.oldTuple ?? change.newTuple ?? [];
    return columns.map((column, i) => (column.isKey ? source[i] ?? null : null));
  }

  function newTupleWithToast(change: Change): (TupleValue | null)[] {
    if (!change.newTuple) return [];
    return change.newTuple.map((value, i) => {
      // Unchanged TOAST values are not sent; hosted takes them from the old row if it has it.
      if (value.kind === "unchanged") {
        const old = change.oldKind === "O" ? change.oldTuple?.[i] : undefined;
        return old && old.kind !== "unchanged" ? old : null;
      }
      return value;
    });
  }

  async function typedValues(
    relation: Relation,
    changes: Change[],
    filters: ColumnFilter[],
  ): Promise<Typed[]> {
    const columns = relation.columns;
    await typeInfo(columns.map((c) => c.typeOid));
    const newTuples = changes.map(newTupleWithToast);
    const oldTuples = changes.map((c) => (c.kind === "insert" ? [] : identityTuple(c)));
    const text = (v: TupleValue | null | undefined) => (v?.kind === "text" ? v.text : null);
    const params: unknown[] = [];
    const unnestArgs: string[] = [];
    for (const side of [newTuples, oldTuples]) {
      for (let c = 0; c < columns.length; c++) {
        params.push(side.map((tuple) => text(tuple[c])));
        unnestArgs.push(`$${params.length}::text[]`);
      }
    }
    const castOf = (c: number) => types.get(columns[c]!.typeOid)?.castType ?? "text";
    const valueExpr = (prefix: string, c: number) =>
      types.get(columns[c]!.typeOid)?.typname === "bytea"
        ? `to_jsonb(u.${prefix}${c})`
        : `to_jsonb(u.${prefix}${c}::${castOf(c)})`;
    const predicates = (prefix: string) =>
      filters.map((filter, k) => {
        const c = columns.findIndex((col) => col.name === filter.column);
        if (c < 0) return "null::boolean";
        return filterPredicateSql(
          filter,
          `u.${prefix}${c}::${castOf(c)}`,
          castOf(c),
          `$${params.length - filters.length + k + 1}`,
        );
      });
    for (const filter of filters) params.push(filter.value);
    const aliases = [
      ...columns.map((_, c) => `n${c}`),
      ...columns.map((_, c) => `o${c}`),
      "ord",
    ];
    const array = (items: string[], type: string) =>
      items.length ? `to_jsonb(array[${items.join(", ")}]::${type}[])` : `'[]'::jsonb`;
    const query = `
      select ${array(columns.map((_, c) => valueExpr("n", c)), "jsonb")} as new_values,
             ${array(columns.map((_, c) => valueExpr("o", c)), "jsonb")} as old_values,
             ${array(predicates("n"), "boolean")} as new_checks,
             ${array(predicates("o"), "boolean")} as old_checks
      from unnest(${unnestArgs.join(", ")}) with ordinality as u(${aliases.join(", ")})
      order by u.ord`;
    const rows = await sql.unsafe<
      {
        new_values: unknown[];
        old_values: unknown[];
        new_checks: unknown[];
        old_checks: unknown[];
      }[]
    >(query, params as postgres.ParameterOrJSON<never>[]);
    return rows.map((row, i) => {
      const present = (tuple: (TupleValue | null)[], c: number) => {
        const v = tuple[c];
        return v !== null && v !== undefined && v.kind !== "unchanged";
      };
      const newValues: Values = new Map();
      const oldValues: Values = new Map();
      for (let c = 0; c < columns.length; c++) {
        if (present(newTuples[i]!, c)) newValues.set(c, row.new_values[c] ?? null);
        if (present(oldTuples[i]!, c)) oldValues.set(c, row.old_values[c] ?? null);
      }
      const checks = (values: Values, results: unknown[]) =>
        new Map(filters.map((filter, k) => {
          const c = columns.findIndex((col) => col.name === filter.column);
          // A filter on a column the change does not carry never matches (hosted: "count(col.name) = count(1)").
          return [filterKey(filter), c >= 0 && values.has(c) && results[k] === true];
        }));
      return {
        newValues,
        oldValues,
        newChecks: checks(newValues, row.new_checks),
        oldChecks: checks(oldValues, row.old_checks),
      };
    });
  }

  /** Which rows (by index into `keys`) the claims may select, under RLS. */
  async function visibleRows(
    relation: Relation,
    pkColumns: number[],
    keys: (string | null)[][],
    claims: Record<string, unknown>,
  ): Promise<Set<number>> {
    const role = String(claims.role);
    const table = `${quoteIdent(relation.schema)}.${quoteIdent(relation.table)}`;
    const conditions = pkColumns.map((c, j) =>
      `t.${quoteIdent(relation.columns[c]!.name)} = u.k${j}::${
        types.get(relation.columns[c]!.typeOid)?.castType ?? "text"
      }`
    );
    const args = pkColumns.map((_, j) => `$${j + 1}::text[]`);
    const query = `
      select (u.ord - 1)::int as i
      from unnest(${args.join(", ")}) with ordinality as u(${
      [...pkColumns.map((_, j) => `k${j}`), "ord"].join(", ")
    })
      where exists (select 1 from ${table} t where ${conditions.join(" and ")})`;
    const params = pkColumns.map((_, j) => keys.map((k) => k[j] ?? null));
    try {
      return await sql.begin(async (tx) => {
        await tx`select set_config('role', ${role}, true),
                        set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
        const rows = await tx.unsafe<{ i: number }[]>(
          query,
          params as postgres.ParameterOrJSON<never>[],
        );
        return new Set(rows.map((r) => r.i));
      });
    } catch (error) {
      log(
        `[realtime] RLS check on ${relation.schema}.${relation.table} as ${role} failed: ${
          (error as Error).message
        }`,
      );
      return new Set();
    }
  }

  /**
   * Computes the deliveries for `changes` (in order). Changes nobody subscribes
   * to cost nothing. Resolves with the deliveries per change.
   */
  async function deliveriesFor(
    changes: TimedChange[],
    subscribers: Subscriber[],
  ): Promise<Map<TimedChange, ChangeDelivery[]>> {
    const out = new Map<TimedChange, ChangeDelivery[]>();
    const candidatesOf = new Map<TimedChange, Candidate[]>();
    const byRelation = new Map<Relation, TimedChange[]>();
    for (const timed of changes) {
      const { relation, kind } = timed.change;
      const entity = `${relation.schema}.${relation.table}`;
      const action = kind.toUpperCase();
      const candidates: Candidate[] = [];
      for (const subscriber of subscribers) {
        if (timed.commitLsn < subscriber.since) continue;
        for (const subscription of subscriber.pgSubscriptions()) {
          if (
            subscription.entities.has(entity) &&
            (subscription.params.action === "*" || subscription.params.action === action)
          ) candidates.push({ subscriber, subscription });
        }
      }
      if (candidates.length === 0) continue;
      candidatesOf.set(timed, candidates);
      const group = byRelation.get(relation) ?? [];
      group.push(timed);
      byRelation.set(relation, group);
    }

    for (const [relation, group] of byRelation) {
      const candidates = group.flatMap((t) => candidatesOf.get(t)!);
      const roles = [...new Set(candidates.map((c) => String(c.subscriber.claims().role)))];
      const filters = [
        ...new Map(
          candidates.flatMap((c) => c.subscription.params.filters).map((f) => [filterKey(f), f]),
        ).values(),
      ];
      const [cat, typed] = await Promise.all([
        catalog(relation, roles),
        typedValues(relation, group.map((t) => t.change), filters),
      ]);
      const rls = cat[0]?.rls ?? false;
      const byName = new Map(cat.map((c) => [c.name, c]));
      const pkNames = cat.filter((c) => c.is_pkey).map((c) => c.name);
      const pkColumns = pkNames.map((name) => relation.columns.findIndex((c) => c.name === name));

      // Filters first (hosted checks them before RLS), then RLS per distinct claims.
      const passing = group.map((timed, i) =>
        candidatesOf.get(timed)!.filter(({ subscription }) =>
          subscription.params.filters.every((f) => typed[i]!.newChecks.get(filterKey(f))) ||
          (timed.change.kind === "delete" &&
            subscription.params.filters.every((f) => typed[i]!.oldChecks.get(filterKey(f))))
        )
      );
      const visibleByClaims = new Map<string, Set<number>>();
      const rlsChecked = rls && pkColumns.length > 0 && pkColumns.every((c) => c >= 0);
      if (rlsChecked) {
        const claimsGroups = new Map<string, { claims: Record<string, unknown>; rows: number[] }>();
        group.forEach((timed, i) => {
          if (timed.change.kind === "delete") return;
          for (const { subscriber } of passing[i]!) {
            const claims = subscriber.claims();
            const key = JSON.stringify(claims);
            const entry = claimsGroups.get(key) ?? { claims, rows: [] };
            if (!entry.rows.includes(i)) entry.rows.push(i);
            claimsGroups.set(key, entry);
          }
        });
        await Promise.all(
          [...claimsGroups].map(async ([key, { claims, rows }]) => {
            const keys = rows.map((i) =>
              pkColumns.map((c) => {
                const v = newTupleWithToast(group[i]!.change)[c];
                return v?.kind === "text" ? v.text : null;
              })
            );
            const visible = await visibleRows(relation, pkColumns, keys, claims);
            visibleByClaims.set(key, new Set(rows.filter((_, j) => visible.has(j))));
          }),
        );
      }

      group.forEach((timed, i) => {
        const { change } = timed;
        const type = change.kind.toUpperCase();
        const deliveries = new Map<Subscriber, { ids: number[]; data: Record<string, unknown> }>();
        const payloadByRole = new Map<string, Record<string, unknown>>();
        const add = (subscriber: Subscriber, id: number, data: Record<string, unknown>) => {
          const entry = deliveries.get(subscriber) ?? { ids: [], data };
          if (!entry.ids.includes(id)) entry.ids.push(id);
          deliveries.set(subscriber, entry);
        };
        for (const { subscriber, subscription } of candidatesOf.get(timed)!) {
          const claims = subscriber.claims();
          const role = String(claims.role);
          const selectable = (name: string) => byName.get(name)?.privileges[role] === true;
          if (type !== "DELETE" && pkNames.length === 0) {
            add(
              subscriber,
              subscription.id,
              errorData(relation, type, "Error 400: Bad Request, no primary key"),
            );
            continue;
          }
          if (type !== "DELETE" && !pkNames.every(selectable)) {
            add(subscriber, subscription.id, errorData(relation, type, "Error 401: Unauthorized"));
            continue;
          }
          if (!passing[i]!.some((p) => p.subscription === subscription)) continue;
          if (rlsChecked && type !== "DELETE") {
            if (!visibleByClaims.get(JSON.stringify(claims))?.has(i)) continue;
          }
          let data = payloadByRole.get(role);
          if (!data) {
            data = rowData(relation, type, timed, typed[i]!, cat, selectable, rls);
            payloadByRole.set(role, data);
          }
          add(subscriber, subscription.id, data);
        }
        out.set(
          timed,
          [...deliveries].map(([subscriber, payload]) => ({ subscriber, payload })),
        );
      });
    }
    return out;
  }

  return { deliveriesFor };
}

function errorData(relation: Relation, type: string, error: string): Record<string, unknown> {
  const data: Record<string, unknown> = {
    columns: [],
    commit_timestamp: null,
    errors: [error],
  };
  if (type !== "INSERT") data.old_record = {};
  if (type !== "DELETE") data.record = {};
  return { ...data, schema: relation.schema, table: relation.table, type };
}

function rowData(
  relation: Relation,
  type: string,
  timed: TimedChange,
  typed: Typed,
  catalog: CatalogColumn[],
  selectable: (name: string) => boolean,
  rls: boolean,
): Record<string, unknown> {
  const columns = catalog.filter((c) => selectable(c.name)).map((c) => ({
    name: c.name,
    type: c.type,
  }));
  const recordOf = (values: Values, keep: (name: string) => boolean) =>
    jsonbOrdered(
      [...values].map(([c, value]) => [relation.columns[c]!.name, value] as [string, unknown])
        .filter(([name]) => selectable(name) && keep(name)),
    );
  const isPk = (name: string) => catalog.some((c) => c.name === name && c.is_pkey);
  const data: Record<string, unknown> = {
    columns,
    commit_timestamp: timed.commitTimestamp,
    errors: null,
  };
  if (type === "UPDATE") data.old_record = recordOf(typed.oldValues, () => true);
  // Deletes skip the RLS check, so with RLS on only the key is disclosed (as hosted).
  if (type === "DELETE") data.old_record = recordOf(typed.oldValues, (n) => !rls || isPk(n));
  if (type !== "DELETE") {
    // Unchanged TOAST columns come from the old row when it has them.
    const merged: Values = new Map(typed.newValues);
    for (const [c, value] of typed.oldValues) {
      if (!merged.has(c) && type === "UPDATE") merged.set(c, value);
    }
    data.record = recordOf(merged, () => true);
  }
  return { ...data, schema: relation.schema, table: relation.table, type };
}
