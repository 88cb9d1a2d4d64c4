/**
 * The pipeline's current state as the metrics function shows it: flag
 * version, relay-outbox depth and age, dead letters by status, breaker state,
 * reconciliation, and the stats recorders' own counters. Tables other issues
 * add (cutover.breaker_state, cutover.dead_letters, cutover.reconcile_runs /
 * reconcile_findings) are looked up with to_regclass at every read, so the
 * metrics work before, and keep working after, those migrations are applied.
 */
import type { Sql } from "../db/client.ts";
import { type CategoryConsistency, consistencyByCategory } from "./reconcile-view.ts";
import { readRecorderTotals } from "./store.ts";
import type { SummaryState } from "./summary.ts";

/** Reconciliation over a window (null in the state when its tables do not exist). */
export interface ReconcileSummary {
  /** The newest run, whatever its status. */
  last_run: {
    id: number;
    status: string;
    trigger: string;
    started_at: string;
    finished_at: string | null;
    watermark_to: string | null;
  } | null;
  /** now − watermark_to of the newest succeeded run: how far judged events trail now. */
  lag_s: number | null;
  /** Succeeded and failed runs that finished within the window. */
  runs: { succeeded: number; failed: number };
  /** Judged units per category over the window's succeeded runs (see reconcile-view.ts). */
  categories: Record<string, CategoryConsistency>;
  /** Findings recorded within the window, by type. */
  findings_by_type: Record<string, number>;
  /** Mismatch-rate alerts raised within the window. */
  alerts: number;
}

interface Presence {
  breakers: boolean;
  rollbacks: boolean;
  dlq: boolean;
  dlq_status: boolean;
  reconcile_runs: boolean;
  reconcile_findings: boolean;
  reconcile_alerts: boolean;
  flag_version: string | null;
  outbox_pending: number;
  outbox_oldest_age_s: number | null;
}

/** Reads the state; throws on database errors. */
export async function readPipelineState(
  sql: Sql,
  options: { reconcileWindowS: number },
): Promise<SummaryState> {
  const [presence] = await sql<Presence[]>`
    select
      to_regclass('cutover.breaker_state') is not null as breakers,
      to_regclass('cutover.rollbacks') is not null as rollbacks,
      to_regclass('cutover.dead_letters') is not null as dlq,
      exists (select 1 from information_schema.columns
              where table_schema = 'cutover' and table_name = 'dead_letters'
                and column_name = 'status') as dlq_status,
      to_regclass('cutover.reconcile_runs') is not null as reconcile_runs,
      to_regclass('cutover.reconcile_findings') is not null as reconcile_findings,
      to_regclass('cutover.reconcile_alerts') is not null as reconcile_alerts,
      (select version::text from cutover.config_state) as flag_version,
      (select count(*)::float8 from cutover.relay_outbox where status = 'pending') as outbox_pending,
      (select extract(epoch from now() - min(created_at))::float8
         from cutover.relay_outbox where status = 'pending') as outbox_oldest_age_s`;
  const p = presence!;
  const [breakers, dlq, recorders, reconcile, rollbacks] = await Promise.all([
    p.breakers ? readBreakers(sql) : null,
    p.dlq ? readDeadLetters(sql, p.dlq_status) : null,
    readRecorderTotals(sql),
    p.reconcile_runs
      ? readReconcile(sql, options.reconcileWindowS, p.reconcile_findings, p.reconcile_alerts)
      : null,
    p.rollbacks ? readRollbacks(sql) : null,
  ]);
  return {
    flag_version: p.flag_version === null ? null : Number(p.flag_version),
    outbox: {
      pending: p.outbox_pending,
      oldest_age_s: p.outbox_oldest_age_s === null
        ? null
        : Math.round(p.outbox_oldest_age_s * 1000) / 1000,
    },
    dlq,
    breakers,
    rollbacks,
    reconciliation: reconcile,
    recorders: Object.fromEntries(recorders.map((r) => [r.recorder, {
      flushes: r.flushes,
      flush_failures: r.flush_failures,
      dropped_buckets: r.dropped_buckets,
      dropped_records: r.dropped_records,
      last_flush_at: r.last_flush_at?.toISOString() ?? null,
    }])),
  };
}

/**
 * One entry per adapter, with every column of its cutover.breaker_state row
 * (whatever the breaker issue puts there); `state` is the row's `state`.
 */
