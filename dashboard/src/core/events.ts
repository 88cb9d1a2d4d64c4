/**
 * The one event shape the dashboard works with, whichever path carried it,
 * and the pure tail filter. Events from ws-fanout carry the wire fields only;
 * events from Realtime and the history API also carry `seq`, the checksum,
 * the routes and `received_at`.
 */
import type { Category, WireEvent } from "../../../shared/events/schema.ts";

export type { Category };

/** The five categories, in display order (a copy: importing the shared zod schema would bundle zod). */
export const CATEGORY_LIST: readonly Category[] = [
  "critical",
  "performance",
  "user_activity",
  "system",
  "debug",
];

/** A delivery path the dashboard can watch. */
export type Path = "websocket" | "realtime";
export const PATHS: readonly Path[] = ["websocket", "realtime"];

/** How a path delivered an event: live, or recovered from the history API to close a gap. */
export type Delivery = "live" | "backfill";

export interface DashboardEvent extends WireEvent {
  seq?: number;
  checksum?: string;
  checksum_alg?: string;
  routes?: string[];
  received_at?: string;
}

/** One event in the tail: the event, and when and how each path delivered it. */
export interface TailRow {
  /** Arrival order at this dashboard (strictly increasing). */
  order: number;
  event: DashboardEvent;
  /** First arrival on each path (ms since epoch), live or backfilled. */
  seenAt: Partial<Record<Path, number>>;
  /** Paths that delivered it only through a history backfill. */
  backfilledOn: Path[];
  /** Loaded from history when the page opened (before any live path). */
  fromHistory: boolean;
  /** Lowercased text for search, built on first use. */
  haystack?: string;
}

export interface TailFilter {
  /** Shown categories; empty = all. */
  categories: ReadonlySet<Category>;
  /** Case-insensitive substring of `source`; empty = any. */
  source: string;
  /** Case-insensitive substring of `event_type`; empty = any. */
  eventType: string;
  /** Case-insensitive substring of anything in the event (id, names, payload). */
  text: string;
}

export const EMPTY_FILTER: TailFilter = {
  categories: new Set(),
  source: "",
  eventType: "",
  text: "",
};

/** True when the filter lets every row through. */
export function isEmptyFilter(f: TailFilter): boolean {
  return f.categories.size === 0 && !f.source && !f.eventType && !f.text;
}

function haystackOf(row: TailRow): string {
  if (row.haystack === undefined) {
    const e = row.event;
    row.haystack = `${e.id} ${e.source} ${e.event_type} ${e.category} ${e.sequence_id} ${
      JSON.stringify(e.data)
    }`
      .toLowerCase();
  }
  return row.haystack;
}

/** Whether `row` passes `f`. Pure apart from caching the row's search text. */
export function matchesFilter(row: TailRow, f: TailFilter): boolean {
  const e = row.event;
  if (f.categories.size > 0 && !f.categories.has(e.category)) return false;
  if (f.source && !e.source.toLowerCase().includes(f.source.toLowerCase())) return false;
  if (f.eventType && !e.event_type.toLowerCase().includes(f.eventType.toLowerCase())) return false;
  if (f.text && !haystackOf(row).includes(f.text.toLowerCase())) return false;
  return true;
}

/**
 * Merges a second copy of an event into the first: fields only one path
 * carries (seq, checksum, routes, received_at) are taken from whichever has
 * them. The wire fields are the same on both paths by construction.
 */
export function mergeEvent(into: DashboardEvent, from: DashboardEvent): void {
  into.seq ??= from.seq;
  into.checksum ??= from.checksum;
  into.checksum_alg ??= from.checksum_alg;
  into.routes ??= from.routes;
  into.received_at ??= from.received_at;
}
