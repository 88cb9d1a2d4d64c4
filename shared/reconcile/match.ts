/**
 * Matching the Realtime path's copy of each event (its row in
 * public.monitoring_events) with the WebSocket path's (its row in the
 * delivery ledger), and judging each match. Pure: fed rows and a clock,
 * returns one judged unit per row or pair of rows.
 *
 * Pairing (seed 000 `primary_key: sequence_id + event_type + timestamp_window(±5s)`):
 * rows are grouped by (source, sequence_id, event_type); within a group an
 * event row and a ledger row pair when their timestamps are within the
 * window — first rows with the same event id and time (ws-fanout's copy of
 * that very row), then the closest remaining timestamps (ties broken by
 * `seq`, then `cursor`). Every input row ends in exactly one unit: a pair, a
 * lone event row or a lone ledger row. Within a group, a unit whose time is
 * within the window of an earlier unit (event units by `seq` first, then
 * lone ledger rows by `cursor`) is a `duplicate`: the earlier one stands for
 * the key. So is a later event (by `seq`) that reuses an earlier event's id
 * with another time or key (ingest's idempotency is by id and time).
 *
 * Judging (seed 000 `out_of_order_handling`), with B the buffer window and M
 * the max delay:
 *
 * | unit                                  | outcome                                              |
 * |---------------------------------------|------------------------------------------------------|
 * | event not routed to both paths        | `single_route` (not compared)                        |
 * | event received less than B ago        | `pending` (not judged yet)                           |
 * | duplicate of an earlier unit          | `duplicate`                                          |
 * | pair, copies differ by the criterion  | `checksum_mismatch` (whatever the delay)             |
 * | pair, delay ≤ B                       | `matched`                                            |
 * | pair, B < delay ≤ M                   | `late`                                               |
 * | pair, delay > M                       | `missing_on_websocket` / `_realtime` (the later side) |
 * | lone event, less than M since start   | `pending` (the ledger row may still come)            |
 * | lone event, M or more                 | `missing_on_websocket`                               |
 * | lone ledger row, delivered < M ago    | `pending`                                            |
 * | lone ledger row, M or more            | `missing_on_realtime`                                |
 *
 * The delay is |ledger.deliveredAt − start|, where start is the event's
 * receipt — or, for an event reconcile re-relayed, the re-relay: a repair
 * restarts the WebSocket path's clock, so a repaired event that then arrives
 * promptly is `matched`.
 */
import type { MatchCriterion } from "../config/settings.ts";
import type { Adapter, Category, ChecksumAlg } from "../events/schema.ts";
import { compareCopies } from "./compare.ts";

/** An event row (the Realtime path's copy). Times are epoch milliseconds. */
export interface EventRow {
  seq: number;
  id: string;
  source: string;
  sequence_id: number;
  event_type: string;
  category: Category;
  /** The event's `timestamp`. */
  time: number;
  receivedAt: number;
  checksum: string;
  checksumAlg: ChecksumAlg;
  routes: readonly Adapter[];
  /** `data`; needed only for `semantic` categories. */
  data?: unknown;
  /** When reconcile re-relayed this event to the WebSocket path. */
  repairedAt?: number | null;
}

/** A delivery-ledger row (the WebSocket path's copy). Times are epoch milliseconds. */
export interface LedgerRow {
  cursor: number;
  eventId: string;
  source: string;
  sequence_id: number;
  event_type: string;
  category: Category;
  /** The event's time as sent (`event_time`). */
  time: number;
  deliveredAt: number;
  checksum: string;
  checksumAlg: ChecksumAlg;
  /** `payload.data`; needed only for `semantic` categories. */
  data?: unknown;
}

export type Outcome =
  | "matched"
  | "late"
  | "checksum_mismatch"
  | "missing_on_websocket"
  | "missing_on_realtime"
  | "duplicate"
  | "pending"
  | "single_route";

