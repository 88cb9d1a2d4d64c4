/**
 * The Live view: the tail (newest first, filters, search, pause with a
 * bounded buffer, click for details), the live events/s chart, dual mode's
 * agreement between the paths, and the sources' notices.
 */
import type { Dashboard } from "../app.ts";
import {
  type Category,
  CATEGORY_LIST,
  type Path,
  type TailFilter,
  type TailRow,
} from "../core/events.ts";
import { createChart } from "./chart.ts";
import { CATEGORY_COLORS, PATH_NAMES } from "./colors.ts";
import { createDetailDialog } from "./detail.ts";
import { h, replaceChildren, setText } from "./dom.ts";
import { ago, clock, count, duration, label, rate } from "./format.ts";
import { VirtualList } from "./virtual-list.ts";

const ROW_HEIGHT = 30;

function pathBadges(row: TailRow): string {
  const ws = row.seenAt.websocket !== undefined;
  const rt = row.seenAt.realtime !== undefined;
  const tag = ws && rt ? "WS+RT" : ws ? "WS" : rt ? "RT" : "history";
  return row.backfilledOn.length ? `${tag} ↺` : tag;
}

function renderRow(el: HTMLElement, row: TailRow): void {
  if (!el.firstChild) {
    // The spaces between cells (ignored by the grid) separate words in the
    // row's accessible name, which is its visible text.
    for (const cls of ["c-time", "c-cat", "c-src", "c-type", "c-seq", "c-via", "c-data"]) {
      el.append(h("span", { class: cls }), " ");
    }
  }
  const e = row.event;
  const cells = el.children;
  cells[0]!.textContent = clock(e.timestamp);
  const cat = cells[1] as HTMLElement;
  cat.className = `c-cat badge cat-${e.category}`;
  cat.textContent = label(e.category);
  cells[2]!.textContent = e.source;
  cells[3]!.textContent = e.event_type;
  cells[4]!.textContent = `#${e.sequence_id}`;
  const via = cells[5] as HTMLElement;
  via.textContent = pathBadges(row);
  via.title = row.backfilledOn.length
    ? `recovered from history on ${row.backfilledOn.join(", ")}`
    : row.fromHistory
    ? "loaded from history when the page opened"
    : "";
  const data = JSON.stringify(e.data);
  cells[6]!.textContent = data.length > 160 ? `${data.slice(0, 160)}…` : data;
}

