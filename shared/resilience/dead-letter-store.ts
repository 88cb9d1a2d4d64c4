/**
 * The dead-letter queue's Postgres adapter (cutover.dead_letters, migration
 * 20261123000900_resilience.sql). The rules are dead-letters.ts's; this file
 * only reads and writes rows:
 *
 * - `recordDeadLetters` — a failed or deferred delivery becomes (or updates)
 *   the row of (adapter, event); a row already delivered is left alone.
 * - `claimDueDeadLetters` — `FOR UPDATE SKIP LOCKED` over due pending rows,
 *   leased to one run by moving next_attempt_at `lease_s` ahead and stamping
 *   `claimed_by`, in one statement: two runs never claim the same row, and
 *   no transaction stays open while the deliveries run.
 * - `finishDeadLetters` — writes each attempt's outcome, only where the row
 *   is still pending and still this run's (a row another path delivered, or
 *   a lease that expired and went to another run, is not overwritten).
 * - list / replay / purge for the operators' API, and the depth summary.
 */
import type { Sql } from "../db/client.ts";
import type { Adapter } from "../events/schema.ts";
import type { DeadLetterStatus, DeadLetterUpdate } from "./dead-letters.ts";

/** The key of an event (public.monitoring_events' primary key). */
export interface EventKey {
  id: string;
  event_time: string;
}

/** A dead letter as the API shows it. */
export interface DeadLetter {
  id: number;
  adapter: Adapter;
  operation: string;
  event_id: string;
  event_time: string;
  status: DeadLetterStatus;
  attempts: number;
  last_error: string | null;
  first_failed_at: string;
  last_failed_at: string;
  next_attempt_at: string;
  delivered_at: string | null;
  dead_at: string | null;
  claimed_by: string | null;
}

export interface RecordDeadLetters {
  adapter: Adapter;
  operation: string;
  keys: EventKey[];
  error: string;
  /** Attempts made now (0 for a deferral). Added to the row's count. */
  attempts: number;
  /** The status the rows take (pending, or dead for a permanent error / exhausted attempts). */
  status: "pending" | "dead";
  /** When they are due (epoch ms). */
  nextAttemptAt: number;
}

/**
 * Inserts or updates the dead letters of `keys` in one statement. A row
 * already delivered keeps its status; an existing pending row adds the
 * attempts and takes the later of the two due times. Returns how many rows
 * were written. Throws on database errors.
 *
 * WebSocket rows whose outbox row is already delivered (ws-fanout's drain
 * got there first) are written as delivered. The outbox rows are read FOR
 * SHARE, in the order appenders lock them: a delivery committing at the same
 * moment either finishes first (and is seen here) or waits for this insert
 * (and its trigger then marks the new row delivered) — no pending row is
 * left behind for a delivered event.
 */
export async function recordDeadLetters(sql: Sql, input: RecordDeadLetters): Promise<number> {
  if (input.keys.length === 0) return 0;
  const [row] = await sql.unsafe<{ n: number }[]>(
    `with k as (
       select distinct on (id, event_time) id, event_time
       from jsonb_to_recordset($1::text::jsonb) as x(id uuid, event_time timestamptz)
       order by id, event_time
     ), outbox as (
       select o.event_id, o.event_time, o.status from cutover.relay_outbox o
       join k on o.event_id = k.id and o.event_time = k.event_time
       where $2 = 'websocket'
       order by o.created_at, o.event_id
       for share of o
     ), up as (
       insert into cutover.dead_letters as d
         (adapter, operation, event_id, event_time, status, attempts, last_error,
          next_attempt_at, dead_at, delivered_at)
       select $2, $3, k.id, k.event_time, s.status, $5, left($6, 1000),
              to_timestamp($7::float8 / 1000), case when s.status = 'dead' then now() end,
              case when s.status = 'delivered' then now() end
       from k
       left join outbox o on o.event_id = k.id and o.event_time = k.event_time
       cross join lateral (
         select case when o.status = 'delivered' then 'delivered' else $4 end as status) s
       order by k.id, k.event_time
       on conflict (adapter, event_id, event_time) do update set
         attempts = d.attempts + excluded.attempts,
         last_error = excluded.last_error,
         last_failed_at = now(),
         status = case when d.status = 'pending' then excluded.status else d.status end,
         dead_at = case when d.status = 'pending' and excluded.status = 'dead' then now() else d.dead_at end,
         delivered_at = case when d.status = 'pending' and excluded.status = 'delivered' then now()
           else d.delivered_at end,
         next_attempt_at = greatest(d.next_attempt_at, excluded.next_attempt_at)
       where d.status <> 'delivered'
       returning 1
     )
     select count(*)::int as n from up`,
    [
      JSON.stringify(input.keys),
      input.adapter,
      input.operation,
      input.status,
      input.attempts,
      input.error,
      input.nextAttemptAt,
    ],
  );
  return row?.n ?? 0;
}

