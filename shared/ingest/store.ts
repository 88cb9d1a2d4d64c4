/**
 * Storing a request's events durably, in ONE statement (one round trip, one
 * transaction, no per-event statements):
 *
 * - the event rows (public.monitoring_events, the store of record);
 * - a relay-outbox row for each newly stored event routed to `websocket`
 *   (transactional outbox, DESIGN §2.1);
 * - for events routed to `realtime`, by their category's delivery mode: a row
 *   in public.monitoring_events_live (`postgres_changes`), or one
 *   realtime.send() per category and payload-sized chunk (`broadcast`);
 *   while the realtime circuit breaker is open, instead a pending dead letter
 *   (cutover.dead_letters), which dlq-retry delivers after the recovery.
 *
 * `ON CONFLICT DO NOTHING` makes producer retries harmless: an event already
 * stored comes back as a duplicate and is neither relayed nor broadcast again.
 */
import type { DeliveryMode } from "../config/settings.ts";
import type { Sql } from "../db/client.ts";
import type { Category, StoredEvent } from "../events/schema.ts";

export interface StoreOutcome {
  /** Per input position: the event's `seq` when newly stored, null when it already existed. */
  seqs: (number | null)[];
  /** Broadcast messages sent. */
  broadcasts: number;
}

export interface RealtimeDelivery {
  modes: Record<Category, DeliveryMode>;
  broadcastPrivate: boolean;
  /** Events are packed into one broadcast until their JSON passes this many bytes. */
  chunkBytes: number;
  /** Ids of events whose Realtime delivery is deferred (its breaker is open): dead-lettered, not sent. */
  deferred?: ReadonlySet<string>;
}

/** The topic a category's broadcasts go to (subscribers join `monitoring:<category>`). */
export function broadcastTopic(category: Category): string {
  return `monitoring:${category}`;
}

const STORE_SQL = `
with input as (
  select * from jsonb_to_recordset($1::text::jsonb) as x(
    i integer, id uuid, source text, sequence_id bigint, event_type text, category text,
    ts timestamptz, ts_iso text, data jsonb, checksum text, checksum_alg text, routes text[],
    legacy boolean, delivery text, defer_realtime boolean)
), stored as (
  insert into public.monitoring_events
    (id, source, sequence_id, event_type, category, "timestamp", data, checksum, checksum_alg, routes, legacy)
  select id, source, sequence_id, event_type, category, ts, data, checksum, checksum_alg, routes, legacy
  from input order by i
  on conflict do nothing
  returning id, "timestamp", seq, received_at
), fresh as (
  select input.*, stored.seq, stored.received_at
  from input join stored on stored.id = input.id and stored."timestamp" = input.ts
), outbox as (
  insert into cutover.relay_outbox (event_id, event_time, source, sequence_id)
  select id, ts, source, sequence_id from fresh where 'websocket' = any (routes) order by i
  returning 1
), live as (
  insert into public.monitoring_events_live
    (seq, id, source, sequence_id, event_type, category, "timestamp", data, checksum, checksum_alg, routes, received_at)
  select seq, id, source, sequence_id, event_type, category, ts, data, checksum, checksum_alg, routes, received_at
  from fresh where delivery = 'postgres_changes' order by i
  returning 1
), broadcast_events as (
  select category, i, jsonb_build_object(
    'seq', seq, 'id', id, 'source', source, 'sequence_id', sequence_id, 'event_type', event_type,
    'category', category, 'timestamp', ts_iso, 'data', data, 'checksum', checksum,
    'checksum_alg', checksum_alg, 'routes', to_jsonb(routes), 'received_at', received_at) as event
  from fresh where delivery = 'broadcast'
), deferred_realtime as (
  insert into cutover.dead_letters (adapter, operation, event_id, event_time, last_error)
  select 'realtime', 'write', id, ts, 'deferred: the realtime circuit breaker is open'
  from fresh where defer_realtime order by i
  on conflict do nothing
  returning 1
), chunked as (
  select category, i, event,
    (sum(octet_length(event::text)) over (partition by category order by i) / $2::integer)::integer as chunk
  from broadcast_events
), sent as (
  select realtime.send(jsonb_build_object('events', jsonb_agg(event order by i)), 'events',
    'monitoring:' || category, $3::boolean)
  from chunked group by category, chunk
)
select input.i, stored.seq, (select count(*) from sent)::integer as broadcasts
from input left join stored on stored.id = input.id and stored."timestamp" = input.ts
order by input.i`;

/**
 * Inserts `events` (already deduplicated within the request), their outbox
 * rows and their Realtime deliveries atomically. Resolves only after commit.
 * Throws on any database error, in which case nothing was written.
 */
export async function storeEvents(
  sql: Sql,
  events: StoredEvent[],
  realtime: RealtimeDelivery,
): Promise<StoreOutcome> {
  if (events.length === 0) return { seqs: [], broadcasts: 0 };
  const payload = events.map((e, i) => ({
    i,
    id: e.id,
    source: e.source,
    sequence_id: e.sequence_id,
    event_type: e.event_type,
    category: e.category,
    ts: e.timestamp,
    ts_iso: e.timestamp,
    data: e.data,
    checksum: e.checksum,
    checksum_alg: e.checksum_alg,
    routes: e.routes,
    legacy: e.legacy,
    delivery: e.routes.includes("realtime") && !realtime.deferred?.has(e.id)
      ? realtime.modes[e.category]
      : null,
    defer_realtime: e.routes.includes("realtime") && (realtime.deferred?.has(e.id) ?? false),
  }));
  const rows = await sql.unsafe<{ i: number; seq: string | null; broadcasts: number }[]>(
    STORE_SQL,
    [
      JSON.stringify(payload),
      Math.max(1, realtime.chunkBytes),
      realtime.broadcastPrivate,
    ],
  );
  const seqs: (number | null)[] = new Array(events.length).fill(null);
  for (const row of rows) seqs[row.i] = row.seq === null ? null : Number(row.seq);
  return { seqs, broadcasts: rows[0]?.broadcasts ?? 0 };
}
