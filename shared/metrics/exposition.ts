/**
 * The metric families the metrics function exposes, built from the
 * cumulative stats totals and the pipeline's current state. Pure.
 *
 * Counters come from the *_totals tables: cumulative since the project's
 * database began (they survive function restarts and bucket pruning, and
 * only go up). Gauges are read at scrape time. Families whose source table
 * does not exist yet (breakers, dead letters, reconciliation) are omitted.
 */
import { type Adapter, ADAPTERS, CATEGORIES } from "../events/schema.ts";
import { HISTOGRAM_SIZE, LATENCY_BOUNDS_MS } from "./histogram.ts";
import type { MetricFamily, Sample } from "./prometheus.ts";
import { type AdapterCounts, emptyAdapterCounts, type IngestCounts } from "./stats.ts";
import type { SummaryState } from "./summary.ts";

/** The operations each adapter records (listed with zeros before their first call). */
export const RECORDED_OPERATIONS: Record<Adapter, readonly string[]> = {
  websocket: ["relay"],
  realtime: ["write"],
};

/** Breaker states exported as a state set (one series per state, 1 for the current one). */
export const BREAKER_STATES = ["closed", "open", "half_open"] as const;

export interface ExpositionInput {
  adapterTotals: ({ adapter: Adapter; operation: string } & AdapterCounts)[];
  ingestTotals: ({ category: string } & IngestCounts)[];
  /** With `reconciliation` read over the last RECONCILE_GAUGE_WINDOW_S seconds. */
  state: SummaryState;
}

/** The window the reconciliation gauges cover: runs and findings of the last 15 minutes. */
export const RECONCILE_GAUGE_WINDOW_S = 900;

/** Latency bounds in seconds, as the histogram's `le` labels. */
const BOUNDS_S = LATENCY_BOUNDS_MS.map((ms) => Number((ms / 1000).toPrecision(3)));

