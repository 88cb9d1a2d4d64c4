/**
 * One reconciliation run: the imperative shell around the pure core
 * (match.ts, gaps.ts, findings.ts, report.ts).
 *
 * A run is ONE transaction holding a transaction-level advisory lock (a
 * second concurrent run is refused, not queued). In it, the run reads what
 * is new since the watermark — events by `seq` up to the buffer window's
 * cutoff, ledger rows by `cursor` — plus the items carried from earlier runs,
 * loads both paths' rows around them by (source, sequence_id, ±window), and
 * judges every unit it owns: units holding an event it read, or, for a lone
 * ledger row, that row. A unit whose event an earlier run read (and judged)
 * is left alone, so every unit is judged once and counted once. What cannot
 * be judged yet is carried; findings are inserted once per (type, key); the
 * WebSocket path's misses are re-relayed through the outbox; alerts are
 * raised; the watermark moves; the report is recorded with the run.
 * Nothing here writes to the ledger, and nothing waits on or blocks ingest.
 *
 * A dry run does all of that in its transaction and rolls it back: the
 * report is exactly what a real run would have said, and nothing changed.
 */
import type { ReconcileSettings } from "../config/settings.ts";
import type { Sql } from "../db/client.ts";
import { CATEGORIES, type Category } from "../events/schema.ts";
import type { OutboxKey } from "../fanout/ledger.ts";
import {
  type Finding,
  FINDING_TYPES,
  findingLine,
  findingOf,
  type FindingType,
  gapFinding,
  rowKey,
} from "./findings.ts";
import { candidateGaps, type GapCandidate, holesBetween, type SequencePoint } from "./gaps.ts";
import { type EventRow, type LedgerRow, matchRows } from "./match.ts";
import { type RunSummary, summarizeRun } from "./report.ts";
import * as store from "./store.ts";

export type Trigger = "schedule" | "manual";

export interface ReconcileRequest {
  trigger: Trigger;
  dryRun: boolean;
}

/** The relay's result for the re-relayed keys (shared/fanout/relay.ts). */
export interface RelayResult {
  relayed: number;
  failed: number;
  error?: string;
}

export interface ReconcileDeps {
  sql: Sql;
  /** The current settings (read per run, so a flags change applies to the next run). */
  settings: () => Promise<{ reconcile: ReconcileSettings; retention_days: number }>;
  /**
   * Prompt delivery of re-relayed events (ws-fanout's relay endpoint). Optional:
   * without it, ws-fanout's own drain takes the pending outbox rows within seconds.
   */
  relayKeys?: (keys: OutboxKey[]) => Promise<RelayResult>;
  log?: (line: string) => void;
}

/** The JSON a run returns and records (`cutover.reconcile_runs.report`). */
export interface ReconcileReport extends RunSummary {
  /** Null for a dry run (nothing was recorded). */
  run_id: number | null;
  trigger: Trigger;
  dry_run: boolean;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  /**
   * `from`/`to`: every event received before it has been judged (or waits as
   * a known pending item). `lag_ms` = the run's clock − `to`.
   */
  watermark: { from: string | null; to: string | null; lag_ms: number | null };
  read: {
    events: number;
    ledger_rows: number;
    carried: number;
    context_events: number;
    context_ledger_rows: number;
    /** The batch limit was reached: call again (or wait for the next run) to catch up. */
    backlog: boolean;
    seq: { from: number; to: number };
    cursor: { from: number; to: number };
  };
  /** Units by outcome, plus `producer_gap`: the holes judged in this run. */
  counts: Record<string, number>;
  findings: {
    /** Recorded by this run (a finding already recorded by an earlier run is not counted). */
    new: number;
    by_type: Record<FindingType, number>;
    /** The first few new findings, for a glance (all are in the findings table). */
    sample: {
      type: FindingType;
      event_id: string | null;
      source: string;
      sequence_id: number | null;
      category: Category | null;
    }[];
  };
  producer_gaps: { ranges: number; missing_ids: number };
  pending: { events: number; ledger_rows: number; gaps: number };
  repairs: {
    /** Outbox rows set back to pending (or re-created) for ws-fanout to deliver. */
    re_relayed: number;
    /** New findings that cannot be repaired (see findings.ts for why). */
    not_repairable: number;
    /** Earlier re-relays now found in the ledger. */
    confirmed: number;
    /** Earlier re-relays still missing after the max delay. */
    failed: number;
    /** The after-commit relay request (absent when nothing was re-relayed or no relay is wired). */
    relay?: RelayResult;
  };
  alerts: { category: Category; mismatch_rate: number; threshold: number; judged: number }[];
}

