/**
 * reconcile's Postgres adapter (schema: migration 20261123000500_reconcile.sql).
 * Every read is bounded by an index and by what is new: events by `seq`
 * after the watermark, ledger rows by `cursor` after it, the carried
 * `reconcile_pending` items, and lookups by (source, sequence_id) around the
 * rows read. Nothing here scans a whole table. Functions take the
 * transaction they run in and throw on database errors.
 */
import type postgres from "postgres";
import type { Adapter, Category, ChecksumAlg } from "../events/schema.ts";
import type { Finding } from "./findings.ts";
import type { GapCandidate } from "./gaps.ts";
import type { EventRow, LedgerRow } from "./match.ts";

/** A transaction or pool; the functions below run in whichever they are given. */
export type Db = postgres.ISql;

/** The key of the one advisory lock that keeps runs from overlapping. */
export const RUN_LOCK_KEY = "cutover.reconcile";

export interface ReconcileState {
  lastSeq: number;
  lastCursor: number;
  watermark: Date | null;
}

export interface PendingItem {
  id: number;
  kind: "event" | "ledger" | "gap";
  ref: number | null;
  source: string | null;
  gapAfter: number | null;
  gapBefore: number | null;
  since: number;
  repairedAt: number | null;
  repairRunId: number | null;
}

/**
 * Takes the run lock for this transaction (pg_try_advisory_xact_lock: freed
 * at commit or rollback, so it also works through a transaction-mode
 * pooler) and reads the database clock. `locked` is false when another run
 * holds it.
 */
export async function tryRunLock(tx: Db): Promise<{ locked: boolean; now: Date }> {
  const [row] = await tx<{ locked: boolean; now: Date }[]>`
    select pg_try_advisory_xact_lock(hashtextextended(${RUN_LOCK_KEY}, 0)) as locked, now() as now`;
  return row!;
}

/** Inserts a run row (status running) and returns its id. */
export async function startRun(tx: Db, trigger: string): Promise<{ id: number; startedAt: Date }> {
  const [row] = await tx<{ id: string; started_at: Date }[]>`
    insert into cutover.reconcile_runs (trigger) values (${trigger}) returning id, started_at`;
  return { id: Number(row!.id), startedAt: row!.started_at };
}

/** Records a run that failed (in its own statement: the run's transaction rolled back). */
export async function recordFailedRun(
  sql: Db,
  trigger: string,
  startedAt: Date,
  error: string,
): Promise<void> {
  await sql`
    insert into cutover.reconcile_runs (trigger, started_at, finished_at, status, error)
    values (${trigger}, ${startedAt}, clock_timestamp(), 'failed', ${error.slice(0, 2000)})`;
}

/** Reads and locks the watermark row. */
export async function readState(tx: Db): Promise<ReconcileState> {
  const [row] = await tx<{ last_seq: string; last_cursor: string; watermark: Date | null }[]>`
    select last_seq, last_cursor, watermark from cutover.reconcile_state where id for update`;
  return {
    lastSeq: Number(row?.last_seq ?? 0),
    lastCursor: Number(row?.last_cursor ?? 0),
    watermark: row?.watermark ?? null,
  };
}

interface EventDbRow {
  seq: string;
  id: string;
  source: string;
  sequence_id: string;
  event_type: string;
  category: Category;
  timestamp: Date;
  received_at: Date;
  checksum: string;
  checksum_alg: ChecksumAlg;
  routes: Adapter[];
  data: unknown;
}

const EVENT_COLUMNS = `e.seq, e.id, e.source, e.sequence_id, e.event_type, e.category,
  e."timestamp", e.received_at, e.checksum, e.checksum_alg, e.routes,
  case when e.category = any($SEM::text[]) then e.data end as data`;

