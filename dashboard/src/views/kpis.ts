/**
 * The health of the cutover at a glance: one strip of figures above every
 * view — this page's live rate, each path's success rate, latency and
 * breaker, the outbox and dead letters, reconciliation's consistency.
 */
import type { Dashboard } from "../app.ts";
import type { Tone } from "../core/connection.ts";
import { type MetricsPoller, metricsProblem, type MetricsSummary } from "../metrics.ts";
import { h, replaceChildren } from "./dom.ts";
import { ago, count, duration, percent, rate } from "./format.ts";

interface Card {
  key: string;
  title: string;
  value: string;
  detail: string;
  tone: Tone | "none";
}

/** Overall consistency over every category the window judged. */
export function overallConsistency(s: MetricsSummary): { ratio: number | null; judged: number } {
  let judged = 0;
  let consistent = 0;
  for (const c of Object.values(s.reconciliation?.categories ?? {})) {
    judged += c.judged;
    consistent += c.matched;
  }
  return { ratio: judged ? consistent / judged : null, judged };
}

export function breakerTone(state: string | undefined): Tone | "none" {
  if (!state) return "none";
  if (state === "open") return "bad";
  if (state === "half_open" || state === "half-open") return "warn";
  return "ok";
}

function adapterCard(s: MetricsSummary, adapter: "websocket" | "realtime", title: string): Card {
  const a = s.adapters[adapter];
  const breaker = s.breakers?.[adapter]?.state;
  const bad = a.success_rate !== null && a.success_rate < 0.95;
  const tone = breaker === "open" || bad
    ? "bad"
    : breaker === "half_open" || (a.success_rate !== null && a.success_rate < 0.999)
    ? "warn"
    : a.calls
    ? "ok"
    : "none";
  return {
    key: adapter,
    title,
    value: a.calls ? percent(a.success_rate) : "no calls",
    detail: `p95 ${duration(a.latency_ms.p95)} · breaker ${breaker ?? "n/a"}`,
    tone,
  };
}

export function mountKpis(app: Dashboard, metrics: MetricsPoller, root: HTMLElement): void {
  function cards(): Card[] {
    const now = Date.now();
    const live: Card = {
      key: "rate",
      title: "Events/s (this page)",
      value: rate(app.rates.rate(now)),
      detail: `${count(app.store.size)} in the tail`,
      tone: "none",
    };
    const s = metrics.latest;
    if (!s) {
      const problem = metricsProblem(metrics.error, app.session.role);
      return [live, {
        key: "metrics",
        title: "Pipeline health",
        value: problem ? "unavailable" : "loading…",
        detail: problem ?? "reading the metrics summary",
        tone: problem ? "warn" : "none",
      }];
    }
    const windowName = s.window === "1m" ? "last minute" : `last ${s.window}`;
    const outboxAge = s.outbox.oldest_age_s;
    const dlq = s.dlq;
    const consistency = overallConsistency(s);
    const lag = s.reconciliation?.lag_s ?? null;
    return [
      live,
      {
        key: "ingest",
        title: `Ingested (${windowName})`,
        value: count(s.events.total.stored),
        detail: `${count(s.events.total.duplicates)} duplicate · ${
          count(s.events.total.rejected)
        } rejected`,
        tone: s.events.total.rejected > 0 ? "warn" : "none",
      },
      adapterCard(s, "websocket", "WebSocket path"),
      adapterCard(s, "realtime", "Realtime path"),
      {
        key: "outbox",
        title: "Relay outbox",
        value: `${count(s.outbox.pending)} pending`,
        detail: outboxAge === null ? "nothing waiting" : `oldest ${duration(outboxAge * 1000)}`,
        tone: outboxAge !== null && outboxAge > 60
          ? "bad"
          : outboxAge !== null && outboxAge > 10
          ? "warn"
          : "ok",
      },
      {
        key: "dlq",
        title: "Dead letters",
        value: dlq ? count(dlq.total) : "n/a",
        detail: dlq
          ? Object.entries(dlq.by_status).map(([k, v]) => `${count(v)} ${k}`).join(" · ") || "empty"
          : "no dead-letter queue yet",
        tone: !dlq ? "none" : (dlq.by_status.dead ?? 0) > 0 ? "bad" : dlq.total > 0 ? "warn" : "ok",
      },
      {
        key: "consistency",
        title: "Consistency",
        value: consistency.ratio === null ? "–" : percent(consistency.ratio),
        detail: s.reconciliation
          ? `${count(consistency.judged)} judged · lag ${lag === null ? "–" : duration(lag * 1000)}`
          : "reconciliation not set up",
        tone: consistency.ratio === null
          ? "none"
          : consistency.ratio < 0.99
          ? "bad"
          : consistency.ratio < 0.999
          ? "warn"
          : "ok",
      },
      {
        key: "flags",
        title: "Flag version",
        value: s.flag_version === null ? "–" : `v${s.flag_version}`,
        detail: `summary read ${ago(metrics.readAt ?? null)}`,
        tone: "none",
      },
    ];
  }

  function draw(): void {
    replaceChildren(
      root,
      cards().map((c) =>
        h(
          "div",
          { class: `kpi tone-${c.tone}`, "data-kpi": c.key },
          h("div", { class: "kpi-title" }, c.title),
          h("div", { class: "kpi-value" }, c.value),
          h("div", { class: "kpi-detail" }, c.detail),
        )
      ),
    );
  }
  metrics.onChange(draw);
  app.on("tick", draw);
  draw();
}