async function readBreakers(sql: Sql): Promise<SummaryState["breakers"]> {
  const rows = await sql<{ row: Record<string, unknown> }[]>`
    select to_jsonb(b) as row from cutover.breaker_state b`;
  const out: NonNullable<SummaryState["breakers"]> = {};
  for (const { row } of rows) {
    const adapter = typeof row.adapter === "string" ? row.adapter : null;
    if (!adapter) continue;
    out[adapter] = { ...row, state: typeof row.state === "string" ? row.state : "unknown" };
  }
  return out;
}

/** Automated rollbacks (cutover.rollbacks, issue 6) per adapter and trigger, and the newest. */
async function readRollbacks(sql: Sql): Promise<SummaryState["rollbacks"]> {
  const [row] = await sql<
    { by_trigger: { adapter: string; trigger: string; count: number }[]; last: unknown }[]
  >`
    select
      (select coalesce(jsonb_agg(jsonb_build_object('adapter', adapter, 'trigger', trigger,
         'count', n) order by adapter, trigger), '[]'::jsonb)
       from (select adapter, trigger, count(*) as n from cutover.rollbacks
             group by adapter, trigger) t) as by_trigger,
      (select jsonb_build_object('at', at, 'adapter', adapter, 'trigger', trigger,
         'action', action, 'reason', reason)
       from cutover.rollbacks order by id desc limit 1) as last`;
  return {
    by_trigger: row?.by_trigger ?? [],
    last: (row?.last ?? null) as NonNullable<SummaryState["rollbacks"]>["last"],
  };
}

async function readDeadLetters(sql: Sql, hasStatus: boolean): Promise<SummaryState["dlq"]> {
  const rows = hasStatus
    ? await sql<{ status: string; n: number }[]>`
        select coalesce(status::text, 'unknown') as status, count(*)::float8 as n
        from cutover.dead_letters group by 1 order by 1`
    : await sql<{ status: string; n: number }[]>`
        select 'unknown' as status, count(*)::float8 as n from cutover.dead_letters`;
  const byStatus = Object.fromEntries(rows.filter((r) => r.n > 0).map((r) => [r.status, r.n]));
  return { total: rows.reduce((n, r) => n + r.n, 0), by_status: byStatus };
}

interface ReconcileRow {
  last_run: ReconcileSummary["last_run"];
  lag_s: number | null;
  succeeded: number;
  failed: number;
  counts: unknown[];
}

/**
 * Reads the reconciliation tables over the last `windowS` seconds. The
 * findings and alerts tables are optional (each guarded separately).
 */
async function readReconcile(
  sql: Sql,
  windowS: number,
  hasFindings: boolean,
  hasAlerts: boolean,
): Promise<ReconcileSummary> {
  const since = sql`now() - make_interval(secs => ${windowS}::float8)`;
  const [[row], findings, alerts] = await Promise.all([
    sql<ReconcileRow[]>`
      select
        (select jsonb_build_object('id', id, 'status', status, 'trigger', trigger,
           'started_at', started_at, 'finished_at', finished_at, 'watermark_to', watermark_to)
         from cutover.reconcile_runs order by id desc limit 1) as last_run,
        (select extract(epoch from now() - watermark_to)::float8 from cutover.reconcile_runs
         where status = 'succeeded' and watermark_to is not null order by id desc limit 1) as lag_s,
        (select count(*)::float8 from cutover.reconcile_runs
         where status = 'succeeded' and finished_at >= ${since}) as succeeded,
        (select count(*)::float8 from cutover.reconcile_runs
         where status = 'failed' and finished_at >= ${since}) as failed,
        (select coalesce(jsonb_agg(coalesce(report -> 'categories', jsonb_build_object('all', counts))),
           '[]'::jsonb)
         from cutover.reconcile_runs
         where status = 'succeeded' and finished_at >= ${since}) as counts`,
    hasFindings
      ? sql<{ type: string; n: number }[]>`
          select type, count(*)::float8 as n from cutover.reconcile_findings
          where found_at >= ${since} group by type order by type`
      : [],
    hasAlerts
      ? sql<{ n: number }[]>`
          select count(*)::float8 as n from cutover.reconcile_alerts where raised_at >= ${since}`
      : [{ n: 0 }],
  ]);
  const r = row!;
  return {
    last_run: r.last_run,
    lag_s: r.lag_s === null ? null : Math.round(r.lag_s * 1000) / 1000,
    runs: { succeeded: r.succeeded, failed: r.failed },
    categories: consistencyByCategory(r.counts),
    findings_by_type: Object.fromEntries(findings.map((f) => [f.type, f.n])),
    alerts: alerts[0]?.n ?? 0,
  };
}
