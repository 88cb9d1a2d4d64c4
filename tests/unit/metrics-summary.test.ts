import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults } from "../../shared/config/settings.ts";
import { createClassifier } from "../../shared/events/classify.ts";
import { emptyHistogram, observe } from "../../shared/metrics/histogram.ts";
import { buildFamilies } from "../../shared/metrics/exposition.ts";
import { statsCategoryOf, tallyIngest } from "../../shared/metrics/ingest.ts";
import { formatExposition } from "../../shared/metrics/prometheus.ts";
import { consistencyByCategory, VERDICTS } from "../../shared/metrics/reconcile-view.ts";
import { STATS_BUCKET_MS } from "../../shared/metrics/stats.ts";
import type { AdapterStepRow } from "../../shared/metrics/store.ts";
import {
  buildSummary,
  isSummaryWindow,
  SUMMARY_WINDOWS,
  type SummaryState,
  type SummaryWindow,
  windowRange,
} from "../../shared/metrics/summary.ts";
import { parseExposition, sampleValue } from "../helpers/prometheus.ts";

const emptyState: SummaryState = {
  flag_version: 3,
  outbox: { pending: 0, oldest_age_s: null },
  dlq: null,
  breakers: null,
  reconciliation: null,
  recorders: {},
};

describe("summary windows", () => {
  const window = fc.constantFrom(...(Object.keys(SUMMARY_WINDOWS) as SummaryWindow[]));
  const now = fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 });

  it("are whole numbers of steps, and steps whole numbers of stats buckets", () => {
    for (const w of Object.values(SUMMARY_WINDOWS)) {
      expect(w.seconds % w.stepSeconds).toBe(0);
      expect((w.stepSeconds * 1000) % STATS_BUCKET_MS).toBe(0);
    }
  });

  it("cover the window with epoch-aligned steps, the last one holding now", () => {
    fc.assert(fc.property(window, now, (w, nowMs) => {
      const r = windowRange(w, nowMs);
      expect(r.steps).toHaveLength(SUMMARY_WINDOWS[w].seconds / SUMMARY_WINDOWS[w].stepSeconds);
      expect(r.toMs - r.fromMs).toBe(SUMMARY_WINDOWS[w].seconds * 1000);
      expect(r.steps.every((t) => t % r.stepMs === 0)).toBe(true);
      expect(nowMs >= r.steps.at(-1)! && nowMs < r.toMs).toBe(true);
    }));
  });

  it("knows its names", () => {
    expect(isSummaryWindow("15m")).toBe(true);
    expect(isSummaryWindow("2h")).toBe(false);
    expect(isSummaryWindow("constructor")).toBe(false);
  });
});

function adapterRow(
  t: number,
  adapter: "websocket" | "realtime",
  latencies: number[],
  failures = 0,
) {
  const histogram = emptyHistogram();
  for (const l of latencies) observe(histogram, l);
  return {
    t,
    adapter,
    operation: adapter === "websocket" ? "relay" : "write",
    calls: latencies.length,
    failures,
    slow_calls: 0,
    events: latencies.length - failures,
    failed_events: failures,
    latency_sum_ms: latencies.reduce((a, b) => a + b, 0),
    latency_max_ms: Math.max(...latencies),
    histogram,
  } satisfies AdapterStepRow;
}

