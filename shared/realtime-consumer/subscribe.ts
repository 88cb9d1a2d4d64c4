/**
 * Subscribing to monitoring events over Supabase Realtime with
 * `@supabase/supabase-js`, gap-free (DESIGN §2.8).
 *
 * Realtime reports SUBSCRIBED before changes flow and guarantees no delivery,
 * so on every SUBSCRIBED (the first, and after each reconnect) the consumer
 * backfills from the history API (`events` function) starting a little before
 * the last event it saw, and drops what it already delivered (by id). The
 * caller sees each event once; backfilled events arrive in `seq` order.
 *
 * Modes (chosen per category in the flags):
 * - `postgres_changes`: INSERTs on public.monitoring_events_live;
 * - `broadcast`: channel `monitoring:<category>`, event `events`, payload
 *   `{ events: [...] }` (private channels by default);
 * - `both`: listens both ways, each event delivered once. A subscriber that
 *   must survive an operator switching a category's `delivery_mode` uses it:
 *   ingest instances pick a switch up within their config refresh, so for a
 *   moment events go out the old way, and afterwards only the new way. The
 *   idle way costs a channel, not work per event (Postgres Changes authorise
 *   only rows written, and a category in broadcast mode writes none).
 *
 * @example
 * const sub = subscribeMonitoringEvents({
 *   client: createClient(url, anonKey),
 *   mode: "broadcast",
 *   history: createHistoryFetcher({ url, token: anonKey }),
 *   onEvents: (events) => render(events),
 * });
 */
import type { RealtimeChannel, SupabaseClient } from "@supabase/supabase-js";
import { CATEGORIES, type Category } from "../events/constants.ts";
// Types only: the dashboard bundles this module, and schema.ts's runtime values would pull in zod.
import type { WireEvent } from "../events/schema.ts";
import { DeliveredIds } from "./dedupe.ts";

/** One event as the history API, the live table and broadcasts all carry it. */
export interface MonitoringEvent extends WireEvent {
  seq: number;
  checksum: string;
  checksum_alg: string;
  routes: string[];
  received_at: string;
}

export interface HistoryPage {
  events: MonitoringEvent[];
  next: { after: number } | { before: number } | null;
}

/** Reads history in ascending order from `receivedSince`, then by `after` cursor. */
export type HistoryFetcher = (
  query: { receivedSince?: string; after?: number; categories?: Category[]; limit: number },
) => Promise<HistoryPage>;

export type ConsumerStatus = "connecting" | "backfilling" | "live" | "reconnecting" | "closed";

export interface ConsumerState {
  status: ConsumerStatus;
  /** The last error Realtime or the history API reported, if any. */
  error?: string;
  delivered: number;
  backfilled: number;
}

/** How a consumer listens: one delivery mode, or both (see above). */
export type ConsumerMode = "postgres_changes" | "broadcast" | "both";

export interface SubscribeOptions {
  client: Pick<SupabaseClient, "channel" | "removeChannel">;
  mode: ConsumerMode;
  history: HistoryFetcher;
  onEvents: (events: MonitoringEvent[]) => void;
  onState?: (state: ConsumerState) => void;
  /** Default: all five. */
  categories?: Category[];
  /** Broadcast channels are private unless told otherwise. */
  privateChannels?: boolean;
  /** Start from events received after this time (ISO); default: a few seconds before now. */
  receivedSince?: string;
  /** How far before the last seen event a backfill starts (commit-order slack). Default 10 s. */
  overlapMs?: number;
  /** Upper bound on history pages read per backfill (× 1000 events). Default 50. */
  maxBackfillPages?: number;
}

export interface MonitoringSubscription {
  readonly state: ConsumerState;
  /** Backfills now (e.g. after the page was hidden for a while). */
  catchUp(): Promise<void>;
  close(): Promise<void>;
}

/** Normalises a row or broadcast item to the one event shape. */
export function normaliseEvent(raw: Record<string, unknown>): MonitoringEvent {
  return {
    seq: Number(raw.seq),
    id: String(raw.id),
    source: String(raw.source),
    sequence_id: Number(raw.sequence_id),
    event_type: String(raw.event_type),
    category: raw.category as Category,
    timestamp: new Date(String(raw.timestamp)).toISOString(),
    data: (raw.data ?? {}) as Record<string, unknown>,
    checksum: String(raw.checksum),
    checksum_alg: String(raw.checksum_alg),
    routes: (raw.routes ?? []) as string[],
    received_at: new Date(String(raw.received_at)).toISOString(),
  };
}