/** A claimed row: what a run needs to deliver it and to judge the attempt. */
export interface ClaimedDeadLetter {
  id: number;
  adapter: Adapter;
  operation: string;
  event_id: string;
  event_time: string;
  attempts: number;
  last_error: string | null;
}

/**
 * Claims up to `limit` due pending rows of `adapter` for run `runId`
 * (oldest due first), leasing them for `leaseS` seconds. Throws on database errors.
 */
export async function claimDueDeadLetters(
  sql: Sql,
  options: { adapter: Adapter; limit: number; leaseS: number; runId: string },
): Promise<ClaimedDeadLetter[]> {
  const rows = await sql.unsafe<(ClaimedDeadLetter & { id: string; event_time: Date })[]>(
    `with due as (
       select id from cutover.dead_letters
       where adapter = $1 and status = 'pending' and next_attempt_at <= now()
       order by next_attempt_at, id
       limit $2
       for update skip locked
     )
     update cutover.dead_letters d
     set claimed_by = $4, claimed_at = now(), next_attempt_at = now() + make_interval(secs => $3::float8)
     from due where d.id = due.id
     returning d.id, d.adapter, d.operation, d.event_id, d.event_time, d.attempts, d.last_error`,
    [options.adapter, options.limit, options.leaseS, options.runId],
  );
  return rows
    .map((r) => ({ ...r, id: Number(r.id), event_time: new Date(r.event_time).toISOString() }))
    .sort((a, b) => a.id - b.id);
}

/** One row's outcome for `finishDeadLetters`. */
export interface FinishedDeadLetter extends DeadLetterUpdate {
  id: number;
}

/**
 * Writes attempt outcomes of run `runId`, one statement. Rows no longer
 * claimed by this run are skipped, and so are rows no longer pending —
 * except a row this run delivered whose outbox trigger marked it delivered
 * first (then only the attempt count and the claim are written). Returns the
 * ids written.
 */
export async function finishDeadLetters(
  sql: Sql,
  runId: string,
  rows: FinishedDeadLetter[],
): Promise<number[]> {
  if (rows.length === 0) return [];
  const written = await sql.unsafe<{ id: string }[]>(
    `update cutover.dead_letters d set
       status = x.status,
       attempts = x.attempts,
       last_error = left(x.last_error, 1000),
       last_failed_at = case when x.status = 'delivered' then d.last_failed_at else now() end,
       next_attempt_at = coalesce(to_timestamp(x.next_ms / 1000), now()),
       delivered_at = case when x.status = 'delivered' then coalesce(d.delivered_at, now())
         else d.delivered_at end,
       dead_at = case when x.status = 'dead' then now() else d.dead_at end,
       claimed_by = null, claimed_at = null
     from jsonb_to_recordset($2::text::jsonb) as x(id bigint, status text, attempts int, last_error text, next_ms float8)
     where d.id = x.id and d.claimed_by = $1
       and (d.status = 'pending' or (d.status = 'delivered' and x.status = 'delivered'))
     returning d.id`,
    [
      runId,
      JSON.stringify(rows.map((r) => ({
        id: r.id,
        status: r.status,
        attempts: r.attempts,
        last_error: r.lastError,
        next_ms: r.nextAttemptAt,
      }))),
    ],
  );
  return written.map((r) => Number(r.id));
}

