-- cutover: the WebSocket path's delivery ledger (issue 4, DESIGN §2.1, §2.8).
--
-- ws-fanout turns relay-outbox rows into ledger rows: one row per event it
-- delivers, carrying the exact payload it sends, the checksum it recomputed
-- over that payload's canonical JSON, and a CURSOR that totally orders the
-- stream. Every ws-fanout instance reads the ledger (Postgres is the
-- backplane: LISTEN/NOTIFY for promptness, a poll for lost notifications) and
-- pushes new rows to its clients; clients resume from a cursor.
-- Safe to re-apply: every object is created only when missing.

-- ---------------------------------------------------------------------------
-- Ledger
-- ---------------------------------------------------------------------------

create table if not exists cutover.ws_delivery_ledger (
  -- Assigned by cutover.append_ws_deliveries in commit order (see there).
  cursor bigint primary key,
  event_id uuid not null,
  -- The event's time: with event_id the key of public.monitoring_events.
  event_time timestamptz not null,
  source text not null,
  sequence_id bigint not null,
  event_type text not null,
  category text not null
    check (category in ('critical', 'performance', 'user_activity', 'system', 'debug')),
  -- The same instant as event_time, under the name monitoring_events uses,
  -- so reconciliation can join either way.
  "timestamp" timestamptz generated always as (event_time) stored,
  -- The event exactly as ws-fanout sends it (the wire fields only).
  payload jsonb not null,
  -- Over the canonical JSON (RFC 8785) of `payload`, with checksum_alg.
  checksum text not null,
  checksum_alg text not null check (checksum_alg in ('crc32', 'sha256')),
  delivered_at timestamptz not null default clock_timestamp(),
  -- Which ws-fanout instance appended the row (diagnostics only).
  instance text,
  -- A re-relay of an event already in the ledger never adds a second row.
  constraint ws_delivery_ledger_event unique (event_id, event_time)
);
create index if not exists ws_delivery_ledger_source_seq
  on cutover.ws_delivery_ledger (source, sequence_id);
create index if not exists ws_delivery_ledger_delivered_at
  on cutover.ws_delivery_ledger (delivered_at);

-- The ledger's counters, one row: the last cursor handed out (cursors are
-- gap-free: allocated and inserted in the same transaction) and the highest
-- cursor pruning has removed (a client resuming from below it has a gap that
-- the ledger can no longer fill, and is told so).
create table if not exists cutover.ws_ledger_state (
  id boolean primary key default true check (id),
  last_cursor bigint not null default 0,
  pruned_through bigint not null default 0
);
insert into cutover.ws_ledger_state (id) values (true) on conflict do nothing;

-- ---------------------------------------------------------------------------
-- Reading the outbox and appending: the one writer of the ledger
-- ---------------------------------------------------------------------------

