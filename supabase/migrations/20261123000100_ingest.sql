-- cutover: the ingest path's schema.
--
-- public.monitoring_events is the table Supabase Realtime reads and the store
-- of record for every accepted event. Internal state lives in the `cutover`
-- schema, which the client roles (anon, authenticated) cannot reach.
-- Safe to re-apply: every object is created only when missing.

create schema if not exists cutover;
revoke all on schema cutover from public;
revoke all on schema cutover from anon, authenticated;
grant usage on schema cutover to service_role;

-- ---------------------------------------------------------------------------
-- Settings and flags
-- ---------------------------------------------------------------------------

-- One counter bumped by every change to flags, settings and rules: function
-- instances poll it (one tiny row) and reload their cached config when it moves.
create table if not exists cutover.config_state (
  id boolean primary key default true check (id),
  version bigint not null default 1,
  changed_at timestamptz not null default now()
);
insert into cutover.config_state (id) values (true) on conflict do nothing;

create table if not exists cutover.category_flags (
  category text primary key
    check (category in ('critical', 'performance', 'user_activity', 'system', 'debug')),
  enabled boolean not null,
  percentage numeric(5, 2) not null check (percentage between 0 and 100),
  adapters text[] not null check (adapters <@ array['websocket', 'realtime']::text[]),
  delivery_mode text not null default 'postgres_changes'
    check (delivery_mode in ('postgres_changes', 'broadcast')),
  checksum_alg text not null check (checksum_alg in ('crc32', 'sha256')),
  updated_at timestamptz not null default now()
);

-- Global settings as typed JSON values, validated by the flags API (zod) and
-- here by key-specific checks where a wrong value would break routing.
create table if not exists cutover.settings (
  key text primary key,
  value jsonb not null,
  updated_at timestamptz not null default now(),
  constraint settings_global_override check (
    key <> 'global_override' or value in ('null'::jsonb, '"websocket_only"'::jsonb, '"realtime_only"'::jsonb)
  ),
  constraint settings_primary_adapter check (
    key <> 'primary_adapter' or value in ('"websocket"'::jsonb, '"realtime"'::jsonb)
  )
);

-- Every change to flags and settings: who, when, before, after, why. Actor and
-- reason come from transaction settings the flags API sets
-- (`cutover.actor`, `cutover.reason`), falling back to the JWT subject and the
-- database user so that a change made by hand in SQL is still attributed.
create table if not exists cutover.flag_audit (
  id bigint generated always as identity primary key,
  changed_at timestamptz not null default now(),
  actor text not null,
  table_name text not null,
  key text not null,
  action text not null check (action in ('insert', 'update', 'delete')),
  before jsonb,
  after jsonb,
  reason text,
  config_version bigint not null
);
create index if not exists flag_audit_changed_at on cutover.flag_audit (changed_at desc);
create index if not exists flag_audit_key on cutover.flag_audit (table_name, key, changed_at desc);

create table if not exists cutover.classification_rules (
  id bigint generated always as identity primary key,
  -- A case-insensitive POSIX regular expression matched against event_type.
  pattern text not null,
  category text not null
    check (category in ('critical', 'performance', 'user_activity', 'system', 'debug')),
  -- Deprecated event types: stored, never relayed live.
  legacy boolean not null default false,
  -- Lower runs first; the first match wins.
  priority integer not null default 100,
  description text,
  unique (pattern)
);

create or replace function cutover.bump_config_version()
returns trigger
language plpgsql
as $$
begin
  update cutover.config_state set version = version + 1, changed_at = now() where id;
  return null;
end
$$;

create or replace function cutover.audit_flag_change()
returns trigger
language plpgsql
as $$
declare
  v_key text;
  v_actor text;
  v_version bigint;
