/**
 * Storing a request's events durably, in ONE statement (one round trip, one
 * transaction, no per-event statements): the event rows, and a relay-outbox
 * row for each newly stored event routed to `websocket` (transactional
 * outbox, DESIGN §2.1). `ON CONFLICT DO NOTHING` makes producer retries
 * harmless: an event already stored comes back as a duplicate.
 */
import type { Sql } from "../db/client.ts";
import type { StoredEvent } from "../events/schema.ts";

export interface StoreOutcome {
  /** Per input position: the event's `seq` when newly stored, null when it already existed. */
  seqs: (number | null)[];
}

const STORE_SQL = `
with input as (
  select * from jsonb_to_recordset($1::text::jsonb) as x(
    i integer, id uuid, source text, sequence_id bigint, event_type text, category text,
    ts timestamptz, data jsonb, checksum text, checksum_alg text, routes text[], legacy boolean)
), stored as (
  insert into public.monitoring_events
    (id, source, sequence_id, event_type, category, "timestamp", data, checksum, checksum_alg, routes, legacy)
  select id, source, sequence_id, event_type, category, ts, data, checksum, checksum_alg, routes, legacy
  from input order by i
  on conflict do nothing
  returning id, "timestamp", seq
), outbox as (
  insert into cutover.relay_outbox (event_id, event_time, source, sequence_id)
  select input.id, input.ts, input.source, input.sequence_id
  from input join stored on stored.id = input.id and stored."timestamp" = input.ts
  where 'websocket' = any (input.routes)
  order by input.i
  returning 1
)
select input.i, stored.seq
from input left join stored on stored.id = input.id and stored."timestamp" = input.ts
order by input.i`;

/**
 * Inserts `events` (already deduplicated within the request) and their outbox
 * rows atomically. Resolves only after commit. Throws on any database error,
 * in which case nothing was written.
 */
export async function storeEvents(sql: Sql, events: StoredEvent[]): Promise<StoreOutcome> {
  if (events.length === 0) return { seqs: [] };
  const payload = events.map((e, i) => ({
    i,
    id: e.id,
    source: e.source,
    sequence_id: e.sequence_id,
    event_type: e.event_type,
    category: e.category,
    ts: e.timestamp,
    data: e.data,
    checksum: e.checksum,
    checksum_alg: e.checksum_alg,
    routes: e.routes,
    legacy: e.legacy,
  }));
  const rows = await sql.unsafe<{ i: number; seq: string | null }[]>(STORE_SQL, [
    JSON.stringify(payload),
  ]);
  const seqs: (number | null)[] = new Array(events.length).fill(null);
  for (const row of rows) seqs[row.i] = row.seq === null ? null : Number(row.seq);
  return { seqs };
}
