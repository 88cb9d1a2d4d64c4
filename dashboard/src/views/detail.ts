/**
 * An event's full record in a modal dialog: payload, checksum and routes,
 * which path delivered it when. Events from ws-fanout carry only the wire
 * fields, so the stored record (seq, checksum, routes) is read from history;
 * the checksum is also recomputed here over the copy this page received,
 * which shows whether the path delivered the bytes ingest checksummed.
 */
import type { Dashboard } from "../app.ts";
import type { HistoryPage } from "../api.ts";
import type { DashboardEvent, Path, TailRow } from "../core/events.ts";
import { h, replaceChildren } from "./dom.ts";
import { PATH_NAMES } from "./colors.ts";
import { clock, dateTime, duration, label } from "./format.ts";

export interface DetailDialog {
  readonly element: HTMLDialogElement;
  open(row: TailRow): void;
}

/** Finds the stored copy of `event` in history (by source and exact timestamp). */
async function storedCopy(app: Dashboard, event: DashboardEvent): Promise<DashboardEvent | null> {
  const res = await app.api.get<HistoryPage>("events", {
    source: event.source,
    since: event.timestamp,
    until: event.timestamp,
    limit: 1000,
  });
  if (!res.ok) throw new Error(res.error.message);
  return res.data.events.find((e) => e.id === event.id) ?? null;
}

export function createDetailDialog(app: Dashboard): DetailDialog {
  const title = h("h2", { id: "detail-title" });
  const body = h("div", { class: "detail-body" });
  const close = h(
    "button",
    { type: "button", class: "btn", "aria-label": "Close details" },
    "Close",
  );
  const element = h(
    "dialog",
    { class: "detail", "aria-labelledby": "detail-title" },
    h("div", { class: "detail-head" }, title, close),
    body,
  );
  close.addEventListener("click", () => element.close());
  element.addEventListener("click", (e) => {
    if (e.target === element) element.close();
  });
  let openId = "";

  function render(row: TailRow, stored: DashboardEvent | null, note: string | null): void {
    const e = row.event;
    const full = { ...e, ...(stored ?? {}) };
    const paths = (Object.entries(row.seenAt) as [Path, number][]).sort((a, b) => a[1] - b[1]);
    const first = paths[0]?.[1];
    const check = h("span", { class: "checksum-verdict" }, full.checksum ? "checking…" : "");
    const dl = h(
      "dl",
      { class: "kv" },
      h("dt", null, "id"),
      h("dd", { class: "mono" }, e.id),
      h("dt", null, "source"),
      h("dd", null, e.source),
      h("dt", null, "sequence_id"),
      h("dd", { class: "mono" }, String(e.sequence_id)),
      h("dt", null, "category"),
      h("dd", null, h("span", { class: `badge cat-${e.category}` }, label(e.category))),
      h("dt", null, "timestamp"),
      h("dd", { class: "mono" }, e.timestamp),
      h("dt", null, "received"),
      h("dd", { class: "mono" }, full.received_at ? `${full.received_at} (by ingest)` : "–"),
      h("dt", null, "seq"),
      h("dd", { class: "mono" }, full.seq === undefined ? "–" : String(full.seq)),
      h("dt", null, "routes"),
      h(
        "dd",
        null,
        full.routes?.length
          ? full.routes.map((r) => h("span", { class: `badge path-${r}` }, r))
          : full.routes
          ? "stored only (not relayed live)"
          : "–",
      ),
      h("dt", null, "checksum"),
      h(
        "dd",
        null,
        full.checksum
          ? [h("span", { class: "mono wrap" }, `${full.checksum_alg}:${full.checksum}`), " ", check]
          : "–",
      ),
      h("dt", null, "delivered"),
      h(
        "dd",
        null,
        paths.length === 0 ? "loaded from history when the page opened" : h(
          "ul",
          { class: "plain" },
          paths.map(([path, t]) =>
            h(
              "li",
              null,
              `${PATH_NAMES[path]} at ${clock(t)}`,
              first !== undefined && t > first ? ` (+${duration(t - first)})` : "",
              row.backfilledOn.includes(path) ? " — recovered from history after a gap" : "",
            )
          ),
        ),
      ),
    );
    replaceChildren(
      body,
      note ? h("p", { class: "note" }, note) : null,
      dl,
      h("h3", null, "data"),
      h("pre", { class: "payload", tabindex: "0" }, JSON.stringify(e.data, null, 2)),
      h("p", { class: "muted small" }, `Shown ${dateTime(Date.now())}.`),
    );
    if (full.checksum && full.checksum_alg) {
      void verify(e, full.checksum_alg, full.checksum, check);
    }
  }

  async function verify(
    e: DashboardEvent,
    alg: string,
    expected: string,
    into: HTMLElement,
  ): Promise<void> {
    try {
      const { checksumEvent } = await import("../../../shared/events/checksum.ts");
      const actual = await checksumEvent({
        id: e.id,
        source: e.source,
        sequence_id: e.sequence_id,
        event_type: e.event_type,
        category: e.category,
        timestamp: e.timestamp,
        data: e.data,
      }, alg as "crc32" | "sha256");
      into.className = `checksum-verdict ${actual === expected ? "ok" : "bad"}`;
      into.textContent = actual === expected
        ? "✓ matches the copy this page received"
        : `✗ the copy this page received hashes to ${actual}`;
    } catch (error) {
      into.textContent = `could not verify: ${(error as Error).message}`;
    }
  }

  return {
    element,
    open(row) {
      openId = row.event.id;
      title.textContent = row.event.event_type;
      const complete = row.event.checksum !== undefined && row.event.routes !== undefined;
      render(row, null, complete ? null : "Reading the stored record (checksum, routes)…");
      if (!element.open) element.showModal();
      if (complete) return;
      storedCopy(app, row.event).then((stored) => {
        if (openId !== row.event.id) return;
        render(
          row,
          stored,
          stored
            ? null
            : app.session.role === "anon"
            ? "The stored record (checksum, routes) is not readable with the anon key: sign in."
            : "No stored record found for this event.",
        );
      }).catch((error: Error) => {
        if (openId === row.event.id) {
          render(row, null, `Could not read the stored record: ${error.message}`);
        }
      });
    },
  };
}
