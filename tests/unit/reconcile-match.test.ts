/**
 * The reconciliation core: pairing the Realtime copy (event row) with the
 * WebSocket copy (ledger row) and judging each unit. Table-driven cases for
 * every rule and boundary, then properties: every row lands in exactly one
 * unit, the result does not depend on input order, matching is idempotent,
 * paired rows share a key and are within the window.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults } from "../../shared/config/settings.ts";
import type { Adapter, Category } from "../../shared/events/schema.ts";
import {
  type EventRow,
  type JudgedUnit,
  type LedgerRow,
  type MatchOptions,
  matchRows,
  type Outcome,
  pairRows,
} from "../../shared/reconcile/match.ts";

const S = 1000;
const NOW = Date.parse("2026-11-23T12:00:00.000Z");
const T0 = NOW - 600 * S; // ten minutes ago: past every window

const options: MatchOptions = {
  nowMs: NOW,
  bufferMs: 30 * S,
  maxDelayMs: 300 * S,
  windowMs: 5 * S,
  tolerance: 0.001,
  criteria: builtInDefaults().settings.reconcile.criteria,
};

let nextSeq = 1;
let nextCursor = 1;
const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

function ev(over: Partial<EventRow> = {}): EventRow {
  const seq = over.seq ?? nextSeq++;
  return {
    seq,
    id: uuid(seq),
    source: "src",
    sequence_id: 1,
    event_type: "service.error",
    category: "critical",
    time: T0,
    receivedAt: T0 + 100,
    checksum: "c-1",
    checksumAlg: "sha256",
    routes: ["websocket", "realtime"],
    data: { value: 1 },
    ...over,
  };
}

/** ws-fanout's copy of `e`, delivered `delay` ms after its receipt. */
function copy(e: EventRow, delay = 50, over: Partial<LedgerRow> = {}): LedgerRow {
  return {
    cursor: nextCursor++,
    eventId: e.id,
    source: e.source,
    sequence_id: e.sequence_id,
    event_type: e.event_type,
    category: e.category,
    time: e.time,
    deliveredAt: e.receivedAt + delay,
    checksum: e.checksum,
    checksumAlg: e.checksumAlg,
    ...(e.data === undefined ? {} : { data: structuredClone(e.data) }),
    ...over,
  };
}

const outcomeOf = (units: JudgedUnit[], pick: (u: JudgedUnit) => boolean) =>
  units.filter(pick).map((u) => u.outcome);

