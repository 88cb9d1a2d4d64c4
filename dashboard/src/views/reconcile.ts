/**
 * The Reconciliation view: consistency per category over the chosen range
 * (metrics summary), the latest runs and findings (reconcile API, service
 * role), and a button to run a pass now.
 */
import type { ApiError } from "../api.ts";
import type { Dashboard } from "../app.ts";
import { CATEGORY_LIST } from "../core/events.ts";
import { type MetricsPoller, metricsProblem } from "../metrics.ts";
import type { FindingRow, RunRow } from "../../../shared/reconcile/store.ts";
import { dataTable, h, replaceChildren } from "./dom.ts";
import { ago, count, dateTime, duration, label, percent } from "./format.ts";

const FINDING_TYPES = [
  "missing_on_websocket",
  "missing_on_realtime",
  "checksum_mismatch",
  "late",
  "duplicate",
  "producer_gap",
];

function apiProblem(error: ApiError, role: string): string {
  if (error.status === 401 || error.status === 403) {
    return role === "service_role"
      ? error.message
      : "Reconciliation runs and findings are for the service role: sign in with the service-role key.";
  }
  if (error.status === 404) return "The reconcile function is not deployed on this project.";
  return `The reconcile API answered ${error.status || "nothing"}: ${error.message}`;
}

function runReport(run: RunRow): {
  findings?: number;
  lagMs?: number | null;
  durationMs?: number;
  backlog?: boolean;
} {
  const r = run.report as {
    findings?: { new?: number };
    watermark?: { lag_ms?: number | null };
    duration_ms?: number;
    read?: { backlog?: boolean };
  } | null;
  return {
    findings: r?.findings?.new,
    lagMs: r?.watermark?.lag_ms,
    durationMs: r?.duration_ms,
    backlog: r?.read?.backlog,
  };
}

