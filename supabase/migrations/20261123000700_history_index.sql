-- Backfill reads (the events function, `received_since`) scan by arrival
-- time: index it so a consumer's catch-up costs what it reads.
create index if not exists monitoring_events_received_at on public.monitoring_events (received_at);
