/**
 * The ws-fanout client library (DESIGN §2.8, §3): one logical stream over
 * however many WebSocket connections it takes. Runtime-neutral: it uses the
 * WHATWG WebSocket global (browsers, Deno), or a constructor the caller
 * injects (Node 20 has no global WebSocket: pass `ws`'s).
 *
 * - Connects with the caller's filters; after ANY close it reconnects with
 *   `since=<last cursor>`, so the server replays what was missed.
 * - Reconnects at once after a planned close (1012 rotation, 1001 server
 *   going away) of a connection that had opened; otherwise waits per
 *   backoff.ts (full jitter, 1 s → 30 s).
 * - Heartbeat watchdog: when nothing (not even a ping) arrives for two
 *   heartbeat intervals, the connection is presumed dead and replaced.
 * - Delivers each event to the caller exactly once across reconnects: a
 *   delivery whose cursor is not above the last one delivered is dropped.
 * - When the server says the cursor is unusable (`cursor_expired`, older than
 *   retention; `cursor_ahead`), it reports the gap through `onError` and
 *   joins the live stream: the caller backfills from monitoring_events.
 *
 * @example
 * ```ts
 * import WS from "ws"; // Node only; browsers use the global
 * const client = connectFanout({
 *   url: `${apiUrl}/functions/v1/ws-fanout`,
 *   token: anonKey,
 *   categories: ["critical"],
 *   WebSocket: WS,
 *   onEvents: (events, cursor) => render(events),
 *   onState: (s) => showStatus(s),
 * });
 * // later
 * client.close();
 * ```
 */
import type { Category, WireEvent } from "../events/schema.ts";
import { CLOSE_CODES, type ErrorMessage, type ServerMessage } from "../fanout/protocol.ts";
import { reconnectBackoff, type ReconnectBackoffOptions } from "./backoff.ts";

// Handlers typed bivariantly so that both the DOM's WebSocket and `ws` fit.
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

/** The part of a WebSocket the client uses (WHATWG shape). */
export interface WebSocketLike {
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

export type ClientState =
  | { status: "connecting"; attempt: number }
  | { status: "open"; instance: string; cursor: number }
  | {
    status: "reconnecting";
    attempt: number;
    /** When the next attempt starts (ms since epoch), for a countdown. */
    nextAttemptAt: number;
    lastClose: { code: number; reason: string };
  }
  | { status: "closed" };

export interface FanoutClientOptions {
  /** The function's URL, http(s) or ws(s): `${apiUrl}/functions/v1/ws-fanout`. */
  url: string;
  /** anon/authenticated JWT or service-role key; a function is asked again on every connect. */
  token: string | (() => string | Promise<string>);
  /** Resume after this cursor (default: join live). */
  since?: number | null;
  categories?: Category[];
  sources?: string[];
  /** Each delivery once, in order: the events and the cursor of the last one. */
  onEvents: (events: WireEvent[], cursor: number) => void;
  onState?: (state: ClientState) => void;
  /** Server error messages (before its close), including cursor gaps. */
  onError?: (error: ErrorMessage) => void;
  /** WebSocket constructor (default: the global). */
  WebSocket?: WebSocketConstructorLike;
  backoff?: ReconnectBackoffOptions;
  /** Heartbeat interval assumed until the server's hello says otherwise (default 30 s). */
  heartbeatMs?: number;
}

export interface FanoutClient {
  readonly state: ClientState;
  /** The last cursor delivered (or the live start): what a reconnect resumes from. */
  readonly cursor: number | null;
  /** Closes for good; no reconnect, no further callbacks. */
  close(): void;
}

/**
 * Whether a delivery with `cursor` is new given the last delivered cursor:
 * strictly greater, or anything when nothing was delivered yet.
 */
export function isNewDelivery(last: number | null, cursor: number): boolean {
  return last === null || cursor > last;
}

/** The connect URL for the current cursor and filters. */
export function streamUrl(
  base: string,
  token: string,
  since: number | null,
  categories?: readonly string[],
  sources?: readonly string[],
): string {
  const url = new URL(base.replace(/^http/, "ws"));
  url.searchParams.set("token", token);
  if (since !== null) url.searchParams.set("since", String(since));
  if (categories?.length) url.searchParams.set("categories", categories.join(","));
  if (sources?.length) url.searchParams.set("sources", sources.join(","));
  return url.toString();
}

/** Opens the stream; it keeps itself connected until `close()`. */
export function connectFanout(options: FanoutClientOptions): FanoutClient {
  const FoundCtor = options.WebSocket ??
    (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
  if (!FoundCtor) throw new TypeError("No WebSocket constructor: pass options.WebSocket");
  const Ctor: WebSocketConstructorLike = FoundCtor;
  let cursor: number | null = options.since ?? null;
  let state: ClientState = { status: "connecting", attempt: 0 };
  let socket: WebSocketLike | null = null;
  let closed = false;
  let opened = false;
  let attempt = 0;
  let backoff = reconnectBackoff(options.backoff);
  let heartbeatMs = options.heartbeatMs ?? 30_000;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const setState = (next: ClientState) => {
    state = next;
    options.onState?.(next);
  };

  function armWatchdog(): void {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      const dead = socket;
      if (!dead) return;
      abandon(dead);
      reconnect(4000, `no message for ${2 * heartbeatMs} ms (heartbeat missed)`);
    }, 2 * heartbeatMs);
  }