/** Outcomes that are a verdict (count in `judged`); the others wait or are out of scope. */
export const JUDGED_OUTCOMES = [
  "matched",
  "late",
  "checksum_mismatch",
  "missing_on_websocket",
  "missing_on_realtime",
  "duplicate",
] as const satisfies readonly Outcome[];

/** A unit before judging: a pair, a lone event or a lone ledger row. */
export interface Unit {
  event?: EventRow;
  ledger?: LedgerRow;
  /** The earlier unit of the same key this one duplicates. */
  duplicateOf?: Unit;
}

export interface JudgedUnit extends Unit {
  outcome: Outcome;
  category: Category;
  /** Why, for findings and logs (delays in ms, checksums, the differing path…). */
  details: Record<string, unknown>;
}

export interface MatchOptions {
  nowMs: number;
  bufferMs: number;
  maxDelayMs: number;
  windowMs: number;
  tolerance: number;
  criteria: Record<Category, MatchCriterion>;
}

const keyOf = (r: { source: string; sequence_id: number; event_type: string }) =>
  JSON.stringify([r.source, r.sequence_id, r.event_type]);

/** True when the event was routed to both delivery paths. */
export function isDualRouted(event: Pick<EventRow, "routes">): boolean {
  return event.routes.includes("websocket") && event.routes.includes("realtime");
}

/**
 * Groups and pairs rows into units (see the module comment). The result does
 * not depend on the order of the inputs; a row given twice (same `seq` or
 * `cursor`) counts once. Units come out in a canonical order.
 */
export function pairRows(
  events: readonly EventRow[],
  ledger: readonly LedgerRow[],
  windowMs: number,
): Unit[] {
  const groups = new Map<
    string,
    { events: Map<number, EventRow>; ledger: Map<number, LedgerRow> }
  >();
  const group = (key: string) => {
    let g = groups.get(key);
    if (!g) groups.set(key, g = { events: new Map(), ledger: new Map() });
    return g;
  };
  for (const e of events) group(keyOf(e)).events.set(e.seq, e);
  for (const l of ledger) group(keyOf(l)).ledger.set(l.cursor, l);

  const units: Unit[] = [];
  for (const key of [...groups.keys()].sort()) {
    const g = groups.get(key)!;
    const evs = [...g.events.values()].sort((a, b) => a.seq - b.seq);
    const lgs = [...g.ledger.values()].sort((a, b) => a.cursor - b.cursor);
    const partner = new Map<EventRow, LedgerRow>();
    const taken = new Set<LedgerRow>();

    // ws-fanout's copy of this very row.
    for (const e of evs) {
      const l = lgs.find((l) => !taken.has(l) && l.eventId === e.id && l.time === e.time);
      if (l) {
        partner.set(e, l);
        taken.add(l);
      }
    }
    // Then the closest timestamps within the window.
    const candidates: [number, EventRow, LedgerRow][] = [];
    for (const e of evs) {
      if (partner.has(e)) continue;
      for (const l of lgs) {
        if (taken.has(l)) continue;
        const delta = Math.abs(e.time - l.time);
        if (delta <= windowMs) candidates.push([delta, e, l]);
      }
    }
    candidates.sort((a, b) => a[0] - b[0] || a[1].seq - b[1].seq || a[2].cursor - b[2].cursor);
    for (const [, e, l] of candidates) {
      if (partner.has(e) || taken.has(l)) continue;
      partner.set(e, l);
      taken.add(l);
    }

    const ordered: Unit[] = [
      ...evs.map((e) => (partner.has(e) ? { event: e, ledger: partner.get(e)! } : { event: e })),
      ...lgs.filter((l) => !taken.has(l)).map((l) => ({ ledger: l })),
    ];
    for (let i = 0; i < ordered.length; i++) {
      const u = ordered[i]!;
      const t = unitTime(u);
      const earlier = ordered.slice(0, i).find((p) => Math.abs(unitTime(p) - t) <= windowMs);
      if (earlier) u.duplicateOf = earlier;
      units.push(u);
    }
  }
  // An id reused for another event (a different time or key) is a producer
  // bug: the later stored row (by seq) is the duplicate.
  const firstWithId = new Map<string, Unit>();
  for (const u of [...units].filter((u) => u.event).sort((a, b) => a.event!.seq - b.event!.seq)) {
    const first = firstWithId.get(u.event!.id);
    if (!first) firstWithId.set(u.event!.id, u);
    else u.duplicateOf ??= first;
  }
  return units;
}

