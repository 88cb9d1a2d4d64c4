import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults, type CategoryFlags } from "../../shared/config/settings.ts";
import type { LoadedConfig } from "../../shared/config/source.ts";
import { type ClassificationRule, createClassifier } from "../../shared/events/classify.ts";
import { type Adapter, ADAPTERS, CATEGORIES, type Category } from "../../shared/events/schema.ts";
import { explainEvent, type RouteExplanation } from "../../shared/flags/explain.ts";
import { DEFAULT_INGEST_LIMITS } from "../../shared/ingest/limits.ts";
import { prepareEvents, retentionHorizonMs } from "../../shared/ingest/prepare.ts";
import { bucketOf } from "../../shared/routing/bucket.ts";

const RULES: ClassificationRule[] = [
  { pattern: "^legacy[._]", category: "system", legacy: true, priority: 10 },
  {
    pattern: "(^|[._])(error|exception)([._]|$)",
    category: "critical",
    legacy: false,
    priority: 30,
  },
  {
    pattern: "(^|[._])(cache|latency)([._]|$)",
    category: "performance",
    legacy: false,
    priority: 40,
  },
];

interface Options {
  categories?: Partial<Record<Category, Partial<CategoryFlags>>>;
  override?: "websocket_only" | "realtime_only" | null;
  primary?: Adapter;
  routingKey?: "source" | "id";
  openBreakers?: Adapter[];
}

function config(o: Options = {}): LoadedConfig {
  const d = builtInDefaults();
  const categories = { ...d.categories };
  for (const [c, f] of Object.entries(o.categories ?? {})) {
    categories[c as Category] = { ...categories[c as Category], ...f };
  }
  const settings = {
    ...d.settings,
    global_override: o.override ?? null,
    primary_adapter: o.primary ?? "websocket",
    routing_key: o.routingKey ?? "source",
  };
  return {
    version: 42,
    categories,
    settings,
    rules: RULES,
    classifier: createClassifier(RULES),
    routing: {
      categories,
      globalOverride: settings.global_override,
      primary: settings.primary_adapter,
      routingKey: settings.routing_key,
      ...(o.openBreakers ? { openBreakers: new Set(o.openBreakers) } : {}),
    },
    loadedAt: 0,
  };
}

const NOW = Date.parse("2026-06-01T12:00:00Z");
const event = (over: Record<string, unknown> = {}) => ({
  source: "host-1",
  sequence_id: 7,
  event_type: "cache.miss",
  timestamp: "2026-06-01T11:59:00Z",
  data: { hit: false },
  ...over,
});

async function explain(raw: unknown, c: LoadedConfig): Promise<RouteExplanation> {
  const outcome = await explainEvent(raw, c, DEFAULT_INGEST_LIMITS, NOW);
  if (!outcome.ok) throw new Error(`${outcome.code}: ${outcome.message}`);
  return outcome.explanation;
}

describe("explain agrees with ingest", () => {
  const adapters = fc.subarray([...ADAPTERS]);
  const flags = fc.record({
    enabled: fc.boolean(),
    percentage: fc.integer({ min: 0, max: 10_000 }).map((n) => n / 100),
    adapters,
  });
  const options: fc.Arbitrary<Options> = fc.record({
    categories: fc.dictionary(fc.constantFrom(...CATEGORIES), flags),
    override: fc.constantFrom(
      null,
      null,
      null,
      "websocket_only" as const,
      "realtime_only" as const,
    ),
    primary: fc.constantFrom(...ADAPTERS),
    routingKey: fc.constantFrom("source" as const, "id" as const),
    openBreakers: adapters,
  });
  const raw = fc.record({
    source: fc.string({ minLength: 1, maxLength: 30 }),
    sequence_id: fc.nat(),
    event_type: fc.constantFrom("cache.miss", "db.error", "legacy.cpu", "user.click", "misc"),
    category: fc.option(fc.constantFrom(...CATEGORIES), { nil: undefined }),
  }, { requiredKeys: ["source", "sequence_id", "event_type"] }).map((e) => event(e));

  it("decides the id, category, legacy flag, adapters, reason and deferral ingest decides", async () => {
    await fc.assert(
      fc.asyncProperty(raw, options, async (e, o) => {
        const c = config(o);
        const [item] = await prepareEvents(
          [e],
          c,
          DEFAULT_INGEST_LIMITS,
          NOW,
          retentionHorizonMs(NOW, 30),
        );
        if (!item?.ok) throw new Error("the generated event should be valid");
        const x = await explain(e, c);
        expect(x.id).toBe(item.event.id);
        expect(x.category).toBe(item.event.category);
        expect(x.legacy).toBe(item.event.legacy);
        expect(x.adapters).toEqual(item.event.routes);
        expect(x.reason).toBe(item.route.reason);
        expect(x.deferred).toEqual(item.route.deferred);
        expect(x.config_version).toBe(42);

        const key = o.routingKey === "id" ? item.event.id : e.source;
        expect(x.routing_key).toEqual({ field: o.routingKey, value: key });
        expect(x.bucket).toBe(bucketOf(key, x.category));
        expect(x.percentage).toBe(c.categories[x.category].percentage);
        expect(x.threshold).toBe(Math.round(x.percentage * 100));
        expect(x.in_split).toBe(x.bucket < x.threshold);
        expect(x.split_consulted).toBe(item.route.bucket !== undefined);
        if (x.split_consulted) expect(x.explanation).toContain(`bucket ${x.bucket}`);
        if (x.reason === "in_split") expect(x.in_split).toBe(true);
        if (x.reason === "outside_split") expect(x.in_split).toBe(false);
        expect(x.classified_by).toBe(
          "category" in e && e.category !== undefined
            ? "producer"
            : c.classifier.classify(e.event_type).rule ?? "fallback",
        );
      }),
      { numRuns: 300 },
    );
  });
});

