import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults } from "../../shared/config/settings.ts";
import { type Adapter, ADAPTERS, CATEGORIES, type Category } from "../../shared/events/schema.ts";
import { bucketOf, BUCKETS, inSplit, murmur3 } from "../../shared/routing/bucket.ts";
import { routeEvent, type RoutingConfig } from "../../shared/routing/route.ts";

const enc = (s: string) => new TextEncoder().encode(s);

describe("murmur3 x86_32", () => {
  it("matches the reference vectors", () => {
    expect(murmur3(enc(""), 0)).toBe(0);
    expect(murmur3(enc(""), 1)).toBe(0x514e28b7);
    expect(murmur3(enc("hello"), 0)).toBe(0x248bfa47);
    expect(murmur3(enc("Hello, world!"), 1234)).toBe(0xfaf6cdb3);
    expect(murmur3(enc("The quick brown fox jumps over the lazy dog"), 0)).toBe(0x2e4ff723);
    expect(murmur3(new Uint8Array([0x21, 0x43, 0x65]), 0)).toBe(0x7e4a8634);
  });
});

describe("bucketing", () => {
  const key = fc.string({ minLength: 1, maxLength: 40 });
  const category = fc.constantFrom(...CATEGORIES);
  const pct = fc.integer({ min: 0, max: 10000 }).map((n) => n / 100);

  it("puts every key in 0..9999", () => {
    fc.assert(fc.property(key, category, (k, c) => {
      const b = bucketOf(k, c);
      expect(Number.isInteger(b) && b >= 0 && b < BUCKETS).toBe(true);
    }));
  });

  it("is monotonic: a key in the split at p stays in it at any q >= p", () => {
    fc.assert(fc.property(key, category, pct, pct, (k, c, a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      if (inSplit(k, c, lo)) expect(inSplit(k, c, hi)).toBe(true);
    }));
  });

  it("0 % includes nobody and 100 % everybody", () => {
    fc.assert(fc.property(key, category, (k, c) => {
      expect(inSplit(k, c, 0)).toBe(false);
      expect(inSplit(k, c, 100)).toBe(true);
    }));
  });

  it("splits a population close to the percentage", () => {
    const keys = Array.from({ length: 20000 }, (_, i) => `source-${i}`);
    for (const p of [1, 10, 50, 90]) {
      const share = keys.filter((k) => inSplit(k, "performance", p)).length / keys.length;
      expect(Math.abs(share - p / 100)).toBeLessThan(0.01);
    }
  });

  it("salts by category: the same key lands in different buckets across categories", () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);
    const same = keys.filter((k) => bucketOf(k, "critical") === bucketOf(k, "debug")).length;
    expect(same).toBeLessThan(10);
  });
});

function config(overrides: Partial<RoutingConfig> = {}): RoutingConfig {
  return {
    categories: builtInDefaults().categories,
    globalOverride: null,
    primary: "websocket",
    routingKey: "source",
    ...overrides,
  };
}

const arbFlags = fc.record({
  enabled: fc.boolean(),
  percentage: fc.integer({ min: 0, max: 10000 }).map((n) => n / 100),
  adapters: fc.subarray([...ADAPTERS]),
  delivery_mode: fc.constantFrom("postgres_changes" as const, "broadcast" as const),
  checksum_alg: fc.constantFrom("crc32" as const, "sha256" as const),
});
const arbConfig: fc.Arbitrary<RoutingConfig> = fc.record({
  categories: fc.record(
    Object.fromEntries(CATEGORIES.map((c) => [c, arbFlags])) as Record<Category, typeof arbFlags>,
  ),
  globalOverride: fc.constantFrom(null, "websocket_only" as const, "realtime_only" as const),
  primary: fc.constantFrom(...ADAPTERS),
  routingKey: fc.constantFrom("source" as const, "id" as const),
  openBreakers: fc.subarray([...ADAPTERS]).map((a) => new Set<Adapter>(a)),
});
const arbEvent = fc.record({
  id: fc.uuid(),
  source: fc.string({ minLength: 1, maxLength: 20 }),
  category: fc.constantFrom(...CATEGORIES),
  legacy: fc.constant(false),
});