/** The event time a unit stands for. */
export function unitTime(unit: Unit): number {
  return unit.event ? unit.event.time : unit.ledger!.time;
}

/** The category a unit is counted under: the stored event's, else the ledger row's. */
export function unitCategory(unit: Unit): Category {
  return unit.event ? unit.event.category : unit.ledger!.category;
}

/** Judges one unit (see the table in the module comment). Pure. */
export function judgeUnit(unit: Unit, options: MatchOptions): JudgedUnit {
  const { event, ledger } = unit;
  const category = unitCategory(unit);
  const judged = (outcome: Outcome, details: Record<string, unknown> = {}): JudgedUnit => ({
    ...unit,
    outcome,
    category,
    details,
  });

  if (event && !isDualRouted(event)) return judged("single_route");
  if (event && options.nowMs - event.receivedAt < options.bufferMs) return judged("pending");
  if (unit.duplicateOf) {
    const of = unit.duplicateOf;
    return judged("duplicate", {
      side: event && ledger ? "both" : event ? "realtime" : "websocket",
      ...(event && of.event && of.event.id === event.id ? { reason: "id reused" } : {}),
      of_event_id: of.event?.id ?? of.ledger!.eventId,
      ...(of.event ? { of_seq: of.event.seq } : {}),
      ...(of.ledger ? { of_cursor: of.ledger.cursor } : {}),
      time_apart_ms: Math.abs(unitTime(unit) - unitTime(of)),
    });
  }

  const start = event ? Math.max(event.receivedAt, event.repairedAt ?? -Infinity) : 0;
  if (event && ledger) {
    const criterion = options.criteria[category];
    const delay = ledger.deliveredAt - start;
    const comparison = compareCopies(event, ledger, criterion, options.tolerance);
    if (!comparison.equal) {
      return judged("checksum_mismatch", {
        criterion,
        reason: comparison.reason,
        ...(comparison.path ? { path: comparison.path } : {}),
        event_checksum: event.checksum,
        ledger_checksum: ledger.checksum,
        checksum_alg: event.checksumAlg,
        ledger_cursor: ledger.cursor,
        delay_ms: delay,
      });
    }
    const abs = Math.abs(delay);
    if (abs <= options.bufferMs) return judged("matched");
    const side = delay > 0 ? "websocket" : "realtime";
    if (abs <= options.maxDelayMs) {
      return judged("late", { late_side: side, delay_ms: abs, ledger_cursor: ledger.cursor });
    }
    return judged(delay > 0 ? "missing_on_websocket" : "missing_on_realtime", {
      arrived_after_ms: abs,
      ledger_cursor: ledger.cursor,
      max_delay_ms: options.maxDelayMs,
    });
  }
  if (event) {
    const waited = options.nowMs - start;
    if (waited < options.maxDelayMs) return judged("pending");
    return judged("missing_on_websocket", {
      waited_ms: waited,
      ...(event.repairedAt != null
        ? { re_relayed_at: new Date(event.repairedAt).toISOString() }
        : {}),
    });
  }
  const waited = options.nowMs - ledger!.deliveredAt;
  if (waited < options.maxDelayMs) return judged("pending");
  return judged("missing_on_realtime", { waited_ms: waited, ledger_cursor: ledger!.cursor });
}

/** Pairs and judges: every input row ends in exactly one judged unit. Pure. */
export function matchRows(
  events: readonly EventRow[],
  ledger: readonly LedgerRow[],
  options: MatchOptions,
): JudgedUnit[] {
  return pairRows(events, ledger, options.windowMs).map((u) => judgeUnit(u, options));
}
