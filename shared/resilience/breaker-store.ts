/**
 * The circuit breakers' Postgres adapter (cutover.breaker_state,
 * cutover.breaker_transitions; migration 20261123000900_resilience.sql) and
 * the windows they are judged on (cutover.adapter_stats, migration
 * 20261123000600_metrics.sql).
 *
 * Every change goes through `applyBreakerInput`: read the row (with the
 * database's clock), let the pure `stepBreaker` decide, and write the result
 * with `where version = <read version>` in one statement that also logs the
 * transition. When another instance changed the row in between, the UPDATE
 * matches nothing and the step is re-decided on the fresh row — so a
 * transition happens once however many instances race for it, and a
 * half-open breaker never admits more than its N probes.
 */
import type { Sql } from "../db/client.ts";
import { type Adapter, ADAPTERS } from "../events/schema.ts";
import { type AdapterCounts, emptyAdapterCounts } from "../metrics/stats.ts";
import {
  type BreakerInput,
  type BreakerPolicy,
  type BreakerRecord,
  type BreakerState,
  type BreakerStep,
  initialBreakerRecord,
  stepBreaker,
} from "./breaker.ts";
import type { ConnectionFailures } from "./rollback.ts";

/**
 * The stats operations each breaker judges: ingest's (and dlq-retry's) relay
 * POSTs for the WebSocket path; ingest's store statement, which carries the
 * Realtime deliveries, for the Realtime path.
 */
export const BREAKER_OPERATIONS: Record<Adapter, readonly string[]> = {
  websocket: ["relay"],
  realtime: ["write"],
};

/** A breaker row as stored: the state machine's record plus the connection-failure counter. */
export interface StoredBreaker extends BreakerRecord {
  adapter: Adapter;
  connectionFailures: ConnectionFailures;
}

interface Row {
  adapter: Adapter;
  state: BreakerState;
  version: string;
  since: number;
  open_until: number | null;
  closed_at: number | null;
  window_from: number | null;
  probes_admitted: number;
  probe_successes: number;
  probe_failures: number;
  probe_slow: number;
  reason: string | null;
  conn_failures: number;
  conn_failures_first_at: number | null;
  conn_failures_last_at: number | null;
  now: number;
}

const ms = (column: string) => `(extract(epoch from ${column}) * 1000)::float8`;

const SELECT_ROWS = `
  select adapter, state, version, ${ms("since")} as since, ${ms("open_until")} as open_until,
    ${ms("closed_at")} as closed_at, ${ms("window_from")} as window_from,
    probes_admitted, probe_successes, probe_failures, probe_slow, reason, conn_failures,
    ${ms("conn_failures_first_at")} as conn_failures_first_at,
    ${ms("conn_failures_last_at")} as conn_failures_last_at, ${ms("clock_timestamp()")} as now
  from cutover.breaker_state`;

function fromRow(row: Row): StoredBreaker {
  return {
    adapter: row.adapter,
    state: row.state,
    version: Number(row.version),
    since: row.since,
    openUntil: row.open_until,
    closedAt: row.closed_at,
    windowFrom: row.window_from,
    probesAdmitted: row.probes_admitted,
    probeSuccesses: row.probe_successes,
    probeFailures: row.probe_failures,
    probeSlow: row.probe_slow,
    reason: row.reason,
    connectionFailures: {
      count: row.conn_failures,
      firstAt: row.conn_failures_first_at,
      lastAt: row.conn_failures_last_at,
    },
  };
}

/** Every breaker row, and the database's clock (epoch ms) when read. Throws on database errors. */
export async function readBreakers(
  sql: Sql,
): Promise<{ now: number; breakers: Record<Adapter, StoredBreaker> }> {
  const rows = await sql.unsafe<Row[]>(SELECT_ROWS);
  const breakers = {} as Record<Adapter, StoredBreaker>;
  let now = Date.now();
  for (const row of rows) {
    breakers[row.adapter] = fromRow(row);
    now = row.now;
  }
  for (const adapter of ADAPTERS) {
    // The migration seeds both rows; a missing one reads as a fresh closed breaker.
    breakers[adapter] ??= {
      ...initialBreakerRecord(now),
      adapter,
      version: -1,
      connectionFailures: { count: 0, firstAt: null, lastAt: null },
    };
  }
  return { now, breakers };
}

