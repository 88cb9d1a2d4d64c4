/**
 * The ws-fanout wire protocol (DESIGN §3), shared by the server
 * (shared/fanout) and the client library (shared/fanout-client). Types and
 * constants only, no dependencies: safe to import in the browser.
 *
 * Connect: `GET /functions/v1/ws-fanout?token=…[&since=<cursor>][&categories=a,b][&sources=x,y]`
 * (WebSocket upgrade). `token` is an anon/authenticated JWT or the
 * service-role key; a bad token is refused with 401 and bad parameters with
 * 400, both before the upgrade.
 *
 * Server → client, one JSON object per text frame:
 * - `hello` first, once: the instance serving the connection, the cursor the
 *   stream starts after, and the timings the client should expect;
 * - `event` / `batch`: deliveries, each carrying the cursor of its (last)
 *   event; cursors grow strictly along a connection;
 * - `ping` every `heartbeat_ms`;
 * - `error` right before the server closes for a reason the client must know.
 * The client sends nothing; anything it sends is ignored.
 */
import type { Category, WireEvent } from "../events/schema.ts";

/** First message on every connection. */
export interface HelloMessage {
  type: "hello";
  /** The ws-fanout instance serving this connection (CUTOVER_FUNCTION_INSTANCE). */
  instance: string;
  /** The stream starts right after this cursor: `since` when given, else the live head. */
  cursor: number;
  heartbeat_ms: number;
  /** The server closes with 1012 this long after the connection opened. */
  max_connection_ms: number;
}

export interface EventMessage {
  type: "event";
  cursor: number;
  event: WireEvent;
}

export interface BatchMessage {
  type: "batch";
  /** Cursor of the last event in `events`. */
  cursor: number;
  events: WireEvent[];
}

export interface PingMessage {
  type: "ping";
}

export type ErrorCode =
  | "cursor_expired"
  | "cursor_ahead"
  | "slow_consumer"
  | "internal_error";

export interface ErrorMessage {
  type: "error";
  code: ErrorCode;
  message: string;
  /** For cursor errors: the oldest cursor a client may resume from. */
  oldest_cursor?: number;
  /** For cursor errors: the newest cursor in the ledger. */
  latest_cursor?: number;
}

export type ServerMessage = HelloMessage | EventMessage | BatchMessage | PingMessage | ErrorMessage;

/** Close codes the server uses, and what a client should do about each. */
export const CLOSE_CODES = {
  /** Normal close by the client. */
  NORMAL: 1000,
  /** The server went away (its runtime shut down): resume at once. */
  GOING_AWAY: 1001,
  /** Rotation before the platform's wall-clock limit, or instance shutdown: resume at once. */
  SERVICE_RESTART: 1012,
  /** Slow consumer: the send queue overflowed. Resume (with backoff). */
  POLICY_VIOLATION: 1008,
  /** The server failed (database unreachable while replaying): resume with backoff. */
  INTERNAL_ERROR: 1011,
  /** `since` is older than the ledger's retention: events were lost to this client; join live. */
  CURSOR_EXPIRED: 4410,
  /** `since` is newer than anything delivered (e.g. the database was reset): join live. */
  CURSOR_AHEAD: 4409,
} as const;

/** Filters a client asked for; null = everything. */
export interface StreamFilter {
  categories: ReadonlySet<Category> | null;
  sources: ReadonlySet<string> | null;
}

/** True when an event of `source`/`category` passes `filter`. */
export function matchesFilter(filter: StreamFilter, source: string, category: Category): boolean {
  return (filter.categories === null || filter.categories.has(category)) &&
    (filter.sources === null || filter.sources.has(source));
}
