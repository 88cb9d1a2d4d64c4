-- cutover: scheduled jobs, one source of truth for pg_cron and the local
-- scheduler.
--
-- cutover.scheduled_jobs lists every job with its schedule (pg_cron syntax:
-- five-field cron, or '[1-59] seconds'). On hosted Supabase,
-- cutover.apply_schedules() installs them in pg_cron: SQL jobs run as they
-- are; function jobs call the Edge Function through pg_net with the project
-- URL and the service-role key read from Vault at run time, as Supabase
-- documents (create the secrets once:
--   select vault.create_secret('https://<ref>.supabase.co', 'project_url');
--   select vault.create_secret('<service role key>', 'service_role_key');
-- ). Request bodies stay tiny (pg_net stalls on large ones). Where pg_cron,
-- pg_net or Vault are absent (the local stack), the migration still applies
-- and the local scheduler runs the same rows on the same schedules.

do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    create extension if not exists pg_cron;
  end if;
  if exists (select 1 from pg_available_extensions where name = 'pg_net') then
    create extension if not exists pg_net with schema extensions;
  end if;
end
$$;

create table if not exists cutover.scheduled_jobs (
  name text primary key check (name ~ '^[a-z0-9-]+$'),
  schedule text not null,
  kind text not null check (kind in ('function', 'sql')),
  -- The function's name (POST /functions/v1/<target>) or the SQL to run.
  target text not null,
  body jsonb not null default '{}'::jsonb check (octet_length(body::text) <= 1024),
  enabled boolean not null default true,
  description text
);

-- Runs made by the local scheduler (pg_cron keeps its own in cron.job_run_details).
create table if not exists cutover.job_runs (
  id bigint generated always as identity primary key,
  job text not null,
  runner text not null check (runner in ('local', 'manual')),
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  ok boolean,
  detail jsonb
);
create index if not exists job_runs_job_started on cutover.job_runs (job, started_at desc);

insert into cutover.scheduled_jobs (name, schedule, kind, target, body, description) values
  ('reconcile', '30 seconds', 'function', 'reconcile', '{"trigger":"schedule"}',
   'compare the WebSocket and Realtime paths, repair, report'),
  ('maintain-partitions', '17 * * * *', 'sql', 'select cutover.maintain_partitions()', '{}',
   'create coming daily partitions of monitoring_events, drop expired ones'),
  ('prune-live-events', '* * * * *', 'sql', 'select cutover.prune_live_events()', '{}',
   'trim the postgres_changes feed table'),
  ('prune-job-runs', '43 3 * * *', 'sql', 'delete from cutover.job_runs where started_at < now() - interval ''7 days''', '{}',
   'keep a week of local job history')
on conflict (name) do update set
  schedule = excluded.schedule, kind = excluded.kind, target = excluded.target,
  body = excluded.body, description = excluded.description;

-- The command pg_cron runs for a job: its SQL, or an HTTP POST of its small
-- body to the Edge Function through pg_net, with the project URL and the
-- service-role key read from Vault when the job runs (never stored here).
create or replace function cutover.job_command(p_job cutover.scheduled_jobs)
returns text
language sql
immutable
as $$
  select case p_job.kind
    when 'sql' then p_job.target
    else format(
      $cmd$select net.http_post(
  url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url') || '/functions/v1/%s',
  headers := jsonb_build_object(
    'Content-Type', 'application/json',
    'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key')),
  body := %L::jsonb,
  timeout_milliseconds := 30000)$cmd$,
      p_job.target, p_job.body::text)
  end
$$;

-- (Re)installs every enabled job in pg_cron under the name `cutover:<name>`
-- and removes cutover jobs no longer listed. A no-op (with a message) where
-- pg_cron is absent. Call it again after editing cutover.scheduled_jobs.
create or replace function cutover.apply_schedules()
returns text
language plpgsql
as $$
declare
  j cutover.scheduled_jobs;
  r record;
  v_scheduled integer := 0;
  v_skipped text[] := '{}';
begin
  if not exists (select 1 from pg_extension where extname = 'pg_cron') then
    return 'pg_cron is not installed: the local scheduler runs cutover.scheduled_jobs';
  end if;
  for r in
    select jobname from cron.job
    where jobname like 'cutover:%'
      and substring(jobname from 9) not in (select name from cutover.scheduled_jobs where enabled)
  loop
    perform cron.unschedule(r.jobname);
  end loop;
  for j in select * from cutover.scheduled_jobs where enabled order by name loop
    if j.kind = 'function' and (
      not exists (select 1 from pg_extension where extname = 'pg_net')
      or to_regclass('vault.decrypted_secrets') is null
    ) then
      v_skipped := v_skipped || j.name;
      continue;
    end if;
    perform cron.schedule('cutover:' || j.name, j.schedule, cutover.job_command(j));
    v_scheduled := v_scheduled + 1;
  end loop;
  return format('%s job(s) scheduled in pg_cron%s', v_scheduled,
    case when cardinality(v_skipped) > 0
      then format('; skipped (pg_net or Vault missing): %s', array_to_string(v_skipped, ', ')) else '' end);
end
$$;

do $$
begin
  raise notice '%', cutover.apply_schedules();
end
$$;