/** Subscribes; returns at once (state tells how far it got). */
export function subscribeMonitoringEvents(options: SubscribeOptions): MonitoringSubscription {
  const categories = options.categories ?? [...CATEGORIES];
  const overlapMs = options.overlapMs ?? 10_000;
  const delivered = new DeliveredIds(Math.max(120_000, overlapMs * 6));
  const state: ConsumerState = { status: "connecting", delivered: 0, backfilled: 0 };
  let lastReceivedMs = options.receivedSince
    ? Date.parse(options.receivedSince)
    : Date.now() - 2000;
  let closed = false;
  let backfilling: Promise<void> | undefined;
  const channels: RealtimeChannel[] = [];
  const subscribed = new Set<RealtimeChannel>();
  const wanted = new Set<string>(categories);

  const setState = (patch: Partial<ConsumerState>) => {
    Object.assign(state, patch);
    options.onState?.({ ...state });
  };

  function deliver(events: MonitoringEvent[], fromBackfill: boolean): void {
    const fresh: MonitoringEvent[] = [];
    for (const e of events) {
      if (!wanted.has(e.category)) continue;
      const receivedMs = Date.parse(e.received_at);
      if (!delivered.offer(e.id, receivedMs)) continue;
      if (receivedMs > lastReceivedMs) lastReceivedMs = receivedMs;
      fresh.push(e);
    }
    if (fresh.length === 0) return;
    state.delivered += fresh.length;
    if (fromBackfill) state.backfilled += fresh.length;
    options.onEvents(fresh);
  }

  async function backfill(): Promise<void> {
    const since = new Date(lastReceivedMs - overlapMs).toISOString();
    setState({ status: "backfilling" });
    try {
      let page = await options.history({ receivedSince: since, categories, limit: 1000 });
      for (let i = 0; !closed; i++) {
        deliver([...page.events].sort((a, b) => a.seq - b.seq), true);
        if (!page.next || !("after" in page.next) || i + 1 >= (options.maxBackfillPages ?? 50)) {
          break;
        }
        page = await options.history({
          receivedSince: since,
          after: page.next.after,
          categories,
          limit: 1000,
        });
      }
      delivered.prune(lastReceivedMs);
      if (!closed) {
        setState({
          status: subscribed.size === channels.length ? "live" : "reconnecting",
          error: undefined,
        });
      }
    } catch (error) {
      setState({ error: `backfill failed: ${(error as Error).message}` });
    }
  }

  function scheduleBackfill(): Promise<void> {
    // One at a time; a request during a run runs once more after it.
    const run = (backfilling ?? Promise.resolve()).then(() => (closed ? undefined : backfill()));
    backfilling = run.finally(() => {
      if (backfilling === run) backfilling = undefined;
    });
    return run;
  }

  function onStatus(channel: RealtimeChannel) {
    return (status: string, error?: Error) => {
      if (closed) return;
      if (status === "SUBSCRIBED") {
        subscribed.add(channel);
        void scheduleBackfill();
      } else {
        subscribed.delete(channel);
        setState({ status: "reconnecting", error: error?.message ?? status });
      }
    };
  }

  if (options.mode !== "broadcast") {
    const channel = options.client.channel(
      `monitoring-live-${Math.random().toString(36).slice(2)}`,
    );
    const filter = categories.length < CATEGORIES.length
      ? `category=in.(${categories.join(",")})`
      : undefined;
    channel.on(
      "postgres_changes",
      {
        event: "INSERT",
        schema: "public",
        table: "monitoring_events_live",
        ...(filter ? { filter } : {}),
      },
      (payload: { new: Record<string, unknown> }) => deliver([normaliseEvent(payload.new)], false),
    );
    channels.push(channel);
  }
  if (options.mode !== "postgres_changes") {
    for (const category of categories) {
      const channel = options.client.channel(`monitoring:${category}`, {
        config: { private: options.privateChannels ?? true },
      });
      channel.on(
        "broadcast",
        { event: "events" },
        (message: { payload?: { events?: Record<string, unknown>[] } }) => {
          deliver((message.payload?.events ?? []).map(normaliseEvent), false);
        },
      );
      channels.push(channel);
    }
  }
  for (const channel of channels) channel.subscribe(onStatus(channel));

  return {
    get state() {
      return { ...state };
    },
    catchUp: () => scheduleBackfill(),
    async close() {
      closed = true;
      await Promise.all(channels.map((c) => options.client.removeChannel(c)));
      setState({ status: "closed" });
    },
  };
}

/**
 * A HistoryFetcher over the `events` function. `token` is the caller's JWT
 * (anon key or a user's access token): the history is read under its RLS.
 */
export function createHistoryFetcher(options: {
  url: string;
  token: string | (() => string);
  fetch?: typeof fetch;
}): HistoryFetcher {
  const doFetch = options.fetch ?? fetch;
  return async (query) => {
    const params = new URLSearchParams({ order: "asc", limit: String(query.limit) });
    if (query.after !== undefined) params.set("after", String(query.after));
    if (query.receivedSince) params.set("received_since", query.receivedSince);
    if (query.categories?.length && query.categories.length < CATEGORIES.length) {
      params.set("category", query.categories.join(","));
    }
    const token = typeof options.token === "function" ? options.token() : options.token;
    const res = await doFetch(`${options.url.replace(/\/$/, "")}/functions/v1/events?${params}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (!res.ok) throw new Error(`history API answered ${res.status}: ${await res.text()}`);
    const body = await res.json() as {
      events: Record<string, unknown>[];
      next: HistoryPage["next"];
    };
    return { events: body.events.map(normaliseEvent), next: body.next };
  };
}