describe("judging one pair", () => {
  const cases: [string, (e: EventRow) => LedgerRow, Partial<EventRow>, Outcome][] = [
    ["the same bytes, delivered at once", (e) => copy(e), {}, "matched"],
    ["delivered exactly at the buffer window", (e) => copy(e, 30 * S), {}, "matched"],
    ["delivered 1 ms after the buffer window", (e) => copy(e, 30 * S + 1), {}, "late"],
    ["delivered at the max delay", (e) => copy(e, 300 * S), {}, "late"],
    [
      "delivered after the max delay",
      (e) => copy(e, 300 * S + 1),
      {},
      "missing_on_websocket",
    ],
    ["the event row stored 60 s after ws-fanout sent it", (e) => copy(e, -60 * S), {}, "late"],
    [
      "the event row stored 10 min after ws-fanout sent it",
      (e) => copy(e, -600 * S),
      { receivedAt: T0 + 100 },
      "missing_on_realtime",
    ],
    [
      "critical: checksums differ",
      (e) => copy(e, 50, { checksum: "c-2" }),
      {},
      "checksum_mismatch",
    ],
    [
      "critical: algorithms differ",
      (e) => copy(e, 50, { checksumAlg: "crc32" }),
      {},
      "checksum_mismatch",
    ],
    [
      "a mismatch is reported even when also late",
      (e) => copy(e, 120 * S, { checksum: "c-2" }),
      {},
      "checksum_mismatch",
    ],
    [
      "system (exact): checksums differ",
      (e) => copy(e, 50, { checksum: "c-2" }),
      { category: "system", checksumAlg: "crc32" },
      "checksum_mismatch",
    ],
    [
      "user_activity (exact): checksums differ",
      (e) => copy(e, 50, { checksum: "c-2" }),
      { category: "user_activity" },
      "checksum_mismatch",
    ],
    [
      "performance (semantic): numbers within 0.1 %",
      (e) => copy(e, 50, { checksum: "other", data: { ms: 1000.9, tags: ["a"] } }),
      { category: "performance", data: { ms: 1000, tags: ["a"] } },
      "matched",
    ],
    [
      "performance (semantic): numbers beyond 0.1 %",
      (e) => copy(e, 50, { data: { ms: 1002 } }),
      { category: "performance", data: { ms: 1000 } },
      "checksum_mismatch",
    ],
    [
      "performance (semantic): a key missing",
      (e) => copy(e, 50, { data: { ms: 1000 } }),
      { category: "performance", data: { ms: 1000, host: "a" } },
      "checksum_mismatch",
    ],
    [
      "performance (semantic): a string differs",
      (e) => copy(e, 50, { data: { host: "b" } }),
      { category: "performance", data: { host: "a" } },
      "checksum_mismatch",
    ],
    [
      "performance (semantic): late but equivalent",
      (e) => copy(e, 60 * S, { data: { ms: 1000 } }),
      { category: "performance", data: { ms: 1000 } },
      "late",
    ],
    [
      "debug (presence): content differs entirely",
      (e) => copy(e, 50, { checksum: "zzz", checksumAlg: "crc32", data: { other: true } }),
      { category: "debug", checksumAlg: "crc32" },
      "matched",
    ],
    [
      "routed to websocket only",
      (e) => copy(e),
      { routes: ["websocket"] },
      "single_route",
    ],
    [
      "received 10 s ago: inside the buffer window, not judged yet",
      (e) => copy(e, 1),
      { receivedAt: NOW - 10 * S },
      "pending",
    ],
    [
      "repaired: delivered promptly after the re-relay",
      (e) => ({ ...copy(e), deliveredAt: NOW - 5 * S }),
      { repairedAt: NOW - 8 * S },
      "matched",
    ],
  ];
  it.each(cases)("%s", (_, ledgerOf, over, expected) => {
    const e = ev(over);
    const units = matchRows([e], [ledgerOf(e)], options);
    expect(units).toHaveLength(1);
    expect(units[0]!.outcome).toBe(expected);
    expect(units[0]!.event).toBe(e);
  });

  it("says which side was late, by how much, and what differed", () => {
    const e = ev();
    const late = matchRows([e], [copy(e, 45 * S)], options)[0]!;
    expect(late.details).toMatchObject({ late_side: "websocket", delay_ms: 45 * S });
    const early = matchRows([e], [copy(e, -45 * S)], options)[0]!;
    expect(early.details).toMatchObject({ late_side: "realtime", delay_ms: 45 * S });
    const p = ev({ category: "performance", data: { a: { b: [1, 2, 3] } } });
    const diff = matchRows([p], [copy(p, 50, { data: { a: { b: [1, 2, 4] } } })], options)[0]!;
    expect(diff.details).toMatchObject({ criterion: "semantic", path: "data.a.b[2]" });
  });
});

describe("judging lone rows", () => {
  const lone: [string, Partial<EventRow>, Outcome][] = [
    ["received 10 s ago", { receivedAt: NOW - 10 * S }, "pending"],
    ["received 2 min ago: its ledger row may still come", { receivedAt: NOW - 120 * S }, "pending"],
    ["received exactly the max delay ago", { receivedAt: NOW - 300 * S }, "missing_on_websocket"],
    ["received 10 min ago", {}, "missing_on_websocket"],
    ["routed to realtime only", { routes: ["realtime"] }, "single_route"],
    ["a legacy event (routed nowhere)", { routes: [] }, "single_route"],
    [
      "re-relayed 1 min ago, not delivered yet",
      { repairedAt: NOW - 60 * S },
      "pending",
    ],
    [
      "re-relayed 6 min ago, still not delivered",
      { repairedAt: NOW - 360 * S },
      "missing_on_websocket",
    ],
  ];
  it.each(lone)("an event %s", (_, over, expected) => {
    expect(matchRows([ev(over)], [], options).map((u) => u.outcome)).toEqual([expected]);
  });

  it.each(
    [
      [60 * S, "pending"],
      [299 * S, "pending"],
      [300 * S, "missing_on_realtime"],
    ] as const,
  )("a ledger row delivered %i ms ago with no event row: %s", (age, expected) => {
    const l = copy(ev(), 0, { deliveredAt: NOW - age });
    expect(matchRows([], [l], options).map((u) => u.outcome)).toEqual([expected]);
  });
});

