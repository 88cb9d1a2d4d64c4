import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults, type CategoryFlags } from "../../shared/config/settings.ts";
import { ADAPTERS, CATEGORIES } from "../../shared/events/schema.ts";
import {
  actorFrom,
  CATEGORY_FIELDS,
  changedCategoryFields,
  MAX_ACTOR_NAME,
  MAX_BATCH_CHANGES,
  mergeCategoryFlags,
  parseBatch,
  parseCategoryPatch,
  parseSettingPut,
  sameSettingValue,
  SETTING_KEYS,
  type SettingKey,
} from "../../shared/flags/changes.ts";

const defaults = builtInDefaults();
const base = { expected_version: 7, reason: "ramp up" };

/** The path of the first issue, or "ok". */
function firstPath(result: { ok: boolean; error?: { issues: { path: string }[] } }): string {
  return result.ok ? "ok" : result.error!.issues[0]!.path;
}

describe("PATCH /flags/categories/:category body", () => {
  it("accepts a partial change and keeps the version and the trimmed reason", () => {
    const r = parseCategoryPatch("performance", {
      expected_version: 7,
      reason: "  ramp up to 75  ",
      changes: { percentage: 75, adapters: ["realtime"] },
    });
    expect(r).toEqual({
      ok: true,
      value: {
        expectedVersion: 7,
        reason: "ramp up to 75",
        changes: [{
          type: "category",
          category: "performance",
          changes: { percentage: 75, adapters: ["realtime"] },
        }],
      },
    });
  });

  it.each([
    ["percentage above 100", { ...base, changes: { percentage: 100.01 } }, "changes.percentage"],
    ["negative percentage", { ...base, changes: { percentage: -1 } }, "changes.percentage"],
    [
      "percentage finer than 0.01",
      { ...base, changes: { percentage: 12.345 } },
      "changes.percentage",
    ],
    ["percentage as a string", { ...base, changes: { percentage: "50" } }, "changes.percentage"],
    ["an unknown adapter", { ...base, changes: { adapters: ["kafka"] } }, "changes.adapters.0"],
    ["a repeated adapter", {
      ...base,
      changes: { adapters: ["websocket", "websocket"] },
    }, "changes.adapters"],
    [
      "an unknown delivery mode",
      { ...base, changes: { delivery_mode: "sse" } },
      "changes.delivery_mode",
    ],
    ["an unknown checksum", { ...base, changes: { checksum_alg: "md5" } }, "changes.checksum_alg"],
    ["enabled as a string", { ...base, changes: { enabled: "yes" } }, "changes.enabled"],
    ["an unknown field in changes", { ...base, changes: { percent: 5 } }, "changes"],
    ["no change at all", { ...base, changes: {} }, "changes"],
    ["no changes object", { ...base }, "changes"],
    ["an unknown top-level field", { ...base, changes: { enabled: true }, force: true }, ""],
    ["no reason", { expected_version: 7, changes: { enabled: true } }, "reason"],
    ["a two-letter reason", { ...base, reason: " ab ", changes: { enabled: true } }, "reason"],
    ["a 501-character reason", {
      ...base,
      reason: "x".repeat(501),
      changes: { enabled: true },
    }, "reason"],
    ["no expected_version", { reason: "ramp", changes: { enabled: true } }, "expected_version"],
    ["a fractional expected_version", {
      ...base,
      expected_version: 1.5,
      changes: { enabled: true },
    }, "expected_version"],
    ["expected_version as a string", {
      ...base,
      expected_version: "7",
      changes: { enabled: true },
    }, "expected_version"],
    ["an array body", [], ""],
    ["a null body", null, ""],
  ])("refuses %s, naming the field", (_name, body, path) => {
    const r = parseCategoryPatch("performance", body);
    expect(r.ok).toBe(false);
    expect(firstPath(r)).toBe(path);
    if (!r.ok) expect(r.error.message).toContain(path);
  });

  it("accepts 500 characters of reason and percentages on the 0.01 grain", () => {
    expect(
      parseCategoryPatch("debug", {
        ...base,
        reason: "x".repeat(500),
        changes: { percentage: 12.34 },
      }).ok,
    )
      .toBe(true);
    fc.assert(fc.property(fc.integer({ min: 0, max: 10_000 }), (n) => {
      expect(parseCategoryPatch("debug", { ...base, changes: { percentage: n / 100 } }).ok).toBe(
        true,
      );
    }));
  });
});

