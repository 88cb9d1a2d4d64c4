/**
 * What a data source gives the dashboard: events (each tagged with the path
 * that carried it and whether it came live or from a history backfill), its
 * connection state, and notices worth showing an operator (a gap recovered
 * from history, a refused subscription).
 */
import type { LinkState } from "../core/connection.ts";
import type { DashboardEvent, Delivery, Path } from "../core/events.ts";

export type SourceMode = "websocket" | "realtime" | "dual";
export const SOURCE_MODES: readonly SourceMode[] = ["websocket", "realtime", "dual"];

/** How the Realtime source subscribes: per category as the flags say, or one mode for all. */
export type RealtimeDelivery = "auto" | "postgres_changes" | "broadcast";

export interface SourceSink {
  events(events: DashboardEvent[], path: Path, delivery: Delivery): void;
  link(state: LinkState): void;
  notice(path: Path, message: string, tone: "info" | "warn" | "bad"): void;
}

export interface LiveSource {
  readonly path: Path;
  /** Reads what may have been missed (after the page was hidden or offline), where the path needs it. */
  catchUp?(): void;
  close(): void;
}

/** Reads history pages (ascending, by `after` cursor), as the `events` function serves them. */
export type HistoryReader = (query: {
  receivedSince?: string;
  after?: number;
  categories?: string[];
  limit: number;
}) => Promise<{ events: DashboardEvent[]; next: { after: number } | { before: number } | null }>;
