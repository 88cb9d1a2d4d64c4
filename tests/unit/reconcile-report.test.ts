/**
 * From judged units to findings (keys, repair plans, log lines) and to the
 * run's figures (consistency ratio, mismatch rate, alerts).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults } from "../../shared/config/settings.ts";
import { CATEGORIES, type Category } from "../../shared/events/schema.ts";
import { findingLine, findingOf, gapFinding, rowKey } from "../../shared/reconcile/findings.ts";
import {
  type EventRow,
  JUDGED_OUTCOMES,
  type JudgedUnit,
  type LedgerRow,
  type Outcome,
} from "../../shared/reconcile/match.ts";
import { summarizeRun } from "../../shared/reconcile/report.ts";

const thresholds = builtInDefaults().settings.reconcile.alert_thresholds;
const T = Date.parse("2026-11-23T12:00:00.000Z");

function event(seq: number, over: Partial<EventRow> = {}): EventRow {
  return {
    seq,
    id: `00000000-0000-4000-8000-${seq.toString().padStart(12, "0")}`,
    source: "src",
    sequence_id: seq,
    event_type: "t",
    category: "critical",
    time: T,
    receivedAt: T + seq,
    checksum: "c",
    checksumAlg: "sha256",
    routes: ["websocket", "realtime"],
    ...over,
  };
}

function ledger(cursor: number, over: Partial<LedgerRow> = {}): LedgerRow {
  return {
    cursor,
    eventId: `00000000-0000-4000-9000-${cursor.toString().padStart(12, "0")}`,
    source: "src",
    sequence_id: cursor,
    event_type: "t",
    category: "critical",
    time: T,
    deliveredAt: T + cursor,
    checksum: "c",
    checksumAlg: "sha256",
    ...over,
  };
}

function unit(
  outcome: Outcome,
  parts: { event?: EventRow; ledger?: LedgerRow },
  category: Category = "critical",
  details: Record<string, unknown> = {},
): JudgedUnit {
  return { ...parts, outcome, category, details };
}

describe("findingOf", () => {
  it("is null for outcomes that are not findings", () => {
    for (const o of ["matched", "pending", "single_route"] as const) {
      expect(findingOf(unit(o, { event: event(1) }))).toBeNull();
    }
  });

  it("plans a re-relay only for an event whose ledger row is absent", () => {
    const lone = findingOf(unit("missing_on_websocket", { event: event(5) }))!;
    expect(lone.repair).toEqual({ action: "re_relay", seq: 5 });
    expect(lone).toMatchObject({
      type: "missing_on_websocket",
      key: rowKey(event(5).id, T),
      eventId: event(5).id,
      source: "src",
      sequence_id: 5,
      category: "critical",
    });
    const arrivedLate = findingOf(
      unit("missing_on_websocket", { event: event(6), ledger: ledger(9) }, "critical", {
        arrived_after_ms: 400_000,
      }),
    )!;
    expect(arrivedLate.repair).toMatchObject({
      action: "none",
      note: expect.stringMatching(/400 s/),
    });
    expect(arrivedLate.details).toMatchObject({ seq: 6, ledger_cursor: 9 });
  });

  it.each(
    [
      ["missing_on_realtime", /store of record/],
      ["checksum_mismatch", /cannot be recalled/],
      ["late", /nothing to repair/],
      ["duplicate", /not repairable/],
    ] as const,
  )("%s is recorded with the reason it is not repaired", (type, note) => {
    const f = findingOf(unit(type, { ledger: ledger(3) }))!;
    expect(f.type).toBe(type);
    expect(f.repair).toMatchObject({ action: "none", note: expect.stringMatching(note) });
  });

  it("keys a finding about a lone ledger row by the ledger's event id and time", () => {
    const l = ledger(3, { time: T + 1500 });
    expect(findingOf(unit("missing_on_realtime", { ledger: l }))!.key).toBe(
      `${l.eventId}@${new Date(T + 1500).toISOString()}`,
    );
  });

  it("gap findings carry the range and the ids around it; log lines carry the ids", () => {
    const g = gapFinding("svc", { from: 3, to: 4 }, { after: 2, before: 5 });
    expect(g).toMatchObject({
      type: "producer_gap",
      key: "svc#3-4",
      sequence_id: 3,
      category: null,
      details: { from: 3, to: 4, count: 2, after: 2, before: 5 },
    });
    expect(findingLine(7, g, false)).toBe(
      "reconcile: run 7 producer_gap - source=svc missing=3..4 repaired=false",
    );
    const f = findingOf(
      unit("checksum_mismatch", { event: event(2), ledger: ledger(2) }, "critical", {
        reason: "checksums over canonical JSON differ",
      }),
    )!;
    expect(findingLine(7, f, false)).toBe(
      `reconcile: run 7 checksum_mismatch critical event=${
        event(2).id
      } source=src seq=2 type=t repaired=false (checksums over canonical JSON differ)`,
    );
  });
});

describe("summarizeRun", () => {
  it("consistency = matched / judged; pending and single-route are outside both ratios", () => {
    const units = [
      unit("matched", { event: event(1) }),
      unit("matched", { event: event(2) }),
      unit("matched", { event: event(3) }),
      unit("late", { event: event(4) }),
      unit("pending", { event: event(5) }),
      unit("single_route", { event: event(6) }),
      unit("matched", { event: event(7, { category: "debug" }) }, "debug"),
      unit("missing_on_realtime", { ledger: ledger(8, { category: "debug" }) }, "debug"),
    ];
    const s = summarizeRun(units, thresholds);
    expect(s.categories.critical).toMatchObject({
      judged: 4,
      matched: 3,
      late: 1,
      pending: 1,
      single_route: 1,
      consistency: 0.75,
      mismatch_rate: 0.25,
      threshold: 0,
      alert: true,
      window: { from: new Date(T + 1).toISOString(), to: new Date(T + 4).toISOString() },
    });
    expect(s.categories.debug).toMatchObject({
      judged: 2,
      consistency: 0.5,
      mismatch_rate: 0.5,
      alert: true,
    });
    expect(s.categories.performance).toMatchObject({
      judged: 0,
      consistency: null,
      mismatch_rate: null,
      alert: false,
      window: null,
    });
    expect(s).toMatchObject({ judged: 6, matched: 4, consistency: 4 / 6 });
    expect(s.sources).toEqual([{ source: "src", judged: 6, matched: 4, consistency: 4 / 6 }]);
  });

  it("alerts only when the rate passes the threshold (strictly)", () => {
    const perf = (n: number, o: Outcome) =>
      Array.from(
        { length: n },
        (_, i) =>
          unit(o, {
            event: event(100 + i + (o === "matched" ? 0 : 50), { category: "performance" }),
          }, "performance"),
      );
    const atThreshold = summarizeRun([...perf(19, "matched"), ...perf(1, "late")], thresholds);
    expect(atThreshold.categories.performance).toMatchObject({ mismatch_rate: 0.05, alert: false });
    const over = summarizeRun([...perf(18, "matched"), ...perf(2, "duplicate")], thresholds);
    expect(over.categories.performance).toMatchObject({ mismatch_rate: 0.1, alert: true });
  });

  it("ranks sources least consistent first and caps the list", () => {
    const units = [
      unit("matched", { event: event(1, { source: "good" }) }),
      unit("matched", { event: event(2, { source: "good" }) }),
      unit("late", { event: event(3, { source: "bad" }) }),
      unit("matched", { event: event(4, { source: "ok" }) }),
    ];
    const s = summarizeRun(units, thresholds, 2);
    expect(s.sources.map((x) => x.source)).toEqual(["bad", "good"]);
    expect(s.sources_truncated).toBe(true);
  });

  it("properties: ratios are complementary, counts add up, order does not matter", () => {
    const outcomes: Outcome[] = [...JUDGED_OUTCOMES, "pending", "single_route"];
    fc.assert(fc.property(
      fc.array(
        fc.record({ o: fc.constantFrom(...outcomes), c: fc.constantFrom(...CATEGORIES) }),
        { maxLength: 40 },
      ),
      (specs) => {
        const units = specs.map((s, i) =>
          unit(s.o, { event: event(i + 1, { category: s.c }) }, s.c)
        );
        const a = summarizeRun(units, thresholds);
        const b = summarizeRun([...units].reverse(), thresholds);
        expect(b).toEqual(a);
        expect(Object.values(a.outcomes).reduce((x, y) => x + y, 0)).toBe(units.length);
        for (const c of CATEGORIES) {
          const st = a.categories[c];
          expect(st.judged).toBe(JUDGED_OUTCOMES.reduce((n, o) => n + st[o], 0));
          if (st.judged === 0) {
            expect(st.consistency).toBeNull();
          } else {
            expect(st.consistency! + st.mismatch_rate!).toBeCloseTo(1, 12);
            expect(st.alert).toBe(st.mismatch_rate! > st.threshold);
          }
        }
      },
    ));
  });
});
