/**
 * Entry: reads ./config.json (`{ apiUrl, anonKey }` — served by the local
 * stack, or deployed next to the files on a static host), builds the
 * controller and mounts the views. Marks `cutover:shell` (first paint of the
 * layout) and `cutover:live` (first data source connected) for the
 * Performance API.
 */
import "./style.css";
import { Dashboard, type PublicConfig } from "./app.ts";
import { MetricsPoller } from "./metrics.ts";
import { Session } from "./session.ts";
import { h, replaceChildren } from "./views/dom.ts";
import { mountFlags } from "./views/flags.ts";
import { mountHeader } from "./views/header.ts";
import { mountHealth } from "./views/health.ts";
import { mountKpis } from "./views/kpis.ts";
import { mountLive } from "./views/live.ts";
import { mountReconcile } from "./views/reconcile.ts";
import { createSignIn } from "./views/signin.ts";

const VIEWS = [
  { id: "live", title: "Live" },
  { id: "health", title: "Health" },
  { id: "reconcile", title: "Reconciliation" },
  { id: "flags", title: "Flags" },
] as const;

async function loadConfig(): Promise<PublicConfig> {
  const res = await fetch("./config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`config.json answered ${res.status}`);
  const config = await res.json() as Partial<PublicConfig>;
  if (typeof config.apiUrl !== "string" || typeof config.anonKey !== "string") {
    throw new Error(
      'config.json must hold { "apiUrl": "https://<ref>.supabase.co", "anonKey": "…" }',
    );
  }
  return { apiUrl: config.apiUrl.replace(/\/$/, ""), anonKey: config.anonKey };
}

function showFatal(root: HTMLElement, message: string): void {
  replaceChildren(
    root,
    h(
      "div",
      { class: "fatal panel", role: "alert" },
      h("h1", null, "The dashboard cannot start"),
      h("p", null, message),
      h(
        "p",
        { class: "muted" },
        "Served by `npm start`, config.json comes from the local stack. On a static host, put a config.json next to index.html naming your project's API URL and anon key.",
      ),
    ),
  );
}

async function main(): Promise<void> {
  const root = document.getElementById("app")!;
  let config: PublicConfig;
  try {
    config = await loadConfig();
  } catch (error) {
    showFatal(root, `Could not read config.json: ${(error as Error).message}`);
    return;
  }
  const session = new Session(config.anonKey, sessionStorage, localStorage);
  const app = new Dashboard(config, session, localStorage);
  const metrics = new MetricsPoller(app);
  const signIn = createSignIn(app);

  const header = h("header", { class: "topbar" });
  const kpis = h("section", { class: "kpis", "aria-label": "Pipeline health at a glance" });
  const tabs = VIEWS.map((v) =>
    h("a", { href: `#${v.id}`, class: "tab", "data-view": v.id }, v.title)
  );
  const sections = Object.fromEntries(
    VIEWS.map((
      v,
    ) => [
      v.id,
      h("section", { class: "view", id: `view-${v.id}`, "aria-label": v.title, hidden: true }),
    ]),
  ) as Record<(typeof VIEWS)[number]["id"], HTMLElement>;

  replaceChildren(
    root,
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    header,
    kpis,
    h("nav", { class: "tabs", "aria-label": "Views" }, tabs),
    h("main", { id: "main", tabindex: "-1" }, Object.values(sections)),
    signIn.element,
  );

  const openSignIn = () => signIn.open();
  mountHeader(app, header, openSignIn);
  mountKpis(app, metrics, kpis);
  mountLive(app, sections.live);
  mountHealth(app, metrics, sections.health);
  mountReconcile(app, metrics, sections.reconcile);
  mountFlags(app, sections.flags, openSignIn);

  function route(): void {
    const id = (location.hash.slice(1) || "live") as keyof typeof sections;
    const current = id in sections ? id : "live";
    for (const [k, el] of Object.entries(sections)) el.hidden = k !== current;
    for (const t of tabs) {
      if (t.dataset.view === current) t.setAttribute("aria-current", "page");
      else t.removeAttribute("aria-current");
    }
    document.title = `${VIEWS.find((v) => v.id === current)!.title} · cutover`;
  }
  globalThis.addEventListener("hashchange", route);
  route();
  performance.mark("cutover:shell");

  const offLinks = app.on("links", () => {
    if (Object.values(app.links).some((l) => l?.status === "connected")) {
      performance.mark("cutover:live");
      app.readyAt = performance.now();
      offLinks();
    }
  });
  app.start();
  metrics.poll();
  // A handle for operators' consoles and the browser tests.
  (globalThis as { cutover?: unknown }).cutover = { app, metrics };
}

void main();