/**
 * Adopts WebSocket deliveries whose relay was lost: pending outbox rows
 * created more than `afterS` seconds ago with no dead letter (their ingest
 * instance died before relaying, or could not record the failure). They
 * become pending dead letters, due now. Returns how many. Throws on database errors.
 */
export async function adoptOrphanedOutbox(
  sql: Sql,
  afterS: number,
  limit: number,
): Promise<number> {
  const [row] = await sql.unsafe<{ n: number }[]>(
    `with orphans as (
       select o.event_id, o.event_time, o.attempts, o.last_error
       from cutover.relay_outbox o
       where o.status = 'pending' and o.created_at < now() - make_interval(secs => $1::float8)
         and not exists (
           select 1 from cutover.dead_letters d
           where d.adapter = 'websocket' and d.event_id = o.event_id and d.event_time = o.event_time)
       order by o.created_at, o.event_id
       limit $2
       -- Rows an appender holds are being delivered right now: not orphans.
       for share of o skip locked
     ), ins as (
       insert into cutover.dead_letters (adapter, operation, event_id, event_time, attempts, last_error)
       select 'websocket', 'relay', event_id, event_time, 0,
              coalesce(last_error, 'relay not confirmed: the outbox row is still pending')
       from orphans
       on conflict (adapter, event_id, event_time) do nothing
       returning 1
     )
     select count(*)::int as n from ins`,
    [afterS, limit],
  );
  return row?.n ?? 0;
}

