-- cutover: reconciliation of the two delivery paths (issue 7, seed 000).
--
-- reconcile compares public.monitoring_events (the Realtime path and store of
-- record) with cutover.ws_delivery_ledger (what the WebSocket path sent) for
-- events routed to both, records what it found, repairs what it can and
-- raises alerts. It only reads the delivery tables, except for one repair:
-- putting a relay-outbox row back to pending so ws-fanout delivers it again.
--
-- Incremental: cutover.reconcile_state holds how far each source table has
-- been read (events by `seq`, ledger rows by `cursor`); what could not be
-- judged yet (a counterpart may still arrive within the max delay, a
-- sequence gap may still be filled) waits in cutover.reconcile_pending, so a
-- run reads new rows plus that small carry-over, never the whole table.
-- Safe to re-apply: every object is created only when missing.

-- ---------------------------------------------------------------------------
-- Runs
-- ---------------------------------------------------------------------------

create table if not exists cutover.reconcile_runs (
  id bigint generated always as identity primary key,
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  trigger text not null check (trigger in ('schedule', 'manual')),
  status text not null default 'running' check (status in ('running', 'succeeded', 'failed')),
  -- Every event received before the watermark has been judged (or waits as
  -- a known pending item); lag = finished_at - watermark_to.
  watermark_from timestamptz,
  watermark_to timestamptz,
  -- The read positions before and after: events by seq, ledger rows by cursor.
  seq_from bigint,
  seq_to bigint,
  cursor_from bigint,
  cursor_to bigint,
  -- Units judged, by outcome (matched, late, checksum_mismatch, ...).
  counts jsonb not null default '{}'::jsonb,
  -- The JSON report the run returned (shared/reconcile/report.ts).
  report jsonb,
  error text
);
create index if not exists reconcile_runs_started_at on cutover.reconcile_runs (started_at desc);

-- ---------------------------------------------------------------------------
-- Findings
-- ---------------------------------------------------------------------------

create table if not exists cutover.reconcile_findings (
  id bigint generated always as identity primary key,
  run_id bigint not null references cutover.reconcile_runs (id) on delete cascade,
  found_at timestamptz not null default now(),
  type text not null check (type in (
    'missing_on_websocket', 'missing_on_realtime', 'checksum_mismatch', 'late', 'duplicate',
    'producer_gap')),
  -- What the finding is about, stable across runs: `<event id>@<event time>`
  -- for a row, `<source>#<first>-<last>` for a producer gap. Unique per type,
  -- so a second run over the same data adds nothing.
  finding_key text not null,
  event_id uuid,
  event_time timestamptz,
  source text not null,
  -- For a producer gap: the first missing sequence_id (details has the range).
  sequence_id bigint,
  event_type text,
  -- Null for a producer gap (the lost events' category is unknown).
  category text
    check (category in ('critical', 'performance', 'user_activity', 'system', 'debug')),
  details jsonb not null default '{}'::jsonb,
  repaired boolean not null default false,
  repair_note text,
  constraint reconcile_findings_once unique (type, finding_key)
);
create index if not exists reconcile_findings_run on cutover.reconcile_findings (run_id, id desc);
create index if not exists reconcile_findings_found_at on cutover.reconcile_findings (found_at desc);
create index if not exists reconcile_findings_type on cutover.reconcile_findings (type, id desc);
create index if not exists reconcile_findings_category on cutover.reconcile_findings (category, id desc);
create index if not exists reconcile_findings_source on cutover.reconcile_findings (source, sequence_id);

-- ---------------------------------------------------------------------------
-- Alerts
-- ---------------------------------------------------------------------------

-- One row per run and category whose mismatch rate (share of judged events
-- not matched) passed the category's threshold
-- (settings.reconcile.alert_thresholds).
create table if not exists cutover.reconcile_alerts (
  id bigint generated always as identity primary key,
  run_id bigint not null references cutover.reconcile_runs (id) on delete cascade,
  category text not null
    check (category in ('critical', 'performance', 'user_activity', 'system', 'debug')),
  -- The span of receive times of the events the rate was measured over.
  window_from timestamptz,
  window_to timestamptz,
  judged integer not null,
  mismatched integer not null,
  mismatch_rate double precision not null,
  threshold double precision not null,
  raised_at timestamptz not null default now(),
  unique (run_id, category)
);
create index if not exists reconcile_alerts_raised_at on cutover.reconcile_alerts (raised_at desc);
create index if not exists reconcile_alerts_category on cutover.reconcile_alerts (category, raised_at desc);

-- ---------------------------------------------------------------------------
-- State: the watermark
-- ---------------------------------------------------------------------------

create table if not exists cutover.reconcile_state (
  id boolean primary key default true check (id),
  -- Events with seq <= last_seq have been read.
  last_seq bigint not null default 0,
  -- Ledger rows with cursor <= last_cursor have been read.
  last_cursor bigint not null default 0,
  -- Every event received before this has been judged (null before the first run).
  watermark timestamptz,
  last_run_id bigint,
  updated_at timestamptz not null default now()
);
insert into cutover.reconcile_state (id) values (true) on conflict do nothing;

-- What a run read but could not judge yet, carried to the next run:
-- * `event` (ref = monitoring_events.seq): routed to both paths, no ledger
--   row yet, within the max delay of `since` (its receipt, or its re-relay);
-- * `ledger` (ref = ws_delivery_ledger.cursor): no event row yet;
-- * `gap` (source, gap_after, gap_before): sequence ids between the two are
--   on neither path yet; judged a producer gap once `since` (the receipt of
--   gap_before) is older than the max delay.
create table if not exists cutover.reconcile_pending (
  id bigint generated always as identity primary key,
  kind text not null check (kind in ('event', 'ledger', 'gap')),
  ref bigint,
  source text,
  gap_after bigint,
  gap_before bigint,
  since timestamptz not null,
  -- Set when reconcile re-relayed the event: a later run confirms the repair.
  repaired_at timestamptz,
  repair_run_id bigint,
  added_at timestamptz not null default now(),
  check ((kind = 'gap') = (ref is null)),
  check ((kind = 'gap') = (source is not null and gap_after is not null and gap_before is not null))
);
create unique index if not exists reconcile_pending_row on cutover.reconcile_pending (kind, ref)
  where kind <> 'gap';
create unique index if not exists reconcile_pending_gap
  on cutover.reconcile_pending (source, gap_after, gap_before) where kind = 'gap';

revoke all on cutover.reconcile_runs, cutover.reconcile_findings, cutover.reconcile_alerts,
  cutover.reconcile_state, cutover.reconcile_pending from anon, authenticated;
grant select on cutover.reconcile_runs, cutover.reconcile_findings, cutover.reconcile_alerts,
  cutover.reconcile_state, cutover.reconcile_pending to service_role;
