/**
 * From judged units and gap holes to findings: what is recorded, under which
 * stable key, and what can be repaired. Pure.
 *
 * What reconcile can repair, and why only that:
 * - `missing_on_websocket` with no ledger row: the event row is the store of
 *   record and the relay outbox is the WebSocket path's queue, so putting the
 *   event's outbox row back to `pending` (or inserting one) makes ws-fanout
 *   deliver it exactly as it would have — the ledger's unique event key keeps
 *   that from ever sending it twice. This is the one repair.
 * - `missing_on_websocket` whose ledger row came after the max delay: it is
 *   there now; nothing to send.
 * - `missing_on_realtime`: the event row is gone from the store of record.
 *   Rebuilding it from what ws-fanout sent would launder the WebSocket copy
 *   into the source of truth (and fire Realtime for an event subscribers may
 *   have had); an operator can re-ingest the payload kept in `details`.
 * - `checksum_mismatch`, `duplicate`: the messages were delivered; a sent
 *   message cannot be recalled, and the ledger holds one row per event.
 * - `late`: delivered within the max delay; nothing is wrong with the data.
 * - `producer_gap`: the events never reached ingest; only the producer has them.
 */
import type { Category } from "../events/schema.ts";
import { gapKey, type Hole } from "./gaps.ts";
import type { JudgedUnit, Outcome } from "./match.ts";

export const FINDING_TYPES = [
  "missing_on_websocket",
  "missing_on_realtime",
  "checksum_mismatch",
  "late",
  "duplicate",
  "producer_gap",
] as const;
export type FindingType = (typeof FINDING_TYPES)[number];

/** What to do about a finding. */
export type RepairPlan =
  | { action: "re_relay"; seq: number }
  | { action: "none"; note: string };

export interface Finding {
  type: FindingType;
  /** Stable across runs; unique per type (the database enforces it). */
  key: string;
  eventId: string | null;
  /** Epoch ms. */
  eventTime: number | null;
  source: string;
  sequence_id: number | null;
  event_type: string | null;
  category: Category | null;
  details: Record<string, unknown>;
  repair: RepairPlan;
}

/** `<event id>@<event time ISO>`: the key of a finding about one row. */
export function rowKey(eventId: string, time: number): string {
  return `${eventId}@${new Date(time).toISOString()}`;
}

const FINDING_OUTCOMES: ReadonlySet<Outcome> = new Set([
  "missing_on_websocket",
  "missing_on_realtime",
  "checksum_mismatch",
  "late",
  "duplicate",
]);

const NOTES = {
  arrivedLate: (ms: number) =>
    `delivered to the ledger ${
      Math.round(ms / 1000)
    } s after the event, beyond the max delay; it is there now, nothing to re-relay`,
  realtime:
    "no event row in public.monitoring_events (the store of record); not rebuilt from the WebSocket copy — re-ingest the payload in details (same id and timestamp) to restore it",
  realtimeLate: (ms: number) =>
    `the event row was stored ${
      Math.round(ms / 1000)
    } s after ws-fanout sent it, beyond the max delay; nothing to repair`,
  mismatch:
    "not repairable: WebSocket clients were sent the ledger's payload, a delivered message cannot be recalled, and the ledger holds one row per event",
  late: "nothing to repair: delivered within the max delay",
  duplicate:
    "not repairable: both copies were stored and delivered; the producer reused the key (or a second ledger row was written)",
  gap: "not repairable: these events never reached ingest; only the producer can resend them",
};

/**
 * The finding for a judged unit, or null when its outcome is not a finding
 * (matched, pending, single_route). A lone event missing on the WebSocket
 * path is planned for re-relay; everything else says why it is not repaired.
 */
export function findingOf(unit: JudgedUnit): Finding | null {
  if (!FINDING_OUTCOMES.has(unit.outcome)) return null;
  const type = unit.outcome as Exclude<FindingType, "producer_gap">;
  // A finding is about the stored event when there is one, else the ledger row.
  const { source, sequence_id, event_type, time } = unit.event ?? unit.ledger!;
  const id = unit.event ? unit.event.id : unit.ledger!.eventId;
  const details: Record<string, unknown> = { ...unit.details };
  if (unit.event) details.seq = unit.event.seq;
  if (unit.ledger) details.ledger_cursor = unit.ledger.cursor;

  let repair: RepairPlan;
  switch (type) {
    case "missing_on_websocket":
      repair = unit.ledger
        ? { action: "none", note: NOTES.arrivedLate(Number(unit.details.arrived_after_ms)) }
        : { action: "re_relay", seq: unit.event!.seq };
      break;
    case "missing_on_realtime":
      repair = {
        action: "none",
        note: unit.event
          ? NOTES.realtimeLate(Number(unit.details.arrived_after_ms))
          : NOTES.realtime,
      };
      break;
    case "checksum_mismatch":
      repair = { action: "none", note: NOTES.mismatch };
      break;
    case "late":
      repair = { action: "none", note: NOTES.late };
      break;
    case "duplicate":
      repair = { action: "none", note: NOTES.duplicate };
      break;
  }
  return {
    type,
    key: rowKey(id, time),
    eventId: id,
    eventTime: time,
    source,
    sequence_id,
    event_type,
    category: unit.category,
    details,
    repair,
  };
}

/** The finding for one hole of a source's sequence. */
export function gapFinding(
  source: string,
  hole: Hole,
  between: { after: number; before: number },
): Finding {
  return {
    type: "producer_gap",
    key: gapKey(source, hole),
    eventId: null,
    eventTime: null,
    source,
    sequence_id: hole.from,
    event_type: null,
    category: null,
    details: {
      from: hole.from,
      to: hole.to,
      count: hole.to - hole.from + 1,
      after: between.after,
      before: between.before,
    },
    repair: { action: "none", note: NOTES.gap },
  };
}

/**
 * One log line for a finding, with every id an operator needs to look it up.
 * Bounded: details are not printed (they are in the findings table).
 */
export function findingLine(runId: number, finding: Finding, repaired: boolean): string {
  const ids = finding.type === "producer_gap"
    ? `source=${finding.source} missing=${finding.details.from}..${finding.details.to}`
    : `event=${finding.eventId} source=${finding.source} seq=${finding.sequence_id} type=${finding.event_type}`;
  const reason = typeof finding.details.reason === "string" ? ` (${finding.details.reason})` : "";
  return `reconcile: run ${runId} ${finding.type} ${
    finding.category ?? "-"
  } ${ids} repaired=${repaired}${reason}`;
}