describe("buildSummary", () => {
  const nowMs = Date.UTC(2026, 10, 23, 12, 0, 25);

  it("sums the window per adapter and per category, and lays out aligned series", () => {
    const r = windowRange("1m", nowMs);
    const summary = buildSummary({
      window: "1m",
      nowMs,
      adapters: [
        adapterRow(r.steps[0]!, "websocket", [10, 20, 30], 1),
        adapterRow(r.steps[5]!, "websocket", [40]),
        adapterRow(r.steps[5]! + 60_000, "websocket", [99_999]), // outside: ignored
      ],
      ingest: [
        {
          t: r.steps[1]!,
          category: "critical",
          received: 20,
          stored: 18,
          duplicates: 1,
          rejected: 1,
          bytes: 2000,
        },
        {
          t: r.steps[1]!,
          category: "unknown",
          received: 2,
          stored: 0,
          duplicates: 0,
          rejected: 2,
          bytes: 20,
        },
      ],
      state: emptyState,
    });
    expect(summary).toMatchObject({ window: "1m", window_s: 60, step_s: 10, flag_version: 3 });
    expect(summary.adapters.websocket).toMatchObject({ calls: 4, failures: 1, success_rate: 0.75 });
    expect(summary.adapters.websocket.operations.relay!.calls).toBe(4);
    expect(summary.adapters.websocket.latency_ms.max).toBe(40);
    expect(summary.adapters.realtime).toMatchObject({ calls: 0, success_rate: null });
    expect(summary.adapters.realtime.latency_ms.p99).toBeNull();
    expect(summary.events.by_category.critical.received).toBe(20);
    expect(summary.events.by_category.debug.received).toBe(0);
    expect(summary.events.total).toMatchObject({ received: 22, rejected: 3 });
    expect(summary.errors).toEqual({ adapters: { websocket: 1, realtime: 0 }, rejected_events: 3 });
    expect(summary.series.t).toEqual(r.steps.map((t) => t / 1000));
    expect(summary.series.events_per_s.critical).toEqual([0, 2, 0, 0, 0, 0]);
    expect(summary.series.calls.websocket).toEqual([3, 0, 0, 0, 0, 1]);
    expect(summary.series.errors.websocket).toEqual([1, 0, 0, 0, 0, 0]);
    expect(summary.series.latency_ms.websocket.p50[1]).toBeNull();
    expect(summary.series.latency_ms.websocket.p99[5]).toBeCloseTo(40, 0);
    for (const s of [summary.series.latency_ms.realtime.p95, summary.series.errors.realtime]) {
      expect(s).toHaveLength(6);
    }
  });
});

describe("ingest tally", () => {
  const classifier = createClassifier([
    { pattern: "(^|[._])error([._]|$)", category: "critical", legacy: false, priority: 1 },
  ]);

  it("files a rejected event under its valid category, its classified type, or unknown", () => {
    expect(statsCategoryOf({ category: "debug", event_type: "x.error" }, undefined, classifier))
      .toBe("debug");
    expect(statsCategoryOf({ category: "bogus", event_type: "x.error" }, undefined, classifier))
      .toBe("critical");
    expect(statsCategoryOf({ event_type: 7 }, undefined, classifier)).toBe("unknown");
    expect(statsCategoryOf("not an object", undefined, classifier)).toBe("unknown");
  });

  it("counts every result once, with its JSON size", () => {
    const items = [{ event_type: "a.error" }, { category: "system", event_type: "é" }];
    const tally = tallyIngest(
      items,
      [],
      [{ index: 0, status: "rejected" }, { index: 1, status: "rejected" }],
      classifier,
    );
    expect(tally.critical).toEqual({
      received: 1,
      stored: 0,
      duplicates: 0,
      rejected: 1,
      bytes: JSON.stringify(items[0]).length,
    });
    expect(tally.system!.bytes).toBe(new TextEncoder().encode(JSON.stringify(items[1])).length);
  });
});

describe("reconciliation view", () => {
  it("sums verdicts per category over runs; only matched is consistent", () => {
    const view = consistencyByCategory([
      {
        critical: {
          matched: 8,
          late: 1,
          pending: 50,
          single_route: 4,
          judged: 9,
          consistency: 0.888,
          alert: true,
          window: { from: "x" },
        },
      },
      { critical: { checksum_mismatch: 1 }, debug: { pending: 3 } },
      { all: { matched: 2, producer_gap: 1 } },
      null,
    ]);
    expect(view.critical).toEqual({
      judged: 10,
      matched: 8,
      mismatched: 2,
      consistency: 0.8,
      mismatch_rate: 0.2,
    });
    expect(view.debug).toMatchObject({ judged: 0, consistency: null, mismatch_rate: null });
    expect(view.all).toMatchObject({ judged: 2, consistency: 1 });
  });

  it("keeps consistency + mismatch rate = 1 and judged = sum of verdicts", () => {
    const verdict = fc.constantFrom(...VERDICTS, "pending", "single_route");
    fc.assert(fc.property(
      fc.array(fc.dictionary(verdict, fc.nat({ max: 1000 })), { maxLength: 10 }),
      (runs) => {
        const view = consistencyByCategory(runs.map((r) => ({ system: r })));
        const judged = runs.flatMap((r) => Object.entries(r))
          .filter(([k]) => VERDICTS.includes(k)).reduce((n, [, v]) => n + v, 0);
        expect(view.system?.judged ?? 0).toBe(judged);
        if (judged > 0) {
          expect(view.system!.consistency! + view.system!.mismatch_rate!).toBeCloseTo(1, 5);
        }
      },
    ));
  });
});