export function mountReconcile(app: Dashboard, metrics: MetricsPoller, root: HTMLElement): void {
  const consistency = h("section", { class: "panel", "aria-labelledby": "consistency-h" });
  const runs = h("section", { class: "panel", "aria-labelledby": "runs-h" });
  const findings = h("section", { class: "panel", "aria-labelledby": "findings-h" });
  const runResult = h("p", { class: "muted", role: "status" });
  const runButton = h("button", { type: "button", class: "btn primary" }, "Run reconcile now");
  const typeFilter = h(
    "select",
    { "aria-label": "Finding type" },
    h("option", { value: "" }, "all types"),
    FINDING_TYPES.map((t) => h("option", { value: t }, label(t))),
  );
  const categoryFilter = h(
    "select",
    { "aria-label": "Finding category" },
    h("option", { value: "" }, "all categories"),
    CATEGORY_LIST.map((c) => h("option", { value: c }, label(c))),
  );
  typeFilter.addEventListener("change", () => void loadLists());
  categoryFilter.addEventListener("change", () => void loadLists());

  runButton.addEventListener("click", async () => {
    runButton.disabled = true;
    runResult.textContent = "Running…";
    const res = await app.api.send<{
      run_id: number | null;
      judged: number;
      matched: number;
      duration_ms: number;
      findings: { new: number };
    }>("POST", "reconcile", { trigger: "manual" });
    runButton.disabled = false;
    if (res.ok) {
      runResult.textContent = `Run ${res.data.run_id}: judged ${count(res.data.judged)}, matched ${
        count(res.data.matched)
      }, ${count(res.data.findings.new)} new finding(s), in ${duration(res.data.duration_ms)}.`;
      void loadLists();
      metrics.poll();
    } else {
      runResult.textContent = res.error.status === 409
        ? "Another run is in progress; nothing was done. Try again in a moment."
        : apiProblem(res.error, app.session.role);
    }
  });

  function drawConsistency(): void {
    const s = metrics.latest;
    const why = metricsProblem(metrics.error, app.session.role);
    const r = s?.reconciliation;
    replaceChildren(
      consistency,
      h(
        "h3",
        { id: "consistency-h" },
        `Consistency per category${s ? ` (${s.window} window)` : ""}`,
      ),
      !s ? h("p", { class: "muted" }, why ?? "Loading…") : !r
        ? h(
          "p",
          { class: "muted" },
          "Reconciliation is not set up on this project (no runs table).",
        )
        : [
          h(
            "p",
            { class: "muted small" },
            r.last_run
              ? `Last run #${r.last_run.id} ${r.last_run.status}, ${
                ago(r.last_run.started_at)
              }; judged events trail now by ${r.lag_s === null ? "–" : duration(r.lag_s * 1000)}. ${
                count(r.runs.succeeded)
              } run(s) succeeded, ${count(r.runs.failed)} failed in the window; ${
                count(r.alerts)
              } mismatch alert(s).`
              : "No run yet.",
          ),
          dataTable(
            { class: "grid", "data-table": "consistency" },
            ["category", "judged", "matched", "mismatched", "consistency"],
            h(
              "tbody",
              null,
              CATEGORY_LIST.map((c) => {
                const v = r.categories[c];
                const ratio = v?.consistency ?? null;
                return h(
                  "tr",
                  { "data-category": c },
                  h("th", { scope: "row" }, h("span", { class: `badge cat-${c}` }, label(c))),
                  h("td", null, count(v?.judged ?? 0)),
                  h("td", null, count(v?.matched ?? 0)),
                  h("td", null, count(v?.mismatched ?? 0)),
                  h(
                    "td",
                    null,
                    h(
                      "span",
                      {
                        class: `ratio ${
                          ratio === null ? "" : ratio < 0.99 ? "bad" : ratio < 0.999 ? "warn" : "ok"
                        }`,
                      },
                      h("span", {
                        class: "ratio-bar",
                        style: `width:${((ratio ?? 0) * 100).toFixed(1)}%`,
                      }),
                      h(
                        "span",
                        { class: "ratio-text" },
                        ratio === null ? "nothing judged" : percent(ratio),
                      ),
                    ),
                  ),
                );
              }),
            ),
          ),
          h(
            "p",
            { class: "chips-line" },
            Object.entries(r.findings_by_type).length
              ? Object.entries(r.findings_by_type).map(([t, n]) =>
                h("span", { class: "tag" }, `${label(t)}: ${count(n)}`)
              )
              : h("span", { class: "muted" }, "No findings in this window."),
          ),
        ],
    );
  }

  async function loadLists(): Promise<void> {
    const [r, f] = await Promise.all([
      app.api.get<{ runs: RunRow[] }>("reconcile/runs", { limit: 15 }),
      app.api.get<{ findings: FindingRow[] }>("reconcile/findings", {
        limit: 50,
        type: typeFilter.value || undefined,
        category: categoryFilter.value || undefined,
      }),
    ]);
    replaceChildren(
      runs,
      h("h3", { id: "runs-h" }, "Latest runs"),
      !r.ok
        ? h("p", { class: "muted" }, apiProblem(r.error, app.session.role))
        : r.data.runs.length === 0
        ? h("p", { class: "muted" }, "No run yet. Runs are scheduled every minute, or run one now.")
        : dataTable(
          { class: "grid" },
          ["run", "started", "status", "judged", "matched", "new findings", "lag", "took"],
          h(
            "tbody",
            null,
            r.data.runs.map((run) => {
              const judged = Object.entries(run.counts ?? {})
                .filter(([k]) => !["pending", "single_route", "producer_gap"].includes(k))
                .reduce((s, [, n]) => s + (typeof n === "number" ? n : 0), 0);
              const rep = runReport(run);
              return h(
                "tr",
                null,
                h("td", null, `#${run.id}`, run.trigger === "manual" ? " (manual)" : ""),
                h("td", { title: run.started_at, class: "nowrap" }, dateTime(run.started_at)),
                h(
                  "td",
                  null,
                  h("span", { class: `tag ${run.status === "failed" ? "bad" : ""}` }, run.status),
                  run.error ? ` ${run.error}` : "",
                ),
                h("td", null, count(judged)),
                h("td", null, count(run.counts?.matched ?? 0)),
                h("td", null, rep.findings === undefined ? "–" : count(rep.findings)),
                h(
                  "td",
                  null,
                  rep.lagMs === undefined || rep.lagMs === null ? "–" : duration(rep.lagMs),
                  rep.backlog ? " (backlog)" : "",
                ),
                h("td", null, rep.durationMs === undefined ? "–" : duration(rep.durationMs)),
              );
            }),
          ),
        ),
    );
    replaceChildren(
      findings,
      h("h3", { id: "findings-h" }, "Findings"),
      h("div", { class: "toolbar" }, typeFilter, categoryFilter),
      !f.ok
        ? h("p", { class: "muted" }, apiProblem(f.error, app.session.role))
        : f.data.findings.length === 0
        ? h("p", { class: "muted" }, "No findings match.")
        : dataTable(
          { class: "grid" },
          ["found", "type", "category", "source #seq", "event", "repaired", "details"],
          h(
            "tbody",
            null,
            f.data.findings.map((x) =>
              h(
                "tr",
                null,
                h("td", { title: x.found_at }, ago(x.found_at)),
                h("td", null, h("span", { class: "tag" }, label(x.type))),
                h(
                  "td",
                  null,
                  x.category
                    ? h("span", { class: `badge cat-${x.category}` }, label(x.category))
                    : "–",
                ),
                h("td", null, `${x.source}${x.sequence_id === null ? "" : ` #${x.sequence_id}`}`),
                h("td", { class: "mono small" }, x.event_id ? `${x.event_id.slice(0, 8)}…` : "–"),
                h(
                  "td",
                  null,
                  x.repaired ? `yes${x.repair_note ? ` — ${x.repair_note}` : ""}` : "no",
                ),
                h("td", { class: "mono small clip" }, JSON.stringify(x.details)),
              )
            ),
          ),
        ),
    );
  }

  replaceChildren(
    root,
    h(
      "div",
      { class: "reconcile" },
      h(
        "div",
        { class: "toolbar" },
        runButton,
        runResult,
      ),
      consistency,
      runs,
      findings,
    ),
  );
  metrics.onChange(drawConsistency);
  app.on("session", () => void loadLists());
  drawConsistency();
  let loaded = false;
  // Lists load when the view is first shown, then every 30 s while it is.
  const refresh = () => {
    if (!root.hidden) {
      loaded = true;
      void loadLists();
    }
  };
  new MutationObserver(() => {
    if (!root.hidden && !loaded) refresh();
  }).observe(root, { attributes: true, attributeFilter: ["hidden"] });
  setInterval(refresh, 30_000);
  refresh();
}