describe("pairing", () => {
  it("pairs a different id with the same key within ±5 s, not beyond", () => {
    const e = ev();
    const near = copy(e, 50, { eventId: uuid(9001), time: e.time + 5 * S });
    expect(pairRows([e], [near], options.windowMs)).toHaveLength(1);
    const far = copy(e, 50, { eventId: uuid(9002), time: e.time + 5 * S + 1 });
    expect(pairRows([e], [far], options.windowMs)).toHaveLength(2);
  });

  it("never pairs across source, sequence_id or event_type", () => {
    const e = ev();
    for (
      const over of [{ source: "other" }, { sequence_id: 2 }, { event_type: "service.fatal" }]
    ) {
      const units = pairRows([e], [copy(e, 50, over)], options.windowMs);
      expect(units).toHaveLength(2);
    }
  });

  it("prefers ws-fanout's copy of the very row over a closer stranger", () => {
    const e = ev();
    const stranger = copy(e, 50, { eventId: uuid(9003), time: e.time });
    const own = copy(e, 50);
    const units = matchRows([e], [stranger, own], options);
    expect(units.find((u) => u.event)?.ledger).toBe(own);
    expect(outcomeOf(units, (u) => !u.event)).toEqual(["duplicate"]);
  });

  it("pairs each event with its nearest copy when two events share a key", () => {
    const a = ev({ time: T0 });
    const b = ev({ time: T0 + 3 * S, receivedAt: T0 + 3 * S });
    const la = copy(a, 50, { eventId: uuid(9100) });
    const lb = copy(b, 50, { eventId: uuid(9101) });
    const units = matchRows([b, a], [lb, la], options);
    expect(units.find((u) => u.event === a)?.ledger).toBe(la);
    expect(units.find((u) => u.event === b)?.ledger).toBe(lb);
  });

  it("takes the closest timestamps first, whatever the row order", () => {
    const a = ev({ time: T0 });
    const b = ev({ time: T0 + 3 * S });
    // The first candidate in row order (a with the T0+4 copy) is not the closest pair.
    const l4 = copy(a, 50, { eventId: uuid(9110), time: T0 + 4 * S });
    const l0 = copy(a, 50, { eventId: uuid(9111), time: T0 });
    const units = matchRows([a, b], [l4, l0], options);
    expect(units.find((u) => u.event === a)?.ledger).toBe(l0);
    expect(units.find((u) => u.event === b)?.ledger).toBe(l4);
  });
});

