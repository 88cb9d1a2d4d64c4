-- cutover: half-open probes judged by rate, as resilience4j does (issue 6).
--
-- A half-open breaker admits N probes and judges them like a window: it
-- re-opens when failures / N reaches the adapter's error threshold or slow
-- calls / N the slow-call threshold, and closes when all N reported below
-- both. probe_successes counts every probe that succeeded (slow ones too);
-- these two columns count the failed and the slow ones. Safe to re-apply.

alter table cutover.breaker_state add column if not exists probe_failures integer not null default 0;
alter table cutover.breaker_state add column if not exists probe_slow integer not null default 0;

do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'breaker_state_probe_counts') then
    alter table cutover.breaker_state add constraint breaker_state_probe_counts check (
      probe_failures >= 0 and probe_slow between 0 and probe_successes
      and probe_successes + probe_failures <= probes_admitted);
  end if;
end
$$;