-- Pending outbox rows with their events (event columns null when the event
-- row no longer exists), without locking anything.
-- p_keys null: the p_limit oldest pending rows (ws-fanout's drain).
-- p_keys [{id, event_time}]: those rows AND every older pending row of the
-- same sources (a relay: after an outage a source's backlog is appended
-- before, or together with, its newer events), at most p_limit.
-- Rows ws-fanout deferred itself (last_error 'fanout:…') wait for their
-- next_attempt_at. PL/pgSQL so the plan (a join over every daily partition)
-- is cached per connection instead of re-planned on every append.
create or replace function cutover.read_ws_outbox(p_keys jsonb, p_limit integer)
returns table (
  event_id uuid, event_time timestamptz, source text, sequence_id bigint, event_type text,
  category text, "timestamp" timestamptz, data jsonb, checksum_alg text)
language plpgsql stable
as $$
#variable_conflict use_column
begin
  if p_keys is null then
    return query
    with pending as (
      select o.event_id, o.event_time
      from cutover.relay_outbox o
      where o.status = 'pending'
        and not (o.last_error like 'fanout:%' and o.next_attempt_at > now())
      order by o.created_at, o.event_id
      limit p_limit)
    select p.event_id, p.event_time, e.source, e.sequence_id, e.event_type, e.category,
           e."timestamp", e.data, e.checksum_alg
    from pending p
    left join lateral (
      select m.source, m.sequence_id, m.event_type, m.category, m."timestamp", m.data, m.checksum_alg
      from public.monitoring_events m
      where m.id = p.event_id and m."timestamp" = p.event_time) e on true;
  else
    return query
    with bound as (
      select o.source, max(o.created_at) as upto
      from cutover.relay_outbox o
      join jsonb_to_recordset(p_keys) as k(id uuid, event_time timestamptz)
        on o.event_id = k.id and o.event_time = k.event_time
      where o.status = 'pending'
      group by o.source
    ), pending as (
      select o.event_id, o.event_time
      from cutover.relay_outbox o
      join bound b on b.source = o.source and o.created_at <= b.upto
      where o.status = 'pending'
        and not (o.last_error like 'fanout:%' and o.next_attempt_at > now())
      order by o.created_at, o.event_id
      limit p_limit)
    select p.event_id, p.event_time, e.source, e.sequence_id, e.event_type, e.category,
           e."timestamp", e.data, e.checksum_alg
    from pending p
    left join lateral (
      select m.source, m.sequence_id, m.event_type, m.category, m."timestamp", m.data, m.checksum_alg
      from public.monitoring_events m
      where m.id = p.event_id and m."timestamp" = p.event_time) e on true;
  end if;
end
$$;

-- Appends delivered events to the ledger and marks their outbox rows
-- delivered — only rows that are STILL pending, checked under the append
-- lock — and NOTIFYs `cutover_ws_ledger` with the new last cursor when it
-- appended anything. Meant to run as a statement of its own (autocommit), so
-- the lock is released by the commit that ends the statement.
--
-- p_rows: [{event_id, event_time, source, sequence_id, event_type, category,
--           payload, checksum, checksum_alg}] (ws-fanout computes payload and
-- checksum with shared/events/checksum.ts). A row whose outbox row is no
-- longer pending (another appender was first) is skipped; one whose event is
-- already in the ledger is marked delivered but not appended again. Within
-- one call, cursors follow (source, sequence_id).
--
-- Why an advisory lock: readers remember the highest cursor they have seen
-- and ask for rows above it. With a plain sequence, transaction A could take
-- cursor 5 and transaction B cursor 6, B commit first, a reader see 6, and A's
-- 5 appear later below the reader's mark: lost. Taking one transaction-level
-- advisory lock before allocating cursors serializes appenders, and
-- PostgreSQL releases it only after the commit is visible, so the committed
-- cursors are always a gap-free prefix: a reader that has seen N has seen
-- every row <= N, forever. (The alternative, filtering readers by
-- pg_current_snapshot()/xmin, keeps appenders parallel but makes every reader
-- reason about in-flight transactions; the serialized section is one short
-- statement, so the simpler rule wins.)
create or replace function cutover.append_ws_deliveries(p_rows jsonb, p_instance text default null)
returns table (cursor bigint, event_id uuid, event_time timestamptz)
language plpgsql
as $$
#variable_conflict use_column
declare
  v_base bigint;
  v_count integer;
begin
  perform pg_advisory_xact_lock(hashtextextended('cutover.ws_delivery_ledger', 0));
  select s.last_cursor into v_base from cutover.ws_ledger_state s where s.id;

  return query
  with input as (
    select distinct on (x.event_id, x.event_time) x.*
    from jsonb_to_recordset(p_rows) as x(
      event_id uuid, event_time timestamptz, source text, sequence_id bigint, event_type text,
      category text, payload jsonb, checksum text, checksum_alg text)
    order by x.event_id, x.event_time
  ), taken as (
    update cutover.relay_outbox o
    set status = 'delivered', delivered_at = now(), last_error = null
    from input i
    where o.event_id = i.event_id and o.event_time = i.event_time and o.status = 'pending'
    returning o.event_id, o.event_time
  ), fresh as (
    select i.*, v_base + row_number() over (order by i.source, i.sequence_id, i.event_id) as n
    from input i
    join taken t on t.event_id = i.event_id and t.event_time = i.event_time
    where not exists (
      select 1 from cutover.ws_delivery_ledger l
      where l.event_id = i.event_id and l.event_time = i.event_time)
  )
  insert into cutover.ws_delivery_ledger as l
    (cursor, event_id, event_time, source, sequence_id, event_type, category, payload,
     checksum, checksum_alg, instance)
  select f.n, f.event_id, f.event_time, f.source, f.sequence_id, f.event_type, f.category,
         f.payload, f.checksum, f.checksum_alg, p_instance
  from fresh f
  order by f.n
  returning l.cursor, l.event_id, l.event_time;

  get diagnostics v_count = row_count;
  if v_count > 0 then
    update cutover.ws_ledger_state s set last_cursor = v_base + v_count where s.id;
    perform pg_notify('cutover_ws_ledger', (v_base + v_count)::text);
  end if;
end
$$;

-- ---------------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------------

-- Deletes ledger rows delivered before p_horizon (default: the events'
-- retention horizon) and delivered outbox rows as old, and advances
-- pruned_through. Rows go in cursor order only (delivered_at grows with the
-- cursor, both being set under the append lock), so "everything after
-- pruned_through is still here" stays true. Returns what it did.
create or replace function cutover.prune_ws_delivery_ledger(
  p_horizon timestamptz default cutover.retention_horizon()
)
returns jsonb
language plpgsql
as $$
declare
  v_through bigint;
  v_ledger bigint := 0;
  v_outbox bigint := 0;
begin
  select max(l.cursor) into v_through
  from cutover.ws_delivery_ledger l where l.delivered_at < p_horizon;
  if v_through is not null then
    delete from cutover.ws_delivery_ledger l where l.cursor <= v_through;
    get diagnostics v_ledger = row_count;
    update cutover.ws_ledger_state s
    set pruned_through = greatest(s.pruned_through, v_through) where s.id;
  end if;
  delete from cutover.relay_outbox o where o.status = 'delivered' and o.delivered_at < p_horizon;
  get diagnostics v_outbox = row_count;
  return jsonb_build_object(
    'ledger_rows_deleted', v_ledger,
    'outbox_rows_deleted', v_outbox,
    'pruned_through', (select s.pruned_through from cutover.ws_ledger_state s where s.id));
end
$$;

revoke all on function cutover.read_ws_outbox(jsonb, integer) from public;
revoke all on function cutover.append_ws_deliveries(jsonb, text) from public;
revoke all on function cutover.prune_ws_delivery_ledger(timestamptz) from public;
grant select on cutover.ws_delivery_ledger, cutover.ws_ledger_state to service_role;
