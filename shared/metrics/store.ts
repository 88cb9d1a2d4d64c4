/**
 * The stats tables' adapter (supabase/migrations/20261123000600_metrics.sql):
 * the recorder's one-statement write, and the reads the metrics function and
 * the circuit breakers use.
 */
import type { Sql } from "../db/client.ts";
import type { Adapter } from "../events/schema.ts";
import type { StatsBatch } from "./buffer.ts";
import type { AdapterCounts, IngestCounts, StatsCategory } from "./stats.ts";

const WRITE_SQL = `
with batch as (
  select $1::text::jsonb as j
), a as (
  select * from jsonb_to_recordset((select j -> 'adapters' from batch)) as x(
    bucket_start timestamptz, adapter text, operation text, calls bigint, failures bigint,
    slow_calls bigint, events bigint, failed_events bigint, latency_sum_ms float8,
    latency_max_ms float8, histogram bigint[])
), a_up as (
  insert into cutover.adapter_stats as t (bucket_start, adapter, operation, calls, failures,
    slow_calls, events, failed_events, latency_sum_ms, latency_max_ms, histogram)
  select bucket_start, adapter, operation, calls, failures, slow_calls, events, failed_events,
    latency_sum_ms, latency_max_ms, histogram
  from a order by bucket_start, adapter, operation
  on conflict (bucket_start, adapter, operation) do update set
    calls = t.calls + excluded.calls,
    failures = t.failures + excluded.failures,
    slow_calls = t.slow_calls + excluded.slow_calls,
    events = t.events + excluded.events,
    failed_events = t.failed_events + excluded.failed_events,
    latency_sum_ms = t.latency_sum_ms + excluded.latency_sum_ms,
    latency_max_ms = greatest(t.latency_max_ms, excluded.latency_max_ms),
    histogram = cutover.histogram_add(t.histogram, excluded.histogram)
  returning 1
), a_tot as (
  insert into cutover.adapter_totals as t (adapter, operation, calls, failures, slow_calls,
    events, failed_events, latency_sum_ms, latency_max_ms, histogram)
  select adapter, operation, sum(calls), sum(failures), sum(slow_calls), sum(events),
    sum(failed_events), sum(latency_sum_ms), max(latency_max_ms), cutover.histogram_sum(histogram)
  from a group by adapter, operation order by adapter, operation
  on conflict (adapter, operation) do update set
    calls = t.calls + excluded.calls,
    failures = t.failures + excluded.failures,
    slow_calls = t.slow_calls + excluded.slow_calls,
    events = t.events + excluded.events,
    failed_events = t.failed_events + excluded.failed_events,
    latency_sum_ms = t.latency_sum_ms + excluded.latency_sum_ms,
    latency_max_ms = greatest(t.latency_max_ms, excluded.latency_max_ms),
    histogram = cutover.histogram_add(t.histogram, excluded.histogram),
    updated_at = now()
  returning 1
), i as (
  select * from jsonb_to_recordset((select j -> 'ingest' from batch)) as x(
    bucket_start timestamptz, category text, received bigint, stored bigint, duplicates bigint,
    rejected bigint, bytes bigint)
), i_up as (
  insert into cutover.ingest_stats as t (bucket_start, category, received, stored, duplicates,
    rejected, bytes)
  select bucket_start, category, received, stored, duplicates, rejected, bytes
  from i order by bucket_start, category
  on conflict (bucket_start, category) do update set
    received = t.received + excluded.received,
    stored = t.stored + excluded.stored,
    duplicates = t.duplicates + excluded.duplicates,
    rejected = t.rejected + excluded.rejected,
    bytes = t.bytes + excluded.bytes
  returning 1
), i_tot as (
  insert into cutover.ingest_totals as t (category, received, stored, duplicates, rejected, bytes)
  select category, sum(received), sum(stored), sum(duplicates), sum(rejected), sum(bytes)
  from i group by category order by category
  on conflict (category) do update set
    received = t.received + excluded.received,
    stored = t.stored + excluded.stored,
    duplicates = t.duplicates + excluded.duplicates,
    rejected = t.rejected + excluded.rejected,
    bytes = t.bytes + excluded.bytes,
    updated_at = now()
  returning 1
), r as (
  insert into cutover.stats_recorders as t (recorder, flushes, flush_failures, dropped_buckets,
    dropped_records, last_flush_at)
  values ($2, 1, $3, $4, $5, now())
  on conflict (recorder) do update set
    flushes = t.flushes + 1,
    flush_failures = t.flush_failures + excluded.flush_failures,
    dropped_buckets = t.dropped_buckets + excluded.dropped_buckets,
    dropped_records = t.dropped_records + excluded.dropped_records,
    last_flush_at = excluded.last_flush_at
  returning 1
)
select (select count(*) from a_up)::int as adapter_rows, (select count(*) from i_up)::int as ingest_rows,
  (select count(*) from a_tot)::int + (select count(*) from i_tot)::int + (select count(*) from r)::int as other_rows`;

/**
 * Adds a batch to the bucket rows, the cumulative totals and the recorder's
 * own row — ONE statement, so it all lands or none of it does. Rows of the
 * same key from other instances are added to, never overwritten. Throws on
 * any database error (the caller keeps the batch and retries).
 */
export async function writeStatsBatch(
  sql: Sql,
  recorder: string,
  batch: StatsBatch,
  flushFailures: number,
): Promise<void> {
  const iso = (ms: number) => new Date(ms).toISOString();
  const payload = {
    adapters: batch.adapters.map((r) => ({ ...r, bucket_start: iso(r.bucket_start) })),
    ingest: batch.ingest.map((r) => ({ ...r, bucket_start: iso(r.bucket_start) })),
  };
  await sql.unsafe(WRITE_SQL, [
    JSON.stringify(payload),
    recorder,
    flushFailures,
    batch.dropped.buckets,
    batch.dropped.records,
  ]);
}

