/**
 * The delivery ledger's Postgres adapter (schema: migration
 * 20261123000200_ws_fanout.sql): turning pending relay-outbox rows into ledger
 * rows, and reading the ledger back for the live tail and for replays.
 *
 * Outbox state machine (one row per event routed to `websocket`):
 *
 *   pending ──append (ledger row + status=delivered, ONE transaction)──▶ delivered
 *      │ ▲
 *      └─┘ relay failed: attempts+1, last_error "relay: …", next_attempt_at = now + backoff
 *
 * Only `appendOutboxRows` moves a row to delivered, and it does so in the
 * statement that appends the ledger row, so "delivered" always means "in the
 * ledger, hence streamed to every client". A crash anywhere leaves the row
 * pending, and pending rows are taken again (by the relay, by ws-fanout's own
 * drain, by dlq-retry) — never lost; the pending check under the append lock
 * makes a concurrent second append a no-op, and the ledger's unique
 * (event_id, event_time) would refuse a second row anyway.
 */
import type { Sql } from "../db/client.ts";
import { checksumEvent } from "../events/checksum.ts";
import type { Category, ChecksumAlg, WireEvent } from "../events/schema.ts";
import type { LedgerEntry, ReplayPage } from "./cursor-stream.ts";
import type { StreamFilter } from "./protocol.ts";

/** The key of an outbox row and of its event. */
export interface OutboxKey {
  id: string;
  /** The event's timestamp, ISO-8601. */
  event_time: string;
}

/** What to append: the given outbox rows, or up to `claim` pending rows. */
export type OutboxSelection = { keys: OutboxKey[] } | { claim: number };

export interface AppendResult {
  /** Ledger rows appended: cursor and event key. */
  appended: { cursor: number; id: string }[];
  /** Candidates not appended by this call: another appender was first, or the event was already in the ledger. */
  skipped: number;
  /** Pending outbox rows whose event row no longer exists (deferred, reported). */
  missing: OutboxKey[];
  /** Candidate rows read (pending when read). */
  read: number;
}

interface ClaimedRow {
  event_id: string;
  event_time: Date;
  source: string | null;
  sequence_id: string | null;
  event_type: string | null;
  category: Category | null;
  timestamp: Date | null;
  data: Record<string, unknown> | null;
  checksum_alg: ChecksumAlg | null;
}

/** How long ws-fanout leaves a pending row whose event row is missing before looking again. */
const MISSING_RETRY = "1 hour";

/** The event exactly as ws-fanout sends it: the wire fields of the stored row. */
export function wireEventOf(row: {
  event_id: string;
  source: string;
  sequence_id: string | number;
  event_type: string;
  category: Category;
  timestamp: Date;
  data: Record<string, unknown>;
}): WireEvent {
  return {
    id: row.event_id,
    source: row.source,
    sequence_id: Number(row.sequence_id),
    event_type: row.event_type,
    category: row.category,
    timestamp: row.timestamp.toISOString(),
    data: row.data,
  };
}

/** Most rows one relay append takes (the keys plus their sources' older pending rows). */
export const MAX_CLAIM_PER_APPEND = 2_000;

/**
 * Appends pending outbox rows to the ledger: reads the candidates and their
 * events (no locks), builds each event's payload and checksum, then appends
 * those still pending and marks them delivered in one statement under the
 * append lock (cutover.append_ws_deliveries, migration
 * 20261123000200_ws_fanout.sql) — no transaction held open across this
 * client's work.
 *
 * With `{ keys }` (a relay) the candidates are those rows AND every older
 * pending row of the same sources (at most MAX_CLAIM_PER_APPEND), so that
 * after an outage a source's backlog is appended before, or with, its newer
 * events. With `{ claim: n }` (the drain) they are the n oldest pending rows.
 * Rows another appender took first are skipped. Throws on database errors;
 * then nothing was appended.
 */
export async function appendOutboxRows(
  sql: Sql,
  selection: OutboxSelection,
  instance: string,
): Promise<AppendResult> {
  const rows = await sql.unsafe<ClaimedRow[]>(
    `select * from cutover.read_ws_outbox($1::text::jsonb, $2)`,
    "keys" in selection
      ? [JSON.stringify(selection.keys), MAX_CLAIM_PER_APPEND]
      : [null, selection.claim],
  );

  const missing: OutboxKey[] = [];
  const items = [];
  for (const row of rows) {
    if (row.source === null || row.timestamp === null) {
      missing.push({ id: row.event_id, event_time: row.event_time.toISOString() });
      continue;
    }
    const event = wireEventOf(row as Parameters<typeof wireEventOf>[0]);
    items.push({
      event_id: event.id,
      event_time: row.event_time.toISOString(),
      source: event.source,
      sequence_id: event.sequence_id,
      event_type: event.event_type,
      category: event.category,
      payload: event,
      checksum: await checksumEvent(event, row.checksum_alg!),
      checksum_alg: row.checksum_alg,
    });
  }

  if (missing.length > 0) {
    await sql.unsafe(
      `update cutover.relay_outbox o
       set attempts = o.attempts + 1, next_attempt_at = now() + interval '${MISSING_RETRY}',
           last_error = 'fanout: event row missing from public.monitoring_events'
       from jsonb_to_recordset($1::text::jsonb) as k(id uuid, event_time timestamptz)
       where o.event_id = k.id and o.event_time = k.event_time and o.status = 'pending'`,
      [JSON.stringify(missing)],
    );
  }

  let appended: { cursor: number; id: string }[] = [];
  if (items.length > 0) {
    const out = await sql.unsafe<{ cursor: string; event_id: string }[]>(
      `select cursor, event_id from cutover.append_ws_deliveries($1::text::jsonb, $2)`,
      [JSON.stringify(items), instance],
    );
    appended = out.map((r) => ({ cursor: Number(r.cursor), id: r.event_id }))
      .sort((a, b) => a.cursor - b.cursor);
  }
  return {
    appended,
    skipped: items.length - appended.length,
    missing,
    read: rows.length,
  };
}