export type RunOutcome =
  | { ok: true; report: ReconcileReport }
  | { ok: false; code: "run_in_progress" };

class Stop {
  constructor(readonly why: "locked" | "dry_run", readonly report?: ReconcileReport) {}
}

const SAMPLE_SIZE = 20;

/**
 * Runs one reconciliation pass. Resolves `{ ok: false, code:
 * "run_in_progress" }` when another run holds the lock (nothing done).
 * Throws on database errors; then the run's transaction rolled back and a
 * `failed` run row is recorded (best effort).
 */
export async function runReconcile(
  deps: ReconcileDeps,
  request: ReconcileRequest,
): Promise<RunOutcome> {
  const log = deps.log ?? ((line: string) => console.error(line));
  const settings = await deps.settings();
  const startedAt = new Date();
  let pass: Pass;
  try {
    pass = await deps.sql.begin(async (tx) => {
      const { locked, now } = await store.tryRunLock(tx);
      if (!locked) throw new Stop("locked");
      const result = await reconcilePass(tx, now, settings, request);
      if (request.dryRun) throw new Stop("dry_run", result.report);
      return result;
    });
  } catch (error) {
    if (error instanceof Stop) {
      return error.why === "locked"
        ? { ok: false, code: "run_in_progress" }
        : { ok: true, report: error.report! };
    }
    await store.recordFailedRun(deps.sql, request.trigger, startedAt, String(error))
      .catch(() => {});
    throw error;
  }

  const { report, logLines, relayKeys } = pass;
  for (const line of logLines) log(line);
  if (relayKeys.length > 0 && deps.relayKeys) {
    const { relayed, failed, error } = await deps.relayKeys(relayKeys);
    report.repairs.relay = { relayed, failed, ...(error ? { error } : {}) };
    await store.amendReport(deps.sql, report.run_id!, ["repairs", "relay"], report.repairs.relay)
      .catch((e) => log(`reconcile: recording the relay outcome failed: ${(e as Error).message}`));
  }
  return { ok: true, report };
}

interface Pass {
  report: ReconcileReport;
  logLines: string[];
  relayKeys: OutboxKey[];
}

