/**
 * The dashboard's JSON summary, computed from the persisted stats buckets:
 * window figures per adapter (success rate, latency percentiles) and per
 * category (events received/stored/duplicate/rejected), and time series over
 * the window for charts (uPlot-ready: `series.t` in unix seconds, every
 * other series aligned with it). Pure: rows in, summary out.
 */
import { type Adapter, ADAPTERS, CATEGORIES } from "../events/schema.ts";
import { estimatePercentile } from "./histogram.ts";
import {
  type AdapterCounts,
  type AdapterHealthView,
  addAdapterCounts,
  addIngestCounts,
  describeAdapterCounts,
  emptyAdapterCounts,
  emptyIngestCounts,
  type IngestCounts,
  type StatsCategory,
} from "./stats.ts";
import type { ReconcileSummary } from "./state.ts";
import type { AdapterStepRow, IngestStepRow } from "./store.ts";

/** The windows the summary offers, with the step of their series. */
export const SUMMARY_WINDOWS = {
  "1m": { seconds: 60, stepSeconds: 10 },
  "15m": { seconds: 900, stepSeconds: 30 },
  "1h": { seconds: 3_600, stepSeconds: 60 },
  "24h": { seconds: 86_400, stepSeconds: 900 },
} as const;

export type SummaryWindow = keyof typeof SUMMARY_WINDOWS;

/** True for a window name the summary offers. */
export function isSummaryWindow(value: string): value is SummaryWindow {
  return Object.hasOwn(SUMMARY_WINDOWS, value);
}

/** The range a window covers at `nowMs`. */
export interface WindowRange {
  /** Start of the first step (epoch ms, a multiple of the step). */
  fromMs: number;
  /** End of the last step, which is the one holding `nowMs` (still filling). */
  toMs: number;
  stepMs: number;
  /** Start of every step, oldest first. */
  steps: number[];
}

/**
 * The steps of `window` ending with the step that holds `nowMs`: steps are
 * aligned to the epoch, so every 10-second stats bucket falls in exactly one.
 */
export function windowRange(window: SummaryWindow, nowMs: number): WindowRange {
  const { seconds, stepSeconds } = SUMMARY_WINDOWS[window];
  const stepMs = stepSeconds * 1000;
  const count = seconds / stepSeconds;
  const toMs = Math.floor(nowMs / stepMs) * stepMs + stepMs;
  const steps = Array.from({ length: count }, (_, i) => toMs - (count - i) * stepMs);
  return { fromMs: steps[0]!, toMs, stepMs, steps };
}

/** Categories the summary always lists (`unknown`: rejected events of no known category). */
export const SUMMARY_CATEGORIES: readonly StatsCategory[] = [...CATEGORIES, "unknown"];

export interface AdapterSummary extends AdapterHealthView {
  /** The same figures per operation (e.g. websocket `relay`, realtime `write`). */
  operations: Record<string, AdapterHealthView>;
}

export interface PercentileSeries {
  p50: (number | null)[];
  p95: (number | null)[];
  p99: (number | null)[];
}

/** What the summary shows besides the stats buckets (read by state.ts). */
export interface SummaryState {
  flag_version: number | null;
  outbox: { pending: number; oldest_age_s: number | null };
  dlq: { total: number; by_status: Record<string, number> } | null;
  breakers: Record<string, { state: string; [field: string]: unknown }> | null;
  /**
   * Automated rollbacks kept in cutover.rollbacks (30 days), per adapter and
   * trigger, and the newest one; absent when the table does not exist.
   */
  rollbacks?: {
    by_trigger: { adapter: string; trigger: string; count: number }[];
    last: { at: string; adapter: string; trigger: string; action: string; reason: string } | null;
  } | null;
  /** Null when the reconciliation tables do not exist. */
  reconciliation: ReconcileSummary | null;
  recorders: Record<string, {
    flushes: number;
    flush_failures: number;
    dropped_buckets: number;
    dropped_records: number;
    last_flush_at: string | null;
  }>;
}

export interface MetricsSummary extends SummaryState {
  window: SummaryWindow;
  window_s: number;
  step_s: number;
  from: string;
  to: string;
  generated_at: string;
  adapters: Record<Adapter, AdapterSummary>;
  events: {
    total: IngestCounts;
    by_category: Record<StatsCategory, IngestCounts>;
  };
  errors: {
    /** Failed adapter calls in the window. */
    adapters: Record<Adapter, number>;
    /** Events ingest rejected in the window. */
    rejected_events: number;
  };
  series: {
    /** Step starts, unix seconds. The last step is still filling. */
    t: number[];
    /** Events received per second in each step, per category. */
    events_per_s: Record<StatsCategory, number[]>;
    /** Adapter calls per step (all operations). */
    calls: Record<Adapter, number[]>;
    /** Failed adapter calls per step (all operations). */
    errors: Record<Adapter, number[]>;
    /** Latency percentiles per step (all operations), ms; null in a step without calls. */
    latency_ms: Record<Adapter, PercentileSeries>;
  };
}