const toEvent = (r: EventDbRow): EventRow => ({
  seq: Number(r.seq),
  id: r.id,
  source: r.source,
  sequence_id: Number(r.sequence_id),
  event_type: r.event_type,
  category: r.category,
  time: r.timestamp.getTime(),
  receivedAt: r.received_at.getTime(),
  checksum: r.checksum,
  checksumAlg: r.checksum_alg,
  routes: r.routes,
  ...(r.data === null ? {} : { data: r.data }),
});

interface LedgerDbRow {
  cursor: string;
  event_id: string;
  source: string;
  sequence_id: string;
  event_type: string;
  category: Category;
  event_time: Date;
  delivered_at: Date;
  checksum: string;
  checksum_alg: ChecksumAlg;
  data: unknown;
}

const LEDGER_COLUMNS = `l.cursor, l.event_id, l.source, l.sequence_id, l.event_type, l.category,
  l.event_time, l.delivered_at, l.checksum, l.checksum_alg,
  case when l.category = any($SEM::text[]) then l.payload -> 'data' end as data`;

const toLedger = (r: LedgerDbRow): LedgerRow => ({
  cursor: Number(r.cursor),
  eventId: r.event_id,
  source: r.source,
  sequence_id: Number(r.sequence_id),
  event_type: r.event_type,
  category: r.category,
  time: r.event_time.getTime(),
  deliveredAt: r.delivered_at.getTime(),
  checksum: r.checksum,
  checksumAlg: r.checksum_alg,
  ...(r.data === null ? {} : { data: r.data }),
});

/** `$SEM` is the list of categories whose `data` is loaded (those compared semantically). */
const withSem = (text: string, n: number) => text.replaceAll("$SEM", `$${n}`);

/**
 * The events after `afterSeq`, oldest first, at most `limit`, stopping before
 * the first one received after `cutoff`. Why stop there: `seq` comes from a
 * sequence, so an insert still in flight can hold a lower seq than one
 * already committed; the watermark must not pass it. Every event older than
 * the buffer window is committed (ingest's transaction is one statement), so
 * the rows before the first young one are a settled prefix.
 * `full` says the limit was reached (more may be waiting).
 */
export async function readNewEvents(
  tx: Db,
  afterSeq: number,
  cutoff: Date,
  limit: number,
  semantic: Category[],
): Promise<{ rows: EventRow[]; full: boolean }> {
  const rows = await tx.unsafe<EventDbRow[]>(
    withSem(
      `select ${EVENT_COLUMNS} from public.monitoring_events e
       where e.seq > $1 order by e.seq limit $2`,
      3,
    ),
    [afterSeq, limit, semantic],
  );
  const young = rows.findIndex((r) => r.received_at > cutoff);
  const settled = young === -1 ? rows : rows.slice(0, young);
  return { rows: settled.map(toEvent), full: young === -1 && rows.length >= limit };
}

/**
 * Ledger rows after `afterCursor`, oldest first, at most `limit`. No cutoff:
 * cursors are handed out under a lock in commit order (migration
 * 20261123000200), so what is visible is always a gap-free prefix.
 */
export async function readNewLedgerRows(
  tx: Db,
  afterCursor: number,
  limit: number,
  semantic: Category[],
): Promise<{ rows: LedgerRow[]; full: boolean }> {
  const rows = await tx.unsafe<LedgerDbRow[]>(
    withSem(
      `select ${LEDGER_COLUMNS} from cutover.ws_delivery_ledger l
       where l.cursor > $1 order by l.cursor limit $2`,
      3,
    ),
    [afterCursor, limit, semantic],
  );
  return { rows: rows.map(toLedger), full: rows.length >= limit };
}

