/**
 * Realtime mode: the new path, through `@supabase/supabase-js` and the
 * project's consumer helper (shared/realtime-consumer), which backfills from
 * the history API on every SUBSCRIBED so a reconnect leaves no hole.
 *
 * A backfill reads the store of record, which also holds events routed to
 * the WebSocket path only; this source keeps the ones routed to Realtime, so
 * Realtime mode shows what the Realtime path carries.
 *
 * Categories may use different delivery modes (the flags' `delivery_mode`),
 * and an operator may switch one at any time: in "auto" the source listens
 * both ways (the consumer helper's `both` mode), so a switch loses nothing.
 *
 * supabase-js is loaded on demand, so WebSocket mode's first load does not
 * pay for it.
 */
import type {
  ConsumerMode,
  HistoryFetcher,
  MonitoringEvent,
} from "../../../shared/realtime-consumer/subscribe.ts";
import type { LinkState } from "../core/connection.ts";
import { CATEGORY_LIST, type DashboardEvent } from "../core/events.ts";
import type { HistoryReader, LiveSource, RealtimeDelivery, SourceSink } from "./types.ts";

export interface RealtimeSourceOptions {
  apiUrl: string;
  anonKey: string;
  token: () => string;
  history: HistoryReader;
  delivery: RealtimeDelivery;
  /** Start from events received after this time (ISO), e.g. the last one seen before a mode switch. */
  receivedSince?: string;
  /** Broadcast on private channels (the flags' `broadcast_private`; default true). */
  privateChannels?: boolean;
  sink: SourceSink;
}

/** Realtime's reconnect schedule (supabase-js's default steps), observed so the indicator can count down. */
const RECONNECT_STEPS_MS = [1_000, 2_000, 5_000, 10_000];

/** The consumer helper's mode for the chosen delivery: "auto" listens both ways. */
export function consumerMode(delivery: RealtimeDelivery): ConsumerMode {
  return delivery === "auto" ? "both" : delivery;
}

/** Starts subscribing; resolves once supabase-js is loaded (the subscriptions connect on their own). */
export async function startRealtimeSource(options: RealtimeSourceOptions): Promise<LiveSource> {
  const { sink } = options;
  const [{ createClient }, { subscribeMonitoringEvents }] = await Promise.all([
    import("@supabase/supabase-js"),
    import("../../../shared/realtime-consumer/subscribe.ts"),
  ]);
  let nextAttemptAt: number | undefined;
  let tries = 0;
  let closed = false;
  const token = options.token();
  const client = createClient(options.apiUrl, options.anonKey, {
    accessToken: () => Promise.resolve(token),
    realtime: {
      reconnectAfterMs: (n: number) => {
        tries = n;
        const delay = RECONNECT_STEPS_MS[n - 1] ?? 10_000;
        nextAttemptAt = Date.now() + delay;
        return delay;
      },
    },
  });

  // The token must be on the socket before the first join: with only the
  // accessToken callback, supabase-js resolves it asynchronously and the
  // channels would join (and stay) as the anon key.
  await client.realtime.setAuth(token);

  const mode = consumerMode(options.delivery);
  let current: { status: string; error?: string } = { status: "connecting" };

  function report(): void {
    if (closed) return;
    const { status, error } = current;
    let link: LinkState;
    if (error && /unauthori[sz]ed|permission/i.test(error)) {
      // Retrying will not help until the credential or the anon_read_enabled setting changes.
      link = {
        path: "realtime",
        status: "offline",
        detail: `not authorised to receive: sign in, or turn anon_read_enabled on (${error})`,
      };
    } else if (status === "reconnecting") {
      link = {
        path: "realtime",
        status: "reconnecting",
        attempt: Math.max(0, tries - 1),
        nextAttemptAt: nextAttemptAt && nextAttemptAt > Date.now() ? nextAttemptAt : undefined,
        detail: error,
      };
    } else if (status === "connecting") {
      link = { path: "realtime", status: "connecting" };
    } else if (status === "backfilling") {
      link = { path: "realtime", status: "catching_up" };
    } else if (status === "live") {
      tries = 0;
      link = {
        path: "realtime",
        status: "connected",
        server: mode === "both" ? "postgres changes + broadcast" : mode.replace("_", " "),
      };
    } else {
      link = { path: "realtime", status: "offline", detail: error ?? "closed" };
    }
    sink.link(link);
  }

  // Ids the last history page returned: what the helper delivers from them is a backfill.
  const fromHistory = new Set<string>();
  const history: HistoryFetcher = async (query) => {
    const page = await options.history({ ...query, categories: query.categories });
    fromHistory.clear();
    for (const e of page.events) fromHistory.add(e.id);
    return page as { events: MonitoringEvent[]; next: typeof page.next };
  };
  const subscription = subscribeMonitoringEvents({
    client,
    mode,
    categories: [...CATEGORY_LIST],
    history,
    privateChannels: options.privateChannels ?? true,
    receivedSince: options.receivedSince,
    onEvents: (events) => {
      const live: DashboardEvent[] = [];
      const backfill: DashboardEvent[] = [];
      for (const e of events) {
        if (!fromHistory.has(e.id)) live.push(e);
        // History holds every event; the Realtime path owes only those routed to it.
        else if (e.routes.includes("realtime")) backfill.push(e);
      }
      if (live.length) sink.events(live, "realtime", "live");
      if (backfill.length) sink.events(backfill, "realtime", "backfill");
    },
    onState: (state) => {
      current = { status: state.status, error: state.error };
      report();
    },
  });
  report();

  return {
    path: "realtime",
    catchUp() {
      void subscription.catchUp();
    },
    close() {
      closed = true;
      void subscription.close();
      void client.removeAllChannels().then(() => client.realtime.disconnect());
    },
  };
}