describe("duplicates", () => {
  it("a second event with the same key (another id): the later one is the duplicate", () => {
    const first = ev();
    const second = ev({ time: T0 + 2 * S, receivedAt: T0 + 2 * S });
    const units = matchRows([second, first], [copy(first)], options);
    expect(units.find((u) => u.event === first)?.outcome).toBe("matched");
    const dup = units.find((u) => u.event === second)!;
    expect(dup.outcome).toBe("duplicate");
    expect(dup.details).toMatchObject({ side: "realtime", of_event_id: first.id });
  });

  it("two pairs for one key: the later pair is the duplicate, on both paths", () => {
    const first = ev();
    const second = ev({ time: T0 + 1 * S });
    const units = matchRows([first, second], [copy(first), copy(second)], options);
    expect(units.map((u) => [u.event?.seq, u.outcome])).toEqual([
      [first.seq, "matched"],
      [second.seq, "duplicate"],
    ]);
    expect(units[1]!.details.side).toBe("both");
  });

  it("two ledger rows for one event: the extra ledger row is the duplicate", () => {
    const e = ev();
    const extra = copy(e, 80, { eventId: uuid(9200), time: e.time + 1 * S });
    const units = matchRows([e], [copy(e), extra], options);
    expect(units.find((u) => u.ledger === extra)).toMatchObject({
      outcome: "duplicate",
      details: { side: "websocket" },
    });
  });

  it("an id reused for another event (another time or key): the later row is the duplicate", () => {
    const first = ev();
    const reused = ev({ id: first.id, sequence_id: 9, time: T0 + 3600 * S });
    const units = matchRows([reused, first], [copy(first), copy(reused)], options);
    expect(units.find((u) => u.event === first)?.outcome).toBe("matched");
    expect(units.find((u) => u.event === reused)).toMatchObject({
      outcome: "duplicate",
      details: { reason: "id reused", side: "both", of_event_id: first.id, of_seq: first.seq },
    });
  });

  it("the same key an hour apart is two events, not a duplicate", () => {
    const a = ev();
    const b = ev({ time: T0 + 3600 * S, receivedAt: T0 + 100 });
    const units = matchRows([a, b], [copy(a), copy(b)], options);
    expect(units.map((u) => u.outcome)).toEqual(["matched", "matched"]);
  });
});

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

const CATS: Category[] = ["critical", "performance", "user_activity", "system", "debug"];
const ROUTES: Adapter[][] = [["websocket", "realtime"], ["websocket"], ["realtime"], []];

/** Small universes, so keys collide and every rule gets exercised. */
const rowsArb = fc.record({
  events: fc.array(
    fc.record({
      src: fc.constantFrom("a", "b"),
      sid: fc.integer({ min: 1, max: 3 }),
      type: fc.constantFrom("x", "y"),
      cat: fc.constantFrom(...CATS),
      dt: fc.integer({ min: -8, max: 8 }),
      age: fc.constantFrom(5, 40, 200, 400, 900),
      sum: fc.constantFrom("s1", "s2"),
      routes: fc.constantFrom(...ROUTES),
      v: fc.constantFrom(1, 1.0005, 2),
      repaired: fc.option(fc.constantFrom(10, 100, 400), { nil: undefined }),
      reusedId: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined, freq: 4 }),
    }),
    { maxLength: 12 },
  ),
  copies: fc.array(
    fc.record({
      of: fc.nat(),
      sameId: fc.boolean(),
      dt: fc.integer({ min: -8, max: 8 }),
      delay: fc.constantFrom(-400, -40, 0, 20, 45, 250, 400),
      sum: fc.constantFrom("s1", "s2"),
      v: fc.constantFrom(1, 1.0005, 2),
    }),
    { maxLength: 12 },
  ),
  strays: fc.array(
    fc.record({
      src: fc.constantFrom("a", "b"),
      sid: fc.integer({ min: 1, max: 3 }),
      type: fc.constantFrom("x", "y"),
      cat: fc.constantFrom(...CATS),
      age: fc.constantFrom(10, 200, 400),
    }),
    { maxLength: 4 },
  ),
}).map(({ events, copies, strays }) => {
  const es: EventRow[] = events.map((g, i) => ({
    seq: i + 1,
    id: uuid(g.reusedId === undefined ? i + 1 : 8000 + g.reusedId),
    source: g.src,
    sequence_id: g.sid,
    event_type: g.type,
    category: g.cat,
    time: T0 + g.dt * S,
    receivedAt: NOW - g.age * S,
    checksum: g.sum,
    checksumAlg: "sha256",
    routes: g.routes,
    data: { v: g.v },
    ...(g.repaired === undefined ? {} : { repairedAt: NOW - g.repaired * S }),
  }));
  const ls: LedgerRow[] = [];
  if (es.length > 0) {
    copies.forEach((c, i) => {
      const e = es[c.of % es.length]!;
      ls.push({
        cursor: i + 1,
        eventId: c.sameId ? e.id : uuid(5000 + i),
        source: e.source,
        sequence_id: e.sequence_id,
        event_type: e.event_type,
        category: e.category,
        time: c.sameId ? e.time : e.time + c.dt * S,
        deliveredAt: e.receivedAt + c.delay * S,
        checksum: c.sum,
        checksumAlg: "sha256",
        data: { v: c.v },
      });
    });
  }
  strays.forEach((s, i) =>
    ls.push({
      cursor: 100 + i,
      eventId: uuid(7000 + i),
      source: s.src,
      sequence_id: s.sid,
      event_type: s.type,
      category: s.cat,
      time: T0,
      deliveredAt: NOW - s.age * S,
      checksum: "s1",
      checksumAlg: "sha256",
      data: { v: 1 },
    })
  );
  return { events: es, ledger: ls };
});