/** Up to `limit` carried items, oldest first. */
export async function readPending(tx: Db, limit: number): Promise<PendingItem[]> {
  const rows = await tx<
    {
      id: string;
      kind: PendingItem["kind"];
      ref: string | null;
      source: string | null;
      gap_after: string | null;
      gap_before: string | null;
      since: Date;
      repaired_at: Date | null;
      repair_run_id: string | null;
    }[]
  >`select id, kind, ref, source, gap_after, gap_before, since, repaired_at, repair_run_id
    from cutover.reconcile_pending order by id limit ${limit}`;
  const num = (v: string | null) => (v === null ? null : Number(v));
  return rows.map((r) => ({
    id: Number(r.id),
    kind: r.kind,
    ref: num(r.ref),
    source: r.source,
    gapAfter: num(r.gap_after),
    gapBefore: num(r.gap_before),
    since: r.since.getTime(),
    repairedAt: r.repaired_at?.getTime() ?? null,
    repairRunId: num(r.repair_run_id),
  }));
}

/** Events by seq (rows that no longer exist are simply absent). */
export async function readEventsBySeq(
  tx: Db,
  seqs: number[],
  semantic: Category[],
): Promise<EventRow[]> {
  if (seqs.length === 0) return [];
  const rows = await tx.unsafe<EventDbRow[]>(
    withSem(
      `select ${EVENT_COLUMNS} from public.monitoring_events e where e.seq = any($1::bigint[])`,
      2,
    ),
    [seqs, semantic],
  );
  return rows.map(toEvent);
}

/** Ledger rows by cursor (pruned rows are simply absent). */
export async function readLedgerByCursor(
  tx: Db,
  cursors: number[],
  semantic: Category[],
): Promise<LedgerRow[]> {
  if (cursors.length === 0) return [];
  const rows = await tx.unsafe<LedgerDbRow[]>(
    withSem(
      `select ${LEDGER_COLUMNS} from cutover.ws_delivery_ledger l where l.cursor = any($1::bigint[])`,
      2,
    ),
    [cursors, semantic],
  );
  return rows.map(toLedger);
}

/** A (source, sequence_id, time) to look around. */
export interface RowKey {
  source: string;
  sequence_id: number;
  time: number;
}

