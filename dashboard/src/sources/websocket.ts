/**
 * WebSocket mode: the legacy path, through the ws-fanout client library
 * (shared/fanout-client). The library resumes from its cursor after every
 * close, so ws-fanout replays what the dashboard missed; when the server says
 * the cursor is no longer usable (older than the ledger's retention, or ahead
 * of it after a reset) the library joins the live stream and this source
 * closes the hole from the history API, keeping only events routed to the
 * WebSocket path.
 */
import {
  type ClientState,
  connectFanout,
  type WebSocketConstructorLike,
} from "../../../shared/fanout-client/client.ts";
import type { WireEvent } from "../../../shared/events/schema.ts";
import type { LinkState } from "../core/connection.ts";
import type { DashboardEvent } from "../core/events.ts";
import type { HistoryReader, LiveSource, SourceSink } from "./types.ts";

export interface WebSocketSourceOptions {
  apiUrl: string;
  /** Asked again on every (re)connect, so a sign-in takes effect at the next connection. */
  token: () => string;
  /** Null when the viewer cannot read history. */
  history: HistoryReader | null;
  sink: SourceSink;
  /** How far before the last live event a gap backfill starts (default 10 s). */
  overlapMs?: number;
  /** WebSocket constructor (default: the browser's). */
  WebSocket?: WebSocketConstructorLike;
}

/** Close codes a browser reports without a reason, in words. */
function closeWords(code: number, reason: string): string {
  if (reason) return `${reason} (${code})`;
  if (code === 1006) return "connection refused or lost";
  if (code === 1012) return "server restarting";
  return `closed with ${code}`;
}

/** The indicator's view of the fanout client's state. */
export function linkFromClient(state: ClientState): LinkState {
  switch (state.status) {
    case "connecting":
      return { path: "websocket", status: "connecting", attempt: state.attempt };
    case "open":
      return { path: "websocket", status: "connected", server: state.instance };
    case "reconnecting":
      return {
        path: "websocket",
        status: "reconnecting",
        attempt: state.attempt - 1,
        nextAttemptAt: state.nextAttemptAt,
        detail: closeWords(state.lastClose.code, state.lastClose.reason),
      };
    case "closed":
      return { path: "websocket", status: "offline", detail: "closed" };
  }
}

/** Starts streaming; `close()` stops it for good. */
export function startWebSocketSource(options: WebSocketSourceOptions): LiveSource {
  const { sink } = options;
  const overlapMs = options.overlapMs ?? 10_000;
  let lastLiveAt = Date.now();
  let closed = false;

  async function backfillGap(fromMs: number): Promise<void> {
    if (!options.history) {
      sink.notice(
        "websocket",
        "Events were missed and cannot be recovered without read access to history: sign in.",
        "warn",
      );
      return;
    }
    sink.link({ path: "websocket", status: "catching_up" });
    const receivedSince = new Date(fromMs - overlapMs).toISOString();
    let recovered = 0;
    try {
      let after: number | undefined;
      for (let page = 0; page < 50 && !closed; page++) {
        const res = await options.history({ receivedSince, after, limit: 1000 });
        const mine = res.events.filter((e) => e.routes?.includes("websocket"));
        recovered += mine.length;
        if (mine.length) sink.events(mine, "websocket", "backfill");
        if (!res.next || !("after" in res.next)) break;
        after = res.next.after;
      }
      sink.notice("websocket", `Recovered ${recovered} event(s) from history after a gap.`, "info");
    } catch (error) {
      sink.notice("websocket", `Backfill failed: ${(error as Error).message}`, "bad");
    }
    if (!closed && client.state.status === "open") sink.link(linkFromClient(client.state));
  }

  const client = connectFanout({
    url: `${options.apiUrl.replace(/\/$/, "")}/functions/v1/ws-fanout`,
    token: () => options.token(),
    WebSocket: options.WebSocket,
    onEvents: (events: WireEvent[]) => {
      lastLiveAt = Date.now();
      sink.events(events as DashboardEvent[], "websocket", "live");
    },
    onState: (state) => {
      if (!closed || state.status === "closed") sink.link(linkFromClient(state));
    },
    onError: (error) => {
      if (error.code === "cursor_expired" || error.code === "cursor_ahead") {
        sink.notice("websocket", `ws-fanout: ${error.message}`, "warn");
        void backfillGap(lastLiveAt);
      } else {
        sink.notice("websocket", `ws-fanout: ${error.message}`, "warn");
      }
    },
  });

  return {
    path: "websocket",
    close() {
      closed = true;
      client.close();
    },
  };
}
