/**
 * The dashboard's controller: owns the live state (tail, rates, dual-mode
 * agreement, connection states), starts and stops the data sources for the
 * chosen mode, and tells the views when to redraw — once per animation frame
 * for the tail, once per second for clocks and countdowns.
 *
 * Events are counted as they arrive (O(1) each) and drawn per frame, so a
 * burst of 1,000 events/s costs one DOM update per frame, not one per event.
 */
import { type Api, createApi, type HistoryPage } from "./api.ts";
import { AgreementTracker } from "./core/agreement.ts";
import type { LinkState } from "./core/connection.ts";
import type { DashboardEvent, Delivery, Path } from "./core/events.ts";
import { LiveStore } from "./core/live.ts";
import { RateMeter } from "./core/rates.ts";
import { Ring } from "./core/ring.ts";
import type { Session } from "./session.ts";
import { startRealtimeSource } from "./sources/realtime.ts";
import {
  type HistoryReader,
  type LiveSource,
  type RealtimeDelivery,
  SOURCE_MODES,
  type SourceMode,
  type SourceSink,
} from "./sources/types.ts";
import { startWebSocketSource } from "./sources/websocket.ts";

export interface PublicConfig {
  apiUrl: string;
  anonKey: string;
}

export interface Notice {
  at: number;
  path: Path | "dashboard";
  message: string;
  tone: "info" | "warn" | "bad";
}

type Topic = "frame" | "tick" | "links" | "mode" | "notices" | "session" | "flags";

const MODE_KEY = "cutover.dashboard.mode";
const DELIVERY_KEY = "cutover.dashboard.realtime-delivery";
const DELIVERIES: readonly RealtimeDelivery[] = ["auto", "postgres_changes", "broadcast"];

/** The persisted mode, or WebSocket mode (the path every viewer may read) when none was chosen. */
export function readMode(storage: Pick<Storage, "getItem">): SourceMode {
  const saved = storage.getItem(MODE_KEY);
  return (SOURCE_MODES as readonly string[]).includes(saved ?? "")
    ? saved as SourceMode
    : "websocket";
}

export function readDelivery(storage: Pick<Storage, "getItem">): RealtimeDelivery {
  const saved = storage.getItem(DELIVERY_KEY);
  return (DELIVERIES as readonly string[]).includes(saved ?? "")
    ? saved as RealtimeDelivery
    : "auto";
}

export class Dashboard {
  readonly api: Api;
  readonly store = new LiveStore();
  readonly agreement = new AgreementTracker();
  readonly rates = new RateMeter(300);
  readonly notices = new Ring<Notice>(30);
  readonly links: Partial<Record<Path, LinkState>> = {};
  /** Per path: events delivered (after dedupe on that path) and how many came from a history backfill. */
  readonly delivered: Record<Path, { live: number; backfill: number }> = {
    websocket: { live: 0, backfill: 0 },
    realtime: { live: 0, backfill: 0 },
  };
  /** Per path: copies of an event that path had already delivered (a path should deliver once). */
  readonly repeats: Record<Path, number> = { websocket: 0, realtime: 0 };
  /** Recently seen sources and event types (for the filter suggestions), bounded. */
  readonly seenSources = new Set<string>();
  readonly seenTypes = new Set<string>();
  mode: SourceMode;
  delivery: RealtimeDelivery;
  /** Set once the first source connected and the page's first render is done. */
  readyAt: number | undefined;
  /** The history API's answer to the page's initial read: ok, empty, or refused. */
  historyAccess: "unknown" | "ok" | "empty" | "refused" = "unknown";

  #sources: LiveSource[] = [];
  #generation = 0;
  #listeners = new Map<Topic, Set<() => void>>();
  #frameRequested = false;
  #dirty = false;
  #lastLiveAt: number | undefined;
  #prefilled = false;
  #ticker: ReturnType<typeof setInterval> | undefined;
  /**
   * Dual mode judges only events ingest received after the WebSocket stream
   * opened: it starts at the live head, so earlier events reach this page on
   * Realtime's backfill only, which says nothing about the WebSocket path.
   */
  #agreementEpoch: number | undefined;