describe("PUT /flags/settings/:key body", () => {
  it.each(SETTING_KEYS)("accepts the default value of %s", (key) => {
    const r = parseSettingPut(key, { ...base, value: defaults.settings[key] });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.changes).toEqual([{ type: "setting", key, value: defaults.settings[key] }]);
    }
  });

  const breaker = defaults.settings.circuit_breaker;
  const rollback = defaults.settings.rollback;
  const health = defaults.settings.adapter_health;
  it.each<[string, SettingKey, unknown, string]>([
    ["an unknown override", "global_override", "kafka_only", "value"],
    ["a missing value", "global_override", undefined, "value"],
    ["an unknown primary adapter", "primary_adapter", "kafka", "value"],
    ["an unknown routing key", "routing_key", "user", "value"],
    ["an error threshold of 0", "adapter_health", {
      ...health,
      websocket: { ...health.websocket, error_threshold: 0 },
    }, "value.websocket.error_threshold"],
    ["an error threshold above 1", "adapter_health", {
      ...health,
      realtime: { ...health.realtime, error_threshold: 1.5 },
    }, "value.realtime.error_threshold"],
    ["a latency threshold of 0 ms", "adapter_health", {
      ...health,
      realtime: { ...health.realtime, latency_threshold_ms: 0 },
    }, "value.realtime.latency_threshold_ms"],
    [
      "health for one adapter only",
      "adapter_health",
      { websocket: health.websocket },
      "value.realtime",
    ],
    [
      "no half-open probes",
      "circuit_breaker",
      { ...breaker, half_open_requests: 0 },
      "value.half_open_requests",
    ],
    ["a latency multiplier below 1", "circuit_breaker", {
      ...breaker,
      latency_multiplier: 0.5,
    }, "value.latency_multiplier"],
    ["a partial breaker", "circuit_breaker", { enabled: false }, "value.recovery_time_s"],
    ["an unknown breaker field", "circuit_breaker", { ...breaker, threshold: 3 }, "value"],
    [
      "a rollback error rate of 0",
      "rollback",
      { ...rollback, error_rate_threshold: 0 },
      "value.error_rate_threshold",
    ],
    ["a rollback window of -1 s", "rollback", {
      ...rollback,
      error_rate_duration_s: -1,
    }, "value.error_rate_duration_s"],
    ["0 retention days", "retention_days", 0, "value"],
    ["anon read as a string", "anon_read_enabled", "true", "value"],
  ])("refuses %s, naming the field", (_name, key, value, path) => {
    const r = parseSettingPut(key, { ...base, value });
    expect(firstPath(r)).toBe(path);
    if (!r.ok) expect(r.error.message).toContain(path);
  });

  it("refuses unknown top-level fields", () => {
    expect(firstPath(parseSettingPut("retention_days", { ...base, value: 10, key: "x" }))).toBe("");
  });
});

describe("POST /flags/batch body", () => {
  it("accepts categories and settings together, in order", () => {
    const r = parseBatch({
      ...base,
      changes: [
        { type: "setting", key: "global_override", value: null },
        { type: "category", category: "critical", changes: { percentage: 10 } },
      ],
    });
    expect(r.ok && r.value.changes).toEqual([
      { type: "setting", key: "global_override", value: null },
      { type: "category", category: "critical", changes: { percentage: 10 } },
    ]);
  });

  it.each<[string, unknown[], string]>([
    ["an empty list", [], "changes"],
    ["the same category twice", [
      { type: "category", category: "debug", changes: { enabled: true } },
      { type: "category", category: "debug", changes: { percentage: 5 } },
    ], "changes.1"],
    ["an unknown type", [{ type: "rule", key: "x" }], "changes.0.type"],
    [
      "an unknown category",
      [{ type: "category", category: "audit", changes: { enabled: true } }],
      "changes.0.category",
    ],
    ["an unknown setting", [{ type: "setting", key: "colour", value: 1 }], "changes.0.key"],
    [
      "a bad setting value",
      [{ type: "setting", key: "primary_adapter", value: "kafka" }],
      "changes.0.value",
    ],
    ["a bad category change", [{
      type: "category",
      category: "debug",
      changes: { percentage: 200 },
    }], "changes.0.changes.percentage"],
    ["a category change with a value", [{
      type: "category",
      category: "debug",
      value: 1,
      changes: { enabled: true },
    }], "changes.0"],
    ["a setting change with changes", [{
      type: "setting",
      key: "retention_days",
      value: 3,
      changes: {},
    }], "changes.0"],
    ["a change that is not an object", [42], "changes.0"],
    [
      "too many changes",
      Array.from({ length: MAX_BATCH_CHANGES + 1 }, () => ({
        type: "setting",
        key: "retention_days",
        value: 3,
      })),
      "changes",
    ],
  ])("refuses %s", (_name, changes, path) => {
    expect(firstPath(parseBatch({ ...base, changes }))).toBe(path);
  });
});