/** All families, in a stable order. Throws only on a programming error in names. */
export function buildFamilies(input: ExpositionInput): MetricFamily[] {
  const families: MetricFamily[] = [];

  const ingest = new Map(input.ingestTotals.map((r) => [r.category, r]));
  const categories = [...CATEGORIES, ...(ingest.has("unknown") ? ["unknown"] : [])];
  const ingestFamily = (
    name: string,
    help: string,
    field: keyof IngestCounts,
  ): MetricFamily => ({
    name,
    help,
    type: "counter",
    samples: categories.map((category) => ({
      labels: { category },
      value: ingest.get(category)?.[field] ?? 0,
    })),
  });
  families.push(
    ingestFamily(
      "cutover_events_received_total",
      "Events ingest decided about (stored + duplicate + rejected), by category, since the database began.",
      "received",
    ),
    ingestFamily(
      "cutover_events_stored_total",
      "Events newly stored by ingest, by category.",
      "stored",
    ),
    ingestFamily(
      "cutover_events_duplicate_total",
      "Events ingest recognised as already stored (producer retries), by category.",
      "duplicates",
    ),
    ingestFamily(
      "cutover_events_rejected_total",
      'Events ingest rejected with a reason, by category ("unknown" when it could not be told).',
      "rejected",
    ),
    ingestFamily(
      "cutover_events_received_bytes_total",
      "JSON size of the events ingest decided about, by category.",
      "bytes",
    ),
  );

  const adapterRows = new Map(input.adapterTotals.map((r) => [`${r.adapter}|${r.operation}`, r]));
  for (const adapter of ADAPTERS) {
    for (const operation of RECORDED_OPERATIONS[adapter]) {
      const key = `${adapter}|${operation}`;
      if (!adapterRows.has(key)) {
        adapterRows.set(key, { adapter, operation, ...emptyAdapterCounts() });
      }
    }
  }
  const rows = [...adapterRows.values()].sort((a, b) =>
    a.adapter === b.adapter
      ? (a.operation < b.operation ? -1 : 1)
      : (a.adapter < b.adapter ? -1 : 1)
  );
  const adapterFamily = (
    name: string,
    help: string,
    value: (r: AdapterCounts) => number,
  ): MetricFamily => ({
    name,
    help,
    type: "counter",
    samples: rows.map((r) => ({
      labels: { adapter: r.adapter, operation: r.operation },
      value: value(r),
    })),
  });
  families.push(
    adapterFamily(
      "cutover_adapter_calls_total",
      "Calls to a delivery adapter (websocket relay to ws-fanout; realtime write of the store statement).",
      (r) => r.calls,
    ),
    adapterFamily("cutover_adapter_errors_total", "Adapter calls that failed.", (r) => r.failures),
    adapterFamily(
      "cutover_adapter_slow_calls_total",
      "Adapter calls slower than the adapter's latency threshold (adapter_health setting) when recorded.",
      (r) => r.slow_calls,
    ),
    adapterFamily(
      "cutover_adapter_deliveries_total",
      "Events carried by successful adapter calls.",
      (r) => r.events,
    ),
    adapterFamily(
      "cutover_adapter_failed_deliveries_total",
      "Events carried by failed adapter calls (they stay pending and are retried).",
      (r) => r.failed_events,
    ),
    {
      name: "cutover_adapter_latency_seconds",
      help: "Latency of adapter calls.",
      type: "histogram",
      samples: rows.map((r) => ({
        labels: { adapter: r.adapter, operation: r.operation },
        bounds: BOUNDS_S,
        counts: foldHistogram(r.histogram),
        sum: r.latency_sum_ms / 1000,
      })),
    },
  );

  const { state } = input;
  if (state.breakers) {
    const samples: Sample[] = [];
    for (const [adapter, breaker] of Object.entries(state.breakers).sort()) {
      const states = new Set<string>([...BREAKER_STATES, breaker.state]);
      for (const s of states) {
        samples.push({ labels: { adapter, state: s }, value: s === breaker.state ? 1 : 0 });
      }
    }
    families.push({
      name: "cutover_breaker_state",
      help: "Circuit breaker state per adapter: 1 for the current state, 0 for the others.",
      type: "gauge",
      samples,
    });
  }

  families.push(
    {
      name: "cutover_outbox_pending",
      help: "Relay-outbox rows not yet delivered to ws-fanout.",
      type: "gauge",
      samples: [{ value: state.outbox.pending }],
    },
    {
      name: "cutover_outbox_oldest_pending_age_seconds",
      help: "Age of the oldest pending relay-outbox row (0 when none is pending).",
      type: "gauge",
      samples: [{ value: state.outbox.oldest_age_s ?? 0 }],
    },
  );

  if (state.rollbacks) {
    families.push({
      name: "cutover_rollbacks",
      help:
        "Automated rollbacks recorded (kept 30 days) per adapter and trigger; the flag audit has each change.",
      type: "gauge",
      samples: state.rollbacks.by_trigger.map((r) => ({
        labels: { adapter: r.adapter, trigger: r.trigger },
        value: r.count,
      })),
    });
  }

  if (state.dlq) {
    families.push({
      name: "cutover_dead_letters",
      help: "Dead-letter rows by status.",
      type: "gauge",
      samples: Object.entries(state.dlq.by_status).sort().map(([status, n]) => ({
        labels: { status },
        value: n,
      })),
    });
  }

  if (state.reconciliation) {
    const r = state.reconciliation;
    families.push(
      {
        name: "cutover_reconcile_lag_seconds",
        help:
          "How far reconciliation trails: now minus the watermark of the newest successful run (every event received before it is judged).",
        type: "gauge",
        samples: r.lag_s === null ? [] : [{ value: r.lag_s }],
      },
      {
        name: "cutover_reconcile_consistency_ratio",
        help:
          "Matched / judged over the reconciliation runs of the last 15 minutes, by category (late, missing, mismatched and duplicate count against it).",
        type: "gauge",
        samples: Object.entries(r.categories).sort()
          .filter(([, c]) => c.consistency !== null)
          .map(([category, c]) => ({ labels: { category }, value: c.consistency! })),
      },
      {
        name: "cutover_reconcile_findings",
        help: "Reconciliation findings recorded in the last 15 minutes, by type.",
        type: "gauge",
        samples: Object.entries(r.findings_by_type).sort().map(([type, value]) => ({
          labels: { type },
          value,
        })),
      },
    );
  }

  families.push({
    name: "cutover_flag_version",
    help: "Version of the flags and settings (cutover.config_state); moves on every change.",
    type: "gauge",
    samples: state.flag_version === null ? [] : [{ value: state.flag_version }],
  });

  const recorders = Object.entries(state.recorders).sort();
  const recorderFamily = (
    name: string,
    help: string,
    field: "flushes" | "flush_failures" | "dropped_buckets" | "dropped_records",
  ): MetricFamily => ({
    name,
    help,
    type: "counter",
    samples: recorders.map(([recorder, r]) => ({ labels: { recorder }, value: r[field] })),
  });
  families.push(
    recorderFamily(
      "cutover_stats_flushes_total",
      "Successful flushes of in-memory stats to Postgres, per recording function.",
      "flushes",
    ),
    recorderFamily(
      "cutover_stats_flush_failures_total",
      "Failed flush attempts (retried with backoff; counted when a later flush succeeds).",
      "flush_failures",
    ),
    recorderFamily(
      "cutover_stats_dropped_buckets_total",
      "10-second stats buckets dropped because the database stayed unreachable past the buffer's bound.",
      "dropped_buckets",
    ),
    recorderFamily(
      "cutover_stats_dropped_records_total",
      "Adapter calls and ingested events whose stats were dropped (not the events themselves).",
      "dropped_records",
    ),
  );
  return families;
}

/** A stored histogram in the exposition's layout: finite buckets, then one overflow bucket. */
function foldHistogram(histogram: readonly number[]): number[] {
  const out = new Array(HISTOGRAM_SIZE).fill(0);
  histogram.forEach((count, i) => {
    out[Math.min(i, HISTOGRAM_SIZE - 1)] += count;
  });
  return out;
}