/** Which WebSocket keys the outbox shows delivered (to judge a relay that answered 200). */
export async function deliveredOutboxKeys(sql: Sql, keys: EventKey[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const rows = await sql.unsafe<{ event_id: string; event_time: Date }[]>(
    `select o.event_id, o.event_time
     from jsonb_to_recordset($1::text::jsonb) as k(id uuid, event_time timestamptz)
     join cutover.relay_outbox o on o.event_id = k.id and o.event_time = k.event_time
     where o.status = 'delivered'`,
    [JSON.stringify(keys)],
  );
  return new Set(rows.map((r) => eventKeyString(r.event_id, r.event_time)));
}

/** A stable string for an event key. */
export function eventKeyString(id: string, time: string | Date): string {
  return `${id}|${new Date(time).getTime()}`;
}

export interface DeadLetterQuery {
  status?: DeadLetterStatus;
  adapter?: Adapter;
  limit: number;
  /** Rows with id below this (the next page). */
  beforeId?: number;
}

const COLUMNS = `id, adapter, operation, event_id, event_time, status, attempts, last_error,
  first_failed_at, last_failed_at, next_attempt_at, delivered_at, dead_at, claimed_by`;

type RawDeadLetter =
  & Omit<
    DeadLetter,
    | "id"
    | "event_time"
    | "first_failed_at"
    | "last_failed_at"
    | "next_attempt_at"
    | "delivered_at"
    | "dead_at"
  >
  & {
    id: string;
    event_time: Date;
    first_failed_at: Date;
    last_failed_at: Date;
    next_attempt_at: Date;
    delivered_at: Date | null;
    dead_at: Date | null;
  };

function toDeadLetter(r: RawDeadLetter): DeadLetter {
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  return {
    ...r,
    id: Number(r.id),
    event_time: iso(r.event_time)!,
    first_failed_at: iso(r.first_failed_at)!,
    last_failed_at: iso(r.last_failed_at)!,
    next_attempt_at: iso(r.next_attempt_at)!,
    delivered_at: iso(r.delivered_at),
    dead_at: iso(r.dead_at),
  };
}

/** A page of dead letters, newest first. Throws on database errors. */
export async function listDeadLetters(sql: Sql, q: DeadLetterQuery): Promise<DeadLetter[]> {
  const rows = await sql.unsafe<RawDeadLetter[]>(
    `select ${COLUMNS} from cutover.dead_letters
     where ($1::text is null or status = $1) and ($2::text is null or adapter = $2)
       and ($4::bigint is null or id < $4)
     order by id desc limit $3`,
    [q.status ?? null, q.adapter ?? null, q.limit, q.beforeId ?? null],
  );
  return rows.map(toDeadLetter);
}

/** Which rows an operator's replay or purge targets. */
export interface DeadLetterSelection {
  ids?: number[];
  status?: DeadLetterStatus;
  adapter?: Adapter;
  /** Rows whose last failure is older than this (ISO-8601). */
  olderThan?: string;
}

function selectionWhere(first: number): string {
  return `(${`$${first}`}::bigint[] is null or id = any (${`$${first}`}::bigint[]))
    and (${`$${first + 1}`}::text is null or status = ${`$${first + 1}`})
    and (${`$${first + 2}`}::text is null or adapter = ${`$${first + 2}`})
    and (${`$${first + 3}`}::timestamptz is null or last_failed_at < ${`$${
    first + 3
  }`}::timestamptz)`;
}

function selectionArgs(s: DeadLetterSelection): unknown[] {
  return [s.ids ?? null, s.status ?? null, s.adapter ?? null, s.olderThan ?? null];
}

/**
 * Puts selected DEAD rows back to pending (attempts 0, due now). Pending and
 * delivered rows are not touched. Returns the ids replayed.
 */
export async function replayDeadLetters(sql: Sql, s: DeadLetterSelection): Promise<number[]> {
  const rows = await sql.unsafe<{ id: string }[]>(
    `update cutover.dead_letters set status = 'pending', attempts = 0, next_attempt_at = now(),
       dead_at = null, claimed_by = null, claimed_at = null
     where status = 'dead' and ${selectionWhere(1)}
     returning id`,
    selectionArgs(s) as never[],
  );
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/**
 * Deletes selected rows that are dead or delivered (never pending: a pending
 * row is a delivery still owed). Returns the ids deleted.
 */
export async function purgeDeadLetters(sql: Sql, s: DeadLetterSelection): Promise<number[]> {
  const rows = await sql.unsafe<{ id: string }[]>(
    `delete from cutover.dead_letters
     where status in ('dead', 'delivered') and ${selectionWhere(1)}
     returning id`,
    selectionArgs(s) as never[],
  );
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/** Queue depth per adapter and status, with the oldest pending failure. */
export interface DeadLetterDepth {
  adapter: Adapter;
  pending: number;
  due: number;
  dead: number;
  delivered: number;
  oldest_pending_at: string | null;
}

/** The queue's depth. Throws on database errors. */
export async function deadLetterDepth(sql: Sql): Promise<DeadLetterDepth[]> {
  const rows = await sql.unsafe<
    (Omit<DeadLetterDepth, "oldest_pending_at"> & { oldest: Date | null })[]
  >(
    `select a.adapter,
       count(*) filter (where d.status = 'pending')::int as pending,
       count(*) filter (where d.status = 'pending' and d.next_attempt_at <= now())::int as due,
       count(*) filter (where d.status = 'dead')::int as dead,
       count(*) filter (where d.status = 'delivered')::int as delivered,
       min(d.first_failed_at) filter (where d.status = 'pending') as oldest
     from (values ('websocket'), ('realtime')) as a(adapter)
     left join cutover.dead_letters d on d.adapter = a.adapter
     group by a.adapter order by a.adapter desc`,
  );
  return rows.map(({ oldest, ...r }) => ({
    ...r,
    oldest_pending_at: oldest ? new Date(oldest).toISOString() : null,
  }));
}
