-- cutover: the Realtime path.
--
-- Hosted Supabase Realtime does not deliver Postgres Changes of partitioned
-- tables (changes are decoded per leaf partition, whatever
-- publish_via_partition_root says), so the partitioned store of record,
-- public.monitoring_events, is NOT what subscribers listen to. Instead:
--
-- * delivery mode `postgres_changes`: ingest also inserts each event routed
--   to Realtime into public.monitoring_events_live — a small, unpartitioned
--   table in the supabase_realtime publication, pruned after
--   `live_retention_minutes`. Subscribers listen to INSERT on it; RLS decides
--   who sees what (Realtime checks it per subscriber).
-- * delivery mode `broadcast`: ingest calls realtime.send() in the same
--   transaction, one message per category topic (`monitoring:<category>`,
--   event `events`) carrying the batch, so a project's events/s is far above
--   its Realtime messages/s quota. Private channels by default, authorised by
--   the realtime.messages policies below.
--
-- Safe to re-apply.

create table if not exists public.monitoring_events_live (
  seq bigint primary key,
  id uuid not null,
  source text not null,
  sequence_id bigint not null,
  event_type text not null,
  category text not null,
  "timestamp" timestamptz not null,
  data jsonb not null,
  checksum text not null,
  checksum_alg text not null,
  routes text[] not null,
  received_at timestamptz not null default now()
);
create index if not exists monitoring_events_live_received_at on public.monitoring_events_live (received_at);

alter table public.monitoring_events_live enable row level security;
drop policy if exists monitoring_events_live_read_authenticated on public.monitoring_events_live;
create policy monitoring_events_live_read_authenticated on public.monitoring_events_live
  for select to authenticated using (true);
drop policy if exists monitoring_events_live_read_anon on public.monitoring_events_live;
create policy monitoring_events_live_read_anon on public.monitoring_events_live
  for select to anon using (cutover.anon_read_enabled());

-- Newer Supabase projects do not grant table privileges to the API roles by
-- default: Realtime needs SELECT for the subscriber's role to deliver a row.
revoke insert, update, delete, truncate on public.monitoring_events_live from anon, authenticated;
grant select on public.monitoring_events_live to anon, authenticated;
grant all on public.monitoring_events_live to service_role;

do $$
begin
  if not exists (
    select 1 from pg_publication_tables
    where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'monitoring_events_live'
  ) then
    alter publication supabase_realtime add table public.monitoring_events_live;
  end if;
end
$$;

-- Deletes live rows older than `live_retention_minutes` (default 60): the
-- store of record keeps them; the live table only has to outlast a
-- subscriber's reconnect. Returns the number deleted.
create or replace function cutover.prune_live_events(p_now timestamptz default now())
returns bigint
language plpgsql
as $$
declare
  v_deleted bigint;
begin
  delete from public.monitoring_events_live
  where received_at < p_now - make_interval(mins => cutover.setting_int('live_retention_minutes', 60));
  get diagnostics v_deleted = row_count;
  return v_deleted;
end
$$;

-- Private broadcast channels: who may receive `monitoring:*` topics.
-- realtime.messages exists on every hosted project (and in the local stack);
-- guarded so the migration also applies to a plain Postgres.
do $$
begin
  if to_regclass('realtime.messages') is null then
    raise notice 'realtime.messages is absent: broadcast policies not created';
    return;
  end if;
  execute 'drop policy if exists cutover_monitoring_receive_authenticated on realtime.messages';
  execute $p$
    create policy cutover_monitoring_receive_authenticated on realtime.messages
      for select to authenticated
      using (realtime.messages.extension = 'broadcast' and (select realtime.topic()) like 'monitoring:%')
  $p$;
  execute 'drop policy if exists cutover_monitoring_receive_anon on realtime.messages';
  execute $p$
    create policy cutover_monitoring_receive_anon on realtime.messages
      for select to anon
      using (
        realtime.messages.extension = 'broadcast'
        and (select realtime.topic()) like 'monitoring:%'
        and cutover.anon_read_enabled()
      )
  $p$;
end
$$;