function keysJson(keys: RowKey[]): string {
  const seen = new Set<string>();
  const out: { source: string; sequence_id: number; t: string }[] = [];
  for (const k of keys) {
    const id = `${k.source}\u0000${k.sequence_id}\u0000${k.time}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ source: k.source, sequence_id: k.sequence_id, t: new Date(k.time).toISOString() });
  }
  return JSON.stringify(out);
}

/**
 * Both paths' rows with the same source and sequence_id as a key and a time
 * within ±windowMs of it: counterparts and duplicates of the rows read.
 * Served by the (source, sequence_id) indexes of both tables.
 */
export async function readAround(
  tx: Db,
  keys: RowKey[],
  windowMs: number,
  semantic: Category[],
): Promise<{ events: EventRow[]; ledger: LedgerRow[] }> {
  if (keys.length === 0) return { events: [], ledger: [] };
  const json = keysJson(keys);
  const events = await tx.unsafe<EventDbRow[]>(
    withSem(
      `select distinct on (e.seq) ${EVENT_COLUMNS}
       from jsonb_to_recordset($1::text::jsonb) as k(source text, sequence_id bigint, t timestamptz)
       join public.monitoring_events e
         on e.source = k.source and e.sequence_id = k.sequence_id
        and e."timestamp" between k.t - $2 * interval '1 millisecond' and k.t + $2 * interval '1 millisecond'
       order by e.seq`,
      3,
    ),
    [json, windowMs, semantic],
  );
  const ledger = await tx.unsafe<LedgerDbRow[]>(
    withSem(
      `select distinct on (l.cursor) ${LEDGER_COLUMNS}
       from jsonb_to_recordset($1::text::jsonb) as k(source text, sequence_id bigint, t timestamptz)
       join cutover.ws_delivery_ledger l
         on l.source = k.source and l.sequence_id = k.sequence_id
        and l.event_time between k.t - $2 * interval '1 millisecond' and k.t + $2 * interval '1 millisecond'
       order by l.cursor`,
      3,
    ),
    [json, windowMs, semantic],
  );
  return { events: events.map(toEvent), ledger: ledger.map(toLedger) };
}

/**
 * Events with any of these ids (whatever their time): an id reused for
 * another event is a duplicate. Served by the primary key (id, timestamp).
 */
export async function readSameIds(
  tx: Db,
  ids: string[],
  semantic: Category[],
): Promise<EventRow[]> {
  if (ids.length === 0) return [];
  const rows = await tx.unsafe<EventDbRow[]>(
    withSem(
      `select ${EVENT_COLUMNS} from public.monitoring_events e where e.id = any($1::uuid[])`,
      2,
    ),
    [ids, semantic],
  );
  return rows.map(toEvent);
}

/** Per source, the highest sequence_id below `below` on either path (absent when none). */
export async function readPredecessors(
  tx: Db,
  lowest: Map<string, number>,
): Promise<Map<string, number>> {
  if (lowest.size === 0) return new Map();
  const rows = await tx.unsafe<{ source: string; before: string | null }[]>(
    `select k.source, greatest(
       (select max(e.sequence_id) from public.monitoring_events e
         where e.source = k.source and e.sequence_id < k.below),
       (select max(l.sequence_id) from cutover.ws_delivery_ledger l
         where l.source = k.source and l.sequence_id < k.below)) as before
     from jsonb_to_recordset($1::text::jsonb) as k(source text, below bigint)`,
    [JSON.stringify([...lowest].map(([source, below]) => ({ source, below })))],
  );
  return new Map(
    rows.filter((r) => r.before !== null).map((r) => [r.source, Number(r.before)]),
  );
}

/** For each gap, the sequence ids inside it now present on either path. */
export async function readPresentInGaps(tx: Db, gaps: GapCandidate[]): Promise<number[][]> {
  if (gaps.length === 0) return [];
  const rows = await tx.unsafe<{ i: number; sequence_id: string }[]>(
    `select k.i, x.sequence_id
     from jsonb_to_recordset($1::text::jsonb) as k(i integer, source text, after bigint, before bigint)
     cross join lateral (
       select e.sequence_id from public.monitoring_events e
        where e.source = k.source and e.sequence_id > k.after and e.sequence_id < k.before
       union
       select l.sequence_id from cutover.ws_delivery_ledger l
        where l.source = k.source and l.sequence_id > k.after and l.sequence_id < k.before
     ) x`,
    [JSON.stringify(
      gaps.map((g, i) => ({ i, source: g.source, after: g.after, before: g.before })),
    )],
  );
  const present: number[][] = gaps.map(() => []);
  for (const r of rows) present[r.i]!.push(Number(r.sequence_id));
  return present;
}

/**
 * Inserts findings; those already recorded (same type and key) are left as
 * they are. Returns the `type|key` of the ones inserted now.
 */
export async function insertFindings(
  tx: Db,
  runId: number,
  findings: Finding[],
): Promise<Set<string>> {
  if (findings.length === 0) return new Set();
  const rows = await tx.unsafe<{ type: string; finding_key: string }[]>(
    `insert into cutover.reconcile_findings
       (run_id, type, finding_key, event_id, event_time, source, sequence_id, event_type, category,
        details, repaired, repair_note)
     select $1, f.type, f.key, f.event_id, f.event_time, f.source, f.sequence_id, f.event_type,
            f.category, f.details, false, f.note
     from jsonb_to_recordset($2::text::jsonb) as f(type text, key text, event_id uuid,
       event_time timestamptz, source text, sequence_id bigint, event_type text, category text,
       details jsonb, note text)
     on conflict (type, finding_key) do nothing
     returning type, finding_key`,
    [
      runId,
      JSON.stringify(findings.map((f) => ({
        type: f.type,
        key: f.key,
        event_id: f.eventId,
        event_time: f.eventTime === null ? null : new Date(f.eventTime).toISOString(),
        source: f.source,
        sequence_id: f.sequence_id,
        event_type: f.event_type,
        category: f.category,
        details: f.details,
        note: f.repair.action === "none" ? f.repair.note : null,
      }))),
    ],
  );
  return new Set(rows.map((r) => `${r.type}|${r.finding_key}`));
}

/** What re-relaying one event came to. */
export interface ReRelay {
  seq: number;
  id: string;
  eventTime: Date;
  receivedAt: Date;
  /** The outbox row's status before (null: there was none, one was inserted). */
  was: "pending" | "delivered" | null;
  /** The ledger already holds this event id (under another key): nothing was changed. */
  inLedger: boolean;
}

/**
 * What re-relaying these events (by seq) would find, read without locking
 * anything: each event's outbox status and whether the ledger already holds
 * its id. Events whose row is gone are absent.
 */
export async function inspectReRelay(tx: Db, seqs: number[]): Promise<ReRelay[]> {
  if (seqs.length === 0) return [];
  const rows = await tx.unsafe<
    {
      seq: string;
      id: string;
      t: Date;
      received_at: Date;
      was: "pending" | "delivered" | null;
      in_ledger: boolean;
    }[]
  >(
    `select e.seq, e.id, e."timestamp" as t, e.received_at,
       (select o.status from cutover.relay_outbox o
         where o.event_id = e.id and o.event_time = e."timestamp") as was,
       exists (select 1 from cutover.ws_delivery_ledger l
         where l.event_id = e.id and l.event_time = e."timestamp") as in_ledger
     from public.monitoring_events e where e.seq = any($1::bigint[])`,
    [seqs],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    id: r.id,
    eventTime: r.t,
    receivedAt: r.received_at,
    was: r.was,
    inLedger: r.in_ledger,
  }));
}

/**
 * The repair of the WebSocket path: for each event (by seq) still not in the
 * ledger, its relay-outbox row is put back to `pending`, due now — or
 * inserted when it is gone — so ws-fanout's drain (or a relay) appends it to
 * the ledger and streams it, the same way as any pending row. The ledger
 * itself is never written here. Call it as the transaction's last statement:
 * ws-fanout claims pending rows in order and waits for locked ones, so the
 * row locks taken here should be released (by the commit) at once.
 */
export async function requeueOutbox(tx: Db, seqs: number[], note: string): Promise<number> {
  if (seqs.length === 0) return 0;
  const rows = await tx.unsafe(
    `insert into cutover.relay_outbox as o
       (event_id, event_time, source, sequence_id, status, next_attempt_at, last_error)
     select e.id, e."timestamp", e.source, e.sequence_id, 'pending', now(), $2
     from public.monitoring_events e
     where e.seq = any($1::bigint[])
       and not exists (select 1 from cutover.ws_delivery_ledger l
         where l.event_id = e.id and l.event_time = e."timestamp")
     on conflict (event_id, event_time) do update
       set status = 'pending', next_attempt_at = now(), delivered_at = null,
           last_error = excluded.last_error
     returning o.event_id`,
    [seqs, note],
  );
  return rows.length;
}

/** Sets a finding's repair outcome (by type and key). */
export async function updateRepair(
  tx: Db,
  updates: { type: string; key: string; repaired: boolean; note: string; append?: boolean }[],
): Promise<void> {
  if (updates.length === 0) return;
  await tx.unsafe(
    `update cutover.reconcile_findings f
     set repaired = u.repaired,
         repair_note = case when u.append and f.repair_note is not null
                            then f.repair_note || '; ' || u.note else u.note end
     from jsonb_to_recordset($1::text::jsonb) as u(type text, key text, repaired boolean, note text,
       append boolean)
     where f.type = u.type and f.finding_key = u.key`,
    [JSON.stringify(updates.map((u) => ({ ...u, append: u.append ?? false })))],
  );
}

/** A new carried item. */
export type NewPending =
  | { kind: "event"; ref: number; since: number; repairedAt?: number; repairRunId?: number }
  | { kind: "ledger"; ref: number; since: number }
  | { kind: "gap"; source: string; after: number; before: number; since: number };

/** Replaces the carried items this run consumed (`consumed` ids) with `next`. */
export async function replacePending(
  tx: Db,
  consumed: number[],
  next: NewPending[],
): Promise<void> {
  if (consumed.length > 0) {
    await tx`delete from cutover.reconcile_pending where id = any(${consumed}::bigint[])`;
  }
  if (next.length === 0) return;
  await tx.unsafe(
    `insert into cutover.reconcile_pending
       (kind, ref, source, gap_after, gap_before, since, repaired_at, repair_run_id)
     select p.kind, p.ref, p.source, p.gap_after, p.gap_before, p.since, p.repaired_at,
            p.repair_run_id
     from jsonb_to_recordset($1::text::jsonb) as p(kind text, ref bigint, source text,
       gap_after bigint, gap_before bigint, since timestamptz, repaired_at timestamptz,
       repair_run_id bigint)
     on conflict do nothing`,
    [JSON.stringify(next.map((p) => ({
      kind: p.kind,
      ref: p.kind === "gap" ? null : p.ref,
      source: p.kind === "gap" ? p.source : null,
      gap_after: p.kind === "gap" ? p.after : null,
      gap_before: p.kind === "gap" ? p.before : null,
      since: new Date(p.since).toISOString(),
      repaired_at: p.kind === "event" && p.repairedAt !== undefined
        ? new Date(p.repairedAt).toISOString()
        : null,
      repair_run_id: p.kind === "event" ? p.repairRunId ?? null : null,
    })))],
  );
}

/** What waits after the run, and the oldest receipt among what waits. */
export async function pendingTotals(
  tx: Db,
): Promise<{ events: number; ledger: number; gaps: number; oldest: Date | null }> {
  const [row] = await tx<
    { events: string; ledger: string; gaps: string; oldest: Date | null }[]
  >`select count(*) filter (where kind = 'event') as events,
           count(*) filter (where kind = 'ledger') as ledger,
           count(*) filter (where kind = 'gap') as gaps,
           min(since) filter (where kind <> 'gap') as oldest
    from cutover.reconcile_pending`;
  return {
    events: Number(row!.events),
    ledger: Number(row!.ledger),
    gaps: Number(row!.gaps),
    oldest: row!.oldest,
  };
}

/** When the first event not yet read was received (null: none waiting). */
export async function firstUnreadReceivedAt(tx: Db, afterSeq: number): Promise<Date | null> {
  const [row] = await tx<{ received_at: Date }[]>`
    select received_at from public.monitoring_events where seq > ${afterSeq} order by seq limit 1`;
  return row?.received_at ?? null;
}

/** Raises alert rows. */
export async function insertAlerts(
  tx: Db,
  runId: number,
  alerts: {
    category: Category;
    from: string | null;
    to: string | null;
    judged: number;
    mismatched: number;
    rate: number;
    threshold: number;
  }[],
): Promise<void> {
  if (alerts.length === 0) return;
  await tx.unsafe(
    `insert into cutover.reconcile_alerts
       (run_id, category, window_from, window_to, judged, mismatched, mismatch_rate, threshold)
     select $1, a.category, a."from", a."to", a.judged, a.mismatched, a.rate, a.threshold
     from jsonb_to_recordset($2::text::jsonb) as a(category text, "from" timestamptz,
       "to" timestamptz, judged integer, mismatched integer, rate double precision,
       threshold double precision)
     on conflict (run_id, category) do nothing`,
    [runId, JSON.stringify(alerts)],
  );
}

/** Moves the watermark. */
export async function saveState(
  tx: Db,
  state: ReconcileState,
  runId: number,
): Promise<void> {
  await tx`
    update cutover.reconcile_state
    set last_seq = ${state.lastSeq}, last_cursor = ${state.lastCursor},
        watermark = ${state.watermark}, last_run_id = ${runId}, updated_at = now()
    where id`;
}

/** Closes a run row with its report. */
export async function finishRun(
  tx: Db,
  runId: number,
  run: {
    watermarkFrom: Date | null;
    watermarkTo: Date | null;
    seqFrom: number;
    seqTo: number;
    cursorFrom: number;
    cursorTo: number;
    counts: Record<string, number>;
    report: unknown;
  },
): Promise<void> {
  await tx.unsafe(
    `update cutover.reconcile_runs
     set finished_at = clock_timestamp(), status = 'succeeded',
         watermark_from = $2, watermark_to = $3, seq_from = $4, seq_to = $5,
         cursor_from = $6, cursor_to = $7, counts = $8::text::jsonb, report = $9::text::jsonb
     where id = $1`,
    [
      runId,
      run.watermarkFrom,
      run.watermarkTo,
      run.seqFrom,
      run.seqTo,
      run.cursorFrom,
      run.cursorTo,
      JSON.stringify(run.counts),
      JSON.stringify(run.report),
    ],
  );
}

/** Adds the after-commit relay outcome to a recorded report. */
export async function amendReport(sql: Db, runId: number, path: string[], value: unknown) {
  await sql.unsafe(
    `update cutover.reconcile_runs set report = jsonb_set(report, $2::text[], $3::text::jsonb)
     where id = $1`,
    [runId, path, JSON.stringify(value)],
  );
}

/** Deletes runs (with their findings and alerts) older than the retention. */
export async function pruneRuns(tx: Db, retentionDays: number): Promise<number> {
  const rows = await tx`
    delete from cutover.reconcile_runs
    where started_at < now() - ${retentionDays} * interval '1 day'
    returning id`;
  return rows.length;
}

// ---------------------------------------------------------------------------
// Reads for the dashboard (newest first, keyset-paged by id)
// ---------------------------------------------------------------------------

export interface RunRow {
  id: number;
  started_at: string;
  finished_at: string | null;
  trigger: string;
  status: string;
  watermark_from: string | null;
  watermark_to: string | null;
  seq_from: number | null;
  seq_to: number | null;
  cursor_from: number | null;
  cursor_to: number | null;
  counts: Record<string, number>;
  report: unknown;
  error: string | null;
}

/** Runs, newest first, with ids below `beforeId`. */
export async function listRuns(
  db: Db,
  query: { limit: number; beforeId?: number | undefined },
): Promise<RunRow[]> {
  const rows = await db.unsafe<Record<string, unknown>[]>(
    `select id, started_at, finished_at, trigger, status, watermark_from, watermark_to,
            seq_from, seq_to, cursor_from, cursor_to, counts, report, error
     from cutover.reconcile_runs
     where ($2::bigint is null or id < $2)
     order by id desc limit $1`,
    [query.limit, query.beforeId ?? null],
  );
  return rows.map((r) => ({
    ...(r as unknown as RunRow),
    id: Number(r.id),
    started_at: iso(r.started_at)!,
    finished_at: iso(r.finished_at),
    watermark_from: iso(r.watermark_from),
    watermark_to: iso(r.watermark_to),
    seq_from: num(r.seq_from),
    seq_to: num(r.seq_to),
    cursor_from: num(r.cursor_from),
    cursor_to: num(r.cursor_to),
  }));
}

export interface FindingRow {
  id: number;
  run_id: number;
  found_at: string;
  type: string;
  finding_key: string;
  event_id: string | null;
  event_time: string | null;
  source: string;
  sequence_id: number | null;
  event_type: string | null;
  category: string | null;
  details: Record<string, unknown>;
  repaired: boolean;
  repair_note: string | null;
}

/** Findings matching every given filter, newest first, with ids below `beforeId`. */
export async function listFindings(
  db: Db,
  query: {
    limit: number;
    beforeId?: number | undefined;
    runId?: number | undefined;
    type?: string | undefined;
    category?: string | undefined;
    source?: string | undefined;
  },
): Promise<FindingRow[]> {
  const rows = await db.unsafe<Record<string, unknown>[]>(
    `select id, run_id, found_at, type, finding_key, event_id, event_time, source, sequence_id,
            event_type, category, details, repaired, repair_note
     from cutover.reconcile_findings
     where ($2::bigint is null or id < $2)
       and ($3::bigint is null or run_id = $3)
       and ($4::text is null or type = $4)
       and ($5::text is null or category = $5)
       and ($6::text is null or source = $6)
     order by id desc limit $1`,
    [
      query.limit,
      query.beforeId ?? null,
      query.runId ?? null,
      query.type ?? null,
      query.category ?? null,
      query.source ?? null,
    ],
  );
  return rows.map((r) => ({
    ...(r as unknown as FindingRow),
    id: Number(r.id),
    run_id: Number(r.run_id),
    found_at: iso(r.found_at)!,
    event_time: iso(r.event_time),
    sequence_id: num(r.sequence_id),
  }));
}

export interface AlertRow {
  id: number;
  run_id: number;
  category: string;
  window_from: string | null;
  window_to: string | null;
  judged: number;
  mismatched: number;
  mismatch_rate: number;
  threshold: number;
  raised_at: string;
}

/** Alerts, newest first, optionally for one category, with ids below `beforeId`. */
export async function listAlerts(
  db: Db,
  query: { limit: number; beforeId?: number | undefined; category?: string | undefined },
): Promise<AlertRow[]> {
  const rows = await db.unsafe<Record<string, unknown>[]>(
    `select id, run_id, category, window_from, window_to, judged, mismatched, mismatch_rate,
            threshold, raised_at
     from cutover.reconcile_alerts
     where ($2::bigint is null or id < $2) and ($3::text is null or category = $3)
     order by id desc limit $1`,
    [query.limit, query.beforeId ?? null, query.category ?? null],
  );
  return rows.map((r) => ({
    ...(r as unknown as AlertRow),
    id: Number(r.id),
    run_id: Number(r.run_id),
    window_from: iso(r.window_from),
    window_to: iso(r.window_to),
    raised_at: iso(r.raised_at)!,
  }));
}

/** The watermark, what waits, and the lag, as of the database clock. */
export async function readStatus(db: Db): Promise<{
  last_seq: number;
  last_cursor: number;
  watermark: string | null;
  lag_ms: number | null;
  last_run_id: number | null;
  updated_at: string;
  pending: { events: number; ledger_rows: number; gaps: number };
}> {
  const [row] = await db<Record<string, unknown>[]>`
    select s.last_seq, s.last_cursor, s.watermark, s.last_run_id, s.updated_at,
           (extract(epoch from now() - s.watermark) * 1000)::bigint as lag_ms,
           (select count(*) from cutover.reconcile_pending where kind = 'event') as events,
           (select count(*) from cutover.reconcile_pending where kind = 'ledger') as ledger,
           (select count(*) from cutover.reconcile_pending where kind = 'gap') as gaps
    from cutover.reconcile_state s where s.id`;
  return {
    last_seq: Number(row?.last_seq ?? 0),
    last_cursor: Number(row?.last_cursor ?? 0),
    watermark: iso(row?.watermark),
    lag_ms: num(row?.lag_ms),
    last_run_id: num(row?.last_run_id),
    updated_at: iso(row?.updated_at) ?? new Date(0).toISOString(),
    pending: {
      events: Number(row?.events ?? 0),
      ledger_rows: Number(row?.ledger ?? 0),
      gaps: Number(row?.gaps ?? 0),
    },
  };
}

function iso(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString();
}

function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}