/** The ledger's counters. */
export interface LedgerBounds {
  /** The newest cursor appended (0 when empty). */
  lastCursor: number;
  /** Everything at or below this cursor was pruned; a resume from below it has a gap. */
  prunedThrough: number;
}

/** Reads the ledger's counters. */
export async function ledgerBounds(sql: Sql): Promise<LedgerBounds> {
  const [row] = await sql<{ last_cursor: string; pruned_through: string }[]>`
    select last_cursor, pruned_through from cutover.ws_ledger_state where id`;
  return {
    lastCursor: Number(row?.last_cursor ?? 0),
    prunedThrough: Number(row?.pruned_through ?? 0),
  };
}

interface EntryRow {
  cursor: string;
  source: string;
  category: Category;
  payload: string;
}

const entryOf = (r: EntryRow): LedgerEntry => ({
  cursor: Number(r.cursor),
  source: r.source,
  category: r.category,
  payload: r.payload,
});

/** Up to `limit` ledger rows after `after`, ascending: what the live tail reads. */
export async function readLedgerAfter(
  sql: Sql,
  after: number,
  limit: number,
): Promise<LedgerEntry[]> {
  const rows = await sql<EntryRow[]>`
    select cursor, source, category, payload::text as payload
    from cutover.ws_delivery_ledger
    where cursor > ${after}
    order by cursor
    limit ${limit}`;
  return rows.map(entryOf);
}

/** Most cursor positions one replay read scans, so a selective filter cannot make one read walk the whole ledger. */
export const REPLAY_SCAN_WINDOW = 100_000;

/**
 * One replay read for a connection: up to `limit` rows after `after` (and
 * within REPLAY_SCAN_WINDOW positions of it) that match `filter`, with the
 * ledger's bounds read in the same statement — one snapshot, so `atEnd` is
 * exactly what this read could see.
 */
export async function readReplayPage(
  sql: Sql,
  after: number,
  limit: number,
  filter: StreamFilter,
): Promise<ReplayPage & LedgerBounds> {
  const categories = filter.categories ? [...filter.categories] : null;
  const sources = filter.sources ? [...filter.sources] : null;
  const rows = await sql.unsafe<
    (Partial<EntryRow> & { last_cursor: string; pruned: string; upto: string })[]
  >(
    `with s as (
       select last_cursor, pruned_through, least(last_cursor, $1::bigint + $5) as upto
       from cutover.ws_ledger_state where id)
     select s.last_cursor, s.pruned_through as pruned, s.upto, l.cursor, l.source, l.category,
            l.payload
     from s left join lateral (
       select cursor, source, category, payload::text as payload
       from cutover.ws_delivery_ledger
       where cursor > $1 and cursor <= s.upto
         and ($2::text::jsonb is null or category in (select jsonb_array_elements_text($2::text::jsonb)))
         and ($3::text::jsonb is null or source in (select jsonb_array_elements_text($3::text::jsonb)))
       order by cursor
       limit $4
     ) l on true
     order by l.cursor`,
    [
      after,
      categories ? JSON.stringify(categories) : null,
      sources ? JSON.stringify(sources) : null,
      limit,
      REPLAY_SCAN_WINDOW,
    ],
  );
  const first = rows[0];
  const entries = rows.filter((r) => r.cursor != null).map((r) => entryOf(r as EntryRow));
  const lastCursor = Number(first?.last_cursor ?? 0);
  const upto = Math.max(after, Number(first?.upto ?? 0));
  const full = entries.length >= limit;
  return {
    entries,
    through: full ? entries.at(-1)!.cursor : upto,
    atEnd: !full && upto >= lastCursor,
    lastCursor,
    prunedThrough: Number(first?.pruned ?? 0),
  };
}

/**
 * Prunes ledger rows (and delivered outbox rows) delivered before `horizon`
 * (default: the events' retention horizon). Returns the database's report.
 */
export async function pruneLedger(sql: Sql, horizon?: Date): Promise<Record<string, unknown>> {
  const [row] = horizon
    ? await sql<{ report: Record<string, unknown> }[]>`
        select cutover.prune_ws_delivery_ledger(${horizon}) as report`
    : await sql<{ report: Record<string, unknown> }[]>`
        select cutover.prune_ws_delivery_ledger() as report`;
  return row?.report ?? {};
}