const WRITE_SQL = `
with upd as (
  update cutover.breaker_state b set
    state = $3, version = $4, since = to_timestamp($5::float8 / 1000),
    open_until = to_timestamp($6::float8 / 1000), closed_at = to_timestamp($7::float8 / 1000),
    probes_admitted = $8, probe_successes = $9, reason = $10,
    window_from = to_timestamp($14::float8 / 1000), probe_failures = $15, probe_slow = $16,
    updated_at = now()
  where b.adapter = $1 and b.version = $2
  returning b.adapter
), log as (
  insert into cutover.breaker_transitions (adapter, from_state, to_state, reason, details, instance)
  select $1, $11, $3, $10, $12::text::jsonb, $13 from upd where $11::text is not null
  returning 1
)
select (select count(*) from upd)::int as updated`;

/** What a transition is logged with. */
export interface TransitionMeta {
  instance?: string;
  /** The window or probe behind the decision (logged as JSON). */
  details?: Record<string, unknown>;
}

/** The outcome of applying an input. */
export interface AppliedStep {
  step: BreakerStep;
  /** The breaker as it now is (the written record, or the fresh one when nothing changed). */
  breaker: StoredBreaker;
  now: number;
}

/**
 * Applies one input to `adapter`'s breaker race-free: read, `stepBreaker`,
 * conditional write (and transition log) — retried on a lost race, up to
 * `attempts` times. `input` builds the input from the fresh record and the
 * database's clock (return null to do nothing). Throws on database errors,
 * or when every attempt lost its race.
 */
export async function applyBreakerInput(
  sql: Sql,
  adapter: Adapter,
  input: (breaker: StoredBreaker, now: number) => BreakerInput | null,
  policy: BreakerPolicy,
  meta: TransitionMeta = {},
  attempts = 8,
): Promise<AppliedStep | null> {
  for (let i = 0; i < attempts; i++) {
    const rows = await sql.unsafe<Row[]>(`${SELECT_ROWS} where adapter = $1`, [adapter]);
    if (!rows[0]) throw new Error(`no breaker row for ${adapter}`);
    const breaker = fromRow(rows[0]);
    const now = rows[0].now;
    const built = input(breaker, now);
    if (!built) return null;
    const step = stepBreaker(breaker, built, policy);
    if (!step.changed) return { step, breaker, now };
    const r = step.record;
    const [written] = await sql.unsafe<{ updated: number }[]>(WRITE_SQL, [
      adapter,
      breaker.version,
      r.state,
      r.version,
      r.since,
      r.openUntil,
      r.closedAt,
      r.probesAdmitted,
      r.probeSuccesses,
      r.reason,
      step.transition?.from ?? null,
      JSON.stringify(meta.details ?? null),
      meta.instance ?? null,
      r.windowFrom,
      r.probeFailures,
      r.probeSlow,
    ]);
    if (written?.updated === 1) return { step, breaker: { ...breaker, ...r }, now };
  }
  throw new Error(`breaker ${adapter}: lost ${attempts} races in a row`);
}

/**
 * Counts a connection failure (consecutive failures within `windowS` seconds
 * of the first one; an older streak restarts) or a success (resets) for the
 * rollback trigger. Does not touch the state machine's version. Throws on
 * database errors.
 */
export async function noteConnectionOutcome(
  sql: Sql,
  adapter: Adapter,
  failed: boolean,
  windowS: number,
): Promise<void> {
  if (failed) {
    await sql.unsafe(
      `update cutover.breaker_state set
         conn_failures = case when conn_failures_first_at > now() - make_interval(secs => $2::float8)
           then conn_failures + 1 else 1 end,
         conn_failures_first_at = case when conn_failures_first_at > now() - make_interval(secs => $2::float8)
           then conn_failures_first_at else now() end,
         conn_failures_last_at = now()
       where adapter = $1`,
      [adapter, windowS],
    );
  } else {
    await sql.unsafe(
      `update cutover.breaker_state set conn_failures = 0, conn_failures_first_at = null,
         conn_failures_last_at = null
       where adapter = $1 and conn_failures > 0`,
      [adapter],
    );
  }
}

