-- cutover: persisted, time-bucketed stats (DESIGN §2.6, issue 6 "metrics
-- persistence", issue 7 "metrics").
--
-- Edge Functions run as many short-lived instances, so no instance can see the
-- whole traffic in its own memory. Each instance aggregates what it observes
-- for a few seconds (shared/metrics/recorder.ts) and then ADDS its counts to
-- the rows below in one upsert statement. Every column is a sum (or a max),
-- so the order in which instances flush does not matter and rows from any
-- number of instances and buckets merge by adding them up.
--
-- Two shapes of the same counts:
-- * *_stats: per 10-second bucket (bucket_start is a multiple of 10 s since
--   the epoch), kept `stats_retention_hours` (setting, default 48 h) and
--   pruned by cutover.prune_stats(). The dashboard's history and the circuit
--   breakers' sliding windows read these.
-- * *_totals: cumulative since the project began, never pruned, so that the
--   Prometheus counters the metrics function exposes only ever go up (a sum
--   over retained buckets would fall when old buckets are pruned, which a
--   scraper reads as a counter reset).
--
-- The latency histogram is a fixed log-scale layout of 66 counts defined in
-- shared/metrics/histogram.ts (bucket i ≤ 2^(i/4) ms to 3 significant
-- figures, i = 0..64, then an overflow bucket above 65.5 s). Histograms are
-- merged with cutover.histogram_add / the aggregate cutover.histogram_sum;
-- arrays of different lengths are padded with zeros, never truncated.
--
-- Safe to re-apply: every object is created only when missing or replaced.

-- ---------------------------------------------------------------------------
-- Histogram arithmetic
-- ---------------------------------------------------------------------------

-- Element-wise sum of two histograms (null is the empty histogram).
create or replace function cutover.histogram_add(a bigint[], b bigint[])
returns bigint[]
language sql immutable parallel safe
as $$
  select case
    when a is null then b
    when b is null then a
    else array(
      select coalesce(x, 0) + coalesce(y, 0)
      from unnest(a, b) with ordinality as u(x, y, n)
      order by n)
  end
$$;

-- Sums histograms over rows: `select cutover.histogram_sum(histogram) ...`.
create or replace aggregate cutover.histogram_sum(bigint[]) (
  sfunc = cutover.histogram_add,
  stype = bigint[]
);

-- ---------------------------------------------------------------------------
-- Adapter calls: outcomes and latencies per adapter and operation
-- ---------------------------------------------------------------------------

-- One row per 10-second bucket, adapter and operation (e.g. websocket/relay:
-- ingest's POST to ws-fanout; realtime/write: the store statement when it
-- carries events routed to Realtime).
--
-- How a circuit breaker reads it: sum the rows of its adapter (and operation)
-- whose bucket_start lies in its sliding window — `bucket_start >= now() -
-- window` — and judge the sums: failure rate = failures / calls, slow-call
-- rate = slow_calls / calls (slow = over the adapter's latency threshold when
-- recorded), or percentiles of cutover.histogram_sum(histogram) against a
-- multiple of a baseline taken from an older window. `calls` below the
-- breaker's minimum means "not enough data, do not judge". The newest bucket
-- is still filling (instances flush every few seconds), so a window of W
-- seconds covers between W - 10 and W seconds of complete data plus the part
-- of the current bucket flushed so far. shared/metrics/store.ts
-- readAdapterWindow() does exactly this.
create table if not exists cutover.adapter_stats (
  bucket_start timestamptz not null
    constraint adapter_stats_bucket_aligned check (extract(epoch from bucket_start) % 10 = 0),
  adapter text not null check (adapter in ('websocket', 'realtime')),
  operation text not null check (operation ~ '^[a-z][a-z0-9_]{0,31}$'),
  -- Calls made, calls that failed, calls over the adapter's latency threshold.
  calls bigint not null default 0 check (calls >= 0),
  failures bigint not null default 0 check (failures between 0 and calls),
  slow_calls bigint not null default 0 check (slow_calls between 0 and calls),
  -- Events carried by successful calls (deliveries) and by failed calls.
  events bigint not null default 0 check (events >= 0),
  failed_events bigint not null default 0 check (failed_events >= 0),
  latency_sum_ms double precision not null default 0,
  latency_max_ms double precision not null default 0,
  histogram bigint[] not null,
  primary key (bucket_start, adapter, operation)
);

create table if not exists cutover.adapter_totals (
  adapter text not null check (adapter in ('websocket', 'realtime')),
  operation text not null check (operation ~ '^[a-z][a-z0-9_]{0,31}$'),
  calls bigint not null default 0,
  failures bigint not null default 0,
  slow_calls bigint not null default 0,
  events bigint not null default 0,
  failed_events bigint not null default 0,
  latency_sum_ms double precision not null default 0,
  latency_max_ms double precision not null default 0,
  histogram bigint[] not null,
  updated_at timestamptz not null default now(),
  primary key (adapter, operation)
);

-- ---------------------------------------------------------------------------
-- Ingest outcomes per event category
-- ---------------------------------------------------------------------------

-- Events ingest decided about (received = stored + duplicates + rejected) and
-- their JSON size in bytes. `unknown` is a rejected event whose category
-- could not be told (no valid category and no event_type to classify).
-- Requests answered 401/413/415/429/503 store nothing and are not counted.
create table if not exists cutover.ingest_stats (
  bucket_start timestamptz not null
    constraint ingest_stats_bucket_aligned check (extract(epoch from bucket_start) % 10 = 0),
  category text not null
    check (category in ('critical', 'performance', 'user_activity', 'system', 'debug', 'unknown')),
  received bigint not null default 0,
  stored bigint not null default 0,
  duplicates bigint not null default 0,
  rejected bigint not null default 0,
  bytes bigint not null default 0,
  primary key (bucket_start, category)
);

create table if not exists cutover.ingest_totals (
  category text primary key
    check (category in ('critical', 'performance', 'user_activity', 'system', 'debug', 'unknown')),
  received bigint not null default 0,
  stored bigint not null default 0,
  duplicates bigint not null default 0,
  rejected bigint not null default 0,
  bytes bigint not null default 0,
  updated_at timestamptz not null default now()
);

-- ---------------------------------------------------------------------------
-- The recorders themselves
-- ---------------------------------------------------------------------------

-- Per recorder name (the function that records, e.g. `ingest`; all its
-- instances add to one row): successful flushes, failed flush attempts, and
-- what was dropped because the database stayed unreachable longer than an
-- instance may buffer (whole 10-second buckets and the calls/events in them).
create table if not exists cutover.stats_recorders (
  recorder text primary key check (recorder ~ '^[a-z][a-z0-9_-]{0,63}$'),
  flushes bigint not null default 0,
  flush_failures bigint not null default 0,
  dropped_buckets bigint not null default 0,
  dropped_records bigint not null default 0,
  last_flush_at timestamptz
);

-- ---------------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------------

-- Deletes bucket rows older than `stats_retention_hours` (setting; default
-- 48 h, never below the 24 h the metrics summary reads) before `p_now`, and
-- returns how many rows went. Totals are never pruned. Idempotent; meant for
-- a scheduled job (pg_cron or the local scheduler).
create or replace function cutover.prune_stats(p_now timestamptz default now())
returns jsonb
language plpgsql
as $$
declare
  v_cutoff timestamptz :=
    p_now - make_interval(hours => greatest(24, cutover.setting_int('stats_retention_hours', 48)));
  v_adapter bigint;
  v_ingest bigint;
begin
  delete from cutover.adapter_stats where bucket_start < v_cutoff;
  get diagnostics v_adapter = row_count;
  delete from cutover.ingest_stats where bucket_start < v_cutoff;
  get diagnostics v_ingest = row_count;
  return jsonb_build_object(
    'cutoff', v_cutoff, 'adapter_stats_deleted', v_adapter, 'ingest_stats_deleted', v_ingest);
end
$$;

-- ---------------------------------------------------------------------------
-- Privileges: internal tables, readable by the service role only
-- ---------------------------------------------------------------------------

revoke all on cutover.adapter_stats, cutover.adapter_totals, cutover.ingest_stats,
  cutover.ingest_totals, cutover.stats_recorders from public, anon, authenticated;
grant select on cutover.adapter_stats, cutover.adapter_totals, cutover.ingest_stats,
  cutover.ingest_totals, cutover.stats_recorders to service_role;
revoke all on function cutover.prune_stats(timestamptz) from public;
