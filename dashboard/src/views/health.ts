/**
 * The Health view: charts over a selectable range from the metrics summary
 * (events/s by category, delivery latency p50/p95/p99 per path, errors,
 * throughput), each adapter's health and breaker, the outbox and the
 * dead-letter queue.
 */
import type { Dashboard } from "../app.ts";
import { CATEGORY_LIST, type Path, PATHS } from "../core/events.ts";
import {
  type MetricsPoller,
  metricsProblem,
  type MetricsSummary,
  type Range,
  RANGES,
} from "../metrics.ts";
import { createChart } from "./chart.ts";
import { CATEGORY_COLORS, PATH_COLORS, PATH_NAMES } from "./colors.ts";
import { dataTable, h, replaceChildren } from "./dom.ts";
import { ago, count, dateTime, duration, label, percent, rate } from "./format.ts";
import { breakerTone } from "./kpis.ts";

const RANGE_LABELS: Record<Range, string> = {
  live: "Live (1 min)",
  "15m": "15 min",
  "1h": "1 hour",
  "24h": "24 hours",
};

export function mountHealth(app: Dashboard, metrics: MetricsPoller, root: HTMLElement): void {
  const rangeRadios = RANGES.map((r) => {
    const input = h("input", {
      type: "radio",
      name: "range",
      value: r,
      checked: metrics.range === r,
    });
    input.addEventListener("change", () => input.checked && metrics.setRange(r));
    return h("label", { class: "seg" }, input, h("span", null, RANGE_LABELS[r]));
  });
  const status = h("span", { class: "muted small", role: "status" });

  const eventsChart = createChart({
    title: "Events received per second, by category",
    unit: "events/s",
    series: CATEGORY_LIST.map((c) => ({ label: label(c), color: CATEGORY_COLORS[c] })),
  });
  const latencyChart = createChart({
    title: "Delivery latency per path (p50 / p95 / p99)",
    unit: "ms",
    points: true,
    series: PATHS.flatMap((p) => [
      { label: `${PATH_NAMES[p]} p50`, color: PATH_COLORS[p], width: 2 },
      { label: `${PATH_NAMES[p]} p95`, color: PATH_COLORS[p], dash: [6, 4] },
      { label: `${PATH_NAMES[p]} p99`, color: PATH_COLORS[p], dash: [2, 3] },
    ]),
  });
  const errorsChart = createChart({
    title: "Errors: failed adapter calls per step",
    unit: "failures",
    bars: true,
    integer: true,
    format: (v) => v.toFixed(0),
    series: PATHS.map((p) => ({ label: PATH_NAMES[p], color: PATH_COLORS[p] })),
  });
  const throughputChart = createChart({
    title: "Throughput: events in, and adapter calls per second per path",
    unit: "per s",
    series: [
      { label: "events in", color: "#111827", width: 2 },
      ...PATHS.map((p) => ({ label: `${PATH_NAMES[p]} calls`, color: PATH_COLORS[p] })),
    ],
  });
  const adapters = h("div", { class: "adapters" });
  const queues = h("div", { class: "queues" });
  const problem = h("div", { class: "problem", role: "status" });

  function drawCharts(s: MetricsSummary): void {
    // The newest step is still filling (its rates read low): the charts end at the last complete one.
    const complete = <T>(series: T[]) => series.slice(0, -1);
    const t = complete(s.series.t);
    eventsChart.setData(t, CATEGORY_LIST.map((c) => complete(s.series.events_per_s[c] ?? [])));
    latencyChart.setData(
      t,
      PATHS.flatMap((p) => {
        const l = s.series.latency_ms[p];
        return [complete(l.p50), complete(l.p95), complete(l.p99)];
      }),
    );
    errorsChart.setData(t, PATHS.map((p) => complete(s.series.errors[p])));
    const totalIn = t.map((_, i) =>
      Object.values(s.series.events_per_s).reduce((sum, series) => sum + (series[i] ?? 0), 0)
    );
    throughputChart.setData(t, [
      totalIn,
      ...PATHS.map((p) => complete(s.series.calls[p]).map((c) => c / s.step_s)),
    ]);
    const anyCalls = PATHS.some((p) => s.adapters[p].calls > 0);
    latencyChart.setMessage(anyCalls ? null : "No adapter calls in this window yet.");
    const anyEvents = s.events.total.received > 0;
    eventsChart.setMessage(anyEvents ? null : "No events received in this window.");
    errorsChart.setMessage(null);
    throughputChart.setMessage(anyEvents || anyCalls ? null : "Nothing flowed in this window.");
  }

  function adapterPanel(s: MetricsSummary, p: Path): HTMLElement {
    const a = s.adapters[p];
    const breaker = s.breakers?.[p];
    const extra = breaker
      ? Object.entries(breaker).filter(([k, v]) =>
        !["adapter", "state"].includes(k) && v !== null && typeof v !== "object"
      )
      : [];
    const ops = Object.entries(a.operations);
    return h(
      "section",
      { class: "panel adapter", "data-adapter": p },
      h(
        "h3",
        null,
        h("span", { class: `badge path-${p}` }, PATH_NAMES[p]),
        " ",
        h(
          "span",
          {
            class: `breaker tone-${breakerTone(breaker?.state)}`,
            "data-breaker": breaker?.state ?? "unknown",
          },
          breaker ? `breaker ${label(breaker.state)}` : "no breaker state recorded",
        ),
      ),
      h(
        "dl",
        { class: "kv compact" },
        h("dt", null, "success rate"),
        h("dd", null, a.calls ? percent(a.success_rate) : "no calls"),
        h("dt", null, "calls / failures"),
        h("dd", null, `${count(a.calls)} / ${count(a.failures)}`),
        h("dt", null, "slow calls"),
        h(
          "dd",
          null,
          `${count(a.slow_calls)}${
            a.slow_call_rate === null ? "" : ` (${percent(a.slow_call_rate)})`
          }`,
        ),
        h("dt", null, "events delivered"),
        h(
          "dd",
          null,
          `${count(a.events)}${a.failed_events ? `, ${count(a.failed_events)} failed` : ""}`,
        ),
        h("dt", null, "latency"),
        h(
          "dd",
          null,
          `p50 ${duration(a.latency_ms.p50)} · p95 ${duration(a.latency_ms.p95)} · p99 ${
            duration(a.latency_ms.p99)
          } · max ${duration(a.latency_ms.max)}`,
        ),
        extra.flatMap(([k, v]) => [
          h("dt", null, label(k)),
          h(
            "dd",
            null,
            typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v)
              ? `${dateTime(v)} (${ago(v)})`
              : String(v),
          ),
        ]),
      ),
      ops.length > 1
        ? dataTable(
          { class: "mini" },
          ["operation", "calls", "failures", "p95"],
          h(
            "tbody",
            null,
            ops.map(([op, v]) =>
              h(
                "tr",
                null,
                h("td", null, op),
                h("td", null, count(v.calls)),
                h("td", null, count(v.failures)),
                h("td", null, duration(v.latency_ms.p95)),
              )
            ),
          ),
        )
        : null,
    );
  }

  function drawPanels(s: MetricsSummary): void {
    replaceChildren(adapters, PATHS.map((p) => adapterPanel(s, p)));
    const dlq = s.dlq;
    const recorders = Object.entries(s.recorders);
    replaceChildren(
      queues,
      h(
        "section",
        { class: "panel", "data-panel": "outbox" },
        h("h3", null, "Relay outbox (WebSocket path)"),
        h("div", { class: "big-number" }, `${count(s.outbox.pending)} pending`),
        h(
          "p",
          { class: "muted" },
          s.outbox.oldest_age_s === null
            ? "Nothing waiting to be relayed."
            : `The oldest has waited ${duration(s.outbox.oldest_age_s * 1000)}.`,
        ),
      ),
      h(
        "section",
        { class: "panel", "data-panel": "dlq" },
        h("h3", null, "Dead-letter queue"),
        dlq
          ? [
            h("div", { class: "big-number" }, `${count(dlq.total)} total`),
            h(
              "ul",
              { class: "plain" },
              Object.entries(dlq.by_status).length
                ? Object.entries(dlq.by_status).map(([k, v]) =>
                  h("li", null, `${label(k)}: ${count(v)}`)
                )
                : h("li", { class: "muted" }, "Empty."),
            ),
          ]
          : h("p", { class: "muted" }, "No dead-letter table on this project yet."),
      ),
      h(
        "section",
        { class: "panel", "data-panel": "recorders" },
        h("h3", null, "Metrics recorders"),
        recorders.length
          ? h(
            "ul",
            { class: "plain small" },
            recorders.map(([name, r]) =>
              h(
                "li",
                null,
                `${name}: ${count(r.flushes)} flushes, last ${ago(r.last_flush_at)}`,
                r.flush_failures || r.dropped_buckets
                  ? h(
                    "span",
                    { class: "warn-text" },
                    ` · ${count(r.flush_failures)} failed, ${
                      count(r.dropped_buckets)
                    } buckets dropped`,
                  )
                  : null,
              )
            ),
          )
          : h("p", { class: "muted" }, "No recorder has flushed yet."),
      ),
    );
  }

  function draw(): void {
    const s = metrics.latest;
    const why = metricsProblem(metrics.error, app.session.role);
    problem.hidden = !why;
    problem.textContent = why ?? "";
    if (!s) {
      const message = why ?? "Loading the metrics summary…";
      for (const c of [eventsChart, latencyChart, errorsChart, throughputChart]) {
        c.setMessage(message);
      }
      replaceChildren(adapters);
      replaceChildren(queues);
      status.textContent = "";
      return;
    }
    status.textContent = `${s.window} window in ${s.step_s} s steps, ${
      rate(s.events.total.received / s.window_s)
    } events/s on average; read ${ago(metrics.readAt ?? null)}${
      why ? " (stale: last read failed)" : ""
    }.`;
    drawCharts(s);
    drawPanels(s);
  }

  replaceChildren(
    root,
    h(
      "div",
      { class: "health" },
      h(
        "div",
        { class: "toolbar" },
        h(
          "fieldset",
          { class: "modes" },
          h("legend", { class: "sr-only" }, "Time range"),
          h("span", { class: "modes-label" }, "Range"),
          rangeRadios,
        ),
        status,
      ),
      problem,
      h(
        "div",
        { class: "charts" },
        eventsChart.element,
        latencyChart.element,
        errorsChart.element,
        throughputChart.element,
      ),
      h("h2", { class: "section-title" }, "Adapters and breakers"),
      adapters,
      h("h2", { class: "section-title" }, "Queues"),
      queues,
    ),
  );
  metrics.onChange(draw);
  draw();
}
