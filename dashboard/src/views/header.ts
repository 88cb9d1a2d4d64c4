/**
 * The top bar: the data-source switch (persisted per browser, applied
 * without a reload), one connection indicator per active path with its
 * reconnect countdown, and who the page reads as (sign in / out).
 */
import type { Dashboard } from "../app.ts";
import { describeLink, worstLink } from "../core/connection.ts";
import type { Path } from "../core/events.ts";
import type { RealtimeDelivery, SourceMode } from "../sources/types.ts";
import { PATH_NAMES } from "./colors.ts";
import { h, replaceChildren } from "./dom.ts";

const MODE_LABELS: Record<SourceMode, string> = {
  websocket: "WebSocket",
  realtime: "Realtime",
  dual: "Dual",
};
const MODE_HINTS: Record<SourceMode, string> = {
  websocket: "The legacy path: ws-fanout through the fanout client library",
  realtime: "The new path: Supabase Realtime through supabase-js",
  dual: "Both paths side by side, with their live agreement",
};

export function mountHeader(app: Dashboard, root: HTMLElement, openSignIn: () => void): void {
  const radios = (Object.keys(MODE_LABELS) as SourceMode[]).map((mode) => {
    const input = h("input", {
      type: "radio",
      name: "source-mode",
      value: mode,
      checked: app.mode === mode,
    });
    input.addEventListener("change", () => {
      if (input.checked) app.setMode(mode);
    });
    return h(
      "label",
      { class: "seg", title: MODE_HINTS[mode] },
      input,
      h("span", null, MODE_LABELS[mode]),
    );
  });
  const delivery = h(
    "select",
    { "aria-label": "Realtime delivery mode", title: "How the Realtime source subscribes" },
    h("option", { value: "auto" }, "both delivery modes"),
    h("option", { value: "postgres_changes" }, "postgres_changes"),
    h("option", { value: "broadcast" }, "broadcast"),
  );
  delivery.value = app.delivery;
  delivery.addEventListener("change", () => app.setDelivery(delivery.value as RealtimeDelivery));
  const deliveryBox = h("span", { class: "delivery" }, delivery);

  const links = h("div", {
    class: "links",
    role: "status",
    "aria-live": "polite",
    "aria-atomic": "true",
  });
  const who = h("div", { class: "who" });

  function drawLinks(): void {
    const now = Date.now();
    const online = navigator.onLine;
    const states = (["websocket", "realtime"] as Path[]).map((p) => app.links[p]).filter((s) =>
      s !== undefined
    );
    const overall = worstLink(states);
    links.dataset.status = !online ? "offline" : overall?.status ?? "offline";
    replaceChildren(
      links,
      states.map((state) => {
        const view = describeLink(state, now, online);
        return h(
          "span",
          {
            class: `link tone-${view.tone}`,
            "data-path": state.path,
            "data-status": online ? state.status : "offline",
            title: view.detail,
          },
          h("span", { class: "dot", "aria-hidden": "true" }),
          h("b", null, PATH_NAMES[state.path]),
          " ",
          h("span", { class: "link-label" }, view.label),
          state.status === "reconnecting" || !online || state.status === "offline"
            ? h("span", { class: "link-detail" }, view.detail.replace(/^[A-Za-z]+: /, ""))
            : state.server
            ? h("span", { class: "link-detail" }, state.server)
            : null,
        );
      }),
    );
  }

  function drawWho(): void {
    const role = app.session.role;
    const button = h(
      "button",
      { type: "button", class: "btn" },
      role === "anon" ? "Sign in" : "Sign out",
    );
    button.addEventListener("click", () => {
      if (app.session.role === "anon") openSignIn();
      else app.session.signOut();
    });
    replaceChildren(
      who,
      h(
        "span",
        {
          class: `role role-${role}`,
          title: role === "anon"
            ? "Reading with the anon key: the WebSocket stream only; history, Realtime, metrics and flags need a sign-in"
            : role === "service_role"
            ? "Signed in with the service-role key (kept in this tab's sessionStorage only)"
            : "Signed in with a user's access token (reads under row-level security)",
        },
        role === "anon" ? "anonymous" : role === "service_role" ? "service role" : "signed-in user",
        app.session.operator && role !== "anon" ? ` · ${app.session.operator}` : "",
      ),
      button,
    );
  }

  function drawMode(): void {
    for (const r of radios) {
      r.querySelector("input")!.checked = r.querySelector("input")!.value === app.mode;
    }
    deliveryBox.hidden = app.mode === "websocket";
    delivery.value = app.delivery;
  }

  replaceChildren(
    root,
    h(
      "div",
      { class: "brand" },
      h("span", { class: "logo", "aria-hidden": "true" }, "⇄"),
      "cutover",
    ),
    h(
      "fieldset",
      { class: "modes" },
      h("legend", { class: "sr-only" }, "Data source"),
      h("span", { class: "modes-label", "aria-hidden": "true" }, "Source"),
      radios,
      deliveryBox,
    ),
    links,
    who,
  );
  app.on("links", drawLinks);
  app.on("tick", drawLinks);
  app.on("mode", drawMode);
  app.on("session", drawWho);
  globalThis.addEventListener("online", drawLinks);
  globalThis.addEventListener("offline", drawLinks);
  drawLinks();
  drawWho();
  drawMode();
}
