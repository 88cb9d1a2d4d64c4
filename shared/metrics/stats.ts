/**
 * The counts the stats tables hold (supabase/migrations/20261123000600_metrics.sql)
 * and the pure arithmetic on them: adding, and judging a window of adapter
 * calls the way a dashboard or a circuit breaker does. No I/O.
 */
import type { Adapter, Category } from "../events/schema.ts";
import { emptyHistogram, estimatePercentile, mergeHistograms } from "./histogram.ts";

/** Width of a stats bucket: rows are keyed by the start of their 10-second bucket. */
export const STATS_BUCKET_MS = 10_000;

/** A category, or `unknown` for a rejected event whose category could not be told. */
export type StatsCategory = Category | "unknown";

/** The start (epoch ms) of the bucket `ms` falls in. */
export function bucketStartOf(ms: number): number {
  return Math.floor(ms / STATS_BUCKET_MS) * STATS_BUCKET_MS;
}

/** What is known about a set of calls to one adapter operation; every field adds up. */
export interface AdapterCounts {
  calls: number;
  failures: number;
  /** Calls slower than the adapter's latency threshold when they were recorded. */
  slow_calls: number;
  /** Events carried by successful calls (deliveries). */
  events: number;
  /** Events carried by failed calls. */
  failed_events: number;
  latency_sum_ms: number;
  /** The largest latency seen (merges by max, not sum). */
  latency_max_ms: number;
  /** Latency histogram in the fixed layout of histogram.ts. */
  histogram: number[];
}

/** Events ingest decided about, per category: received = stored + duplicates + rejected. */
export interface IngestCounts {
  received: number;
  stored: number;
  duplicates: number;
  rejected: number;
  /** JSON size of the received events. */
  bytes: number;
}

/** Zero counts. */
export function emptyAdapterCounts(): AdapterCounts {
  return {
    calls: 0,
    failures: 0,
    slow_calls: 0,
    events: 0,
    failed_events: 0,
    latency_sum_ms: 0,
    latency_max_ms: 0,
    histogram: emptyHistogram(),
  };
}

/** Zero counts. */
export function emptyIngestCounts(): IngestCounts {
  return { received: 0, stored: 0, duplicates: 0, rejected: 0, bytes: 0 };
}

/** The sum of two sets of adapter counts (max for latency_max_ms). Pure. */
export function addAdapterCounts(a: AdapterCounts, b: AdapterCounts): AdapterCounts {
  return {
    calls: a.calls + b.calls,
    failures: a.failures + b.failures,
    slow_calls: a.slow_calls + b.slow_calls,
    events: a.events + b.events,
    failed_events: a.failed_events + b.failed_events,
    latency_sum_ms: a.latency_sum_ms + b.latency_sum_ms,
    latency_max_ms: Math.max(a.latency_max_ms, b.latency_max_ms),
    histogram: mergeHistograms(a.histogram, b.histogram),
  };
}

/** The sum of two sets of ingest counts. Pure. */
export function addIngestCounts(a: IngestCounts, b: IngestCounts): IngestCounts {
  return {
    received: a.received + b.received,
    stored: a.stored + b.stored,
    duplicates: a.duplicates + b.duplicates,
    rejected: a.rejected + b.rejected,
    bytes: a.bytes + b.bytes,
  };
}

/** How a window of calls looks: what a dashboard shows and a breaker judges. */
export interface AdapterHealthView {
  calls: number;
  failures: number;
  slow_calls: number;
  /** Events delivered by successful calls. */
  events: number;
  failed_events: number;
  /** (calls - failures) / calls; null without calls. */
  success_rate: number | null;
  /** failures / calls; null without calls. */
  failure_rate: number | null;
  /** slow_calls / calls; null without calls. */
  slow_call_rate: number | null;
  /** Latency in ms; null without calls. Percentiles are histogram estimates (see histogram.ts). */
  latency_ms: {
    p50: number | null;
    p95: number | null;
    p99: number | null;
    mean: number | null;
    max: number | null;
  };
}

/** Judges counts: rates and latency percentiles (rounded to 0.01 ms). Pure. */
export function describeAdapterCounts(c: AdapterCounts): AdapterHealthView {
  const has = c.calls > 0;
  const pct = (q: number) => round2(estimatePercentile(c.histogram, q, c.latency_max_ms));
  return {
    calls: c.calls,
    failures: c.failures,
    slow_calls: c.slow_calls,
    events: c.events,
    failed_events: c.failed_events,
    success_rate: has ? (c.calls - c.failures) / c.calls : null,
    failure_rate: has ? c.failures / c.calls : null,
    slow_call_rate: has ? c.slow_calls / c.calls : null,
    latency_ms: {
      p50: has ? pct(0.5) : null,
      p95: has ? pct(0.95) : null,
      p99: has ? pct(0.99) : null,
      mean: has ? round2(c.latency_sum_ms / c.calls) : null,
      max: has ? round2(c.latency_max_ms) : null,
    },
  };
}

function round2(n: number | null): number | null {
  return n === null ? null : Math.round(n * 100) / 100;
}

/** Adapter and operation as a map key. */
export function adapterKey(adapter: Adapter, operation: string): string {
  return `${adapter}|${operation}`;
}