async function reconcilePass(
  tx: store.Db,
  now: Date,
  settings: { reconcile: ReconcileSettings; retention_days: number },
  request: ReconcileRequest,
): Promise<Pass> {
  const clockStart = Date.now();
  const s = settings.reconcile;
  const nowMs = now.getTime();
  const bufferMs = s.buffer_window_s * 1000;
  const maxDelayMs = s.max_delay_s * 1000;
  const windowMs = s.timestamp_window_s * 1000;
  const semantic = CATEGORIES.filter((c) => s.criteria[c] === "semantic");

  const run = await store.startRun(tx, request.trigger);
  const state = await store.readState(tx);

  // What is new, and what earlier runs left to judge.
  const cutoff = new Date(nowMs - bufferMs);
  const fresh = await store.readNewEvents(tx, state.lastSeq, cutoff, s.batch_limit, semantic);
  const freshLedger = await store.readNewLedgerRows(tx, state.lastCursor, s.batch_limit, semantic);
  const carried = await store.readPending(tx, s.batch_limit);
  const carriedEvent = new Map(
    carried.filter((p) => p.kind === "event").map((p) => [p.ref!, p]),
  );
  const carriedEvents = await store.readEventsBySeq(tx, [...carriedEvent.keys()], semantic);
  for (const e of carriedEvents) e.repairedAt = carriedEvent.get(e.seq)!.repairedAt;
  const carriedLedger = await store.readLedgerByCursor(
    tx,
    carried.filter((p) => p.kind === "ledger").map((p) => p.ref!),
    semantic,
  );

  const ownedEvents = new Map<number, EventRow>();
  for (const e of [...fresh.rows, ...carriedEvents]) ownedEvents.set(e.seq, e);
  const ownedLedger = new Map<number, LedgerRow>();
  for (const l of [...freshLedger.rows, ...carriedLedger]) ownedLedger.set(l.cursor, l);

  // Both paths' rows around them: counterparts and duplicates.
  const around = await store.readAround(
    tx,
    [...ownedEvents.values(), ...ownedLedger.values()],
    windowMs,
    semantic,
  );
  const sameIds = await store.readSameIds(
    tx,
    [...new Set([...ownedEvents.values()].map((e) => e.id))],
    semantic,
  );
  const events = new Map(ownedEvents);
  for (const e of [...around.events, ...sameIds]) if (!events.has(e.seq)) events.set(e.seq, e);
  const ledger = new Map(ownedLedger);
  for (const l of around.ledger) if (!ledger.has(l.cursor)) ledger.set(l.cursor, l);

  const units = matchRows([...events.values()], [...ledger.values()], {
    nowMs,
    bufferMs,
    maxDelayMs,
    windowMs,
    tolerance: s.numeric_tolerance,
    criteria: s.criteria,
  }).filter((u) => u.event ? ownedEvents.has(u.event.seq) : ownedLedger.has(u.ledger!.cursor));

  // Verdicts → findings; undecided → carried; earlier repairs → confirmed or failed.
  const findings: Finding[] = [];
  const nextPending: store.NewPending[] = [];
  const repairUpdates: Parameters<typeof store.updateRepair>[1] = [];
  let confirmed = 0, failed = 0;
  for (const u of units) {
    if (u.outcome === "pending") {
      nextPending.push(
        u.event
          ? {
            kind: "event",
            ref: u.event.seq,
            since: u.event.receivedAt,
            ...(u.event.repairedAt != null
              ? {
                repairedAt: u.event.repairedAt,
                repairRunId: carriedEvent.get(u.event.seq)?.repairRunId ?? undefined,
              }
              : {}),
          }
          : { kind: "ledger", ref: u.ledger!.cursor, since: u.ledger!.deliveredAt },
      );
      continue;
    }
    if (u.event?.repairedAt != null && u.outcome !== "single_route") {
      const item = carriedEvent.get(u.event.seq);
      const key = rowKey(u.event.id, u.event.time);
      if (u.ledger) {
        confirmed++;
        repairUpdates.push({
          type: "missing_on_websocket",
          key,
          repaired: true,
          append: true,
          note: `confirmed by run ${run.id}: in the ledger at cursor ${u.ledger.cursor} since ${
            new Date(u.ledger.deliveredAt).toISOString()
          }`,
        });
      } else {
        failed++;
        repairUpdates.push({
          type: "missing_on_websocket",
          key,
          repaired: false,
          append: true,
          note: `run ${run.id}: re-relayed by run ${item?.repairRunId ?? "?"} at ${
            new Date(u.event.repairedAt).toISOString()
          } but still not in the ledger after the max delay; see cutover.relay_outbox.last_error`,
        });
      }
    }
    const finding = findingOf(u);
    if (finding) findings.push(finding);
  }

  // Producer gaps: holes below the ids this run read, and holes carried.
  const points: SequencePoint[] = [
    ...[...events.values()].map((e) => ({
      source: e.source,
      sequence_id: e.sequence_id,
      arrivedAt: e.receivedAt,
      owned: ownedEvents.has(e.seq),
    })),
    ...[...ledger.values()].map((l) => ({
      source: l.source,
      sequence_id: l.sequence_id,
      arrivedAt: l.deliveredAt,
      owned: ownedLedger.has(l.cursor),
    })),
  ];
  const ownedSources = new Set(points.filter((p) => p.owned).map((p) => p.source));
  const lowest = new Map<string, number>();
  for (const p of points) {
    if (!ownedSources.has(p.source)) continue;
    lowest.set(p.source, Math.min(lowest.get(p.source) ?? Infinity, p.sequence_id));
  }
  const predecessors = await store.readPredecessors(tx, lowest);
  const gapsByKey = new Map<string, GapCandidate>();
  const gapKeyOf = (g: GapCandidate) => JSON.stringify([g.source, g.after, g.before]);
  for (const p of carried) {
    if (p.kind !== "gap") continue;
    const g = { source: p.source!, after: p.gapAfter!, before: p.gapBefore!, since: p.since };
    gapsByKey.set(gapKeyOf(g), g);
  }
  for (const g of candidateGaps(points.filter((p) => ownedSources.has(p.source)), predecessors)) {
    const seen = gapsByKey.get(gapKeyOf(g));
    gapsByKey.set(gapKeyOf(g), seen && seen.since <= g.since ? seen : g);
  }
  const gaps = [...gapsByKey.values()];
  const present = await store.readPresentInGaps(tx, gaps);
  let gapRanges = 0, gapIds = 0;
  gaps.forEach((g, i) => {
    const holes = holesBetween(g.after, g.before, present[i]!);
    if (holes.length === 0) return; // filled: it was only out of order
    if (nowMs - g.since < maxDelayMs) {
      nextPending.push({ kind: "gap", ...g });
      return;
    }
    for (const hole of holes) {
      findings.push(gapFinding(g.source, hole, g));
      gapRanges++;
      gapIds += hole.to - hole.from + 1;
    }
  });

  // Record: findings once, then repairs for the new ones.
  const inserted = await store.insertFindings(tx, run.id, findings);
  const fresh_ = findings.filter((f) => inserted.has(`${f.type}|${f.key}`));
  const relaySeqs = fresh_.flatMap((f) => (f.repair.action === "re_relay" ? [f.repair.seq] : []));
  const reRelays = await store.inspectReRelay(tx, relaySeqs);
  const relayKeys: OutboxKey[] = [];
  const repairedKeys = new Set<string>();
  let reRelayed = 0, notRepairable = 0;
  for (const r of reRelays) {
    const key = rowKey(r.id, r.eventTime.getTime());
    if (r.inLedger) {
      notRepairable++;
      repairUpdates.push({
        type: "missing_on_websocket",
        key,
        repaired: false,
        note:
          "not repaired: the ledger already holds this event id under another source, sequence_id or event_type; a re-relay would change nothing",
      });
      continue;
    }
    reRelayed++;
    repairedKeys.add(key);
    repairUpdates.push({
      type: "missing_on_websocket",
      key,
      repaired: true,
      note: `re-relayed by run ${run.id}: outbox row ${
        r.was === null ? "re-created" : `set back from ${r.was}`
      } to pending`,
    });
    nextPending.push({
      kind: "event",
      ref: r.seq,
      since: r.receivedAt.getTime(),
      repairedAt: nowMs,
      repairRunId: run.id,
    });
    relayKeys.push({ id: r.id, event_time: r.eventTime.toISOString() });
  }
  notRepairable += fresh_.filter((f) => f.repair.action === "none" && f.type !== "late").length;
  await store.updateRepair(tx, repairUpdates);

  // Carry what waits; raise alerts; move the watermark.
  // A re-relayed event may also be carried as pending already: one row (on conflict do nothing).
  await store.replacePending(tx, carried.map((p) => p.id), nextPending);
  const summary = summarizeRun(units, s.alert_thresholds);
  const alerts = CATEGORIES.filter((c) => summary.categories[c].alert).map((c) => {
    const st = summary.categories[c];
    return {
      category: c,
      from: st.window?.from ?? null,
      to: st.window?.to ?? null,
      judged: st.judged,
      mismatched: st.judged - st.matched,
      rate: st.mismatch_rate!,
      threshold: st.threshold,
    };
  });
  await store.insertAlerts(tx, run.id, alerts);

  const lastSeq = fresh.rows.reduce((m, e) => Math.max(m, e.seq), state.lastSeq);
  const lastCursor = freshLedger.rows.reduce((m, l) => Math.max(m, l.cursor), state.lastCursor);
  const totals = await store.pendingTotals(tx);
  const firstUnread = await store.firstUnreadReceivedAt(tx, lastSeq);
  const watermark = new Date(
    Math.min(
      cutoff.getTime(),
      totals.oldest?.getTime() ?? Infinity,
      firstUnread?.getTime() ?? Infinity,
    ),
  );
  await store.saveState(tx, { lastSeq, lastCursor, watermark }, run.id);
  await store.pruneRuns(tx, settings.retention_days);

  const byType = Object.fromEntries(FINDING_TYPES.map((t) => [t, 0])) as Record<
    FindingType,
    number
  >;
  for (const f of fresh_) byType[f.type]++;
  const counts: Record<string, number> = { ...summary.outcomes, producer_gap: gapRanges };
  const report: ReconcileReport = {
    run_id: request.dryRun ? null : run.id,
    trigger: request.trigger,
    dry_run: request.dryRun,
    started_at: run.startedAt.toISOString(),
    finished_at: "",
    duration_ms: 0,
    watermark: {
      from: state.watermark?.toISOString() ?? null,
      to: watermark.toISOString(),
      lag_ms: nowMs - watermark.getTime(),
    },
    read: {
      events: fresh.rows.length,
      ledger_rows: freshLedger.rows.length,
      carried: carried.length,
      context_events: events.size - ownedEvents.size,
      context_ledger_rows: ledger.size - ownedLedger.size,
      backlog: fresh.full || freshLedger.full || carried.length >= s.batch_limit,
      seq: { from: state.lastSeq, to: lastSeq },
      cursor: { from: state.lastCursor, to: lastCursor },
    },
    ...summary,
    counts,
    findings: {
      new: fresh_.length,
      by_type: byType,
      sample: fresh_.slice(0, SAMPLE_SIZE).map((f) => ({
        type: f.type,
        event_id: f.eventId,
        source: f.source,
        sequence_id: f.sequence_id,
        category: f.category,
      })),
    },
    producer_gaps: { ranges: gapRanges, missing_ids: gapIds },
    pending: { events: totals.events, ledger_rows: totals.ledger, gaps: totals.gaps },
    repairs: { re_relayed: reRelayed, not_repairable: notRepairable, confirmed, failed },
    alerts: alerts.map((a) => ({
      category: a.category,
      mismatch_rate: a.rate,
      threshold: a.threshold,
      judged: a.judged,
    })),
  };

  const logLines = fresh_.slice(0, s.log_limit).map((f) =>
    findingLine(run.id, f, repairedKeys.has(f.key) && f.type === "missing_on_websocket")
  );
  if (fresh_.length > s.log_limit) {
    logLines.push(
      `reconcile: run ${run.id}: ${
        fresh_.length - s.log_limit
      } more finding(s) not logged; see cutover.reconcile_findings where run_id = ${run.id}`,
    );
  }
  for (const a of alerts) {
    logLines.push(
      `reconcile: run ${run.id} ALERT ${a.category}: mismatch rate ${
        a.rate.toFixed(4)
      } over ${a.judged} judged event(s) exceeds ${a.threshold}`,
    );
  }

  report.finished_at = new Date().toISOString();
  report.duration_ms = Date.now() - clockStart;
  await store.finishRun(tx, run.id, {
    watermarkFrom: state.watermark,
    watermarkTo: watermark,
    seqFrom: state.lastSeq,
    seqTo: lastSeq,
    cursorFrom: state.lastCursor,
    cursorTo: lastCursor,
    counts,
    report,
  });
  await store.requeueOutbox(
    tx,
    reRelays.filter((r) => !r.inLedger).map((r) => r.seq),
    `reconcile: re-relayed by run ${run.id}, the event was not in the ledger`,
  );
  return { report, logLines: request.dryRun ? [] : logLines, relayKeys };
}