begin
  v_key := coalesce(to_jsonb(new), to_jsonb(old))
    ->> case tg_table_name when 'category_flags' then 'category' else 'key' end;
  v_actor := coalesce(
    nullif(current_setting('cutover.actor', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role',
    current_user
  );
  select version into v_version from cutover.config_state where id;
  insert into cutover.flag_audit (actor, table_name, key, action, before, after, reason, config_version)
  values (
    v_actor, tg_table_name, v_key, lower(tg_op),
    case when tg_op <> 'INSERT' then to_jsonb(old) - 'updated_at' end,
    case when tg_op <> 'DELETE' then to_jsonb(new) - 'updated_at' end,
    nullif(current_setting('cutover.reason', true), ''),
    v_version
  );
  return null;
end
$$;

do $$
declare
  t text;
begin
  foreach t in array array['category_flags', 'settings', 'classification_rules'] loop
    if not exists (select 1 from pg_trigger where tgname = t || '_bump_version') then
      execute format(
        'create trigger %I after insert or update or delete on cutover.%I
           for each statement execute function cutover.bump_config_version()',
        t || '_bump_version', t);
    end if;
  end loop;
  foreach t in array array['category_flags', 'settings'] loop
    if not exists (select 1 from pg_trigger where tgname = t || '_audit') then
      -- Runs before the version bump (trigger names sort: _audit < _bump), so
      -- the audit row records the version the change is leaving.
      execute format(
        'create trigger %I after insert or update or delete on cutover.%I
           for each row execute function cutover.audit_flag_change()',
        t || '_audit', t);
    end if;
  end loop;
end
$$;

-- Seeds flags and settings that do not exist yet from the defaults a function
-- computed from its environment (DUAL_WRITE_*, ADAPTER_*, CIRCUIT_BREAKER_*).
-- Existing rows are never touched: once seeded, the table is authoritative.
create or replace function cutover.seed_config(defaults jsonb)
returns void
language plpgsql
as $$
begin
  perform set_config('cutover.actor', 'system:seed', true);
  perform set_config('cutover.reason', 'seeded from environment defaults', true);
  insert into cutover.category_flags (category, enabled, percentage, adapters, delivery_mode, checksum_alg)
  select c.key, (c.value ->> 'enabled')::boolean, (c.value ->> 'percentage')::numeric,
         array(select jsonb_array_elements_text(c.value -> 'adapters')),
         c.value ->> 'delivery_mode', c.value ->> 'checksum_alg'
  from jsonb_each(defaults -> 'categories') as c
  on conflict (category) do nothing;
  insert into cutover.settings (key, value)
  select s.key, s.value from jsonb_each(defaults -> 'settings') as s
  on conflict (key) do nothing;
  perform set_config('cutover.actor', '', true);
  perform set_config('cutover.reason', '', true);
end
$$;

-- Sensible classification rules (seed 001): errors, health, alerts and
-- connection status are critical; cache, latency and throughput metrics are
-- performance; sessions and user actions are user_activity; debug logs and
-- verbose metrics are debug; anything else falls through to system.
insert into cutover.classification_rules (pattern, category, legacy, priority, description) values
  ('^legacy[._]', 'system', true, 10, 'deprecated event types: stored, not relayed live'),
  ('(^|[._])(debug|trace|verbose)([._]|$)', 'debug', false, 20, 'debug logs and verbose metrics'),
  ('(^|[._])(error|exception|fatal|panic|crash|failure|failed)([._]|$)', 'critical', false, 30, 'errors'),
  ('(^|[._])(health|healthcheck|heartbeat_missed|alert|alarm|incident)([._]|$)', 'critical', false, 31, 'health and alerts'),
  ('(^|[._])(connection|connected|disconnected|reconnect(ed|ing)?)([._]|$)', 'critical', false, 32, 'connection status'),
  ('(^|[._])(cache|latency|throughput|response_time|qps|rps|cpu|memory|perf)([._]|$)', 'performance', false, 40, 'performance metrics'),
  ('(^|[._])(session|login|logout|signup|click|page_?view|user|action)([._]|$)', 'user_activity', false, 50, 'sessions and user actions')
on conflict (pattern) do nothing;

-- ---------------------------------------------------------------------------
-- Producers
-- ---------------------------------------------------------------------------

create table if not exists cutover.producers (
  id bigint generated always as identity primary key,
  name text not null unique,
  -- SHA-256 (hex) of the key; the key itself is never stored.
  key_hash text not null unique check (key_hash ~ '^[0-9a-f]{64}$'),
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);

-- ---------------------------------------------------------------------------
-- Events
-- ---------------------------------------------------------------------------

create sequence if not exists public.monitoring_events_seq;

-- Partitioned by the event's time (daily), so retention drops whole partitions
-- and time-range reads touch only the partitions they need. PostgreSQL requires
-- the partition key in every unique constraint, so identity is (id, timestamp):
-- a producer's retry resends the same event (same id and timestamp) and is
-- detected; reusing an id with a different timestamp is a producer bug that
-- reconciliation reports as a duplicate.
create table if not exists public.monitoring_events (
  id uuid not null,
  seq bigint not null default nextval('public.monitoring_events_seq'),
  source text not null,
  sequence_id bigint not null,
  event_type text not null,
  category text not null
    check (category in ('critical', 'performance', 'user_activity', 'system', 'debug')),
  "timestamp" timestamptz not null,
  data jsonb not null,
  checksum text not null,
  checksum_alg text not null check (checksum_alg in ('crc32', 'sha256')),
  routes text[] not null,
  legacy boolean not null default false,
  received_at timestamptz not null default now(),
  primary key (id, "timestamp")
) partition by range ("timestamp");

alter sequence public.monitoring_events_seq owned by public.monitoring_events.seq;

create index if not exists monitoring_events_timestamp on public.monitoring_events ("timestamp" desc);
create index if not exists monitoring_events_source_seq on public.monitoring_events (source, sequence_id);
create index if not exists monitoring_events_seq_idx on public.monitoring_events (seq);
create index if not exists monitoring_events_category_time on public.monitoring_events (category, "timestamp" desc);

-- Catches rows whose day has no partition yet (maintenance fell behind):
-- an acknowledged event is never refused for want of a partition.
create table if not exists public.monitoring_events_default
  partition of public.monitoring_events default;

-- An integer setting; `p_default` applies only until the functions have seeded
-- the settings from shared/config/settings.ts (the one home of every default).
create or replace function cutover.setting_int(p_key text, p_default integer)
returns integer
language sql stable
as $$
  select coalesce((select (value #>> '{}')::integer from cutover.settings where key = p_key), p_default)
$$;

-- Creates the daily partitions from the retention horizon to
-- `partitions_ahead_days` ahead, moving any rows the default partition holds
-- for a day into that day's new partition, and drops partitions wholly older
-- than `retention_days`. Returns what it did. Idempotent; run daily (pg_cron
-- or the local scheduler) and at start.
create or replace function cutover.maintain_partitions(p_now timestamptz default now())
returns jsonb
language plpgsql
as $$
declare
  v_retention integer := cutover.setting_int('retention_days', 30);
  v_ahead integer := cutover.setting_int('partitions_ahead_days', 7);
  v_day date;
  v_name text;
  v_created text[] := '{}';
  v_dropped text[] := '{}';
  v_moved bigint := 0;
  v_count bigint;
  r record;
begin
  for v_day in
    select generate_series((p_now - make_interval(days => v_retention))::date, (p_now + make_interval(days => v_ahead))::date, interval '1 day')::date
  loop
    v_name := 'monitoring_events_p' || to_char(v_day, 'YYYYMMDD');
    if to_regclass('public.' || v_name) is null then
      execute format('create table public.%I (like public.monitoring_events including defaults including constraints)', v_name);
      execute format(
        'with moved as (delete from public.monitoring_events_default where "timestamp" >= %L and "timestamp" < %L returning *)
         insert into public.%I select * from moved',
        v_day::timestamptz, (v_day + 1)::timestamptz, v_name);
      get diagnostics v_count = row_count;
      v_moved := v_moved + v_count;
      execute format('alter table public.monitoring_events attach partition public.%I for values from (%L) to (%L)',
        v_name, v_day::timestamptz, (v_day + 1)::timestamptz);
      v_created := v_created || v_name;
    end if;
  end loop;

  for r in
    select c.relname
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'public.monitoring_events'::regclass
      and c.relname ~ '^monitoring_events_p\d{8}$'
      and to_date(substring(c.relname from '\d{8}$'), 'YYYYMMDD') < (p_now - make_interval(days => v_retention))::date
  loop
    execute format('drop table public.%I', r.relname);
    v_dropped := v_dropped || r.relname::text;
  end loop;

  return jsonb_build_object('created', to_jsonb(v_created), 'dropped', to_jsonb(v_dropped), 'moved_from_default', v_moved);
end
$$;

select cutover.maintain_partitions();

-- The oldest timestamp still kept: events before it are refused at ingest.
create or replace function cutover.retention_horizon(p_now timestamptz default now())
returns timestamptz
language sql stable
as $$
  select (p_now - make_interval(days => cutover.setting_int('retention_days', 30)))::date::timestamptz
$$;

-- RLS: readable by authenticated; by anon only when `anon_read_enabled` is
-- true; writable by no client role (only ingest, as the database owner).
alter table public.monitoring_events enable row level security;

create or replace function cutover.anon_read_enabled()
returns boolean
language sql stable security definer
set search_path = ''
as $$
  select coalesce((select (value #>> '{}')::boolean from cutover.settings where key = 'anon_read_enabled'), false)
$$;
revoke all on function cutover.anon_read_enabled() from public;
grant execute on function cutover.anon_read_enabled() to anon, authenticated, service_role;

drop policy if exists monitoring_events_read_authenticated on public.monitoring_events;
create policy monitoring_events_read_authenticated on public.monitoring_events
  for select to authenticated using (true);
drop policy if exists monitoring_events_read_anon on public.monitoring_events;
create policy monitoring_events_read_anon on public.monitoring_events
  for select to anon using (cutover.anon_read_enabled());

revoke insert, update, delete, truncate on public.monitoring_events from anon, authenticated;
grant select on public.monitoring_events to anon, authenticated;
grant all on public.monitoring_events to service_role;

-- ---------------------------------------------------------------------------
-- Relay outbox (the WebSocket path's durable queue)
-- ---------------------------------------------------------------------------

-- Written in the same transaction as the event for every event routed to
-- `websocket` (transactional outbox, DESIGN §2.1); the relay marks a row
-- delivered once ws-fanout has accepted it.
create table if not exists cutover.relay_outbox (
  event_id uuid not null,
  event_time timestamptz not null,
  source text not null,
  sequence_id bigint not null,
  status text not null default 'pending' check (status in ('pending', 'delivered')),
  attempts integer not null default 0,
  created_at timestamptz not null default now(),
  next_attempt_at timestamptz not null default now(),
  delivered_at timestamptz,
  last_error text,
  primary key (event_id, event_time)
);
create index if not exists relay_outbox_pending on cutover.relay_outbox (next_attempt_at)
  where status = 'pending';