describe("routeEvent", () => {
  it("never drops an event: every non-legacy event reaches at least one adapter", () => {
    fc.assert(fc.property(arbEvent, arbConfig, (event, cfg) => {
      expect(routeEvent(event, cfg).adapters.length).toBeGreaterThan(0);
    }));
  });

  it("always includes the primary unless an override names the only adapter", () => {
    fc.assert(fc.property(arbEvent, arbConfig, (event, cfg) => {
      const d = routeEvent(event, cfg);
      if (cfg.globalOverride === null) expect(d.adapters).toContain(cfg.primary);
    }));
  });

  it("is sticky: the same key and config always give the same route", () => {
    fc.assert(fc.property(arbEvent, arbConfig, (event, cfg) => {
      expect(routeEvent({ ...event, id: crypto.randomUUID() }, { ...cfg, routingKey: "source" }))
        .toEqual(routeEvent(event, { ...cfg, routingKey: "source" }));
    }));
  });

  it("is monotonic in the percentage: raising it only adds adapters", () => {
    fc.assert(
      fc.property(arbEvent, arbConfig, fc.integer({ min: 0, max: 10000 }), (event, cfg, raise) => {
        cfg.openBreakers = new Set();
        const before = routeEvent(event, cfg).adapters;
        const flags = cfg.categories[event.category];
        const raised = {
          ...cfg,
          categories: {
            ...cfg.categories,
            [event.category]: {
              ...flags,
              percentage: Math.min(100, flags.percentage + raise / 100),
            },
          },
        };
        const after = routeEvent(event, raised).adapters;
        for (const a of before) expect(after).toContain(a);
      }),
    );
  });

  it("applies the seeds' defaults", () => {
    const cfg = config();
    const ev = (category: Category, source = "svc") => ({
      id: crypto.randomUUID(),
      source,
      category,
      legacy: false,
    });
    expect(routeEvent(ev("critical"), cfg)).toMatchObject({
      adapters: ["websocket", "realtime"],
      reason: "in_split",
    });
    expect(routeEvent(ev("system"), cfg)).toMatchObject({
      adapters: ["websocket", "realtime"],
      reason: "in_split",
    });
    expect(routeEvent(ev("user_activity"), cfg)).toMatchObject({
      adapters: ["websocket"],
      reason: "disabled",
    });
    expect(routeEvent(ev("debug"), cfg)).toMatchObject({
      adapters: ["websocket"],
      reason: "disabled",
    });
    const perf = Array.from({ length: 400 }, (_, i) => routeEvent(ev("performance", `s${i}`), cfg));
    expect(new Set(perf.map((d) => d.reason))).toEqual(new Set(["in_split", "outside_split"]));
    for (const d of perf) expect(d.adapters).toEqual(["websocket"]);
  });

  it("honours the global override and legacy types", () => {
    const e = {
      id: crypto.randomUUID(),
      source: "s",
      category: "critical" as const,
      legacy: false,
    };
    expect(routeEvent(e, config({ globalOverride: "realtime_only" }))).toEqual({
      adapters: ["realtime"],
      reason: "override",
    });
    expect(routeEvent(e, config({ globalOverride: "websocket_only" }))).toEqual({
      adapters: ["websocket"],
      reason: "override",
    });
    expect(routeEvent({ ...e, legacy: true }, config())).toEqual({
      adapters: [],
      reason: "legacy",
    });
  });

  it("with a breaker open, keeps the event for the broken adapter and adds the healthy one when needed", () => {
    const e = {
      id: crypto.randomUUID(),
      source: "s",
      category: "user_activity" as const,
      legacy: false,
    };
    const d = routeEvent(e, config({ openBreakers: new Set(["websocket"]) }));
    expect(d).toMatchObject({
      adapters: ["websocket", "realtime"],
      reason: "breaker_fallback",
      deferred: ["websocket"],
    });
    const both = routeEvent(
      { ...e, category: "critical" },
      config({ openBreakers: new Set(["realtime"]) }),
    );
    expect(both).toMatchObject({ adapters: ["websocket", "realtime"], deferred: ["realtime"] });
  });
});
