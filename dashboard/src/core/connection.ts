/**
 * Connection state of each data source, as the indicator shows it. Pure:
 * sources report a `LinkState`; `describeLink` turns it into words and a
 * tone at a given time (the reconnect countdown is computed, not stored).
 */
import type { Path } from "./events.ts";

export type LinkStatus = "connecting" | "catching_up" | "connected" | "reconnecting" | "offline";

export interface LinkState {
  path: Path;
  status: LinkStatus;
  /** Reconnect attempts since the last successful connection. */
  attempt?: number;
  /** When the next attempt starts (ms since epoch), while reconnecting. */
  nextAttemptAt?: number;
  /** Why: the last close or error, as the source reported it. */
  detail?: string;
  /** Who serves the connection (the ws-fanout instance), when known. */
  server?: string;
}

export type Tone = "ok" | "info" | "warn" | "bad";

export interface LinkView {
  label: string;
  tone: Tone;
  /** One line with the specifics (instance, countdown, last error). */
  detail: string;
}

const PATH_NAMES: Record<Path, string> = { websocket: "WebSocket", realtime: "Realtime" };

/** The indicator's words for `state` at `now` (ms). `online` is the browser's network state. */
export function describeLink(state: LinkState, now: number, online = true): LinkView {
  const name = PATH_NAMES[state.path];
  if (!online) {
    return {
      label: "Offline",
      tone: "bad",
      detail: `${name}: the browser is offline; it reconnects when the network returns`,
    };
  }
  switch (state.status) {
    case "connected":
      return {
        label: "Connected",
        tone: "ok",
        detail: state.server ? `${name} via ${state.server}` : `${name} live`,
      };
    case "connecting":
      return {
        label: "Connecting",
        tone: "info",
        detail: state.attempt ? `${name}: attempt ${state.attempt + 1}` : `${name}: connecting…`,
      };
    case "catching_up":
      return {
        label: "Catching up",
        tone: "info",
        detail: `${name}: reading missed events from history`,
      };
    case "reconnecting": {
      const waitS = state.nextAttemptAt === undefined
        ? undefined
        : Math.max(0, Math.ceil((state.nextAttemptAt - now) / 1000));
      const when = waitS === undefined ? "soon" : waitS === 0 ? "now" : `in ${waitS} s`;
      const why = state.detail ? ` (${state.detail})` : "";
      return {
        label: "Reconnecting",
        tone: "warn",
        detail: `${name}: retrying ${when}, attempt ${(state.attempt ?? 0) + 1}${why}`,
      };
    }
    case "offline":
      return { label: "Offline", tone: "bad", detail: `${name}: ${state.detail ?? "closed"}` };
  }
}

const RANK: Record<LinkStatus, number> = {
  connected: 0,
  catching_up: 1,
  connecting: 2,
  reconnecting: 3,
  offline: 4,
};

/** The worst of several links (dual mode shows one summary and each link). */
export function worstLink(states: readonly LinkState[]): LinkState | undefined {
  let worst: LinkState | undefined;
  for (const s of states) if (!worst || RANK[s.status] > RANK[worst.status]) worst = s;
  return worst;
}