describe("the explanation", () => {
  // Sources chosen for their bucket in `performance` (50 %): inside and outside the split.
  const inside = Array.from({ length: 500 }, (_, i) => `src-${i}`).find((s) =>
    bucketOf(s, "performance") < 5000
  )!;
  const outside = Array.from({ length: 500 }, (_, i) => `src-${i}`).find((s) =>
    bucketOf(s, "performance") >= 5000
  )!;
  const realtimeToo: Options = {
    categories: { performance: { adapters: ["realtime"], percentage: 50 } },
  };

  it.each<[string, Record<string, unknown>, Options, string, Adapter[], string[]]>([
    ["a legacy type", { event_type: "legacy.cache" }, {}, "legacy", [], [
      "matches the rule /^legacy[._]/",
      "is a legacy type",
      "delivered live to no adapter",
    ]],
    ["the global override", {}, { ...realtimeToo, override: "realtime_only" }, "override", [
      "realtime",
    ], ["The global override is realtime_only", "realtime only"]],
    ["a disabled category", {}, { categories: { performance: { enabled: false } } }, "disabled", [
      "websocket",
    ], ["Category performance is disabled", "primary adapter (websocket) only"]],
    ["no adapters", {}, { categories: { performance: { adapters: [] } } }, "no_adapters", [
      "websocket",
    ], ["lists no adapters", "primary adapter (websocket) only"]],
    ["a key inside the split", { source: inside }, realtimeToo, "in_split", [
      "websocket",
      "realtime",
    ], [
      `source "${inside}"`,
      "below the threshold 5000 (50 %)",
      "goes to websocket and realtime",
    ]],
    ["a key outside the split", { source: outside }, realtimeToo, "outside_split", ["websocket"], [
      `source "${outside}"`,
      "not below the threshold 5000 (50 %)",
      "primary adapter (websocket) only",
    ]],
    [
      "an open breaker on a chosen adapter",
      { source: inside },
      {
        ...realtimeToo,
        openBreakers: ["realtime"],
      },
      "breaker_fallback",
      ["websocket", "realtime"],
      [
        "below the threshold 5000",
        "The breaker of realtime is open",
        "waits until it recovers.",
      ],
    ],
    [
      "every chosen adapter's breaker open",
      { source: outside },
      {
        ...realtimeToo,
        openBreakers: ["websocket"],
      },
      "breaker_fallback",
      ["websocket", "realtime"],
      [
        "not below the threshold",
        "The breaker of websocket is open",
        "realtime was added so that the event is live now",
      ],
    ],
    ["a producer-named category", { category: "debug", event_type: "anything" }, {}, "disabled", [
      "websocket",
    ], ["The producer named the category debug", "Category debug is disabled"]],
    ["an unmatched type", { event_type: "misc.thing" }, {}, "in_split", ["websocket", "realtime"], [
      'No classification rule matches event_type "misc.thing"',
      "the category is system",
    ]],
  ])("names the facts for %s", async (_name, over, o, reason, adapters, phrases) => {
    const x = await explain(event(over), config(o));
    expect(x.reason).toBe(reason);
    expect(x.adapters).toEqual(adapters);
    for (const phrase of phrases) expect(x.explanation).toContain(phrase);
  });

  it("refuses what ingest refuses, with ingest's code", async () => {
    const c = config();
    const cases: [unknown, string][] = [
      [event({ sequence_id: -1 }), "invalid_event"],
      [event({ extra: 1 }), "invalid_event"],
      ["not an event", "invalid_event"],
      [event({ timestamp: "2026-06-01T14:00:01Z" }), "timestamp_in_future"],
      [event({ timestamp: "2020-01-01T00:00:00Z" }), "timestamp_too_old"],
      [
        event({ data: { blob: "x".repeat(DEFAULT_INGEST_LIMITS.maxEventBytes) } }),
        "event_too_large",
      ],
    ];
    for (const [raw, code] of cases) {
      const outcome = await explainEvent(raw, c, DEFAULT_INGEST_LIMITS, NOW);
      expect(outcome.ok ? "ok" : outcome.code).toBe(code);
    }
  });
});