export interface SummaryInput {
  window: SummaryWindow;
  nowMs: number;
  adapters: AdapterStepRow[];
  ingest: IngestStepRow[];
  state: SummaryState;
}

function round2(n: number | null): number | null {
  return n === null ? null : Math.round(n * 100) / 100;
}

/**
 * Builds the summary. Rows outside the window's steps are ignored; steps
 * without rows are zero (counts) or null (latency). Rates per second divide
 * by the full step, so the last, still-filling step reads low.
 */
export function buildSummary(input: SummaryInput): MetricsSummary {
  const range = windowRange(input.window, input.nowMs);
  const index = new Map(range.steps.map((t, i) => [t, i]));
  const n = range.steps.length;
  const stepS = range.stepMs / 1000;
  const zeros = () => new Array<number>(n).fill(0);

  const perAdapter = {} as Record<Adapter, AdapterCounts>;
  const perOperation = {} as Record<Adapter, Record<string, AdapterCounts>>;
  const stepCounts = {} as Record<Adapter, AdapterCounts[]>;
  for (const adapter of ADAPTERS) {
    perAdapter[adapter] = emptyAdapterCounts();
    perOperation[adapter] = {};
    stepCounts[adapter] = Array.from({ length: n }, emptyAdapterCounts);
  }
  for (const row of input.adapters) {
    const i = index.get(row.t);
    if (i === undefined || !(row.adapter in perAdapter)) continue;
    const counts = countsOf(row);
    perAdapter[row.adapter] = addAdapterCounts(perAdapter[row.adapter], counts);
    const ops = perOperation[row.adapter];
    ops[row.operation] = addAdapterCounts(ops[row.operation] ?? emptyAdapterCounts(), counts);
    stepCounts[row.adapter][i] = addAdapterCounts(stepCounts[row.adapter][i]!, counts);
  }

  const byCategory = {} as Record<StatsCategory, IngestCounts>;
  const eventsPerS = {} as Record<StatsCategory, number[]>;
  for (const category of SUMMARY_CATEGORIES) {
    byCategory[category] = emptyIngestCounts();
    eventsPerS[category] = zeros();
  }
  let total = emptyIngestCounts();
  for (const row of input.ingest) {
    const i = index.get(row.t);
    if (i === undefined || !(row.category in byCategory)) continue;
    const counts: IngestCounts = {
      received: row.received,
      stored: row.stored,
      duplicates: row.duplicates,
      rejected: row.rejected,
      bytes: row.bytes,
    };
    byCategory[row.category] = addIngestCounts(byCategory[row.category], counts);
    total = addIngestCounts(total, counts);
    eventsPerS[row.category][i]! += row.received / stepS;
  }

  const adapters = {} as Record<Adapter, AdapterSummary>;
  const calls = {} as Record<Adapter, number[]>;
  const errors = {} as Record<Adapter, number[]>;
  const latency = {} as Record<Adapter, PercentileSeries>;
  for (const adapter of ADAPTERS) {
    adapters[adapter] = {
      ...describeAdapterCounts(perAdapter[adapter]),
      operations: Object.fromEntries(
        Object.entries(perOperation[adapter]).sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([op, c]) => [op, describeAdapterCounts(c)]),
      ),
    };
    const steps = stepCounts[adapter];
    calls[adapter] = steps.map((c) => c.calls);
    errors[adapter] = steps.map((c) => c.failures);
    const pct = (q: number) =>
      steps.map((c) => round2(estimatePercentile(c.histogram, q, c.latency_max_ms)));
    latency[adapter] = { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99) };
  }

  return {
    window: input.window,
    window_s: SUMMARY_WINDOWS[input.window].seconds,
    step_s: stepS,
    from: new Date(range.fromMs).toISOString(),
    to: new Date(range.toMs).toISOString(),
    generated_at: new Date(input.nowMs).toISOString(),
    ...input.state,
    adapters,
    events: { total, by_category: byCategory },
    errors: {
      adapters: Object.fromEntries(ADAPTERS.map((a) => [a, perAdapter[a].failures])) as Record<
        Adapter,
        number
      >,
      rejected_events: total.rejected,
    },
    series: {
      t: range.steps.map((t) => t / 1000),
      events_per_s: Object.fromEntries(
        Object.entries(eventsPerS).map(([c, s]) => [c, s.map((v) => Math.round(v * 1000) / 1000)]),
      ) as Record<StatsCategory, number[]>,
      calls,
      errors,
      latency_ms: latency,
    },
  };
}

function countsOf(row: AdapterStepRow): AdapterCounts {
  return {
    calls: row.calls,
    failures: row.failures,
    slow_calls: row.slow_calls,
    events: row.events,
    failed_events: row.failed_events,
    latency_sum_ms: row.latency_sum_ms,
    latency_max_ms: row.latency_max_ms,
    histogram: row.histogram,
  };
}
