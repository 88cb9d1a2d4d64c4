/**
 * The dashboard's pure core: the bounded ring, the live tail (dedupe across
 * paths, filters, pause with a bounded buffer, resume in order), dual mode's
 * agreement, the rate meter and the connection indicator's words.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AgreementTracker } from "../../dashboard/src/core/agreement.ts";
import { describeLink, worstLink } from "../../dashboard/src/core/connection.ts";
import {
  type DashboardEvent,
  EMPTY_FILTER,
  matchesFilter,
  type TailRow,
} from "../../dashboard/src/core/events.ts";
import { LiveStore } from "../../dashboard/src/core/live.ts";
import { RateMeter } from "../../dashboard/src/core/rates.ts";
import { Ring } from "../../dashboard/src/core/ring.ts";
import { linkFromClient } from "../../dashboard/src/sources/websocket.ts";
import { consumerMode } from "../../dashboard/src/sources/realtime.ts";

let n = 0;
function event(over: Partial<DashboardEvent> = {}): DashboardEvent {
  n++;
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    source: "checkout-api",
    sequence_id: n,
    event_type: "http.response_time",
    category: "performance",
    timestamp: new Date(1_800_000_000_000 + n).toISOString(),
    data: { n },
    ...over,
  };
}

const ids = (rows: readonly TailRow[]) => rows.map((r) => r.event.id);

describe("Ring", () => {
  it("keeps the newest `capacity` items in order and counts evictions", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer(), { maxLength: 60 }),
        (cap, xs) => {
          const ring = new Ring<number>(cap);
          for (const x of xs) ring.push(x);
          expect(ring.toArray()).toEqual(xs.slice(-cap));
          expect(ring.size).toBe(Math.min(cap, xs.length));
          expect(ring.evicted).toBe(Math.max(0, xs.length - cap));
          expect(ring.drain()).toEqual(xs.slice(-cap));
          expect(ring.size).toBe(0);
        },
      ),
    );
  });

  it("refuses a capacity below 1", () => {
    expect(() => new Ring(0)).toThrow(RangeError);
  });
});

describe("LiveStore", () => {
  it("shows rows newest first only after a flush (one DOM update per frame)", () => {
    const store = new LiveStore();
    const a = event();
    const b = event();
    expect(store.offer(a, "websocket", "live", 1)).toBe("new");
    expect(store.offer(b, "websocket", "live", 2)).toBe("new");
    expect(store.view).toEqual([]);
    expect(store.flush()).toBe(true);
    expect(ids(store.view)).toEqual([b.id, a.id]);
    expect(store.addedOnTop).toBe(2);
    expect(store.flush()).toBe(false);
  });

  it("merges the second path's copy into one row and drops repeats", () => {
    const store = new LiveStore();
    const wire = event();
    const stored = {
      ...wire,
      seq: 42,
      checksum: "abcd",
      checksum_alg: "crc32",
      routes: ["websocket", "realtime"],
    };
    expect(store.offer(wire, "websocket", "live", 10)).toBe("new");
    expect(store.offer(stored, "realtime", "live", 25)).toBe("merged");
    expect(store.offer(wire, "websocket", "live", 30)).toBe("duplicate");
    expect(store.offer(stored, "realtime", "backfill", 40)).toBe("duplicate");
    store.flush();
    expect(store.view).toHaveLength(1);
    const row = store.view[0]!;
    expect(row.seenAt).toEqual({ websocket: 10, realtime: 25 });
    expect(row.event.seq).toBe(42);
    expect(row.event.routes).toEqual(["websocket", "realtime"]);
  });

  it("remembers which path only recovered an event from history", () => {
    const store = new LiveStore();
    const e = event();
    store.offer(e, "realtime", "backfill", 1);
    store.offer(e, "websocket", "live", 2);
    store.flush();
    expect(store.view[0]!.backfilledOn).toEqual(["realtime"]);
  });

  it("recognises a late copy of an event whose row already left the tail, without keeping the event", () => {
    const store = new LiveStore({ tailCapacity: 2, pauseCapacity: 2, idCapacity: 100 });
    const old = event();
    store.offer(old, "websocket", "live", 1);
    store.flush();
    for (let i = 0; i < 3; i++) store.offer(event(), "websocket", "live", 2);
    store.flush();
    expect(store.get(old.id)).toBeUndefined();
    expect(store.offer(old, "realtime", "live", 3)).toBe("merged");
    expect(store.offer(old, "realtime", "live", 4)).toBe("duplicate");
    expect(store.offer(old, "websocket", "backfill", 5)).toBe("duplicate");
    store.flush();
    expect(store.view.some((r) => r.event.id === old.id)).toBe(false);
  });

  it("keeps at most tailCapacity rows, dropping the oldest", () => {
    const store = new LiveStore({ tailCapacity: 5, pauseCapacity: 5 });
    const events = Array.from({ length: 12 }, () => event());
    for (const e of events.slice(0, 4)) store.offer(e, "websocket", "live", 1);
    store.flush();
    for (const e of events.slice(4)) store.offer(e, "websocket", "live", 2);
    store.flush();
    expect(ids(store.view)).toEqual(events.slice(-5).reverse().map((e) => e.id));
    expect(store.size).toBe(5);
  });

  it("pause keeps capturing into a bounded buffer; resume shows everything in arrival order", () => {
    const store = new LiveStore({ tailCapacity: 100, pauseCapacity: 50 });
    const before = event();
    store.offer(before, "websocket", "live", 1);
    store.flush();
    store.pause();
    const during = Array.from({ length: 30 }, () => event());
    for (const [i, e] of during.entries()) {
      store.offer(e, "websocket", "live", 2 + i);
      if (i % 7 === 0) expect(store.flush()).toBe(false);
    }
    store.flush();
    expect(ids(store.view)).toEqual([before.id]);
    expect(store.waiting).toBe(30);
    store.resume();
    expect(ids(store.view)).toEqual([...during].reverse().map((e) => e.id).concat(before.id));
    expect(store.addedOnTop).toBe(30);
    expect(store.waiting).toBe(0);
  });

  it("drops the oldest waiting rows past the pause capacity and says how many", () => {
    const store = new LiveStore({ tailCapacity: 100, pauseCapacity: 10 });
    store.pause();
    const during = Array.from({ length: 25 }, () => event());
    for (const e of during) {
      store.offer(e, "websocket", "live", 1);
      store.flush();
    }
    expect(store.waiting).toBe(10);
    expect(store.waitingDropped).toBe(15);
    store.resume();
    expect(ids(store.view)).toEqual(during.slice(-10).reverse().map((e) => e.id));
  });

  it("filters by category, source and type substrings and by text anywhere in the event", () => {
    const store = new LiveStore();
    const a = event({
      category: "critical",
      source: "auth-service",
      event_type: "token.validation_failed",
      data: { client: "ios" },
    });
    const b = event({
      category: "performance",
      source: "search-api",
      event_type: "search.latency",
      data: { route: "/suggest" },
    });
    const c = event({
      category: "critical",
      source: "checkout-api",
      event_type: "payment.error",
      data: { provider: "stripe" },
    });
    for (const e of [a, b, c]) store.offer(e, "websocket", "live", 1);
    store.flush();
    store.setFilter({ ...EMPTY_FILTER, categories: new Set(["critical"]) });
    expect(ids(store.view)).toEqual([c.id, a.id]);
    store.setFilter({ ...EMPTY_FILTER, source: "SEARCH" });
    expect(ids(store.view)).toEqual([b.id]);
    store.setFilter({ ...EMPTY_FILTER, eventType: "error" });
    expect(ids(store.view)).toEqual([c.id]);
    store.setFilter({ ...EMPTY_FILTER, text: "stripe" });
    expect(ids(store.view)).toEqual([c.id]);
    store.setFilter({ ...EMPTY_FILTER, text: a.id.slice(-6) });
    expect(ids(store.view)).toEqual([a.id]);
    // New rows pass through the active filter too.
    store.setFilter({ ...EMPTY_FILTER, categories: new Set(["critical"]) });
    const d = event({ category: "debug" });
    const e = event({ category: "critical" });
    store.offer(d, "websocket", "live", 2);
    store.offer(e, "websocket", "live", 2);
    store.flush();
    expect(ids(store.view)).toEqual([e.id, c.id, a.id]);
    expect(store.addedOnTop).toBe(1);
    store.setFilter(EMPTY_FILTER);
    expect(store.view).toHaveLength(5);
  });

  it("matchesFilter passes everything with the empty filter", () => {
    fc.assert(fc.property(fc.string(), fc.string(), (source, type) => {
      const row: TailRow = {
        order: 1,
        event: event({ source: source || "s", event_type: type || "t" }),
        seenAt: {},
        backfilledOn: [],
        fromHistory: false,
      };
      return matchesFilter(row, EMPTY_FILTER);
    }));
  });

  it("stays bounded and consistent under a random mix of offers, flushes, pauses and filters", () => {
    fc.assert(fc.property(
      fc.array(
        fc.oneof(
          fc.record({
            op: fc.constant("offer"),
            dup: fc.boolean(),
            path: fc.constantFrom("websocket", "realtime"),
          }),
          fc.constant({ op: "flush" }),
          fc.constant({ op: "pause" }),
          fc.constant({ op: "resume" }),
          fc.constant({ op: "filter" }),
        ),
        { maxLength: 300 },
      ),
      (ops) => {
        const store = new LiveStore({ tailCapacity: 20, pauseCapacity: 15 });
        const offered: DashboardEvent[] = [];
        for (const o of ops) {
          if (o.op === "offer") {
            const e = "dup" in o && o.dup && offered.length
              ? offered[offered.length - 1]!
              : event();
            if (e === offered[offered.length - 1] && "dup" in o && o.dup) {
              store.offer(e, (o as { path: "websocket" | "realtime" }).path, "live", 1);
            } else {
              offered.push(e);
              store.offer(e, "websocket", "live", 1);
            }
          } else if (o.op === "flush") store.flush();
          else if (o.op === "pause") store.pause();
          else if (o.op === "resume") store.resume();
          else store.setFilter({ ...EMPTY_FILTER, categories: new Set(["performance"]) });
        }
        store.resume();
        store.flush();
        expect(store.size).toBeLessThanOrEqual(20);
        // Newest first, no id twice, and the newest offered events are the ones kept.
        const order = store.view.map((r) => r.order);
        expect(order).toEqual([...order].sort((a, b) => b - a));
        expect(new Set(ids(store.view)).size).toBe(store.view.length);
        const kept = offered.slice(-store.view.length).reverse().map((e) => e.id);
        expect(ids(store.view)).toEqual(kept);
      },
    ));
  });
});

describe("AgreementTracker", () => {
  it("judges an event after the grace period: both, websocket only, realtime only", () => {
    const t = new AgreementTracker(5_000);
    t.see("a", "websocket", 0);
    t.see("a", "realtime", 300, ["websocket", "realtime"]);
    t.see("b", "websocket", 100);
    t.see("c", "realtime", 200, ["realtime"]);
    t.see("d", "realtime", 200, ["websocket", "realtime"]);
    t.settle(4_999);
    expect(t.counts()).toMatchObject({ both: 0, pending: 4 });
    t.settle(5_200);
    expect(t.counts()).toMatchObject({
      both: 1,
      websocketOnly: 1,
      realtimeOnly: 2,
      realtimeOnlyRoutedToBoth: 1,
      pending: 0,
    });
    expect(t.counts().realtimeLagMs).toEqual({ p50: 300, p95: 300, samples: 1 });
    expect(t.recentOneSided().map((o) => o.id)).toEqual(["d", "c", "b"]);
  });

  it("moves a late arrival from one-sided to both, and ignores repeats", () => {
    const t = new AgreementTracker(1_000);
    t.see("x", "realtime", 0, ["websocket", "realtime"]);
    t.settle(2_000);
    expect(t.counts()).toMatchObject({ realtimeOnly: 1, realtimeOnlyRoutedToBoth: 1 });
    t.see("x", "websocket", 3_000);
    t.see("x", "websocket", 3_500);
    expect(t.counts()).toMatchObject({
      both: 1,
      realtimeOnly: 0,
      realtimeOnlyRoutedToBoth: 0,
      late: 1,
    });
    expect(t.recentOneSided()).toEqual([]);
  });

  it("compares latency only between two live copies", () => {
    const t = new AgreementTracker(1_000);
    t.see("a", "realtime", 0, ["websocket", "realtime"], false); // recovered from history
    t.see("a", "websocket", 900);
    t.settle(5_000);
    expect(t.counts()).toMatchObject({ both: 1, realtimeLagMs: null });
    expect(t.has("a")).toBe(true);
    expect(t.has("b")).toBe(false);
  });

  it("forgets the oldest ids past its capacity", () => {
    const t = new AgreementTracker(1_000, 3);
    for (const id of ["a", "b", "c", "d"]) t.see(id, "websocket", 0);
    t.settle(5_000);
    expect(t.counts().websocketOnly).toBe(3);
  });
});

describe("RateMeter", () => {
  it("counts events per second and category and zeroes skipped seconds", () => {
    const m = new RateMeter(10);
    m.record("critical", 1_000_000);
    m.record("critical", 1_000_500);
    m.record("debug", 1_001_200);
    m.record("debug", 1_004_000);
    const s = m.series(1_004_100);
    expect(s.t.at(-1)).toBe(1004);
    expect(s.byCategory.critical.slice(-5)).toEqual([2, 0, 0, 0, 0]);
    expect(s.byCategory.debug.slice(-5)).toEqual([0, 1, 0, 0, 1]);
    // A gap longer than the window clears it.
    expect(m.series(1_100_000).total.every((v) => v === 0)).toBe(true);
  });

  it("rate() averages complete seconds only", () => {
    const m = new RateMeter(60);
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 4; i++) m.record("system", 2_000_000 + s * 1000);
    }
    expect(m.rate(2_009_500, 5)).toBe(4);
  });
});

describe("connection indicator", () => {
  it("counts down to the next reconnect attempt", () => {
    const view = describeLink(
      {
        path: "websocket",
        status: "reconnecting",
        attempt: 1,
        nextAttemptAt: 10_000,
        detail: "connection refused or lost",
      },
      7_200,
    );
    expect(view).toEqual({
      label: "Reconnecting",
      tone: "warn",
      detail: "WebSocket: retrying in 3 s, attempt 2 (connection refused or lost)",
    });
    expect(describeLink({ path: "realtime", status: "connected" }, 0).label).toBe("Connected");
    expect(describeLink({ path: "realtime", status: "connected" }, 0, false).label).toBe("Offline");
  });

  it("summarises several links by the worst", () => {
    expect(
      worstLink([
        { path: "websocket", status: "connected" },
        { path: "realtime", status: "reconnecting" },
      ])?.path,
    ).toBe("realtime");
  });

  it("maps the fanout client's states", () => {
    expect(linkFromClient({ status: "open", instance: "ws-fanout#1", cursor: 5 })).toMatchObject({
      status: "connected",
      server: "ws-fanout#1",
    });
    expect(linkFromClient({
      status: "reconnecting",
      attempt: 2,
      nextAttemptAt: 99,
      lastClose: { code: 1006, reason: "" },
    })).toEqual({
      path: "websocket",
      status: "reconnecting",
      attempt: 1,
      nextAttemptAt: 99,
      detail: "connection refused or lost",
    });
    expect(linkFromClient({ status: "closed" }).status).toBe("offline");
  });
});

describe("Realtime consumer mode", () => {
  it("listens the chosen way, or both ways in auto (a delivery-mode switch loses nothing)", () => {
    expect(consumerMode("broadcast")).toBe("broadcast");
    expect(consumerMode("postgres_changes")).toBe("postgres_changes");
    expect(consumerMode("auto")).toBe("both");
  });
});
