-- cutover: claiming relay-outbox rows for the delivery ledger, as a function.
--
-- ws-fanout claims pending outbox rows (and reads their events) on every
-- append. The functions talk to Postgres without prepared statements (so they
-- also work through Supabase's transaction-mode pooler), which made every
-- claim re-plan a join over all of monitoring_events' daily partitions —
-- several milliseconds per append, more than the claim itself. PL/pgSQL
-- caches its statements' plans per connection (partitions are then pruned at
-- run time), so the claim lives here. Safe to re-apply.

-- Locks and returns pending outbox rows with their events (event columns are
-- null when the event row no longer exists).
--
-- p_keys null: the p_limit oldest pending rows (ws-fanout's drain).
-- p_keys [{id, event_time}]: those rows AND every older pending row of the
-- same sources (a relay; after an outage a source's backlog goes first, so
-- per-source order survives the recovery), at most p_limit.
-- Rows ws-fanout deferred itself (last_error 'fanout:…') wait for their
-- next_attempt_at.
--
-- Rows are locked in one global order (created_at, event_id) and waited for,
-- not skipped: an appender never jumps over an older row that another
-- appender holds (and might commit after it), and ordered locking cannot
-- deadlock. A row found delivered after the wait drops out of the claim.
create or replace function cutover.claim_ws_outbox(p_keys jsonb, p_limit integer)
returns table (
  event_id uuid, event_time timestamptz, source text, sequence_id bigint, event_type text,
  category text, "timestamp" timestamptz, data jsonb, checksum_alg text)
language plpgsql
as $$
#variable_conflict use_column
begin
  if p_keys is null then
    return query
    with claimed as (
      select o.event_id, o.event_time
      from cutover.relay_outbox o
      where o.status = 'pending'
        and not (o.last_error like 'fanout:%' and o.next_attempt_at > now())
      order by o.created_at, o.event_id
      limit p_limit
      for update of o)
    select c.event_id, c.event_time, e.source, e.sequence_id, e.event_type, e.category,
           e."timestamp", e.data, e.checksum_alg
    from claimed c
    left join lateral (
      select m.source, m.sequence_id, m.event_type, m.category, m."timestamp", m.data, m.checksum_alg
      from public.monitoring_events m
      where m.id = c.event_id and m."timestamp" = c.event_time) e on true;
  else
    return query
    with bound as (
      select o.source, max(o.created_at) as upto
      from cutover.relay_outbox o
      join jsonb_to_recordset(p_keys) as k(id uuid, event_time timestamptz)
        on o.event_id = k.id and o.event_time = k.event_time
      where o.status = 'pending'
      group by o.source
    ), claimed as (
      select o.event_id, o.event_time
      from cutover.relay_outbox o
      join bound b on b.source = o.source and o.created_at <= b.upto
      where o.status = 'pending'
        and not (o.last_error like 'fanout:%' and o.next_attempt_at > now())
      order by o.created_at, o.event_id
      limit p_limit
      for update of o)
    select c.event_id, c.event_time, e.source, e.sequence_id, e.event_type, e.category,
           e."timestamp", e.data, e.checksum_alg
    from claimed c
    left join lateral (
      select m.source, m.sequence_id, m.event_type, m.category, m."timestamp", m.data, m.checksum_alg
      from public.monitoring_events m
      where m.id = c.event_id and m."timestamp" = c.event_time) e on true;
  end if;
end
$$;

revoke all on function cutover.claim_ws_outbox(jsonb, integer) from public;
