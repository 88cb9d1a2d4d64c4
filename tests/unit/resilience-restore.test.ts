import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults } from "../../shared/config/settings.ts";
import { type Adapter, CATEGORIES, type Category } from "../../shared/events/schema.ts";
import { bucketOf, splitThreshold } from "../../shared/routing/bucket.ts";
import { routeEvent, type RoutingConfig } from "../../shared/routing/route.ts";
import { restoredThreshold, restoreShare } from "../../shared/resilience/restore.ts";

const RAMP = { enabled: true, duration_s: 300, step_s: 30, initial_share: 0.1 };
const T0 = 1_700_000_000_000;

describe("restoreShare: the ramp after a close", () => {
  const table: [number | null, number, number][] = [
    [null, 0, 1], // never opened
    [T0, T0 - 1_000, 0.1], // clock behind the close
    [T0, T0, 0.1],
    [T0, T0 + 29_999, 0.1],
    [T0, T0 + 30_000, 0.19],
    [T0, T0 + 150_000, 0.55],
    [T0, T0 + 299_999, 0.91],
    [T0, T0 + 300_000, 1],
    [T0, T0 + 10_000_000, 1],
  ];
  for (const [closedAt, now, share] of table) {
    it(`closed ${closedAt === null ? "never" : `${(now - closedAt) / 1000} s ago`} → ${share}`, () => {
      expect(restoreShare(closedAt, now, RAMP)).toBeCloseTo(share, 9);
    });
  }

  it("is 1 when disabled", () => {
    expect(restoreShare(T0, T0, { ...RAMP, enabled: false })).toBe(1);
  });

  it("never decreases with time and stays in [initial, 1]", () => {
    fc.assert(fc.property(
      fc.record({
        duration_s: fc.integer({ min: 1, max: 3600 }),
        step_s: fc.integer({ min: 1, max: 600 }),
        initial_share: fc.double({ min: 0.001, max: 1, noNaN: true }),
      }),
      fc.integer({ min: -10_000, max: 4_000_000 }),
      fc.integer({ min: 0, max: 4_000_000 }),
      (r, a, d) => {
        const s = { enabled: true, ...r };
        const x = restoreShare(T0, T0 + a, s);
        const y = restoreShare(T0, T0 + a + d, s);
        expect(y).toBeGreaterThanOrEqual(x);
        expect(x).toBeGreaterThanOrEqual(r.initial_share - 1e-12);
        expect(x).toBeLessThanOrEqual(1);
      },
    ));
  });

  it("the ramped threshold is monotonic in the share and never above the split", () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 10_000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (t, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(restoredThreshold(t, lo)).toBeLessThanOrEqual(restoredThreshold(t, hi));
        expect(restoredThreshold(t, hi)).toBeLessThanOrEqual(t);
        expect(restoredThreshold(t, 1)).toBe(t);
      },
    ));
  });
});

describe("routing with a restore share", () => {
  function config(primary: Adapter, share: number): RoutingConfig {
    const d = builtInDefaults();
    const categories = { ...d.categories };
    categories.critical = {
      ...categories.critical,
      percentage: 60,
      adapters: ["websocket", "realtime"],
    };
    return {
      categories,
      globalOverride: null,
      primary,
      routingKey: "source",
      restoreShare: { websocket: share, realtime: share },
    };
  }
  const event = (source: string, category: Category = "critical") => ({
    id: "00000000-0000-4000-8000-000000000000",
    source,
    category,
    legacy: false,
  });

  it("adds the recovering secondary only below the ramped threshold; the primary always", () => {
    const threshold = splitThreshold(60);
    for (let i = 0; i < 3000; i++) {
      const source = `s${i}`;
      const b = bucketOf(source, "critical");
      const d = routeEvent(event(source), config("websocket", 0.25));
      expect(d.adapters).toContain("websocket");
      if (b >= threshold) {
        expect(d).toMatchObject({ adapters: ["websocket"], reason: "outside_split" });
      } else if (b < Math.floor(threshold * 0.25)) {
        expect(d.adapters).toEqual(["websocket", "realtime"]);
        expect(d.held).toBeUndefined();
      } else {
        expect(d.adapters).toEqual(["websocket"]);
        expect(d.held).toEqual(["realtime"]);
      }
    }
  });

  it("is sticky and monotonic: a key restored at share s stays restored at every s' >= s", () => {
    fc.assert(fc.property(
      fc.string({ minLength: 1, maxLength: 30 }),
      fc.constantFrom(...CATEGORIES),
      fc.constantFrom<Adapter>("websocket", "realtime"),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (source, category, primary, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const low = routeEvent(event(source, category), config(primary, lo));
        const high = routeEvent(event(source, category), config(primary, hi));
        for (const adapter of low.adapters) expect(high.adapters).toContain(adapter);
        expect(routeEvent(event(source, category), config(primary, lo))).toEqual(low);
        expect(low.adapters).toContain(primary);
      },
    ));
  });

  it("share 1 (or none) routes exactly as without a ramp", () => {
    fc.assert(fc.property(fc.string({ minLength: 1 }), fc.constantFrom(...CATEGORIES), (s, c) => {
      const { restoreShare: _, ...plain } = config("websocket", 1);
      expect(routeEvent(event(s, c), config("websocket", 1))).toEqual(
        routeEvent(event(s, c), plain),
      );
    }));
  });
});