const COUNT_COLUMNS = `
  coalesce(sum(calls), 0)::float8 as calls, coalesce(sum(failures), 0)::float8 as failures,
  coalesce(sum(slow_calls), 0)::float8 as slow_calls, coalesce(sum(events), 0)::float8 as events,
  coalesce(sum(failed_events), 0)::float8 as failed_events,
  coalesce(sum(latency_sum_ms), 0)::float8 as latency_sum_ms,
  coalesce(max(latency_max_ms), 0)::float8 as latency_max_ms,
  cutover.histogram_sum(histogram)::float8[] as histogram`;

/** A range of stats buckets to sum. */
export interface WindowRange {
  /** Epoch ms; buckets starting at or after it. */
  from: number;
  /** Epoch ms; buckets starting before it (omitted: up to now). */
  to?: number;
  /**
   * Only buckets whose failure rate is at most this — for a baseline, so an
   * outage's fast failures do not pass for the adapter's normal latency.
   */
  maxFailureRate?: number;
}

/**
 * Each adapter's counts over its breaker operations in the given ranges,
 * from the stats buckets. Adapters without calls get zero counts. Throws on
 * database errors.
 */
export async function readBreakerWindows(
  sql: Sql,
  ranges: Partial<Record<Adapter, WindowRange>>,
): Promise<Record<Adapter, AdapterCounts>> {
  const spec = Object.entries(ranges).map(([adapter, r]) => ({
    adapter,
    operations: BREAKER_OPERATIONS[adapter as Adapter],
    since: new Date(r!.from).toISOString(),
    until: r!.to === undefined ? null : new Date(r!.to).toISOString(),
    max_failure_rate: r!.maxFailureRate ?? null,
  }));
  const rows = await sql.unsafe<(AdapterCounts & { adapter: Adapter })[]>(
    `select w.adapter, ${COUNT_COLUMNS}
     from jsonb_to_recordset($1::text::jsonb)
       as w(adapter text, operations text[], since timestamptz, until timestamptz, max_failure_rate float8)
     join cutover.adapter_stats s
       on s.adapter = w.adapter and s.operation = any (w.operations)
      and s.bucket_start >= w.since and (w.until is null or s.bucket_start < w.until)
      and (w.max_failure_rate is null or s.failures <= s.calls * w.max_failure_rate)
     group by w.adapter`,
    [JSON.stringify(spec)],
  );
  const out = {} as Record<Adapter, AdapterCounts>;
  for (const adapter of ADAPTERS) out[adapter] = emptyAdapterCounts();
  for (const row of rows) {
    const { adapter, ...counts } = row;
    out[adapter] = { ...counts, histogram: counts.histogram ?? emptyAdapterCounts().histogram };
  }
  return out;
}

/** One logged transition. */
export interface TransitionRow {
  id: number;
  adapter: Adapter;
  from_state: BreakerState;
  to_state: BreakerState;
  reason: string;
  details: unknown;
  instance: string | null;
  at: string;
}

/** The newest transitions (of one adapter, or all), newest first. Throws on database errors. */
export async function readTransitions(
  sql: Sql,
  options: { adapter?: Adapter; limit?: number; afterId?: number } = {},
): Promise<TransitionRow[]> {
  const rows = await sql.unsafe<(TransitionRow & { id: string; at: Date })[]>(
    `select id, adapter, from_state, to_state, reason, details, instance, at
     from cutover.breaker_transitions
     where ($1::text is null or adapter = $1) and id > $3
     order by id desc limit $2`,
    [options.adapter ?? null, options.limit ?? 50, options.afterId ?? 0],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id), at: new Date(r.at).toISOString() }));
}