  /** Detaches from a socket and closes it without waiting for its close handshake. */
  function abandon(ws: WebSocketLike): void {
    ws.onopen = ws.onmessage = ws.onclose = null;
    // Still listening for errors: closing a socket that is not open yet makes
    // Node's `ws` emit "closed before the connection was established", which
    // without a listener would be an uncaught exception.
    ws.onerror = () => {};
    try {
      ws.close(1000, "client reconnecting");
    } catch {
      // Already closed.
    }
    if (socket === ws) socket = null;
  }

  function deliver(events: WireEvent[], at: number): void {
    if (!isNewDelivery(cursor, at)) return;
    cursor = at;
    options.onEvents(events, at);
  }

  function onMessage(raw: unknown): void {
    armWatchdog();
    if (typeof raw !== "string") return;
    let message: ServerMessage;
    try {
      message = JSON.parse(raw) as ServerMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case "hello":
        opened = true;
        attempt = 0;
        backoff = reconnectBackoff(options.backoff);
        heartbeatMs = message.heartbeat_ms;
        armWatchdog();
        if (cursor === null) cursor = message.cursor;
        setState({ status: "open", instance: message.instance, cursor: cursor });
        break;
      case "event":
        deliver([message.event], message.cursor);
        break;
      case "batch":
        deliver(message.events, message.cursor);
        break;
      case "error":
        if (message.code === "cursor_expired" || message.code === "cursor_ahead") cursor = null;
        options.onError?.(message);
        break;
    }
  }

  function reconnect(code: number, reason: string): void {
    clearTimeout(watchdog);
    if (closed) return;
    const planned = opened &&
      (code === CLOSE_CODES.SERVICE_RESTART || code === CLOSE_CODES.GOING_AWAY);
    const cursorReset = code === CLOSE_CODES.CURSOR_EXPIRED || code === CLOSE_CODES.CURSOR_AHEAD;
    let delay = 0;
    if (!planned && !cursorReset) {
      delay = backoff.duration;
      backoff = backoff.next(undefined);
    }
    attempt++;
    opened = false;
    setState({
      status: "reconnecting",
      attempt,
      nextAttemptAt: Date.now() + delay,
      lastClose: { code, reason },
    });
    retry = setTimeout(() => void open(), delay);
  }

  async function open(): Promise<void> {
    if (closed) return;
    setState({ status: "connecting", attempt });
    let token: string;
    try {
      token = typeof options.token === "function" ? await options.token() : options.token;
    } catch (error) {
      return reconnect(4001, `token unavailable: ${(error as Error).message}`);
    }
    if (closed) return;
    let ws: WebSocketLike;
    try {
      ws = new Ctor(streamUrl(options.url, token, cursor, options.categories, options.sources));
    } catch (error) {
      return reconnect(4002, `cannot connect: ${(error as Error).message}`);
    }
    socket = ws;
    armWatchdog();
    ws.onmessage = (event) => {
      if (socket === ws) onMessage(event.data);
    };
    ws.onerror = () => {
      // A close event always follows; the reconnect happens there.
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      reconnect(event.code, event.reason);
    };
  }

  void open();

  return {
    get state() {
      return state;
    },
    get cursor() {
      return cursor;
    },
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(watchdog);
      clearTimeout(retry);
      if (socket) abandon(socket);
      setState({ status: "closed" });
    },
  };
}