describe("exposition families", () => {
  it("parses strictly and lists every category and recorded operation, even at zero", () => {
    const text = formatExposition(buildFamilies({
      adapterTotals: [{
        ...adapterRow(0, "websocket", [1, 2, 500, 70_000], 1),
      }],
      ingestTotals: [{
        category: "critical",
        received: 5,
        stored: 4,
        duplicates: 1,
        rejected: 0,
        bytes: 10,
      }],
      state: {
        ...emptyState,
        breakers: { websocket: { state: "open", opened_at: "x" } },
        dlq: { total: 3, by_status: { pending: 2, dead: 1 } },
        outbox: { pending: 4, oldest_age_s: 1.5 },
        recorders: {
          ingest: {
            flushes: 9,
            flush_failures: 2,
            dropped_buckets: 0,
            dropped_records: 0,
            last_flush_at: null,
          },
        },
      },
    }));
    const f = parseExposition(text);
    expect(sampleValue(f, "cutover_events_received_total", { category: "critical" })).toBe(5);
    expect(sampleValue(f, "cutover_events_received_total", { category: "debug" })).toBe(0);
    expect(f.has("cutover_events_received_total")).toBe(true);
    const ws = { adapter: "websocket", operation: "relay" };
    const rt = { adapter: "realtime", operation: "write" };
    expect(sampleValue(f, "cutover_adapter_calls_total", ws)).toBe(4);
    expect(sampleValue(f, "cutover_adapter_errors_total", ws)).toBe(1);
    expect(sampleValue(f, "cutover_adapter_calls_total", rt)).toBe(0);
    const h = "cutover_adapter_latency_seconds";
    expect(sampleValue(f, h, ws, `${h}_count`)).toBe(4);
    expect(sampleValue(f, h, { ...ws, le: "0.001" }, `${h}_bucket`)).toBe(1);
    expect(sampleValue(f, h, { ...ws, le: "0.002" }, `${h}_bucket`)).toBe(2);
    expect(sampleValue(f, h, { ...ws, le: "65.5" }, `${h}_bucket`)).toBe(3);
    expect(sampleValue(f, h, { ...ws, le: "+Inf" }, `${h}_bucket`)).toBe(4);
    expect(sampleValue(f, h, ws, `${h}_sum`)).toBeCloseTo(70.503, 6);
    expect(sampleValue(f, "cutover_breaker_state", { adapter: "websocket", state: "open" }))
      .toBe(1);
    expect(sampleValue(f, "cutover_breaker_state", { adapter: "websocket", state: "closed" }))
      .toBe(0);
    expect(sampleValue(f, "cutover_dead_letters", { status: "pending" })).toBe(2);
    expect(sampleValue(f, "cutover_outbox_pending", {})).toBe(4);
    expect(sampleValue(f, "cutover_flag_version", {})).toBe(3);
    expect(sampleValue(f, "cutover_stats_flush_failures_total", { recorder: "ingest" })).toBe(2);
    expect(f.has("cutover_reconcile_lag_seconds")).toBe(false);
  });

  it("omits the families whose tables do not exist", () => {
    const f = parseExposition(formatExposition(buildFamilies({
      adapterTotals: [],
      ingestTotals: [],
      state: emptyState,
    })));
    expect(f.has("cutover_breaker_state")).toBe(false);
    expect(f.has("cutover_dead_letters")).toBe(false);
    expect(f.has("cutover_reconcile_consistency_ratio")).toBe(false);
    expect(f.has("cutover_outbox_pending")).toBe(true);
  });

  it("keeps stats at least as long as the longest summary window", () => {
    expect(builtInDefaults().settings.stats_retention_hours).toBeGreaterThanOrEqual(24);
  });
});