export function mountLive(app: Dashboard, root: HTMLElement): void {
  const detail = createDetailDialog(app);
  const list = new VirtualList<TailRow>({
    rowHeight: ROW_HEIGHT,
    label: "Live events, newest first. Enter opens the selected event.",
    render: renderRow,
    stamp: (row) =>
      (row.seenAt.websocket ? 1 : 0) + (row.seenAt.realtime ? 2 : 0) + row.backfilledOn.length * 4,
    onActivate: (row) => detail.open(row),
  });

  // Filters.
  const chosen = new Set<Category>();
  const chips = CATEGORY_LIST.map((c) => {
    const input = h("input", { type: "checkbox", value: c, class: "chip-input" });
    input.addEventListener("change", () => {
      if (input.checked) chosen.add(c);
      else chosen.delete(c);
      applyFilter();
    });
    return h("label", { class: `chip cat-${c}` }, input, h("span", null, label(c)));
  });
  const sourceList = h("datalist", { id: "seen-sources" });
  const typeList = h("datalist", { id: "seen-types" });
  const sourceInput = h("input", {
    type: "search",
    list: "seen-sources",
    placeholder: "any",
    "aria-label": "Filter by source",
  });
  const typeInput = h("input", {
    type: "search",
    list: "seen-types",
    placeholder: "any",
    "aria-label": "Filter by event type",
  });
  const searchInput = h("input", {
    type: "search",
    placeholder: "id, payload, …",
    "aria-label": "Search events",
  });
  let filterTimer: ReturnType<typeof setTimeout> | undefined;
  for (const input of [sourceInput, typeInput, searchInput]) {
    input.addEventListener("input", () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(applyFilter, 120);
    });
  }
  const clearButton = h("button", { type: "button", class: "btn link" }, "Clear filters");
  clearButton.addEventListener("click", () => {
    chosen.clear();
    for (const chip of chips) chip.querySelector("input")!.checked = false;
    sourceInput.value = typeInput.value = searchInput.value = "";
    applyFilter();
  });

  function applyFilter(): void {
    const filter: TailFilter = {
      categories: new Set(chosen),
      source: sourceInput.value.trim(),
      eventType: typeInput.value.trim(),
      text: searchInput.value.trim(),
    };
    app.store.setFilter(filter);
    list.setItems(app.store.view);
    drawStatus();
  }

  // Pause.
  const pauseButton = h(
    "button",
    { type: "button", class: "btn primary", "aria-pressed": "false" },
    "Pause",
  );
  const waiting = h("span", { class: "waiting", role: "status", "aria-live": "polite" });
  pauseButton.addEventListener("click", () => {
    if (app.store.paused) {
      app.store.resume();
      list.setItems(app.store.view, app.store.addedOnTop);
    } else {
      app.store.pause();
    }
    drawStatus();
  });
  document.addEventListener("keydown", (e) => {
    // "p" toggles pause unless the operator is typing.
    const target = e.target as HTMLElement;
    if (e.key !== "p" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (target.closest("input, textarea, select, [contenteditable]") || !root.isConnected) return;
    if (root.hidden) return;
    pauseButton.click();
  });

  const shown = h("span", { class: "shown muted" });
  const empty = h("div", { class: "empty", role: "status" });

  function drawStatus(): void {
    const s = app.store;
    pauseButton.textContent = s.paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(s.paused));
    pauseButton.title = s.paused
      ? "Show the events captured while paused (p)"
      : "Freeze the tail; events keep being captured (p)";
    const dropped = s.waitingDropped;
    setText(
      waiting,
      s.paused
        ? `Paused: ${count(s.waiting)} new event${s.waiting === 1 ? "" : "s"} waiting${
          dropped
            ? ` (${count(dropped)} oldest dropped; the buffer keeps ${count(s.pauseCapacity)})`
            : ""
        }`
        : "",
    );
    waiting.hidden = !s.paused;
    setText(
      shown,
      `showing ${count(s.view.length)} of ${count(s.size)} (kept: last ${count(s.tailCapacity)})`,
    );
    drawEmpty();
  }

  function drawEmpty(): void {
    const s = app.store;
    let message: (string | Node | null)[] | null = null;
    if (s.view.length > 0) message = null;
    else if (s.size > 0) {
      message = ["No event matches the filters. ", clearButton];
    } else {
      const linkStates = Object.values(app.links);
      const up = linkStates.some((l) => l?.status === "connected");
      const settled = linkStates.some((l) => l?.status === "connected" || l?.status === "offline");
      const anon = app.session.role === "anon";
      if (!settled) message = ["Connecting to the data source…"];
      else if (anon && app.mode === "realtime") {
        message = [
          h("strong", null, "Realtime shows the anon key nothing"),
          " unless the project's anon_read_enabled setting is on (row-level security). ",
          "Sign in with the service-role key, or switch to WebSocket mode.",
        ];
      } else if (!up) {
        message = ["The data source is not connected: see the indicator at the top."];
      } else {
        message = [
          h("strong", null, "Waiting for events."),
          " Nothing has arrived yet. For demo traffic run ",
          h("code", null, "npm run demo"),
          " (or start with ",
          h("code", null, "npm start -- --demo"),
          "); producers POST to ",
          h("code", null, "/functions/v1/ingest"),
          ".",
          anon
            ? h(
              "span",
              { class: "block muted" },
              "Signed out: earlier events (history) are hidden from the anon key.",
            )
            : null,
        ];
      }
    }
    empty.hidden = message === null;
    if (message) replaceChildren(empty, ...message);
  }

  // Side panel: live rate chart, agreement, per-path counts, notices.
  const rateChart = createChart({
    title: "Events/s received by this page, by category (last 5 min)",
    unit: "events/s",
    series: CATEGORY_LIST.map((c) => ({ label: label(c), color: CATEGORY_COLORS[c] })),
    height: 170,
  });
  const rateNow = h("div", { class: "big-number" });
  const pathCounts = h("div", { class: "path-counts" });
  const agreement = h("section", { class: "panel agreement", "aria-labelledby": "agreement-h" });
  const notices = h("ul", { class: "notices plain" });

  function drawSide(): void {
    const now = Date.now();
    const series = app.rates.series(now);
    // The current second is still counting: the chart ends at the last complete one.
    rateChart.setData(
      series.t.slice(0, -1),
      CATEGORY_LIST.map((c) => series.byCategory[c].slice(0, -1)),
    );
    setText(rateNow, `${rate(app.rates.rate(now))} events/s`);
    const wanted: Path[] = app.mode === "dual" ? ["websocket", "realtime"] : [app.mode];
    replaceChildren(
      pathCounts,
      wanted.map((p) =>
        h(
          "div",
          null,
          h("span", { class: `badge path-${p}` }, PATH_NAMES[p]),
          ` ${count(app.delivered[p].live)} live`,
          app.delivered[p].backfill
            ? `, ${count(app.delivered[p].backfill)} recovered from history`
            : "",
        )
      ),
    );
    agreement.hidden = app.mode !== "dual";
    if (app.mode === "dual") drawAgreement();
  }

  function drawAgreement(): void {
    const c = app.agreement.counts();
    const judged = c.both + c.websocketOnly + c.realtimeOnly;
    const share = (n: number) => (judged ? ` (${((n / judged) * 100).toFixed(1)} %)` : "");
    const recent = app.agreement.recentOneSided().slice(0, 5);
    replaceChildren(
      agreement,
      h("h3", { id: "agreement-h" }, "Dual mode: do the paths agree?"),
      h(
        "table",
        { class: "mini" },
        h(
          "tbody",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "row" }, "Seen on both"),
            h("td", { "data-k": "both" }, `${count(c.both)}${share(c.both)}`),
          ),
          h(
            "tr",
            null,
            h("th", { scope: "row" }, "WebSocket only"),
            h(
              "td",
              { "data-k": "websocket-only" },
              `${count(c.websocketOnly)}${share(c.websocketOnly)}`,
            ),
          ),
          h(
            "tr",
            null,
            h("th", { scope: "row" }, "Realtime only"),
            h(
              "td",
              { "data-k": "realtime-only" },
              `${count(c.realtimeOnly)}${share(c.realtimeOnly)}`,
              c.realtimeOnlyRoutedToBoth
                ? h(
                  "span",
                  { class: "warn-text" },
                  ` — ${count(c.realtimeOnlyRoutedToBoth)} routed to both`,
                )
                : null,
            ),
          ),
          h(
            "tr",
            null,
            h("th", { scope: "row" }, "Waiting for the other path"),
            h("td", null, count(c.pending)),
          ),
          c.late
            ? h("tr", null, h("th", { scope: "row" }, "Matched late"), h("td", null, count(c.late)))
            : null,
          h(
            "tr",
            null,
            h("th", { scope: "row" }, "Realtime vs WebSocket"),
            h(
              "td",
              null,
              c.realtimeLagMs
                ? `${c.realtimeLagMs.p50 >= 0 ? "+" : "−"}${
                  duration(Math.abs(c.realtimeLagMs.p50))
                } median, p95 ${duration(c.realtimeLagMs.p95)}`
                : "–",
            ),
          ),
        ),
      ),
      h(
        "p",
        { class: "muted small" },
        "Judged 5 s after first sight. An event routed to one path only is expected there only; WebSocket copies carry no routes.",
      ),
      recent.length
        ? h(
          "details",
          null,
          h("summary", null, "Latest one-sided events"),
          h(
            "ul",
            { class: "plain mono small" },
            recent.map((o) =>
              h(
                "li",
                null,
                `${o.id.slice(0, 8)}… only ${PATH_NAMES[o.path]} ${ago(o.at)}`,
                o.routes ? ` (routes: ${o.routes.join(", ") || "none"})` : "",
              )
            ),
          ),
        )
        : null,
    );
  }

  function drawNotices(): void {
    const items = app.notices.toArray().reverse().slice(0, 8);
    replaceChildren(
      notices,
      items.length
        ? items.map((n) =>
          h(
            "li",
            { class: `notice ${n.tone}` },
            h("span", { class: "muted" }, clock(n.at)),
            " ",
            n.message,
          )
        )
        : h("li", { class: "muted" }, "Nothing to report."),
    );
  }

  const datalistRefresh = () => {
    if (sourceList.childElementCount !== app.seenSources.size) {
      replaceChildren(
        sourceList,
        [...app.seenSources].sort().map((s) => h("option", { value: s })),
      );
    }
    if (typeList.childElementCount !== app.seenTypes.size) {
      replaceChildren(typeList, [...app.seenTypes].sort().map((s) => h("option", { value: s })));
    }
  };

  replaceChildren(
    root,
    h(
      "div",
      { class: "live" },
      h(
        "section",
        { class: "panel tail", "aria-label": "Live tail" },
        h(
          "div",
          { class: "toolbar" },
          pauseButton,
          h("fieldset", { class: "chips" }, h("legend", { class: "sr-only" }, "Categories"), chips),
          h("label", { class: "field" }, h("span", null, "Source"), sourceInput),
          h("label", { class: "field" }, h("span", null, "Type"), typeInput),
          h("label", { class: "field grow" }, h("span", null, "Search"), searchInput),
          sourceList,
          typeList,
        ),
        h("div", { class: "tail-status" }, waiting, shown),
        h(
          "div",
          { class: "tail-head", "aria-hidden": "true" },
          ["time", "category", "source", "event type", "seq", "via", "data"].map((t, i) =>
            h("span", {
              class: ["c-time", "c-cat", "c-src", "c-type", "c-seq", "c-via", "c-data"][i],
            }, t)
          ),
        ),
        h("div", { class: "tail-body" }, list.element, empty),
      ),
      h(
        "aside",
        { class: "live-side" },
        h("section", { class: "panel" }, rateNow, rateChart.element, pathCounts),
        agreement,
        h("section", { class: "panel" }, h("h3", null, "Notices"), notices),
      ),
    ),
    detail.element,
  );

  app.on("frame", () => {
    list.setItems(app.store.view, app.store.addedOnTop);
    drawStatus();
  });
  app.on("tick", () => {
    drawSide();
    datalistRefresh();
    drawStatus();
  });
  app.on("links", drawEmpty);
  app.on("mode", drawSide);
  app.on("notices", drawNotices);
  drawStatus();
  drawSide();
  drawNotices();
}