/** The result as plain, order-free facts. */
const facts = (units: JudgedUnit[]) =>
  units.map((u) => `${u.event?.seq ?? "-"}|${u.ledger?.cursor ?? "-"}|${u.outcome}`).sort();

const shuffled = <T>(xs: T[], seed: number) =>
  xs.map((x, i) => [((i + 1) * 2654435761 + seed) % 4294967296, x] as const)
    .sort((a, b) => a[0] - b[0]).map(([, x]) => x);

describe("properties", () => {
  it("every input row lands in exactly one unit with one outcome", () => {
    fc.assert(fc.property(rowsArb, ({ events, ledger }) => {
      const units = matchRows(events, ledger, options);
      const seqs = units.flatMap((u) => (u.event ? [u.event.seq] : []));
      const cursors = units.flatMap((u) => (u.ledger ? [u.ledger.cursor] : []));
      expect(seqs.sort((a, b) => a - b)).toEqual(events.map((e) => e.seq));
      expect(cursors.sort((a, b) => a - b)).toEqual(
        ledger.map((l) => l.cursor).sort((a, b) => a - b),
      );
      for (const u of units) expect(u.event || u.ledger).toBeTruthy();
    }));
  });

  it("does not depend on the order of the rows", () => {
    fc.assert(fc.property(rowsArb, fc.integer(), ({ events, ledger }, seed) => {
      const a = facts(matchRows(events, ledger, options));
      const b = facts(matchRows(shuffled(events, seed), shuffled(ledger, seed + 7), options));
      expect(b).toEqual(a);
    }));
  });

  it("is idempotent: the same rows again, or twice over, give the same verdicts", () => {
    fc.assert(fc.property(rowsArb, ({ events, ledger }) => {
      const once = facts(matchRows(events, ledger, options));
      expect(facts(matchRows(events, ledger, options))).toEqual(once);
      expect(facts(matchRows([...events, ...events], [...ledger, ...ledger], options))).toEqual(
        once,
      );
    }));
  });

  it("pairs only rows with the same key within the window", () => {
    fc.assert(fc.property(rowsArb, ({ events, ledger }) => {
      for (const u of matchRows(events, ledger, options)) {
        if (!u.event || !u.ledger) continue;
        expect([u.ledger.source, u.ledger.sequence_id, u.ledger.event_type]).toEqual([
          u.event.source,
          u.event.sequence_id,
          u.event.event_type,
        ]);
        expect(Math.abs(u.ledger.time - u.event.time)).toBeLessThanOrEqual(options.windowMs);
      }
    }));
  });

  it("never judges an event younger than the buffer window, nor one routed one way", () => {
    fc.assert(fc.property(rowsArb, ({ events, ledger }) => {
      for (const u of matchRows(events, ledger, options)) {
        if (!u.event) continue;
        if (u.event.routes.length < 2) expect(u.outcome).toBe("single_route");
        else if (NOW - u.event.receivedAt < options.bufferMs) expect(u.outcome).toBe("pending");
      }
    }));
  });

  it("an event with ws-fanout's exact copy, alone under its key, is matched or late by delay only", () => {
    fc.assert(fc.property(
      fc.constantFrom(...CATS),
      fc.integer({ min: -300, max: 300 }),
      (category, delay) => {
        const e = ev({ category });
        const [u] = matchRows([e], [copy(e, delay * S)], options);
        expect(u!.outcome).toBe(Math.abs(delay) <= 30 ? "matched" : "late");
      },
    ));
  });
});