/** One adapter operation's counts over a window (or since the beginning). */
export interface AdapterWindow extends AdapterCounts {
  adapter: Adapter;
  operation: string;
}

export interface AdapterWindowQuery {
  /** Window length in seconds. */
  seconds: number;
  /** Where the window ends, in seconds before now (the database's clock; default 0). A breaker's baseline is an older window. */
  endSecondsAgo?: number;
  adapter?: Adapter;
  operation?: string;
}

const COUNT_COLUMNS = `
  sum(calls)::float8 as calls, sum(failures)::float8 as failures,
  sum(slow_calls)::float8 as slow_calls, sum(events)::float8 as events,
  sum(failed_events)::float8 as failed_events, sum(latency_sum_ms)::float8 as latency_sum_ms,
  coalesce(max(latency_max_ms), 0)::float8 as latency_max_ms,
  cutover.histogram_sum(histogram)::float8[] as histogram`;

/**
 * The circuit breakers' read: per adapter and operation, the sums of every
 * bucket that started within the last `seconds` (or within `seconds` ending
 * `endSecondsAgo` ago — e.g. an hour-long baseline before the judged window);
 * see the migration for what the newest, still-filling bucket means. Judge the result with
 * `describeAdapterCounts` (stats.ts). Operations with no calls in the window
 * are absent. Throws on database errors.
 */
export async function readAdapterWindow(
  sql: Sql,
  query: AdapterWindowQuery,
): Promise<AdapterWindow[]> {
  return await sql.unsafe<AdapterWindow[]>(
    `select adapter, operation, ${COUNT_COLUMNS}
     from cutover.adapter_stats
     where bucket_start >= now() - make_interval(secs => $4::float8 + $1::float8)
       and bucket_start < now() - make_interval(secs => $4::float8)
       and ($2::text is null or adapter = $2) and ($3::text is null or operation = $3)
     group by adapter, operation order by adapter, operation`,
    [query.seconds, query.adapter ?? null, query.operation ?? null, query.endSecondsAgo ?? 0],
  );
}

/** Cumulative adapter counts since the beginning (the Prometheus counters). */
export async function readAdapterTotals(sql: Sql): Promise<AdapterWindow[]> {
  return await sql.unsafe<AdapterWindow[]>(
    `select adapter, operation, ${COUNT_COLUMNS}
     from cutover.adapter_totals group by adapter, operation order by adapter, operation`,
  );
}

/** Cumulative ingest counts per category since the beginning. */
export async function readIngestTotals(
  sql: Sql,
): Promise<({ category: StatsCategory } & IngestCounts)[]> {
  return await sql.unsafe(
    `select category, received::float8 as received, stored::float8 as stored,
       duplicates::float8 as duplicates, rejected::float8 as rejected, bytes::float8 as bytes
     from cutover.ingest_totals order by category`,
  );
}

/** One recorder's own counters. */
export interface RecorderTotals {
  recorder: string;
  flushes: number;
  flush_failures: number;
  dropped_buckets: number;
  dropped_records: number;
  last_flush_at: Date | null;
}

/** The recorders' own counters. */
export async function readRecorderTotals(sql: Sql): Promise<RecorderTotals[]> {
  return await sql.unsafe<RecorderTotals[]>(
    `select recorder, flushes::float8 as flushes, flush_failures::float8 as flush_failures,
       dropped_buckets::float8 as dropped_buckets, dropped_records::float8 as dropped_records,
       last_flush_at
     from cutover.stats_recorders order by recorder`,
  );
}

/** Adapter counts per step of a window: `t` is the step's start (epoch ms). */
export interface AdapterStepRow extends AdapterWindow {
  t: number;
}

/** Ingest counts per step of a window: `t` is the step's start (epoch ms). */
export interface IngestStepRow extends IngestCounts {
  t: number;
  category: StatsCategory;
}

/**
 * The summary's read: bucket rows in [fromMs, toMs) summed per `stepMs`
 * step (aligned to the epoch) and key. Throws on database errors.
 */
export async function readStepRows(
  sql: Sql,
  fromMs: number,
  toMs: number,
  stepMs: number,
): Promise<{ adapters: AdapterStepRow[]; ingest: IngestStepRow[] }> {
  const args = [new Date(fromMs).toISOString(), new Date(toMs).toISOString(), stepMs / 1000];
  const step = `(extract(epoch from date_bin(make_interval(secs => $3::float8), bucket_start,
    'epoch'::timestamptz)) * 1000)::float8`;
  const [adapters, ingest] = await Promise.all([
    sql.unsafe<AdapterStepRow[]>(
      `select ${step} as t, adapter, operation, ${COUNT_COLUMNS}
       from cutover.adapter_stats
       where bucket_start >= $1::timestamptz and bucket_start < $2::timestamptz
       group by 1, adapter, operation order by 1, adapter, operation`,
      args,
    ),
    sql.unsafe<IngestStepRow[]>(
      `select ${step} as t, category, sum(received)::float8 as received,
         sum(stored)::float8 as stored, sum(duplicates)::float8 as duplicates,
         sum(rejected)::float8 as rejected, sum(bytes)::float8 as bytes
       from cutover.ingest_stats
       where bucket_start >= $1::timestamptz and bucket_start < $2::timestamptz
       group by 1, category order by 1, category`,
      args,
    ),
  ]);
  return { adapters: [...adapters], ingest: [...ingest] };
}
