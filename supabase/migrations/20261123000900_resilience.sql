-- cutover: resilience (issue 6) — shared circuit breakers, the dead-letter
-- queue, automated rollback, the test-only fault hook, and their schedules.
--
-- Edge Functions run as many short-lived instances, so every piece of state
-- here lives in Postgres: an instance caches it for about a second and makes
-- every change with a conditional UPDATE, never from its own memory alone.
-- The decisions themselves are pure TypeScript (shared/resilience/*.ts).
-- Safe to re-apply: every object is created only when missing or replaced.

-- ---------------------------------------------------------------------------
-- Circuit breakers (shared/resilience/breaker.ts, breaker-store.ts)
-- ---------------------------------------------------------------------------

-- One row per adapter. Its calls are judged from cutover.adapter_stats (the
-- 10-second buckets every instance adds to); this row holds only what the
-- state machine needs. Every change bumps `version`, and writers update
-- `where version = <the version they read>`: of two instances making the
-- same transition at once, exactly one succeeds and the other re-reads.
create table if not exists cutover.breaker_state (
  adapter text primary key check (adapter in ('websocket', 'realtime')),
  state text not null default 'closed' check (state in ('closed', 'open', 'half_open')),
  version bigint not null default 0,
  -- When the current state was entered.
  since timestamptz not null default now(),
  -- While open: when probing may begin.
  open_until timestamptz,
  -- The last close after an open period: start of the judged window and of
  -- the dual-write restore ramp (null: never opened).
  closed_at timestamptz,
  probes_admitted integer not null default 0 check (probes_admitted >= 0),
  probe_successes integer not null default 0 check (probe_successes between 0 and probes_admitted),
  reason text,
  -- Consecutive connection failures (the rollback trigger); any success resets.
  conn_failures integer not null default 0,
  conn_failures_first_at timestamptz,
  conn_failures_last_at timestamptz,
  updated_at timestamptz not null default now()
);
insert into cutover.breaker_state (adapter) values ('websocket'), ('realtime')
on conflict (adapter) do nothing;

-- Every transition with its reason (and the window or probe that caused it).
create table if not exists cutover.breaker_transitions (
  id bigint generated always as identity primary key,
  adapter text not null,
  from_state text not null,
  to_state text not null,
  reason text not null,
  details jsonb,
  instance text,
  at timestamptz not null default now()
);
create index if not exists breaker_transitions_adapter_at on cutover.breaker_transitions (adapter, at desc);

-- ---------------------------------------------------------------------------
-- Dead-letter queue (shared/resilience/dead-letters.ts, dead-letter-store.ts)
-- ---------------------------------------------------------------------------

-- One failed (or deferred) delivery of one event to one adapter. The event
-- itself stays in public.monitoring_events (the store of record); for the
-- WebSocket path its relay-outbox row stays pending too, so a dead letter is
-- the delivery's retry state, not the only copy of anything.
--   pending   → retried by dlq-retry when next_attempt_at is due;
--   delivered → final (by dlq-retry, or by any other path: see the trigger);
--   dead      → attempts exhausted or a permanent error; replayable.
-- claimed_by/claimed_at: the dlq-retry run that holds the row (a lease:
-- claiming moves next_attempt_at forward by the lease, so no transaction is
-- held open across the HTTP call and a crashed run's rows come back).
create table if not exists cutover.dead_letters (
  id bigint generated always as identity primary key,
  adapter text not null check (adapter in ('websocket', 'realtime')),
  operation text not null check (operation ~ '^[a-z][a-z0-9_]{0,31}$'),
  event_id uuid not null,
  event_time timestamptz not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'dead')),
  attempts integer not null default 0 check (attempts >= 0),
  last_error text,
  first_failed_at timestamptz not null default now(),
  last_failed_at timestamptz not null default now(),
  next_attempt_at timestamptz not null default now(),
  delivered_at timestamptz,
  dead_at timestamptz,
  claimed_by text,
  claimed_at timestamptz,
  constraint dead_letters_delivery unique (adapter, event_id, event_time)
);
create index if not exists dead_letters_due on cutover.dead_letters (adapter, next_attempt_at)
  where status = 'pending';
create index if not exists dead_letters_status_failed on cutover.dead_letters (status, last_failed_at);

-- A WebSocket delivery is done when its outbox row is delivered, whoever did
-- it: the relay, ws-fanout's own drain, or dlq-retry. One statement-level
-- trigger (transition table, so a 1,000-row append costs one join) marks the
-- matching dead letters delivered.
create or replace function cutover.dead_letters_follow_outbox()
returns trigger
language plpgsql
as $$
begin
  update cutover.dead_letters d
  set status = 'delivered', delivered_at = coalesce(n.delivered_at, now()), next_attempt_at = now()
  from new_rows n
  where n.status = 'delivered'
    and d.adapter = 'websocket' and d.event_id = n.event_id and d.event_time = n.event_time
    and d.status <> 'delivered';
  return null;
end
$$;

drop trigger if exists relay_outbox_delivered_dead_letters on cutover.relay_outbox;
create trigger relay_outbox_delivered_dead_letters
  after update on cutover.relay_outbox
  referencing new table as new_rows
  for each statement execute function cutover.dead_letters_follow_outbox();

-- Delivers Realtime dead letters again: a row in monitoring_events_live
-- (postgres_changes) or one realtime.send per category (broadcast), by the
-- category's current delivery mode. Returns the ids delivered (events whose
-- row no longer exists are not). Runs in the caller's transaction.
create or replace function cutover.redeliver_realtime(p_ids bigint[])
returns table (id bigint)
language plpgsql
as $$
#variable_conflict use_column
declare
  v_private boolean := coalesce(
    (select (value #>> '{}')::boolean from cutover.settings where key = 'broadcast_private'), true);
begin
  return query
  with letters as (
    select d.id, d.event_id, d.event_time from cutover.dead_letters d
    where d.id = any (p_ids) and d.adapter = 'realtime'
  ), events as (
    select l.id as letter, e.*, coalesce(f.delivery_mode, 'postgres_changes') as mode
    from letters l
    join public.monitoring_events e on e.id = l.event_id and e."timestamp" = l.event_time
    left join cutover.category_flags f on f.category = e.category
  ), live as (
    insert into public.monitoring_events_live
      (seq, id, source, sequence_id, event_type, category, "timestamp", data, checksum,
       checksum_alg, routes, received_at)
    select seq, events.id, source, sequence_id, event_type, category, "timestamp", data, checksum,
           checksum_alg, routes, received_at
    from events where mode = 'postgres_changes'
    on conflict (seq) do nothing
    returning 1
  ), sent as (
    select realtime.send(
      jsonb_build_object('events', jsonb_agg(jsonb_build_object(
        'seq', seq, 'id', events.id, 'source', source, 'sequence_id', sequence_id,
        'event_type', event_type, 'category', category,
        'timestamp', to_char("timestamp" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'data', data, 'checksum', checksum, 'checksum_alg', checksum_alg,
        'routes', to_jsonb(routes), 'received_at', received_at) order by seq)),
      'events', 'monitoring:' || category, v_private)
    from events where mode = 'broadcast'
    group by category
  )
  -- `sent` is a SELECT: PostgreSQL runs it only when referenced (`live`, an
  -- INSERT, always runs).
  select events.letter from events where (select count(*) from sent) >= 0;
end
$$;

-- Retention and size limits (setting `dead_letters`): delivered rows after
-- delivered_retention_hours, dead rows after dead_retention_days, and the
-- oldest dead rows beyond max_dead_rows. Pending rows are never deleted.
-- Also trims the breaker transition log, the rollback log and the run
-- reports to 30 days. Returns what it did.
create or replace function cutover.prune_dead_letters(p_now timestamptz default now())
returns jsonb
language plpgsql
as $$
declare
  v_cfg jsonb := coalesce((select value from cutover.settings where key = 'dead_letters'), '{}'::jsonb);
  v_delivered_h integer := coalesce((v_cfg ->> 'delivered_retention_hours')::integer, 24);
  v_dead_d integer := coalesce((v_cfg ->> 'dead_retention_days')::integer, 30);
  v_max_dead bigint := coalesce((v_cfg ->> 'max_dead_rows')::bigint, 100000);
  v_delivered bigint;
  v_dead bigint;
  v_over bigint;
  v_logs bigint := 0;
  v_n bigint;
begin
  delete from cutover.dead_letters
  where status = 'delivered' and delivered_at < p_now - make_interval(hours => v_delivered_h);
  get diagnostics v_delivered = row_count;
  delete from cutover.dead_letters
  where status = 'dead' and dead_at < p_now - make_interval(days => v_dead_d);
  get diagnostics v_dead = row_count;
  delete from cutover.dead_letters
  where id in (
    select id from cutover.dead_letters where status = 'dead'
    order by dead_at desc, id desc offset v_max_dead);
  get diagnostics v_over = row_count;
  delete from cutover.breaker_transitions where at < p_now - interval '30 days';
  get diagnostics v_n = row_count;
  v_logs := v_logs + v_n;
  delete from cutover.rollbacks where at < p_now - interval '30 days';
  get diagnostics v_n = row_count;
  v_logs := v_logs + v_n;
  delete from cutover.resilience_runs where started_at < p_now - interval '30 days';
  get diagnostics v_n = row_count;
  v_logs := v_logs + v_n;
  return jsonb_build_object(
    'delivered_deleted', v_delivered, 'dead_expired', v_dead, 'dead_over_limit', v_over,
    'log_rows_deleted', v_logs);
end
$$;

-- ---------------------------------------------------------------------------
-- Automated rollback (shared/resilience/rollback.ts, watch.ts)
-- ---------------------------------------------------------------------------

-- Each trigger's running streak per adapter ("over the threshold for N minutes").
create table if not exists cutover.rollback_watch (
  adapter text not null check (adapter in ('websocket', 'realtime')),
  trigger text not null check (trigger in ('error_rate', 'latency', 'connection_failures')),
  breached_since timestamptz,
  last_breach_at timestamptz,
  last_evaluated_at timestamptz,
  last_verdict text,
  last_detail text,
  primary key (adapter, trigger)
);

-- Every rollback made: what fired, why, and what changed (the flag audit has
-- the same change under actor `rollback` with this reason).
create table if not exists cutover.rollbacks (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  adapter text not null,
  trigger text not null,
  reason text not null,
  action text not null check (action in ('fallback_to_primary', 'global_override', 'none')),
  changes jsonb not null default '[]'::jsonb,
  config_version bigint
);
create index if not exists rollbacks_at on cutover.rollbacks (at desc);

-- ---------------------------------------------------------------------------
-- Run reports (dlq-retry and the watch)
-- ---------------------------------------------------------------------------

create table if not exists cutover.resilience_runs (
  id uuid primary key,
  kind text not null check (kind in ('dlq-retry', 'watch')),
  trigger text,
  instance text,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  ok boolean,
  report jsonb
);
create index if not exists resilience_runs_kind_started on cutover.resilience_runs (kind, started_at desc);

-- ---------------------------------------------------------------------------
-- Test-only fault hook (shared/resilience/faults.ts)
-- ---------------------------------------------------------------------------

-- Faults a function injects into its own requests: a delay and/or a failure
-- status for requests whose path starts with path_prefix, until `until`.
-- INERT unless the function runs with CUTOVER_FAULT_HOOKS=1: without it no
-- function reads this table. The fault tests start a stack with it set.
create table if not exists cutover.fault_injections (
  name text primary key check (name ~ '^[a-z0-9_-]{1,64}$'),
  function_name text not null,
  path_prefix text not null default '/',
  method text,
  delay_ms integer not null default 0 check (delay_ms between 0 and 60000),
  fail_status integer check (fail_status between 400 and 599),
  until timestamptz not null default now() + interval '10 minutes',
  created_at timestamptz not null default now()
);

-- ---------------------------------------------------------------------------
-- Privileges: internal, service role only
-- ---------------------------------------------------------------------------

revoke all on cutover.breaker_state, cutover.breaker_transitions, cutover.dead_letters,
  cutover.rollback_watch, cutover.rollbacks, cutover.resilience_runs, cutover.fault_injections
  from public, anon, authenticated;
grant select on cutover.breaker_state, cutover.breaker_transitions, cutover.dead_letters,
  cutover.rollback_watch, cutover.rollbacks, cutover.resilience_runs to service_role;
revoke all on function cutover.dead_letters_follow_outbox() from public;
revoke all on function cutover.redeliver_realtime(bigint[]) from public;
revoke all on function cutover.prune_dead_letters(timestamptz) from public;

-- ---------------------------------------------------------------------------
-- Schedules (the one source of truth for pg_cron and the local scheduler)
-- ---------------------------------------------------------------------------

insert into cutover.scheduled_jobs (name, schedule, kind, target, body, description) values
  ('dlq-retry', '10 seconds', 'function', 'dlq-retry', '{"trigger":"schedule"}',
   'retry due dead letters with backoff, park the hopeless, adopt lost relays; report'),
  ('resilience-watch', '10 seconds', 'function', 'dlq-retry/watch', '{"trigger":"schedule"}',
   'evaluate the shared circuit breakers and the automated rollback triggers; report'),
  ('prune-dead-letters', '23 * * * *', 'sql', 'select cutover.prune_dead_letters()', '{}',
   'dead-letter retention and size limits; trim breaker, rollback and run logs'),
  ('prune-stats', '37 * * * *', 'sql', 'select cutover.prune_stats()', '{}',
   'drop adapter and ingest stats buckets older than stats_retention_hours')
on conflict (name) do update set
  schedule = excluded.schedule, kind = excluded.kind, target = excluded.target,
  body = excluded.body, description = excluded.description;

do $$
begin
  raise notice '%', cutover.apply_schedules();
end
$$;