const flagsArb: fc.Arbitrary<CategoryFlags> = fc.record({
  enabled: fc.boolean(),
  percentage: fc.integer({ min: 0, max: 10_000 }).map((n) => n / 100),
  adapters: fc.subarray([...ADAPTERS]).chain((a) =>
    fc.shuffledSubarray(a, { minLength: a.length })
  ),
  delivery_mode: fc.constantFrom("postgres_changes" as const, "broadcast" as const),
  checksum_alg: fc.constantFrom("crc32" as const, "sha256" as const),
});
const changesArb = flagsArb.chain((f) =>
  fc.subarray([...CATEGORY_FIELDS]).map((fields) =>
    Object.fromEntries(fields.map((k) => [k, f[k]])) as Partial<CategoryFlags>
  )
);

describe("merging and diffing category flags", () => {
  it("merges a change over the current flags, adapters in canonical order", () => {
    expect(
      mergeCategoryFlags(defaults.categories.performance, { adapters: ["realtime", "websocket"] }),
    )
      .toEqual({ ...defaults.categories.performance, adapters: ["websocket", "realtime"] });
  });

  it("reports exactly the fields whose values the change alters (adapters as a set)", () => {
    fc.assert(fc.property(flagsArb, changesArb, (before, changes) => {
      const after = mergeCategoryFlags(before, changes);
      const expected = CATEGORY_FIELDS.filter((k) =>
        k in changes &&
        (k === "adapters"
          ? [...before.adapters].sort().join() !== [...after.adapters].sort().join()
          : before[k] !== changes[k])
      );
      expect(changedCategoryFields(before, after)).toEqual(expected);
      expect(ADAPTERS.filter((a) => after.adapters.includes(a))).toEqual(after.adapters);
      for (const k of CATEGORY_FIELDS) {
        if (k in changes) continue;
        if (k === "adapters") expect([...after[k]].sort()).toEqual([...before[k]].sort());
        else expect(after[k]).toEqual(before[k]);
      }
    }));
  });

  it("finds no change between flags and themselves, and a change for every differing field", () => {
    for (const category of CATEGORIES) {
      const f = defaults.categories[category];
      expect(changedCategoryFields(f, mergeCategoryFlags(f, f))).toEqual([]);
      expect(changedCategoryFields(f, { ...f, enabled: !f.enabled })).toEqual(["enabled"]);
      expect(changedCategoryFields(f, { ...f, percentage: (f.percentage + 1) % 100 }))
        .toEqual(["percentage"]);
    }
  });

  it("throws when the merged flags are not valid", () => {
    const broken = {
      ...defaults.categories.debug,
      adapters: ["websocket", "websocket"],
    } as CategoryFlags;
    expect(() => mergeCategoryFlags(broken, { enabled: true })).toThrow();
  });
});

describe("setting equality", () => {
  it("ignores key order and tells values apart", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      const reordered = JSON.parse(
        JSON.stringify(
          v,
          (_k, x) =>
            x && typeof x === "object" && !Array.isArray(x)
              ? Object.fromEntries(Object.entries(x).reverse())
              : x,
        ),
      );
      expect(sameSettingValue(v, reordered)).toBe(true);
    }));
    expect(sameSettingValue(null, null)).toBe(true);
    expect(sameSettingValue(null, "websocket_only")).toBe(false);
    expect(sameSettingValue({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(sameSettingValue({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameSettingValue(0.05, 0.050)).toBe(true);
    expect(sameSettingValue(0.05, 0.5)).toBe(false);
  });
});

describe("the audit actor", () => {
  it.each<[string | null, string | null]>([
    [null, "service_role"],
    ["", "service_role"],
    ["   ", "service_role"],
    ["alice", "service_role:alice"],
    ["  Alice Smith ", "service_role:Alice Smith"],
    ["ops@example.com", "service_role:ops@example.com"],
    ["x".repeat(MAX_ACTOR_NAME), `service_role:${"x".repeat(MAX_ACTOR_NAME)}`],
    ["x".repeat(MAX_ACTOR_NAME + 1), null],
    ["alice\u0000", null],
    ["ali\nce", null],
  ])("%j → %j", (header, actor) => {
    const r = actorFrom(header);
    expect(r.ok ? r.value : null).toBe(actor);
  });
});