  constructor(
    readonly config: PublicConfig,
    readonly session: Session,
    private readonly storage: Pick<Storage, "getItem" | "setItem">,
  ) {
    this.api = createApi({
      apiUrl: config.apiUrl,
      token: () => session.token(),
      actor: () => session.operator || undefined,
    });
    this.mode = readMode(storage);
    this.delivery = readDelivery(storage);
    session.onChange(() => {
      // Read history again with the new credential (the anon key may have seen none of it).
      this.#prefilled = false;
      this.historyAccess = "unknown";
      this.emit("session");
      this.restartSources();
    });
  }

  on(topic: Topic, listener: () => void): () => void {
    let set = this.#listeners.get(topic);
    if (!set) this.#listeners.set(topic, set = new Set());
    set.add(listener);
    return () => set.delete(listener);
  }

  emit(topic: Topic): void {
    for (const l of this.#listeners.get(topic) ?? []) l();
  }

  start(): void {
    this.#ticker = setInterval(() => {
      this.agreement.settle(Date.now());
      this.emit("tick");
    }, 1000);
    // A hidden tab's timers are throttled and a laptop may sleep: Realtime
    // gives no delivery guarantee, so read history again when the page comes
    // back. (The WebSocket path resumes from its cursor by itself.)
    let hiddenAt: number | undefined;
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) hiddenAt = Date.now();
      else if (hiddenAt !== undefined && Date.now() - hiddenAt > 10_000) this.catchUp();
    });
    globalThis.addEventListener("online", () => this.catchUp());
    this.restartSources();
  }

  /** Asks every source to read what it may have missed. */
  catchUp(): void {
    for (const s of this.#sources) s.catchUp?.();
  }

  /** Switches the data source without a reload; the choice is kept for this browser. */
  setMode(mode: SourceMode): void {
    if (mode === this.mode) return;
    this.mode = mode;
    this.storage.setItem(MODE_KEY, mode);
    this.agreement.reset();
    this.emit("mode");
    this.restartSources();
  }

  setDelivery(delivery: RealtimeDelivery): void {
    if (delivery === this.delivery) return;
    this.delivery = delivery;
    this.storage.setItem(DELIVERY_KEY, delivery);
    this.emit("mode");
    if (this.mode !== "websocket") this.restartSources();
  }

  /** A reader of the history API with the current credential (ascending pages). */
  readonly history: HistoryReader = async (q) => {
    const res = await this.api.get<HistoryPage>("events", {
      order: "asc",
      limit: q.limit,
      after: q.after,
      received_since: q.receivedSince,
      category: q.categories && q.categories.length < 5 ? q.categories.join(",") : undefined,
    });
    if (!res.ok) throw new Error(`history API answered ${res.error.status}: ${res.error.message}`);
    return res.data;
  };

  /** Stops every source and starts the ones the mode needs, resuming from the last event seen. */
  restartSources(): void {
    const generation = ++this.#generation;
    for (const s of this.#sources) s.close();
    this.#sources = [];
    for (const path of ["websocket", "realtime"] as const) delete this.links[path];
    this.#agreementEpoch = undefined;
    const sink = this.#sink(generation);
    const wanted: Path[] = this.mode === "dual" ? ["websocket", "realtime"] : [this.mode];
    for (const path of wanted) {
      this.links[path] = { path, status: "connecting" };
    }
    this.emit("links");
    if (wanted.includes("websocket")) {
      this.#sources.push(startWebSocketSource({
        apiUrl: this.config.apiUrl,
        token: () => this.session.token(),
        history: this.history,
        sink,
      }));
    }
    if (wanted.includes("realtime")) void this.#startRealtime(generation, sink);
  }

  async #startRealtime(generation: number, sink: SourceSink): Promise<void> {
    // Broadcasts go to private channels unless the flags say otherwise (readable by the service role).
    let privateChannels: boolean | undefined;
    if (this.delivery !== "postgres_changes" && this.session.role === "service_role") {
      const flags = await this.api.get<{ settings: { broadcast_private?: boolean } }>("flags");
      if (flags.ok) privateChannels = flags.data.settings.broadcast_private;
    }
    if (generation !== this.#generation) return;
    // Resume a little before the last event this page saw, so a mode switch leaves no hole.
    const receivedSince = new Date((this.#lastLiveAt ?? Date.now()) - 10_000).toISOString();
    try {
      const source = await startRealtimeSource({
        apiUrl: this.config.apiUrl,
        anonKey: this.config.anonKey,
        token: () => this.session.token(),
        history: this.history,
        delivery: this.delivery,
        privateChannels,
        receivedSince,
        sink,
      });
      if (generation !== this.#generation) source.close();
      else this.#sources.push(source);
    } catch (error) {
      sink.link({
        path: "realtime",
        status: "offline",
        detail: `could not load the Realtime client: ${(error as Error).message}`,
      });
    }
  }

  #sink(generation: number): SourceSink {
    const current = () => generation === this.#generation;
    return {
      events: (events, path, delivery) => {
        if (current()) this.offer(events, path, delivery);
      },
      link: (state) => {
        if (!current()) return;
        this.links[state.path] = state;
        if (state.path === "websocket" && state.status === "connected") {
          this.#agreementEpoch ??= Date.now();
        }
        this.emit("links");
        if (state.status === "connected") void this.#prefill();
      },
      notice: (path, message, tone) => {
        if (current()) this.notify(path, message, tone);
      },
    };
  }

  notify(path: Notice["path"], message: string, tone: Notice["tone"]): void {
    this.notices.push({ at: Date.now(), path, message, tone });
    this.emit("notices");
  }

  /** Takes events from a source (or a test): counted now, drawn at the next frame. */
  offer(events: DashboardEvent[], path: Path | "history", delivery: Delivery = "live"): void {
    const now = Date.now();
    const dual = this.mode === "dual";
    for (const event of events) {
      const outcome = this.store.offer(event, path, delivery, now);
      if (path === "history") continue;
      if (outcome === "duplicate") {
        // A backfill overlapping what came live is expected; a live repeat is the path's fault.
        if (delivery === "live") this.repeats[path]++;
        continue;
      }
      this.delivered[path][delivery]++;
      if (dual && this.#agreementEpoch !== undefined) {
        // The merged row knows received_at once either copy carried it.
        const received = this.store.get(event.id)?.event.received_at;
        if (
          received === undefined || Date.parse(received) >= this.#agreementEpoch ||
          this.agreement.has(event.id)
        ) {
          this.agreement.see(event.id, path, now, event.routes, delivery === "live");
        }
      }
      if (outcome === "new") {
        this.rates.record(event.category, now);
        if (this.seenSources.size < 500) this.seenSources.add(event.source);
        if (this.seenTypes.size < 500) this.seenTypes.add(event.event_type);
      }
    }
    if (path !== "history") this.#lastLiveAt = now;
    this.#requestFrame();
  }

  #requestFrame(): void {
    this.#dirty = true;
    if (this.#frameRequested) return;
    this.#frameRequested = true;
    requestAnimationFrame(() => {
      this.#frameRequested = false;
      if (!this.#dirty) return;
      this.#dirty = false;
      this.store.flush();
      this.emit("frame");
    });
  }

  /** Redraws the tail (after a filter change, pause or resume). */
  redraw(): void {
    this.#requestFrame();
  }

  /**
   * Fills the tail with the latest events from history once a source is up,
   * so the page does not open empty. Under the anon key this usually returns
   * nothing (RLS), which the tail explains.
   */
  async #prefill(): Promise<void> {
    if (this.#prefilled) return;
    this.#prefilled = true;
    const res = await this.api.get<HistoryPage>("events", { order: "desc", limit: 200 });
    if (!res.ok) {
      this.historyAccess = "refused";
      this.notify("dashboard", `History unavailable: ${res.error.message}`, "warn");
    } else {
      this.historyAccess = res.data.events.length ? "ok" : "empty";
      this.offer([...res.data.events].reverse(), "history");
    }
    this.emit("frame");
  }

  /** Forgets what the tail holds and reads history again (after a sign-in). */
  resetTail(): void {
    this.store.clear();
    this.agreement.reset();
    this.#prefilled = false;
    this.historyAccess = "unknown";
    this.emit("frame");
  }

  stop(): void {
    clearInterval(this.#ticker);
    this.#generation++;
    for (const s of this.#sources) s.close();
    this.#sources = [];
  }
}
